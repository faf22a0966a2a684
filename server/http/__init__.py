"""The HTTP layer every surface shares: errors, auth (guards and the `caller` dependency),
parameter types, OpenAPI helpers, metrics middleware. It adapts and delegates to server.runtime."""

from __future__ import annotations

DEFAULT_MAX_BODY = 1_000_000
"""Bytes a request body may have (an artifact upload is bounded by max_upload instead)."""
