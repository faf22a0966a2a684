"""Weighted pointers over HTTP: a canary split by routing key on every invoke surface, promote and
rollback as HTTP writes, each one commit that `mreg validate --base` accepts.

Showcase: iris v1, v2, v3 trained; prod -> v2 (the canary here is v3, the newest version).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from registry import bucket
from server.app import create_app
from server.runtime.auth import Token, hash_token
from tests.conftest import git, head
from tests.processes import MREG, serving
from tests.server_fixtures import SETOSA, bearer, metric_samples, token_secret
from tests.showcase import Showcase

CALLS = 2000


def tokens() -> list[Token]:
    scopes = {"writer": {"read", "invoke", "write"}, "invoker": {"read", "invoke"}}
    return [Token(n, hash_token(token_secret(n)), frozenset(s)) for n, s in scopes.items()]


def validates(root: Path) -> None:
    """`mreg validate --base HEAD~1` accepts the last commit (exit 0)."""
    out = subprocess.run(
        [*MREG, "--repo", str(root), "validate", "--base", "HEAD~1"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def arm_of(key: str) -> int:
    """The version a key reaches on prod at v2 90%, v3 10%: its bucket against the weights."""
    return 2 if bucket(key) < 90 else 3


@pytest.fixture
def client(showcase: Showcase, tmp_path: Path) -> Iterator[TestClient[Any]]:
    app = create_app(showcase.root, tokens=tokens(), usage_path=tmp_path / "usage.sqlite")
    with TestClient(app=app) as c:
        yield c


def invoke(client: TestClient[Any], key: str, *, header: bool = False) -> int:
    body: dict[str, Any] = {"data": SETOSA}
    headers = bearer("invoker")
    if header:
        headers = {**headers, "X-Mreg-Route-Key": key}
    else:
        body["route_key"] = key
    r = client.post("/v1/models/iris/invoke?pointer=prod", json=body, headers=headers)
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    assert r.headers["X-Mreg-Model-Id"] == r.json()["model_id"]
    return version


def test_canary_over_http_splits_keyed_calls_then_promote_and_rollback(
    client: TestClient[Any], showcase: Showcase
) -> None:
    root = showcase.root
    r = client.put(
        "/v1/models/iris/pointers/prod",
        json={"target": "v3", "weight": 10},
        headers=bearer("writer"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["write"]["subject"] == "iris: canary prod v3 10% (v2 -> v2 90%, v3 10%)"
    assert r.json()["write"]["commit"] == head(root)
    validates(root)
    # The model page draws the split: one bar segment per arm, sized by its weight.
    page = client.get("/ui/models/iris", headers=bearer("invoker")).text
    assert 'id="split-prod"' in page
    assert 'style="width: 90%" data-target="v2"' in page
    assert 'style="width: 10%" data-target="v3"' in page
    assert "iris:prod → iris:v3" in page
    # Its try-it form invokes a pointer (the script adds ?pointer= from the choice).
    assert '<form id="try-form" data-url="/v1/models/iris/invoke"' in page
    assert '<option value="prod">prod</option>' in page

    reached = {f"user-{i}": invoke(client, f"user-{i}") for i in range(CALLS)}
    counts = Counter(reached.values())
    assert set(counts) == {2, 3}
    assert 140 <= counts[3] <= 260, counts  # 10% of 2,000 (binomial, far beyond 4 sigma)
    assert all(version == arm_of(key) for key, version in reached.items())
    # Sticky: the same keys again, now by header, reach the same versions.
    for key in list(reached)[:200]:
        assert invoke(client, key, header=True) == reached[key]
    # Without a key a call still reaches one of the arms.
    r = client.post(
        "/v1/models/iris/invoke?pointer=prod", json={"data": SETOSA}, headers=bearer("invoker")
    )
    assert r.json()["version"] in (2, 3)

    # /metrics counts the versions actually used.
    samples = metric_samples(client.get("/metrics", headers=bearer("invoker")).text)
    used = {
        int(dict(labels)["version"]): value
        for (name, labels), value in samples.items()
        if name == "mreg_invocations_total" and dict(labels)["model"] == "iris"
    }
    again = sum(1 for k in list(reached)[:200] if reached[k] == 3)
    assert used[3] == counts[3] + again + (r.json()["version"] == 3)
    assert used[2] == CALLS + 200 + 1 - used[3]

    # /v1/runs and its job record, /v2 infer: the version used for the key.
    key3 = next(k for k, v in reached.items() if v == 3)
    key2 = next(k for k, v in reached.items() if v == 2)
    for key, want in ((key3, 3), (key2, 2)):
        run = client.post(
            "/v1/runs",
            json={"pipeline": "iris:prod", "inputs": [SETOSA], "route_key": key},
            headers=bearer("invoker"),
        )
        assert run.status_code == 200, run.text
        assert run.json()["version"] == want
        job = client.get(f"/v1/runs/{run.json()['id']}", headers=bearer("invoker")).json()
        assert (job["version"], job["model_id"]) == (want, run.json()["model_id"])
        v2 = client.post(
            "/v2/models/iris:prod/infer",
            json={
                "inputs": [
                    {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": SETOSA}
                ],
                "parameters": {"route_key": key},
            },
            headers=bearer("invoker"),
        )
        assert v2.status_code == 200, v2.text
        assert v2.json()["model_version"] == str(want)

    # Promote: the newest arm gets everything; one commit that validates.
    r = client.post("/v1/models/iris/pointers/prod/promote", headers=bearer("writer"))
    assert r.status_code == 200, r.text
    assert r.json()["write"]["subject"] == "iris: promote prod v3 (v2 90%, v3 10% -> v3)"
    assert (root / "pointers/iris/prod.yaml").read_text() == "target: v3\n"
    validates(root)
    assert {invoke(client, key2), invoke(client, key3)} == {3}

    # Rollback: the split is back, as one commit that validates; keys keep their arms.
    r = client.post("/v1/models/iris/pointers/prod/rollback", headers=bearer("writer"))
    assert r.status_code == 200, r.text
    assert r.json()["write"]["subject"] == "iris: roll back prod (v3 -> v2 90%, v3 10%)"
    assert git(root, "log", "-1", "--format=%an") == "writer"
    validates(root)
    assert (invoke(client, key2), invoke(client, key3)) == (2, 3)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("put", "prod", {"target": "v3", "weight": 100}, 400, "bad_request"),
        ("put", "fresh", {"target": "v3", "weight": 10}, 404, "pointer_not_found"),
        ("post", "prod/promote", None, 409, "conflict"),
        ("post", "prod/promote", {"target": "v9"}, 409, "conflict"),
        ("post", "nope/rollback", None, 404, "pointer_not_found"),
    ],
)
def test_refused_rollout_writes_change_nothing(
    client: TestClient[Any],
    showcase: Showcase,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    before = head(showcase.root)
    url = f"/v1/models/iris/pointers/{path}"
    r = client.request(method.upper(), url, json=body, headers=bearer("writer"))
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert head(showcase.root) == before


def test_a_protected_pointer_is_promoted_only_on_a_branch(
    client: TestClient[Any], showcase: Showcase
) -> None:
    root = showcase.root
    reg = showcase.registry()
    reg.point("iris:prod", "v3", weight=10)
    settings = root / "registry.yaml"
    settings.write_text(settings.read_text() + "protected_pointers: [prod]\n")
    git(root, "commit", "-qam", "protect prod")
    before = head(root)
    for action in ("promote", "rollback"):
        r = client.post(f"/v1/models/iris/pointers/prod/{action}", headers=bearer("writer"))
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "protected_pointer"
    assert head(root) == before
    r = client.post(
        "/v1/models/iris/pointers/prod/promote?branch=promote-prod", headers=bearer("writer")
    )
    assert r.status_code == 200, r.text
    assert r.json()["write"]["branch"] == "promote-prod"
    assert head(root) == before


def test_a_real_server_splits_keyed_calls_by_weight(showcase: Showcase) -> None:
    root = showcase.root
    subprocess.run(
        [*MREG, "--repo", str(root), "point", "iris:prod", "v3", "--weight", "10"], check=True
    )
    validates(root)
    with serving(root) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        reached = {}
        for i in range(CALLS):
            key = f"user-{i}"
            r = http.post(
                "/v1/models/iris/invoke?pointer=prod",
                json={"data": SETOSA},
                headers={"X-Mreg-Route-Key": key},
            )
            assert r.status_code == 200, r.text
            reached[key] = r.json()["version"]
        counts = Counter(reached.values())
        assert 140 <= counts[3] <= 260, counts
        assert all(v == arm_of(k) for k, v in reached.items())
        for key in list(reached)[:100]:  # sticky
            r = http.post(
                "/v1/models/iris/invoke?pointer=prod",
                json={"data": SETOSA, "route_key": key},
            )
            assert r.json()["version"] == reached[key]


def test_an_arm_the_caller_may_not_see_keeps_the_pointer_hidden(
    client: TestClient[Any],
) -> None:
    r = client.patch(
        "/v1/models/iris/versions/3", json={"visibility": "private"}, headers=bearer("writer")
    )
    assert r.status_code == 200, r.text
    r = client.put(
        "/v1/models/iris/pointers/prod",
        json={"target": "v3", "weight": 10},
        headers=bearer("writer"),
    )
    assert r.status_code == 200, r.text
    # Anonymous (iris is public, v3 is not): no key reaches v3, so no call is answered at all.
    for key in ("a", "b", "c"):
        r = client.post(
            "/v1/models/iris/invoke?pointer=prod", json={"data": SETOSA, "route_key": key}
        )
        assert r.status_code == 404, r.text
    # With a token that may read, the split serves both.
    versions = {invoke(client, f"user-{i}") for i in range(100)}
    assert versions == {2, 3}
