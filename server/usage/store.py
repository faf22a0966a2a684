"""What every usage store shares: a bounded in-memory queue and a writer thread that never dies.

The request path only appends a UsageRecord to a deque; a background thread writes
the queue in batches to the backend (SQLite or PostgreSQL), so the database
never sits between a client and its answer. A failed write (a locked SQLite
file, a PostgreSQL restart) puts the batch back at the head of the queue and
the writer retries with exponential backoff. The queue is bounded: when it is
full the oldest queued record is dropped and counted in `dropped` (exported
by /metrics), never lost silently. Reads flush first, so a client sees its own
invocation at once, and the writer refreshes `last_used` from the backend, so
every worker and replica sharing a store agrees on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from registry import RegistryError
from server.usage.record import COLUMNS, Record, UsageRecord, as_record, iso

log = logging.getLogger("mreg.usage")

KEEP_JOBS = 100_000
MAX_PENDING = 100_000
# How far back a last-use refresh looks beyond the newest time already seen: replicas'
# clocks differ, and a replica may write a use a little older than one this process saw.
REFRESH_SLACK = 300.0


class UsageStoreError(RegistryError):
    """The usage store cannot be opened or read (the database is locked, down or misnamed)."""

    code = "usage_unavailable"
    status = 503


def now() -> float:
    return time.time()


def last_uses(batch: list[UsageRecord]) -> list[tuple[str, float]]:
    """Each model's newest successful use in a batch, sorted by model (a stable lock order)."""
    newest: dict[str, float] = {}
    for r in batch:
        if r.status < 400 and r.created_at >= newest.get(r.model, r.created_at):
            newest[r.model] = r.created_at
    return sorted(newest.items())


