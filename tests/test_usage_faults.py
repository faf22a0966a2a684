"""/v1/jobs while the usage store fails: a bounded 503 when PostgreSQL is down, a hint when stale.

A real PostgreSQL cluster of the test's own (stopped mid-test) and a real
SQLite file that another connection keeps write-locked, each behind a real
`mreg serve` process.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from registry import Registry
from tests.processes import serving
from tests.scale_fixtures import wait_for
from tests.server_fixtures import LABELS, SETOSA

pytest_plugins = ["tests.server_fixtures"]


@pytest.fixture
def registry(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS})
    return reg


@pytest.fixture
def own_postgres() -> Iterator[str]:
    """A cluster of this test's own (the test stops it): a fresh database's URL."""
    from bench.pg import PostgresUnavailable, cluster, create_database

    try:
        with cluster() as server:
            yield create_database(server, "mreg_faults")
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))


def stop_postgres(url: str) -> None:
    """A fast shutdown of the cluster behind `url` (its postmaster gets SIGINT)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    pid = int((Path(row[0]) / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGINT)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, "PostgreSQL to stop")


def test_jobs_answers_a_bounded_503_while_postgres_is_down(
    registry: Registry, own_postgres: str
) -> None:
    env = {"MREG_USAGE_URL": f"{own_postgres}?connect_timeout=2"}
    with serving(registry.root, env=env) as server:
        assert server.post("/v1/models/iris/invoke", json={"data": SETOSA}).status_code == 200
        answer = wait_for(lambda: server.get("/v1/jobs").json()["jobs"], "the invocation's job")
        assert len(answer) == 1
        stop_postgres(own_postgres)

        def bounded() -> dict[str, str] | None:
            r = server.get("/v1/jobs")
            assert r.status_code == 503, r.text
            error: dict[str, str] = r.json()["error"]
            assert error["code"] == "usage_unavailable"
            return error if "within 2 s" in error["message"] else None

        error = wait_for(bounded, "a 503 that names the 2 s bound")
        assert "is it down?" in error["message"]


def test_jobs_says_stale_while_sqlite_cannot_write(registry: Registry) -> None:
    with serving(registry.root) as server:
        assert server.post("/v1/models/iris/invoke", json={"data": SETOSA}).status_code == 200
        fresh = server.get("/v1/jobs").json()
        assert (len(fresh["jobs"]), fresh["stale"], fresh["warning"]) == (1, False, None)
        blocker = sqlite3.connect(registry.state_dir / "usage.sqlite", isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: every write fails
            assert server.post("/v1/models/iris/invoke", json={"data": SETOSA}).status_code == 200
            stale = server.get("/v1/jobs").json()
            assert len(stale["jobs"]) == 1
            assert stale["stale"] is True, stale
            assert "1 recent invocations are not in the usage store yet" in stale["warning"]
            assert "locked" in stale["warning"]
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        def caught_up() -> bool:
            body = server.get("/v1/jobs").json()
            return len(body["jobs"]) == 2 and body["stale"] is False

        wait_for(caught_up, "the queued record to be written", 120)
