"""The shared usage store: PostgreSQL, for many workers and replicas (`--usage-url postgresql://`).

Every process that serves the registry writes its invocations to the same
tables, so jobs, runs and last uses are the same whichever replica answers.
Writes are batched (one pipelined executemany per flush) over a small
psycopg connection pool; the tables are created on first use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from server.usage.record import COLUMNS, Record, UsageRecord, column_definitions, redact_url
from server.usage.store import QueuedUsageStore, UsageStoreError, last_uses

# Two processes may start at once: an advisory lock makes the schema's creation one at a time.
SCHEMA_LOCK = 0x6D726567  # "mreg"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mreg_jobs"
    f" (seq BIGSERIAL, {column_definitions('DOUBLE PRECISION')})",
    "CREATE INDEX IF NOT EXISTS mreg_jobs_model ON mreg_jobs (model, created_at)",
    "CREATE INDEX IF NOT EXISTS mreg_jobs_time ON mreg_jobs (created_at)",
    """CREATE TABLE IF NOT EXISTS mreg_last_used (
        model TEXT PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL
    )""",
)
# A batch is copied (COPY, one stream) into a per-session staging table, then moved in one
# INSERT; ON CONFLICT makes a batch retried after an ambiguous failure harmless.
STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS mreg_jobs_in ON COMMIT DELETE ROWS AS"
    f" SELECT {', '.join(COLUMNS)} FROM mreg_jobs WITH NO DATA"
)
COPY = f"COPY mreg_jobs_in ({', '.join(COLUMNS)}) FROM STDIN"
MOVE = (
    f"INSERT INTO mreg_jobs ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM mreg_jobs_in"
    " ORDER BY created_at ON CONFLICT (id) DO NOTHING"
)
UPSERT_LAST_USED = (
    "INSERT INTO mreg_last_used (model, at) VALUES (%s, %s)"
    " ON CONFLICT (model) DO UPDATE SET at = GREATEST(mreg_last_used.at, excluded.at)"
)
PRUNE = (
    "DELETE FROM mreg_jobs WHERE created_at <"
    " (SELECT created_at FROM mreg_jobs ORDER BY created_at DESC OFFSET %s LIMIT 1)"
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM mreg_jobs"


class PostgresUsageStore(QueuedUsageStore):
    """The usage store in PostgreSQL, shared by every process given the same URL."""

    select, param, newest = SELECT, "%s", "seq"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout: float | None = None,
        statement_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        """statement_timeout: seconds a statement may wait (for a lock, a busy server) before it
        fails and the writer retries later. connect_timeout (default: the URL's libpq
        `connect_timeout`, else 10): seconds to connect; reads wait at most `read_wait`
        (default: the URL's `connect_timeout`, else 2), so /v1/jobs answers 503 quickly
        while the database is down."""
        given = _url_connect_timeout(url)
        if given is not None:
            options.setdefault("read_wait", given)
        connect_timeout = connect_timeout or given or 10.0
        super().__init__(**options)
        self.connect_timeout = connect_timeout
        self.url = url
        self.description = f"usage store {redact_url(url)}"
        conninfo = {
            "connect_timeout": max(1, int(connect_timeout)),
            "options": f"-c statement_timeout={int(statement_timeout * 1000)}",
        }
        try:
            # One direct connection first: a wrong URL or a database that is down is one clear
            # error here (the pool would only retry in the background and time out).
            with psycopg.connect(url, **conninfo) as conn:  # type: ignore[arg-type]
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for statement in SCHEMA:
                    conn.execute(statement)
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageStoreError(f"{self.description}: cannot connect: {message}") from None
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=connect_timeout,
            name="mreg-usage",
            kwargs=conninfo,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            self.refresh_last_used()
        except (psycopg.Error, PoolTimeout) as exc:
            self._pool.close()
            raise UsageStoreError(f"{self.description}: cannot connect: {exc}") from None

    def _write(self, batch: list[UsageRecord], wait: float | None = None) -> None:
        with _connected(self, wait or self.connect_timeout) as conn, conn.cursor() as cur:
            cur.execute(STAGE)
            with cur.copy(COPY) as copy:
                for row in batch:
                    copy.write_row(row)
            cur.execute(MOVE)
            cur.executemany(UPSERT_LAST_USED, last_uses(batch))
            self._written(len(batch), lambda keep: cur.execute(PRUNE, (keep,)))

    def _among(self, models: list[str]) -> tuple[str, list[Any]]:
        return "model = ANY(%s)", [models]

    def _select_jobs(self, model: str | None, models: set[str] | None, limit: int) -> list[Record]:
        sql, args = self._jobs_query(model, models, limit)
        with _connected(self, self.read_wait) as conn:
            return conn.execute(sql, args).fetchall()

    def _select_run(self, run_id: str) -> Record | None:
        with _connected(self, self.read_wait) as conn:
            return conn.execute(f"{SELECT} WHERE id = %s", (run_id,)).fetchone()

    def _select_last_used(self, since: float) -> list[tuple[str, float]]:
        with _connected(self, self.read_wait) as conn:
            rows = conn.execute(
                "SELECT model, at FROM mreg_last_used WHERE at > %s", (since,)
            ).fetchall()
            return [(model, at) for model, at in rows]

    def _close(self) -> None:
        self._pool.close()


@contextlib.contextmanager
def _connected(store: PostgresUsageStore, wait: float) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection within `wait` seconds, or UsageStoreError saying the bound."""
    try:
        with store._pool.connection(timeout=wait) as conn:
            yield conn
    except PoolTimeout as exc:
        raise UsageStoreError(
            f"{store.description}: no connection to the database within {wait:g} s"
            f" (is it down?): {exc}"
        ) from None


def _url_connect_timeout(url: str) -> float | None:
    """libpq's `connect_timeout` from a `postgresql://...?connect_timeout=S` URL, if given."""
    values = parse_qs(urlsplit(url).query).get("connect_timeout")
    try:
        return float(values[-1]) if values else None
    except ValueError:
        return None
