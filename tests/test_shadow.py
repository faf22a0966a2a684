"""Shadow traffic: a pointer's `shadow:` gets a sample of its calls off the request path, and
`GET /v1/models/{m}/pointers/{tag}/shadow` compares the two on real calls.

Showcase: iris v1, v2, v3 trained; prod -> v2.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from registry import Registry
from server.app import create_app
from server.runtime.pool import ModelPool, default_locator
from server.runtime.served import Served
from server.runtime.shadow import Shadows, compare, percentile
from tests.conftest import git
from tests.processes import MREG
from tests.server_fixtures import SETOSA, VIRGINICA
from tests.showcase import Showcase

PROD = "pointers/iris/prod.yaml"


def shadow_prod(root: Path, text: str) -> None:
    """Give iris:prod a shadow by editing its file, as a person would, in one commit."""
    (root / PROD).write_text("target: v2\n" + text)
    git(root, "commit", "-qam", "iris: shadow prod")
    out = subprocess.run(
        [*MREG, "--repo", str(root), "validate", "--base", "HEAD~1"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture
def client(showcase: Showcase, tmp_path: Path) -> Iterator[TestClient[Any]]:
    app = create_app(showcase.root, usage_path=tmp_path / "usage.sqlite")
    with TestClient(app=app) as c:
        yield c


def reload(client: TestClient[Any]) -> None:
    """Serve the new commit (what a followed branch or a write does)."""
    assert client.blocking_portal.call(client.app.state.runtime.reload)


def settle(client: TestClient[Any]) -> None:
    """Wait until the shadow queue is empty (every queued call compared or failed)."""
    client.blocking_portal.call(client.app.state.runtime.shadows.idle)


def call(client: TestClient[Any], row: list[float], key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": row}
    if key is not None:
        body["route_key"] = key
    r = client.post("/v1/models/iris/invoke?pointer=prod", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_a_shadow_is_compared_on_real_calls_without_changing_the_answer(
    showcase: Showcase, client: TestClient[Any]
) -> None:
    before = {
        name: client.post("/v1/models/iris/invoke?version=2", json={"data": row}).json()["outputs"]
        for name, row in (("setosa", SETOSA), ("virginica", VIRGINICA))
    }
    shadow_prod(showcase.root, "shadow: v3\n")
    reload(client)
    for i in range(20):
        row, name = (SETOSA, "setosa") if i % 2 else (VIRGINICA, "virginica")
        answer = call(client, row)
        assert (answer["version"], answer["outputs"]) == (2, before[name])
    settle(client)
    report = client.get("/v1/models/iris/pointers/prod/shadow").json()
    assert report["shadow"]["target"] == "v3" and report["shadow"]["version"] == 3
    assert report["shadow"]["sample"] == 1.0
    assert report["primary"]["version"] == 2
    assert report["compared_with"]["version"] == 3
    assert report["counts"] == {"compared": 20, "dropped": 0, "failed": 0}
    assert report["window"]["calls"] == 20 and report["window"]["rows"] == 20
    assert report["agreement"] == 1.0  # both versions call these flowers right
    assert report["mean_abs_diff"] is None  # a classifier: labels, no numbers
    for side in ("primary", "shadow"):
        latency = report["latency_ms"][side]
        assert 0 < latency["p50"] <= latency["p95"]
    # The latest calls' outputs, side by side (newest first: a setosa, the 20th call).
    assert len(report["recent"]) == 10
    newest = report["recent"][0]
    assert newest["primary"]["outputs"] == before["setosa"]
    assert newest["shadow"]["outputs"][0]["label"] == "setosa"
    assert newest["shadow"]["latency_ms"] > 0
    # The model page shows the report beside the pointer.
    page = client.get("/ui/models/iris").text
    assert 'id="shadow-prod"' in page and "100.0% agree" in page


def test_a_shadow_that_fails_to_load_is_counted_and_never_felt(
    showcase: Showcase, client: TestClient[Any]
) -> None:
    root = showcase.root
    md5 = showcase.registry().snapshot("HEAD").version("iris", 1).artifact.md5
    gone = [p for p in root.rglob(md5[2:]) if p.is_file()]
    gone += list((root / "models/iris/artifacts/v1").glob("*.skops"))
    assert gone
    for path in gone:
        path.unlink()
    shadow_prod(root, "shadow: v1\nshadow_sample: 1.0\n")
    reload(client)
    for _ in range(10):
        assert call(client, SETOSA)["version"] == 2
    settle(client)
    report = client.get("/v1/models/iris/pointers/prod/shadow").json()
    assert report["counts"] == {"compared": 0, "dropped": 0, "failed": 10}
    assert "iris:v1" in report["last_error"]
    assert report["agreement"] is None and report["latency_ms"]["shadow"]["p50"] is None


def test_a_sample_of_keyed_calls_goes_to_the_shadow(
    showcase: Showcase, client: TestClient[Any]
) -> None:
    shadow_prod(showcase.root, "shadow: v3\nshadow_sample: 0.2\n")
    reload(client)
    served = client.app.state.runtime.served
    shadow = served.snapshot.resolve("iris:prod").shadow
    assert shadow is not None
    keys = [f"user-{i}" for i in range(200)]
    for key in keys:
        call(client, SETOSA, key)
    settle(client)
    report = client.get("/v1/models/iris/pointers/prod/shadow").json()
    taken = sum(shadow.takes(key) for key in keys)
    assert 10 < taken < 70
    assert report["counts"]["compared"] == taken


def test_a_full_queue_drops_and_counts(showcase: Showcase) -> None:
    shadow_prod(showcase.root, "shadow: v3\n")
    reg = Registry(showcase.root)
    served = Served.load(reg, "HEAD", "HEAD")
    resolution = served.snapshot.resolve("iris:prod")
    shadows = Shadows(ModelPool(reg, default_locator), queue_size=2)

    async def burst() -> dict[str, Any]:
        shadows.start()
        for _ in range(5):  # no await between: the worker cannot take one meanwhile
            shadows.offer("iris", "prod", served, resolution, None, [SETOSA], [{}], 1.0)
        await shadows.idle()
        await shadows.stop()
        return shadows.report("iris", "prod", resolution)

    report = asyncio.run(burst())
    assert report["counts"] == {"compared": 2, "dropped": 3, "failed": 0}
    assert report["agreement"] == 0.0  # `{}` is not the shadow's answer


def test_the_report_of_a_pointer_without_shadow_and_of_no_pointer(
    client: TestClient[Any],
) -> None:
    report = client.get("/v1/models/iris/pointers/prod/shadow").json()
    assert report["shadow"] is None
    assert report["counts"] == {"compared": 0, "dropped": 0, "failed": 0}
    r = client.get("/v1/models/iris/pointers/nope/shadow")
    assert r.status_code == 404 and r.json()["error"]["code"] == "pointer_not_found"


def test_compare_labels_and_numbers() -> None:
    assert compare([{"label": "a"}, {"label": "b"}], [{"label": "a"}, {"label": "c"}]) == (2, 1, [])
    assert compare([1.5, 2.0], [1.0, 2.5]) == (0, 0, [0.5, 0.5])
    assert compare([[1.0, 2.0]], [[1.5, 2.0]]) == (0, 0, [0.5, 0.0])
    assert compare([1, 2], [1, 3]) == (2, 1, [])  # class numbers are labels
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 95) == 4.0
