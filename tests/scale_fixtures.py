"""Fixtures for more than one server: a real PostgreSQL cluster, a real S3 endpoint, real processes.

PostgreSQL is Debian's `postgresql` 15 (`make system-deps` installs it): a
throwaway cluster made with initdb and started with pg_ctl in a temp dir, as
an unprivileged user when the tests run as root (initdb refuses root). S3 is
moto's server on a loopback port. Neither is downloaded; a missing one fails
the test (it does not skip).

PYTEST_DONT_REWRITE (test modules import helpers from here before pytest loads it as a plugin)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import ServeProcess, free_port


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
