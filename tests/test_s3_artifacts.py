"""Artifacts on S3: register, pull and serve through DVC's own S3 remote (dvc-s3).

The endpoint is moto's S3 server on a loopback port (tests/scale_fixtures.py);
credentials come from the environment only, never from Git. A fresh replica
(a clone) serving the registry fetches only the artifacts it serves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from registry import Registry, file_md5
from tests.conftest import git
from tests.processes import MREG, ROOT, ServeProcess
from tests.scale_fixtures import S3_CREDENTIALS
from tests.server_fixtures import LABELS, SETOSA

pytest_plugins = ["tests.server_fixtures", "tests.scale_fixtures"]

BUCKET = "mreg-models"
DVC = [sys.executable, "-m", "dvc"]


def mreg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [*MREG, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    return out


def cached(root: Path) -> set[str]:
    """The md5s of the objects in a registry's DVC cache."""
    files = root / ".dvc" / "cache" / "files" / "md5"
    return {p.parent.name + p.name for p in files.glob("*/*")} if files.is_dir() else set()


@pytest.fixture
def s3_registry(tmp_path: Path, s3_endpoint: str, model_files: dict[str, Path]) -> Registry:
    """A registry whose default DVC remote is s3://mreg-models/store, with iris and wine."""
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=BUCKET)
    root = tmp_path / "author"
    mreg("init", str(root), "--remote", f"s3://{BUCKET}/store", cwd=tmp_path)
    # Where the bucket lives is configuration for everyone (committed); the keys are not.
    subprocess.run(
        [*DVC, "remote", "modify", "storage", "endpointurl", s3_endpoint], cwd=root, check=True
    )
    git(root, "commit", "-q", "-am", "DVC remote: the S3 endpoint")
    for name in ("iris", "wine"):
        mreg("model", "create", name, "--library", "sklearn", "--public", cwd=root)
    labels = tmp_path / "output_info.json"
    labels.write_text(json.dumps({"labels": LABELS}))
    mreg("register", "iris", str(model_files["skops"]), "--output-info", str(labels), cwd=root)
    mreg("register", "wine", str(model_files["joblib"]), "--format", "joblib", cwd=root)
    return Registry(root)


def test_register_pushes_to_s3_and_git_holds_no_credentials(
    s3_registry: Registry, model_files: dict[str, Path]
) -> None:
    s3 = boto3.client("s3", endpoint_url=open_endpoint(s3_registry))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    for fmt in ("skops", "joblib"):
        md5 = file_md5(model_files[fmt])
        assert f"store/files/md5/{md5[:2]}/{md5[2:]}" in keys
    history = git(s3_registry.root, "log", "-p", "--all")
    assert "s3://mreg-models/store" in history
    for secret in S3_CREDENTIALS.values():
        if secret != "us-east-1":
            assert secret not in history


def open_endpoint(reg: Registry) -> str:
    config = (reg.root / ".dvc" / "config").read_text()
    return next(
        line.split("=", 1)[1].strip() for line in config.splitlines() if "endpointurl" in line
    )


def test_a_clone_pulls_from_s3(
    s3_registry: Registry, tmp_path: Path, model_files: dict[str, Path]
) -> None:
    git(tmp_path, "clone", "-q", str(s3_registry.root), "clone")
    clone = tmp_path / "clone"
    mreg("pull", "iris", cwd=clone)
    pulled = clone / "models" / "iris" / "artifacts" / "v1"
    files = [p for p in pulled.iterdir() if not p.name.endswith((".dvc", ".gitignore"))]
    assert [file_md5(p) for p in files] == [file_md5(model_files["skops"])]
    assert cached(clone) == {file_md5(model_files["skops"])}  # wine stayed in S3


@pytest.mark.slow
def test_a_fresh_replica_serves_from_s3_fetching_only_what_it_serves(
    s3_registry: Registry,
    tmp_path: Path,
    model_files: dict[str, Path],
    serve: Callable[..., ServeProcess],
) -> None:
    git(tmp_path, "clone", "-q", str(s3_registry.root), "replica")
    replica = tmp_path / "replica"
    assert cached(replica) == set()
    # --no-preload: each model is fetched on its first call (preload, the default, fetches the
    # latest version and pointer targets of the first models before /readyz).
    server = serve(replica, "--no-preload")
    server.wait_ready()
    answer = server.post("/v1/models/iris/invoke", json={"data": SETOSA})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["label"] == "setosa"
    assert cached(replica) == {file_md5(model_files["skops"])}
