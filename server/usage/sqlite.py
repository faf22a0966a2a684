"""The embedded usage store: one SQLite file outside the work tree (.git/mreg/usage.sqlite)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from server.usage.record import COLUMNS, Record, UsageRecord
from server.usage.store import QueuedUsageStore, UsageStoreError, last_uses

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,          -- invoke or run
    ref TEXT,
    model TEXT NOT NULL,
    version INTEGER,
    model_id TEXT,
    revision TEXT,
    who TEXT,
    status INTEGER NOT NULL,     -- the HTTP status answered
    error TEXT,                  -- the error code, if any
    latency_ms REAL NOT NULL,
    inputs INTEGER NOT NULL,
    created_at REAL NOT NULL,
    outputs TEXT                 -- JSON; kept for runs only
);
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
PRUNE = (
    "DELETE FROM jobs WHERE rowid NOT IN"
    " (SELECT rowid FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?)"
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

    def __init__(self, path: str | Path | None, *, timeout: float = 1.0, **options: Any) -> None:
        super().__init__(**options)
        self.path = Path(path) if path is not None else None
        self.description = f"usage store {self.path or ':memory:'}"
        self._written_since_prune = 0
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
            self._written_since_prune += len(batch)
            # Prune in steps (a tenth of `keep` at a time), not on every flush.
            if self._written_since_prune > max(self.keep // 10, 1):
                self._db.execute(PRUNE, (self.keep,))
                self._written_since_prune = 0

    def _select_jobs(self, model: str | None, models: set[str] | None, limit: int) -> list[Record]:
        sql = SELECT
        where: list[str] = []
        args: list[Any] = []
        if model is not None:
            where.append("model = ?")
            args.append(model)
        if models is not None:
            where.append(f"model IN ({', '.join('?' * len(models))})")
            args.extend(sorted(models))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
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
