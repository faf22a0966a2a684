"""One usage record: an invocation as it crosses the queue and becomes a table row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit


class UsageRecord(NamedTuple):
    """One invocation (or a call that failed before it reached the model); its fields are the
    table's columns, in order."""

    id: str
    kind: str  # invoke or run
    ref: str | None
    model: str
    version: int | None
    model_id: str | None
    revision: str | None
    who: str | None
    status: int  # the HTTP status answered
    error: str | None  # the error code, if any
    latency_ms: float
    inputs: int
    created_at: float
    outputs: str | None  # JSON; kept for runs only


COLUMNS: tuple[str, ...] = UsageRecord._fields
# Each column's SQL type, in the record's order; DOUBLE is the dialect's 8-byte float.
COLUMN_TYPES = {
    "id": "TEXT PRIMARY KEY",
    "kind": "TEXT NOT NULL",
    "ref": "TEXT",
    "model": "TEXT NOT NULL",
    "version": "INTEGER",
    "model_id": "TEXT",
    "revision": "TEXT",
    "who": "TEXT",
    "status": "INTEGER NOT NULL",
    "error": "TEXT",
    "latency_ms": "DOUBLE NOT NULL",
    "inputs": "INTEGER NOT NULL",
    "created_at": "DOUBLE NOT NULL",
    "outputs": "TEXT",
}
assert tuple(COLUMN_TYPES) == COLUMNS
Record = UsageRecord | tuple[Any, ...]  # a row read back, or a record given as a plain tuple


def column_definitions(double: str) -> str:
    """The jobs table's columns as CREATE TABLE lists them, for a dialect whose 8-byte float
    type is `double` (SQLite: REAL, PostgreSQL: DOUBLE PRECISION)."""
    return ", ".join(f"{c} {t.replace('DOUBLE', double)}" for c, t in COLUMN_TYPES.items())


def as_record(row: Record) -> UsageRecord:
    return row if isinstance(row, UsageRecord) else UsageRecord._make(row)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
