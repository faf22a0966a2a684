"""The usage store: every invocation, for /v1/jobs, /v1/runs, `used=true` and `last_used_at`.

SQLite (one file outside the work tree) is the embedded default; a
`postgresql://` URL shares jobs, runs and last uses between every worker and
replica. Both queue records in memory and write them from a background thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.usage.sqlite import UsageStore
from server.usage.store import (
    COLUMNS,
    KEEP_JOBS,
    MAX_PENDING,
    QueuedUsageStore,
    Record,
    UsageStoreError,
    iso,
    now,
)

__all__ = [
    "COLUMNS",
    "KEEP_JOBS",
    "MAX_PENDING",
    "QueuedUsageStore",
    "Record",
    "UsageStore",
    "UsageStoreError",
    "iso",
    "now",
    "open_usage_store",
    "redact_url",
]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


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
