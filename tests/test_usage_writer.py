"""The usage writer survives a locked SQLite database: it retries, bounds its queue, counts drops.

The lock is real: a second sqlite3 connection holds `BEGIN EXCLUSIVE` on the
store's file, as another process (a backup, a second worker) would.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from registry import Registry
from server.usage import UsageStore, UsageStoreError

pytest_plugins = ["tests.server_fixtures"]


def record(i: int, model: str = "iris") -> tuple[object, ...]:
    head = (f"run_{i:016x}", "invoke", model, model, 1, "mv_00000000", "abc", "me")
    return (*head, 200, None, 0.1, 1, 1000.0 + i, None)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "usage.sqlite"


@pytest.fixture
def locker(db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the store's file, ready to take an exclusive lock."""
    UsageStore(db).close()  # the schema exists before the lock is taken
    conn = sqlite3.connect(db, isolation_level=None)
    yield conn
    conn.close()


def fast_store(db: Path, **options: object) -> UsageStore:
    return UsageStore(db, timeout=0.01, flush_every=0.01, backoff=(0.01, 0.05), **options)  # type: ignore[arg-type]


def test_a_locked_database_fails_the_flush_and_keeps_the_batch(
    db: Path, locker: sqlite3.Connection
) -> None:
    store = fast_store(db)
    for i in range(3):
        store.record(record(i))
    locker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(UsageStoreError, match="writing 3 records failed: OperationalError"):
        store.flush()
    assert store.pending == 3  # the popped batch went back to the queue
    assert store.dropped == 0
    locker.execute("ROLLBACK")
    assert store.flush() == 3
    store.close()
    reopened = UsageStore(db)
    assert [j["id"] for j in reopened.jobs()] == [f"run_{i:016x}" for i in (2, 1, 0)]
    reopened.close()


def test_the_writer_retries_with_backoff_until_the_lock_goes(
    db: Path, locker: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    store = fast_store(db)
    locker.execute("BEGIN EXCLUSIVE")
    store.start()
    for i in range(5):
        store.record(record(i))
    with caplog.at_level(logging.WARNING, logger="mreg.usage"):
        wait_for(lambda: store.write_errors >= 3, "three failed writes")
    assert store.writer_alive
    assert "database is locked" in (store.last_error or "")
    assert "retrying in" in caplog.text
    # Reads still answer while the writer backs off (WAL readers are not blocked).
    assert store.jobs() == []
    locker.execute("ROLLBACK")
    wait_for(lambda: store.pending == 0, "the queue to drain")
    assert len(store.jobs()) == 5
    assert store.dropped == 0
    store.close()


def test_a_full_queue_drops_the_oldest_records_and_counts_them(
    db: Path, locker: sqlite3.Connection
) -> None:
    store = fast_store(db, max_pending=5)
    locker.execute("BEGIN EXCLUSIVE")
    store.start()
    for i in range(8):
        store.record(record(i))
    assert store.dropped == 3
    wait_for(lambda: store.write_errors >= 2, "two failed writes")
    # No flush between these lines (a batch in flight would hide from `pending`, at random on
    # a busy machine): the writer pops only under the flush lock.
    with store._flush_lock:
        store.record(record(8))  # the queue is still bounded
        assert store.pending == 5
        assert store.dropped == 4
    locker.execute("ROLLBACK")
    wait_for(lambda: store.pending == 0, "the queue to drain")
    assert [j["id"] for j in store.jobs()] == [f"run_{i:016x}" for i in (8, 7, 6, 5, 4)]
    # The dropped records' uses still count for last_used (kept in memory and written).
    assert store.last_used == {"iris": 1008.0}
    store.close()


def test_records_still_queued_at_shutdown_are_reported_not_lost_silently(
    db: Path, locker: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    store = fast_store(db)
    store.record(record(0))
    locker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.ERROR, logger="mreg.usage"):
        store.close()
    assert "1 usage records not written at shutdown" in caplog.text
    locker.execute("ROLLBACK")


def test_workers_sharing_a_file_see_each_others_last_use(db: Path) -> None:
    one, two = fast_store(db), fast_store(db)
    one.record(record(1, model="wine"))
    one.flush()
    assert "wine" not in two.last_used
    two.start()
    wait_for(lambda: "wine" in two.last_used, "the other worker's last use")
    assert two.last_used["wine"] == 1001.0
    one.close()
    two.close()


def test_an_unknown_usage_url_is_one_clear_error() -> None:
    from server.usage import open_usage_store

    with pytest.raises(
        UsageStoreError, match=r"unsupported usage store URL 'mysql://u:\*\*\*@h/db'"
    ):
        open_usage_store("mysql://u:secret@h/db")


def test_the_server_keeps_answering_while_its_usage_database_is_locked(
    served_registry: Registry, db: Path, locker: sqlite3.Connection
) -> None:
    from litestar.testing import TestClient

    from server import create_app
    from tests.server_fixtures import SETOSA

    with TestClient(app=create_app(served_registry, usage_path=db)) as client:
        locker.execute("BEGIN EXCLUSIVE")
        invoked = client.post("/v1/models/public-iris/invoke", json={"data": SETOSA})
        assert invoked.status_code == 200, invoked.text
        jobs = client.get("/v1/jobs")
        assert jobs.status_code == 200  # read from the database as it is: the job is queued
        assert jobs.json()["jobs"] == []
        locker.execute("ROLLBACK")
        # The writer retries after its backoff; the job then shows.
        wait_for(lambda: client.get("/v1/jobs").json()["jobs"], "the queued job")
        listed = client.get("/v1/jobs").json()["jobs"]
        assert [j["model"] for j in listed] == ["public-iris"]
