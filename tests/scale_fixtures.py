"""Fixtures for more than one server: a real PostgreSQL cluster, a real S3 endpoint, real processes.

PostgreSQL is Debian's `postgresql` 15 (`make system-deps` installs it): a
throwaway cluster made with initdb and started with pg_ctl in a temp dir, as
an unprivileged user when the tests run as root (initdb refuses root). S3 is
moto's server on a loopback port. Neither is downloaded; a missing one fails
the test (it does not skip).

PYTEST_DONT_REWRITE (test modules import helpers from here before pytest loads it as a plugin)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).parent.parent
MREG = [sys.executable, "-c", "from tool.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `condition` until it returns something true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- PostgreSQL ------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL cluster of its own on a loopback port: the URL of its `postgres` database."""
    from bench.pg import PostgresUnavailable, cluster

    try:
        with cluster() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh database of its own in the session's cluster."""
    from bench.pg import create_database

    return create_database(postgres_server, f"t_{uuid.uuid4().hex[:12]}")


# -- S3 (moto) -------------------------------------------------------------------

S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "mreg-test-key",
    "AWS_SECRET_ACCESS_KEY": "mreg-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on a loopback port, with its credentials in the environment only."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


# -- mreg serve processes ----------------------------------------------------------


class ServeProcess:
    """`mreg serve` as a real process on a loopback port."""

    def __init__(self, repo: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*MREG, "--repo", str(repo), "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                out = self.proc.stdout.read() if self.proc.stdout else ""
                pytest.fail(f"mreg serve did not become ready:\n{out}")
            time.sleep(0.1)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=30, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServeProcess]]:
    """Start `mreg serve` processes (all started first, then waited for); all stop at the end."""
    started: list[ServeProcess] = []

    def start(repo: Path, *args: str, env: dict[str, str] | None = None) -> ServeProcess:
        process = ServeProcess(repo, *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
