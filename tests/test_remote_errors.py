"""A DVC remote that fails says how, in one `error:` line: unreachable, no credentials, corrupt.

S3 is moto's server on a loopback port, stopped mid-test; the corrupt
artifact is a real object in a local remote with other bytes written over it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from registry import Registry, file_md5
from tests.conftest import git
from tests.processes import MREG, ROOT, free_port
from tests.scale_fixtures import S3_CREDENTIALS

BUCKET = "mreg-faults"
DVC = [sys.executable, "-m", "dvc"]
NO_CREDENTIALS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def mreg(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*MREG, *args], cwd=cwd, env=env or base, capture_output=True, text=True, check=False
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[object, str]]:
    """moto's S3 server (stoppable by the test) and its URL; credentials in the environment."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            server.stop()
            stopped = True

    try:
        yield stop, url
    finally:
        stop()


@pytest.fixture
def s3_registry(tmp_path: Path, s3: tuple[object, str]) -> Path:
    root = tmp_path / "reg"
    assert mreg("init", str(root), "--remote", f"s3://{BUCKET}/store", cwd=tmp_path).returncode == 0
    subprocess.run(
        [*DVC, "remote", "modify", "storage", "endpointurl", s3[1]], cwd=root, check=True
    )
    git(root, "commit", "-q", "-am", "DVC remote: the S3 endpoint")
    assert mreg("model", "create", "iris", cwd=root).returncode == 0
    registered = mreg("register", "iris", str(artifact(tmp_path, 1)), cwd=root)
    assert registered.returncode == 0, registered.stderr
    return root


def artifact(tmp_path: Path, i: int) -> Path:
    path = tmp_path / f"m{i}" / "model.skops"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"model bytes {i}".encode() * 50)
    return path


def test_register_while_s3_is_down_says_unreachable(
    s3_registry: Path, s3: tuple[object, str], tmp_path: Path
) -> None:
    stop = s3[0]
    stop()  # type: ignore[operator]
    before = git(s3_registry, "rev-parse", "HEAD")
    line = one_error_line(mreg("register", "iris", str(artifact(tmp_path, 2)), cwd=s3_registry))
    assert "cannot push to the default DVC remote s3://" in line and "unreachable" in line
    assert git(s3_registry, "rev-parse", "HEAD") == before


def test_register_without_credentials_says_so(s3_registry: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(NO_CREDENTIALS, PYTHONPATH=str(ROOT))
    line = one_error_line(
        mreg("register", "iris", str(artifact(tmp_path, 2)), cwd=s3_registry, env=env)
    )
    assert "no credentials" in line, line


def test_pull_while_s3_is_down_says_unreachable_not_missing(
    s3_registry: Path, s3: tuple[object, str]
) -> None:
    shutil.rmtree(s3_registry / ".dvc" / "cache")
    (s3_registry / "models" / "iris" / "model.skops").unlink(missing_ok=True)
    stop = s3[0]
    stop()  # type: ignore[operator]
    line = one_error_line(mreg("pull", cwd=s3_registry))
    assert "unreachable" in line and "neither" not in line, line


def test_a_corrupt_copy_in_the_remote_is_an_md5_mismatch_and_a_lost_remote_unreachable(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    reg = Registry.init(tmp_path / "reg", remote=str(store))
    reg.create_model("iris")
    source = artifact(tmp_path, 1)
    reg.register("iris", source)
    md5 = file_md5(source)
    remote_copy = store / "files" / "md5" / md5[:2] / md5[2:]
    remote_copy.chmod(0o644)
    remote_copy.write_bytes(b"flipped bits" * 50)
    shutil.rmtree(reg.root / ".dvc" / "cache")
    line = one_error_line(mreg("pull", "iris:v1", cwd=reg.root))
    assert "corrupt: md5 mismatch" in line and "neither" not in line, line
    assert remote_copy.is_file()  # the evidence stays (DVC itself would delete it)
    shutil.rmtree(store)
    line = one_error_line(mreg("pull", "iris:v1", cwd=reg.root))
    assert f"the default DVC remote {store} is unreachable" in line, line
