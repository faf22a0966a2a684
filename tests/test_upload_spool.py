"""Uploads waiting on disk (`.git/mreg/uploads/`) heal and stay bounded.

A server killed mid-upload leaves the received bytes behind; the next server
start removes them (and only them: a live upload's folder is locked). All
uploads in progress together stay under `--max-upload-total`: one beyond it
gets 507 in mreg's error shape.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from registry import Registry, UploadSpaceError, clean_uploads, receive_upload
from tests.processes import ServeProcess, serving

WRITER = {"Authorization": "Bearer secret-writer"}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris")
    reg.register("iris", untrained=True)
    reg.register("iris", untrained=True)
    return reg


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    digest = hashlib.sha256(b"secret-writer").hexdigest()
    path.write_text(json.dumps([{"name": "writer", "sha256": digest, "scopes": ["write"]}]))
    return path


def uploads(registry: Registry) -> Path:
    return registry.state_dir / "uploads"


@contextmanager
def half_upload(url: str, registry: Registry, length: int = 1_000_000) -> Iterator[socket.socket]:
    """An upload of `length` bytes that sent 200 KB and waits, its bytes on the server's disk."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            "PUT /v1/models/iris/versions/1/artifact?filename=iris.skops HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nAuthorization: Bearer secret-writer\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n".encode()
            + b"x" * 200_000
        )
        deadline = time.monotonic() + 60
        while sum(f.stat().st_size for f in uploads(registry).rglob("iris.skops")) < 200_000:
            assert time.monotonic() < deadline, "the upload never reached the server's disk"
            time.sleep(0.05)
        yield s


def test_the_bytes_of_a_server_killed_mid_upload_are_removed_at_its_next_start(
    registry: Registry, tokens: Path
) -> None:
    server = ServeProcess(registry.root, "--tokens", str(tokens))
    try:
        server.wait_ready()
        with half_upload(server.url, registry):
            server.proc.kill()
            server.proc.wait(timeout=60)
    finally:
        server.stop()
    left = list(uploads(registry).iterdir())
    assert left, "the kill left nothing: the test no longer makes the fault happen"
    with serving(registry.root, "--tokens", str(tokens)):
        assert list(uploads(registry).iterdir()) == []


def test_uploads_beyond_the_total_bound_get_507_in_the_error_shape(
    registry: Registry, tokens: Path
) -> None:
    args = ("--tokens", str(tokens), "--max-upload-total", "300000")
    with serving(registry.root, *args) as server:
        put = f"{server.url}/v1/models/iris/versions/2/artifact?filename=iris.skops"
        headers = {**WRITER, "Content-Type": "application/octet-stream"}
        too_big = httpx.put(put, content=b"y" * 400_000, headers=headers, timeout=60)
        assert too_big.status_code == 507
        error = too_big.json()["error"]
        assert error["code"] == "insufficient_storage"
        assert "300000" in error["message"]
        with half_upload(server.url, registry, 250_000):
            beside = httpx.put(put, content=b"y" * 150_000, headers=headers, timeout=60)
            assert beside.status_code == 507, beside.text
        # The first one hung up: its bytes are gone and the same upload now fits.
        deadline = time.monotonic() + 60
        while list(uploads(registry).rglob("iris.skops")):
            assert time.monotonic() < deadline, "the hung-up upload's bytes stayed"
            time.sleep(0.05)
        fits = httpx.put(put, content=b"y" * 150_000, headers=headers, timeout=60)
        assert fits.status_code == 200, fits.text


def test_a_live_upload_is_never_cleaned(registry: Registry) -> None:
    with receive_upload(registry.state_dir, 1000) as live:
        (live.folder / "part").write_bytes(b"z" * 600)
        killed = uploads(registry) / "upload-killed"
        killed.mkdir()
        (killed / ".owner").touch()  # its process is gone: nobody holds the lock
        assert clean_uploads(registry.state_dir) == [killed]
        assert live.folder.is_dir()
        with pytest.raises(UploadSpaceError), receive_upload(registry.state_dir, 1000, 500):
            pass
    assert list(uploads(registry).iterdir()) == []
