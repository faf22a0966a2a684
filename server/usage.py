"""The usage store: every invocation, kept in SQLite outside the work tree (.git/mreg/usage.sqlite).

The request path only appends a tuple to a list; a background thread writes
the list in batches, so SQLite never sits between a client and its answer.
Reads (jobs, runs) flush first, so a client sees its own invocation at once.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
KEEP_JOBS = 100_000

COLUMNS = (
    "id",
    "kind",
    "ref",
    "model",
    "version",
    "model_id",
    "revision",
    "who",
    "status",
    "error",
    "latency_ms",
    "inputs",
    "created_at",
    "outputs",
)
INSERT = (
    f"INSERT OR REPLACE INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)

Record = tuple[Any, ...]  # in COLUMNS order


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UsageStore:
    """Invocations: recorded in memory on the request path, written to SQLite in batches."""

    def __init__(
        self, path: str | Path | None, *, flush_every: float = 0.5, keep: int = KEEP_JOBS
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.flush_every = flush_every
        self.keep = keep
        """How many of the newest job records are kept; older ones are pruned as new ones land."""
        self._written_since_prune = 0
        # deque: append (event loop) and popleft (writer thread) are atomic, so nothing is lost
        self._pending: deque[Record] = deque()
        self._lock = threading.Lock()  # guards the connection
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(self.path) if self.path else ":memory:", check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self.last_used: dict[str, float] = dict(self._db.execute("SELECT model, at FROM last_used"))

    # -- writing -----------------------------------------------------------

    def record(self, record: Record) -> None:
        """Queue one invocation (COLUMNS order). Cheap: no I/O."""
        self._pending.append(record)
        if record[8] < 400:
            self.last_used[record[3]] = record[12]
        if len(self._pending) >= 1000:
            self._wake.set()

    def flush(self) -> int:
        """Write what is queued; returns how many records were written."""
        with self._lock:
            batch = []
            with contextlib.suppress(IndexError):
                while True:
                    batch.append(self._pending.popleft())
            if batch:
                with self._db:
                    self._db.executemany(INSERT, batch)
                    self._db.executemany(
                        UPSERT_LAST_USED, [(r[3], r[12]) for r in batch if r[8] < 400]
                    )
                    self._written_since_prune += len(batch)
                    # Prune in steps (a tenth of `keep` at a time), not on every flush.
                    if self._written_since_prune > max(self.keep // 10, 1):
                        self._db.execute(PRUNE, (self.keep,))
                        self._written_since_prune = 0
            return len(batch)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mreg-usage", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_every)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
        with self._lock:
            self._db.close()

    # -- reading -----------------------------------------------------------

    def jobs(
        self, *, model: str | None = None, models: set[str] | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The most recent invocations, newest first; `models` limits what a caller may see."""
        self.flush()
        sql = f"SELECT {', '.join(COLUMNS)} FROM jobs"
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
            rows = self._db.execute(sql, args).fetchall()
        return [self.to_dict(row, with_outputs=False) for row in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        self.flush()
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = ?", (run_id,)
            ).fetchone()
        return self.to_dict(row, with_outputs=True) if row else None

    @staticmethod
    def to_dict(row: Record, *, with_outputs: bool) -> dict[str, Any]:
        d = dict(zip(COLUMNS, row, strict=True))
        out = {
            "id": d["id"],
            "kind": d["kind"],
            "ref": d["ref"],
            "model": d["model"],
            "version": d["version"],
            "model_id": d["model_id"],
            "revision": d["revision"],
            "who": d["who"],
            "status": "succeeded" if d["status"] < 400 else "failed",
            "http_status": d["status"],
            "error": d["error"],
            "latency_ms": round(d["latency_ms"], 3),
            "inputs": d["inputs"],
            "created_at": iso(d["created_at"]),
        }
        if with_outputs:
            out["outputs"] = json.loads(d["outputs"]) if d["outputs"] else None
        return out


def now() -> float:
    return time.time()
