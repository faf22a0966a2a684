"""The usage store: every invocation, for /v1/jobs, /v1/runs, `used=true` and `last_used_at`.

SQLite (one file outside the work tree) is the embedded default; a
`postgresql://` URL shares jobs, runs and last uses between every worker and
replica. Both queue records in memory and write them from a background thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.usage.record import COLUMNS, Record, UsageRecord, iso, redact_url
from server.usage.sqlite import UsageStore
from server.usage.store import KEEP_JOBS, MAX_PENDING, QueuedUsageStore, UsageStoreError, now

__all__ = [
    "COLUMNS",
    "KEEP_JOBS",
    "MAX_PENDING",
    "QueuedUsageStore",
    "Record",
    "UsageRecord",
    "UsageStore",
    "UsageStoreError",
    "iso",
    "now",
    "open_usage_store",
    "redact_url",
]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_usage_store(target: str | Path | None, **options: Any) -> QueuedUsageStore:
    """The store for `target`: a `postgresql://` URL, `sqlite:///PATH`, a file path, or None (memory)."""
    if isinstance(target, str) and target.startswith(POSTGRES_SCHEMES):
        from server.usage.postgres import PostgresUsageStore

        return PostgresUsageStore(target, **options)
    if isinstance(target, str) and target.startswith("sqlite:///"):
        return UsageStore(target.removeprefix("sqlite:///"), **options)
    if isinstance(target, str) and "://" in target:
        raise UsageStoreError(
            f"unsupported usage store URL {redact_url(target)!r}: use postgresql://... or a file path"
        )
    return UsageStore(target, **options)
