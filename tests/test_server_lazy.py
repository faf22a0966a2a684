"""A server ready before any model is read (issue 24): models parsed when first asked for.

The proofs are structural, never timed: the server answers although an
unrelated manifest is broken (so it never parsed it), the parse cache counts
what was parsed, and the snapshot's source says whether the whole tree was
ever listed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from bench import synth
from registry import ManifestCache, Registry
from server import create_app
from server.runtime import Served
from tests.conftest import git, head
from tests.server_fixtures import LABELS, SETOSA

pytest_plugins = ["tests.server_fixtures"]

MODELS, VERSIONS = 30, 3
NAMES = [synth.model_name(i) for i in range(MODELS)]


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """30 models x 3 versions, with an unrelated model's version broken."""
    repo = tmp_path / "reg"
    synth.make_mreg_registry(repo, MODELS, VERSIONS, dict(os.environ))
    path = repo / f"models/{NAMES[21]}/versions/2.yaml"
    path.write_text("version: two\nunknown_key: 1\n")
    git(repo, "commit", "-qam", "break one unrelated version")
    return repo


def listed_everything(client: TestClient[Any]) -> bool:
    runtime = client.app.state.runtime
    return getattr(runtime.served.snapshot.source, "_listing", None) is not None


def test_the_server_is_ready_before_it_reads_a_model(broken: Path, tmp_path: Path) -> None:
    reg = Registry(broken)
    reg.cache = ManifestCache()  # in memory only: every parse is counted
    with TestClient(app=create_app(reg, "HEAD", usage_path=tmp_path / "u")) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        assert reg.cache.parses == 0
        assert not listed_everything(client)

        one = client.get(f"/v1/models/{NAMES[7]}").json()
        assert [v["version"] for v in one["versions"]] == [1, 2, 3]
        assert [p["tag"] for p in one["pointers"]] == ["prod", "staging"]
        # model.yaml, its versions, its pointers: nothing of any other model.
        assert reg.cache.parses == 1 + VERSIONS + 2
        resolved = client.get(f"/v1/resolve/{NAMES[7]}:prod").json()
        assert resolved["id"] == one["latest"]["id"]

        first = client.get("/v1/models?limit=7").json()
        assert [m["name"] for m in first["models"]] == NAMES[:7]
        assert [m["versions_count"] for m in first["models"]] == [VERSIONS] * 7
        second = client.get(f"/v1/models?limit=7&cursor={first['next_cursor']}").json()
        assert [m["name"] for m in second["models"]] == NAMES[7:14]
        assert not listed_everything(client)

        # The broken version fails its own model's reads only.
        bad = client.get(f"/v1/models/{NAMES[21]}/versions")
        assert bad.status_code >= 400
        assert bad.json()["error"]["detail"]["file"] == f"models/{NAMES[21]}/versions/2.yaml"
        assert client.get(f"/v1/models/{NAMES[22]}").status_code == 200

        counts = client.get("/v1/registry").json()["counts"]
        assert counts == {
            "models": MODELS,
            "archived_models": 0,
            "versions": MODELS * VERSIONS,
            "pointers": 2 * MODELS,
        }


@pytest.fixture
def iris(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, point=["prod"])
    return reg


def test_a_reload_checks_what_changed_not_what_was_broken_before(
    iris: Registry, other_model_file: Path, tmp_path: Path
) -> None:
    (iris.root / "models" / "other").mkdir()
    (iris.root / "models" / "other" / "model.yaml").write_text("name: [not, a, name\n")
    git(iris.root, "add", "-A")
    git(iris.root, "commit", "-qm", "an unrelated model that does not parse")
    app = create_app(iris, follow="main", poll=0, usage_path=tmp_path / "u")
    with TestClient(app=app) as client:
        r = client.post("/v1/models/iris/invoke", json={"data": SETOSA})
        assert (r.status_code, r.json()["version"]) == (200, 1)

        iris.register("iris", other_model_file, output_info={"labels": LABELS})
        reloaded = client.post("/v1/admin/reload").json()
        assert (reloaded["reloaded"], reloaded["revision"]) == (True, head(iris, "main"))
        r = client.post("/v1/models/iris/invoke", json={"data": SETOSA})
        assert r.json()["version"] == 2

        # A change that breaks a model is refused, and the message names its file.
        (iris.root / "pointers" / "iris" / "prod.yaml").write_text("target: v9\n")
        git(iris.root, "commit", "-qam", "point prod at a version that does not exist")
        refused = client.post("/v1/admin/reload").json()
        assert refused["reloaded"] is False
        assert "v9" in refused["last_reload_error"]["message"]


def test_preload_is_bounded_by_the_pool(broken: Path, tmp_path: Path) -> None:
    """Preloading a large registry reads a few models, not all (the pool holds no more)."""
    reg = Registry(broken)
    reg.cache = ManifestCache()
    app = create_app(reg, "HEAD", preload=True, max_loaded=2, usage_path=tmp_path / "u")
    with TestClient(app=app) as client:
        assert client.get("/readyz").status_code == 200
        runtime = client.app.state.runtime
        # The synthetic artifacts are not in the DVC cache: each model looked at fails to
        # load, and at most 8 models a pool slot are looked at.
        assert runtime.served.models.read <= 8 * 2 < MODELS


def test_counts_are_counted_once_per_revision(broken: Path) -> None:
    reg = Registry(broken)
    reg.cache = ManifestCache()
    counts = Served.load(reg, "HEAD").counts()
    assert counts["versions"] == MODELS * VERSIONS
    parses = reg.cache.parses
    assert parses == MODELS  # model manifests only: no version was parsed
    again = Served.load(reg, "HEAD")  # a restart at the same commit
    assert again.counts() == counts
    assert reg.cache.parses == parses
    assert getattr(again.snapshot.source, "_listing", None) is None  # nor listed the tree