class QueuedUsageStore:
    """Invocations: queued in memory on the request path, written in batches by a thread.

    Subclasses implement `_write`, `_select_jobs`, `_select_run`, `_select_last_used`,
    `_among` and `_close`, and name their SQL dialect: `select` (every column of the jobs
    table), the parameter marker `param` and `newest`, the column that orders rows written
    at the same time.
    """

    description = "usage store"
    select = ""
    param = "?"
    newest = "rowid"

    def __init__(
        self,
        *,
        flush_every: float = 0.5,
        keep: int = KEEP_JOBS,
        max_pending: int = MAX_PENDING,
        backoff: tuple[float, float] = (0.5, 30.0),
        read_wait: float = 2.0,
    ) -> None:
        self.flush_every = flush_every
        self.read_wait = read_wait
        """Seconds a read (/v1/jobs, /v1/runs) and the flush before it wait for the database."""
        self.keep = keep
        """How many of the newest job records are kept; older ones are pruned as new ones land."""
        self.max_pending = max_pending
        """How many records may wait in memory for the database; beyond, the oldest is dropped."""
        self.backoff = backoff
        self.last_used: dict[str, float] = {}
        """model -> time of its last successful invocation, by any process sharing the store."""
        self.dropped = 0
        """Records dropped because the queue was full while the database refused writes."""
        self.write_errors = 0
        self.last_error: str | None = None
        self._failing = False  # the last write failed: what is queued may not reach reads soon
        self._in_flight = 0  # records popped by a flush and not yet written or requeued
        # deque: append (event loop) and popleft (writer thread) are atomic, so nothing is lost
        self._pending: deque[UsageRecord] = deque()
        self._flush_lock = threading.Lock()  # one flush at a time: pop, write, requeue
        self._count_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._delay = 0.0  # the current backoff; 0 while writes succeed
        self._retry_at = 0.0  # time.monotonic() before which the writer does not try again
        self._newest_seen = -1e300  # nothing seen yet: the first refresh reads every row
        self._written_since_prune = 0

    # -- writing -----------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records queued and not yet written."""
        return len(self._pending)

    def record(self, record: Record) -> None:
        """Queue one invocation (a UsageRecord, or a tuple in its order). Cheap: no I/O."""
        record = as_record(record)
        if len(self._pending) >= self.max_pending:
            self._drop_oldest(len(self._pending) - self.max_pending + 1)
        self._pending.append(record)
        if record.status < 400:
            self.last_used[record.model] = record.created_at
        if len(self._pending) >= 1000:
            self._wake.set()

    def _drop_oldest(self, n: int) -> None:
        dropped = 0
        with contextlib.suppress(IndexError):
            for _ in range(n):
                self._pending.popleft()
                dropped += 1
        if dropped:
            with self._count_lock:
                first = self.dropped == 0
                self.dropped += dropped
            if first:
                log.warning(
                    "%s: queue full (%d records): dropping the oldest unwritten records (%s)",
                    self.description,
                    self.max_pending,
                    self.last_error or "the writer is behind",
                )

    def flush(self, wait: float | None = None) -> int:
        """Write what is queued; returns how many records were written.

        `wait`: at most this many seconds for a database connection (None: the store's default).

        On failure the batch goes back to the head of the queue (the oldest
        beyond `max_pending` are dropped and counted) and UsageStoreError is raised.
        """
        with self._flush_lock:
            batch: list[UsageRecord] = []
            with contextlib.suppress(IndexError):
                while True:
                    batch.append(self._pending.popleft())
            if not batch:
                return 0
            self._in_flight = len(batch)
            try:
                self._write(batch, wait)
            except Exception as exc:
                self._pending.extendleft(reversed(batch))
                self._in_flight = 0
                self._failing = True
                if len(self._pending) > self.max_pending:
                    self._drop_oldest(len(self._pending) - self.max_pending)
                self.write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}".strip()
                raise UsageStoreError(
                    f"{self.description}: writing {len(batch)} records failed: {self.last_error}"
                ) from exc
            if self._delay:
                log.warning("%s: writes work again", self.description)
            self._delay = 0.0
            self._in_flight = 0
            self._failing = False
            return len(batch)

    def refresh_last_used(self) -> None:
        """Merge the last uses other processes recorded since the newest one seen here."""
        rows = self._select_last_used(self._newest_seen - REFRESH_SLACK)
        last_used = self.last_used
        for model, at in rows:
            if model not in last_used or at > last_used[model]:
                last_used[model] = at
            if at > self._newest_seen:
                self._newest_seen = at

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mreg-usage", daemon=True)
            self._thread.start()

    @property
    def writer_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)  # backing off: a full queue does not wake us
                continue
            self._wake.wait(self.flush_every)
            self._wake.clear()
            self._cycle()

    def _cycle(self) -> None:
        try:
            self.flush()
            self.refresh_last_used()
        except Exception as exc:  # the writer must survive anything; records stay queued
            low, high = self.backoff
            self._delay = min(max(self._delay * 2, low), high)
            self._retry_at = time.monotonic() + self._delay
            log.warning(
                "%s: %s; %d records queued, retrying in %.1f s",
                self.description,
                exc,
                len(self._pending),
                self._delay,
            )

    def _flush_for_read(self) -> None:
        """Flush before a read unless the writer is backing off (the read then shows the DB)."""
        if time.monotonic() < self._retry_at:
            return
        with contextlib.suppress(UsageStoreError):
            self.flush(wait=self.read_wait)

    def freshness(self) -> dict[str, Any]:
        """Whether a read misses records (`stale`), and why (`warning`), for /v1/jobs' answer.

        Stale means the store cannot write: records wait in memory (or were
        dropped). Records merely queued while writes work are not staleness.
        """
        pending = len(self._pending) + self._in_flight if self._failing else 0
        dropped = self.dropped
        notes = []
        if pending:
            why = f" (writes are failing: {self.last_error})" if self.last_error else ""
            notes.append(f"{pending} recent invocations are not in the usage store yet{why}")
        if dropped:
            notes.append(f"{dropped} invocations were dropped while the store could not write")
        return {"stale": bool(pending or dropped), "warning": "; ".join(notes) or None}

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
        except UsageStoreError as exc:
            log.error(
                "%s: %d usage records not written at shutdown: %s",
                self.description,
                len(self._pending),
                exc,
            )
        self._close()

    # -- reading -----------------------------------------------------------

    def jobs(
        self, *, model: str | None = None, models: set[str] | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The most recent invocations, newest first; `models` limits what a caller may see."""
        self._flush_for_read()
        rows = self._read(self._select_jobs, model, models, limit)
        return [self.to_dict(row, with_outputs=False) for row in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        self._flush_for_read()
        row = self._read(self._select_run, run_id)
        return self.to_dict(row, with_outputs=True) if row else None

    def _read(self, select: Any, *args: Any) -> Any:
        try:
            return select(*args)
        except UsageStoreError:
            raise
        except Exception as exc:
            raise UsageStoreError(f"{self.description}: reading failed: {exc}") from exc

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

    # -- what the backends share ---------------------------------------------

    def _written(self, count: int, prune: Callable[[int], object]) -> None:
        """Count `count` records written; past a tenth of `keep` since the last prune (in steps,
        not on every flush), `prune(keep)` keeps the newest `keep` jobs."""
        self._written_since_prune += count
        if self._written_since_prune > max(self.keep // 10, 1):
            prune(self.keep)
            self._written_since_prune = 0

    def _jobs_query(
        self, model: str | None, models: set[str] | None, limit: int
    ) -> tuple[str, list[Any]]:
        """The SELECT of the newest `limit` jobs (of `model`, among `models`), and its arguments."""
        where: list[str] = []
        args: list[Any] = []
        if model is not None:
            where.append(f"model = {self.param}")
            args.append(model)
        if models is not None:
            clause, values = self._among(sorted(models))
            where.append(clause)
            args.extend(values)
        sql = self.select + (" WHERE " + " AND ".join(where) if where else "")
        order = f" ORDER BY created_at DESC, {self.newest} DESC LIMIT {self.param}"
        return sql + order, [*args, limit]

    # -- the backend ---------------------------------------------------------

    def _among(self, models: list[str]) -> tuple[str, list[Any]]:
        """The condition `model` is one of `models`, and its arguments."""
        raise NotImplementedError

    def _write(self, batch: list[UsageRecord], wait: float | None = None) -> None:
        raise NotImplementedError

    def _select_jobs(self, model: str | None, models: set[str] | None, limit: int) -> list[Record]:
        raise NotImplementedError

    def _select_run(self, run_id: str) -> Record | None:
        raise NotImplementedError

    def _select_last_used(self, since: float) -> list[tuple[str, float]]:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError
