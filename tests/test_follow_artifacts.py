"""A following server never swaps in a commit whose served artifacts are corrupt or gone.

The commit is real and consistent (the version manifest and its .dvc file
agree on the md5) but the bytes behind that md5, in the DVC cache and the
remote, are not the model's. The server, a real `mreg serve --follow`
process polling the branch, keeps the last good revision and says why in
`last_reload_error`; `mreg validate --check-artifacts` reports the same.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from registry import Registry, cache_file, file_md5
from tests.conftest import git
from tests.processes import MREG, ROOT, serving
from tests.scale_fixtures import wait_for
from tests.server_fixtures import LABELS, SETOSA

pytest_plugins = ["tests.server_fixtures"]


@pytest.fixture
def registry(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg", remote=str(tmp_path / "store"))
    reg.create_model("iris")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, point=["prod"])
    return reg


def corrupt_everywhere(reg: Registry, tmp_path: Path, md5: str) -> None:
    """Other bytes behind `md5` in the DVC cache and in the local remote."""
    for copy in (
        cache_file(reg.root, md5),
        tmp_path / "store" / "files" / "md5" / md5[:2] / md5[2:],
    ):
        copy.chmod(0o644)
        copy.write_bytes(b"not the model that was registered")


def test_a_followed_commit_with_a_corrupt_artifact_is_not_swapped_in(
    registry: Registry, tmp_path: Path, other_model_file: Path
) -> None:
    first = git(registry.root, "rev-parse", "HEAD")
    with serving(registry.root, "--follow", "main", "--poll", "0.2") as server:
        registry.register("iris", other_model_file, output_info={"labels": LABELS})
        bad = git(registry.root, "rev-parse", "HEAD")
        corrupt_everywhere(registry, tmp_path, file_md5(other_model_file))

        def reload_failed() -> dict[str, str] | None:
            error = server.get("/v1/registry").json()["last_reload_error"]
            return error if error and error.get("revision") == bad else None

        error = wait_for(reload_failed, "the server to refuse the corrupt commit", 120)
        assert "iris:latest -> iris:v2" in error["message"]
        assert "md5 mismatch" in error["message"]
        assert server.get("/v1/registry").json()["revision"] == first
        answer = server.post("/v1/models/iris/invoke", json={"data": SETOSA})
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 1
    checked = subprocess.run(
        [*MREG, "--repo", str(registry.root), "validate", "--check-artifacts"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert checked.returncode == 1
    assert "served-artifact" in checked.stdout + checked.stderr
    assert "iris:latest -> iris:v2" in checked.stdout + checked.stderr


def test_a_followed_commit_whose_artifact_is_nowhere_is_not_swapped_in(
    registry: Registry, tmp_path: Path, other_model_file: Path
) -> None:
    with serving(registry.root, "--follow", "main", "--poll", "0.2") as server:
        registry.register("iris", other_model_file, output_info={"labels": LABELS})
        bad = git(registry.root, "rev-parse", "HEAD")
        md5 = file_md5(other_model_file)
        cache_file(registry.root, md5).unlink()
        (tmp_path / "store" / "files" / "md5" / md5[:2] / md5[2:]).unlink()

        def reload_failed() -> dict[str, str] | None:
            error = server.get("/v1/registry").json()["last_reload_error"]
            return error if error and error.get("revision") == bad else None

        error = wait_for(reload_failed, "the server to refuse the commit", 120)
        assert "neither the DVC cache nor the default remote" in error["message"]
        answer = server.post("/v1/models/iris/invoke", json={"data": SETOSA})
        assert answer.status_code == 200 and answer.json()["version"] == 1, answer.text
