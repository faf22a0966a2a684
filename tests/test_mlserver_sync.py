"""`mreg sync mlserver` against a real MLServer: a pointer move on the followed branch is served
without a restart, an archived model is unloaded.

The registry is published to a bare git repository; the sync runs on a clone
of it (`--follow origin/main`), as a deployment would; MLServer runs from its
own venv (tests/mlserver_venv.py) on an initially empty repository.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.conftest import apply_isolation
from tests.mlserver_process import MLServerProcess
from tests.processes import MREG, ROOT, free_port
from tests.remote_registry import RemoteRegistry, git, publish
from tests.showcase import Showcase, copy_showcase
from tool.cli import cli

IRIS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@dataclass
class Deployment:
    remote: RemoteRegistry
    clone: Path
    repo: Path
    mlserver: MLServerProcess

    def sync(self, *args: str) -> list[str]:
        return [
            "--repo", str(self.clone), "sync", "mlserver", *args,
            "--url", self.mlserver.url, "--dir", str(self.repo), "--follow", "origin/main",
        ]  # fmt: skip

    def served(self, model: str = "iris") -> tuple[int, dict[str, object]]:
        body = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": IRIS}]}
        response = self.mlserver.post(f"/v2/models/{model}/infer", json=body)
        return response.status_code, response.json()


@pytest.fixture(scope="module")
def deployment(
    showcase_template: Showcase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    with pytest.MonkeyPatch.context() as mp:
        apply_isolation(mp, tmp_path_factory.mktemp("home"))
        tmp = tmp_path_factory.mktemp("sync")
        remote = publish(copy_showcase(showcase_template, tmp / "authoring"), tmp / "registry.git")
        clone = tmp / "deploy"
        git(tmp, "clone", "-q", remote.url, str(clone))
        repo = tmp / "mlserver-models"
        repo.mkdir()
        ml = MLServerProcess(repo)
        try:
            ml.wait_ready()
            yield Deployment(remote, clone, repo, ml)
        finally:
            ml.stop()


def run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


def test_sync_follows_a_pointer_move_and_unloads_an_archived_model(deployment: Deployment) -> None:
    show = deployment.remote.show
    first = run(deployment.sync("iris:prod", "--once"))
    assert first.exit_code == 0, first.output
    assert "loaded iris:v2" in first.output
    status, body = deployment.served()
    assert status == 200, body
    assert body["model_version"] == "2"
    assert body["parameters"]["model_id"] == show.ids["iris:v2"]  # type: ignore[index]

    # The sync keeps running; the pointer moves on the remote branch.
    follower = subprocess.Popen(
        [*MREG, *deployment.sync("iris:prod", "--poll", "1")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        show.registry().point("iris:prod", "v3")
        deployment.remote.push()
        for _ in range(600):  # bounded: each try is one request and a short pause
            status, body = deployment.served()
            if status == 200 and body["model_version"] == "3":
                break
            assert follower.poll() is None, follower.communicate()[0]
            time.sleep(0.2)
        assert body["model_version"] == "3", body
        assert body["parameters"]["model_id"] == show.ids["iris:v3"]  # type: ignore[index]
        assert sorted(p.name for p in (deployment.repo / "iris").iterdir()) == ["3"]
    finally:
        follower.terminate()
        output = follower.communicate(timeout=30)[0]
    assert "loaded iris:v3" in output, output

    # Archived: removed from the repository and unloaded from MLServer.
    show.registry().archive_model("iris")
    deployment.remote.push()
    gone = run(deployment.sync("iris:prod", "--once"))
    assert "unloaded iris" in gone.output, gone.output
    assert not (deployment.repo / "iris").exists()
    status, _ = deployment.served()
    assert status == 404


def test_a_new_version_of_latest_is_loaded(deployment: Deployment, tmp_path: Path) -> None:
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    show = deployment.remote.show
    x, y = load_iris(return_X_y=True)
    ids = []
    for n, c in enumerate([0.5, 5.0], start=1):
        path = tmp_path / f"flower-{n}.skops"
        skops.io.dump(LogisticRegression(C=c, max_iter=500).fit(x, y), path)
        ids.append(show.registry().register("flower", path, create=n == 1).value.id)
        deployment.remote.push()
        done = run(deployment.sync("flower", "--once"))
        assert done.exit_code == 0, done.output
        assert f"loaded flower:v{n}" in done.output
        status, body = deployment.served("flower")
        assert status == 200, body
        assert (body["model_version"], body["parameters"]["model_id"]) == (str(n), ids[-1])  # type: ignore[index]
    assert [p.name for p in (deployment.repo / "flower").iterdir()] == ["2"]
    again = run(deployment.sync("flower", "--once"))
    assert again.exit_code == 0 and "loaded" not in again.output  # nothing new: nothing to do


def test_an_unreachable_mlserver_is_an_error_line(deployment: Deployment, tmp_path: Path) -> None:
    args = [
        "--repo", str(deployment.clone), "sync", "mlserver", "iris:staging",
        "--url", f"http://127.0.0.1:{free_port()}", "--dir", str(tmp_path / "repo"), "--once",
    ]  # fmt: skip
    result = run(args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "is not reachable" in lines[0], result.output
