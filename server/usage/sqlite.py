"""The embedded usage store: one SQLite file outside the work tree (.git/mreg/usage.sqlite)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from server.usage.record import COLUMNS, Record, UsageRecord, column_definitions
from server.usage.store import QueuedUsageStore, UsageStoreError, last_uses

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs ({column_definitions("REAL")});
CREATE INDEX IF NOT EXISTS jobs_model ON jobs (model, created_at);
CREATE INDEX IF NOT EXISTS jobs_time ON jobs (created_at);
CREATE TABLE IF NOT EXISTS last_used (
    model TEXT PRIMARY KEY,
    at REAL NOT NULL             -- the last successful invocation; outlives pruned jobs
);
"""
UPSERT_LAST_USED = (
    "INSERT INTO last_used (model, at) VALUES (?, ?)"
    " ON CONFLICT (model) DO UPDATE SET at = MAX(at, excluded.at)"
)
# Older than the newest `keep` (the parameter is keep - 1): a walk of the time index, where
# `rowid NOT IN (... ORDER BY ... LIMIT keep)` sorted the table (70-84 ms at 110,000 rows,
# on the server's core, against 24-35 ms).
PRUNE = (
    "DELETE FROM jobs WHERE created_at <"
    " (SELECT created_at FROM jobs ORDER BY created_at DESC LIMIT 1 OFFSET ?)"
)
INSERT = (
    f"INSERT OR REPLACE INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM jobs"


class UsageStore(QueuedUsageStore):
    """The usage store in one SQLite file (None: in memory). Every worker may share the file.

    timeout: how long a write waits for another connection's lock before it fails
    (and the writer retries later with backoff).
    """

    select, param, newest = SELECT, "?", "rowid"

    def __init__(self, path: str | Path | None, *, timeout: float = 1.0, **options: Any) -> None:
        super().__init__(**options)
        self.path = Path(path) if path is not None else None
        self.description = f"usage store {self.path or ':memory:'}"
        self._lock = threading.Lock()  # guards the connection
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path) if self.path else ":memory:",
                check_same_thread=False,
                timeout=timeout,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self.refresh_last_used()
        except (OSError, sqlite3.Error) as exc:
            raise UsageStoreError(f"{self.description}: cannot open: {exc}") from None

    def _write(self, batch: list[UsageRecord], wait: float | None = None) -> None:
        # `wait` is for a remote database; the file's lock wait is the connection's `timeout`.
        with self._lock, self._db:
            self._db.executemany(INSERT, batch)
            self._db.executemany(UPSERT_LAST_USED, last_uses(batch))
            self._written(len(batch), lambda keep: self._db.execute(PRUNE, (keep - 1,)))

    def _among(self, models: list[str]) -> tuple[str, list[Any]]:
        return f"model IN ({', '.join('?' * len(models))})", models

    def _select_jobs(self, model: str | None, models: set[str] | None, limit: int) -> list[Record]:
        sql, args = self._jobs_query(model, models, limit)
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _select_run(self, run_id: str) -> Record | None:
        with self._lock:
            row: Record | None = self._db.execute(f"{SELECT} WHERE id = ?", (run_id,)).fetchone()
            return row

    def _select_last_used(self, since: float) -> list[tuple[str, float]]:
        with self._lock:
            return self._db.execute(
                "SELECT model, at FROM last_used WHERE at > ?", (since,)
            ).fetchall()

    def _close(self) -> None:
        with self._lock:
            self._db.close()
