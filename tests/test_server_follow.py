"""--follow: new commits swap in atomically; pins keep working; a bad revision never replaces a good one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from server.runtime import LATEST
from tests.conftest import git, head
from tests.server_fixtures import LABELS, SETOSA

pytest_plugins = ["tests.server_fixtures"]


@pytest.fixture
def registry(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, point=["prod"])
    return reg


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(registry, follow="main", poll=0)) as c:
        yield c


def invoke(client: TestClient[Any], query: str = "") -> dict[str, Any]:
    r = client.post(f"/v1/models/iris/invoke{query}", json={"data": SETOSA})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_latest_moves_after_a_new_commit_and_pins_stay(
    client: TestClient[Any], registry: Registry, other_model_file: Path
) -> None:
    first = invoke(client)
    v1 = first["model_id"]
    assert (first["version"], first["revision"]) == (1, head(registry, "main"))
    registry.register("iris", other_model_file, output_info={"labels": LABELS})
    assert invoke(client)["version"] == 1  # nothing moves until the server reloads

    r = client.post("/v1/admin/reload")
    assert r.status_code == 200
    assert r.json()["reloaded"] is True
    assert r.json()["revision"] == head(registry, "main")

    after = invoke(client)
    assert (after["version"], after["revision"]) == (2, head(registry, "main"))
    pinned = invoke(client, f"?modelId={v1}")
    assert (pinned["version"], pinned["model_id"]) == (1, v1)
    assert invoke(client, "?pointer=prod")["version"] == 1
    assert client.get("/v1/registry").json()["counts"]["versions"] == 2
    assert "mreg_reloads_total 1" in client.get("/metrics").text


def test_a_reload_without_new_commits_changes_nothing(client: TestClient[Any]) -> None:
    before = client.get("/v1/registry").json()
    r = client.post("/v1/admin/reload").json()
    assert r["reloaded"] is False
    assert r["revision"] == before["revision"]
    assert r["loaded_at"] == before["loaded_at"]


def test_a_failed_reload_keeps_serving_the_old_revision(
    client: TestClient[Any], registry: Registry
) -> None:
    good = head(registry, "main")
    model_yaml = registry.root / "models" / "iris" / "model.yaml"
    model_yaml.write_text(model_yaml.read_text() + "colour: blue\n")
    git(registry.root, "commit", "-qam", "a typo in a manifest")
    bad = head(registry, "main")

    r = client.post("/v1/admin/reload").json()
    assert r["reloaded"] is False
    assert r["revision"] == good
    error = r["last_reload_error"]
    assert error["revision"] == bad
    assert "models/iris/model.yaml" in error["message"]
    assert "colour" in error["message"]
    assert client.get("/v1/registry").json()["last_reload_error"]["revision"] == bad
    assert invoke(client)["revision"] == good
    again = client.post("/v1/admin/reload").json()  # the same bad commit is not retried
    assert (again["reloaded"], again["last_reload_error"]) == (False, error)
    assert "mreg_reload_failures_total 1" in client.get("/metrics").text

    model_yaml.write_text(model_yaml.read_text().replace("colour: blue\n", ""))
    git(registry.root, "commit", "-qam", "fix the typo")
    r = client.post("/v1/admin/reload").json()
    assert (r["reloaded"], r["revision"], r["last_reload_error"]) == (
        True,
        head(registry, "main"),
        None,
    )


def test_a_dangling_pointer_fails_the_reload_not_a_request(
    client: TestClient[Any], registry: Registry
) -> None:
    (registry.root / "pointers" / "iris" / "prod.yaml").write_text("target: v9\n")
    git(registry.root, "commit", "-qam", "point prod at a version that does not exist")
    r = client.post("/v1/admin/reload").json()
    assert r["reloaded"] is False
    assert "v9" in r["last_reload_error"]["message"]
    assert invoke(client, "?pointer=prod")["version"] == 1


def test_requests_in_flight_keep_the_revision_they_started_on(
    registry: Registry, other_model_file: Path
) -> None:
    app = create_app(registry, follow="main", poll=0)
    with TestClient(app=app) as c:
        server = app.state.runtime
        old = server.served  # what a request in flight holds
        registry.register("iris", other_model_file, output_info={"labels": LABELS})
        assert c.post("/v1/admin/reload").json()["reloaded"] is True
        assert server.served is not old
        assert old.resolve("iris", LATEST)[0].version.version == 1
        assert server.served.resolve("iris", LATEST)[0].version.version == 2


def test_polling_picks_up_new_commits(registry: Registry, other_model_file: Path) -> None:
    with TestClient(app=create_app(registry, follow="main", poll=0.05)) as c:
        registry.register("iris", other_model_file, output_info={"labels": LABELS})
        target = head(registry, "main")
        deadline = time.monotonic() + 30
        while c.get("/v1/registry").json()["revision"] != target:
            assert time.monotonic() < deadline, "the poller never loaded the new commit"
            time.sleep(0.05)
        assert invoke(c)["version"] == 2


def test_following_a_branch_that_disappears_keeps_the_old_revision(
    registry: Registry, tmp_path: Path
) -> None:
    git(registry.root, "branch", "candidate")
    with TestClient(app=create_app(registry, follow="candidate", poll=0)) as c:
        git(registry.root, "branch", "-D", "candidate")
        r = c.post("/v1/admin/reload").json()
        assert r["reloaded"] is False
        assert "candidate" in r["last_reload_error"]["message"]
        assert invoke(c)["version"] == 1


def test_a_clone_follows_its_remote_branch(
    registry: Registry, other_model_file: Path, tmp_path: Path
) -> None:
    """A server deployed as a clone follows origin/main: each reload fetches first."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(registry.root), str(clone))
    with TestClient(app=create_app(Registry(clone), follow="origin/main", poll=0)) as c:
        assert invoke(c)["version"] == 1
        registry.register("iris", other_model_file, output_info={"labels": LABELS})
        r = c.post("/v1/admin/reload").json()
        assert (r["reloaded"], r["revision"]) == (True, head(registry, "main"))
        assert invoke(c)["version"] == 2  # the artifact comes from the shared DVC remote

        git(clone, "remote", "set-url", "origin", str(tmp_path / "gone"))
        r = c.post("/v1/admin/reload").json()
        assert r["reloaded"] is False
        assert r["last_reload_error"]["message"].startswith("fetching origin/main failed")
        assert invoke(c)["version"] == 2
