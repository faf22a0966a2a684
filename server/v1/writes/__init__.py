"""What the writes of `/v1` share: their bodies and answers, the `writer` dependency that runs a
core write as the caller, and the bodies read by hand (artifacts). The handlers live with the
resources they write (server.v1.models, .versions, .pointers)."""

from __future__ import annotations

from server.v1.writes.writer import (
    DEFAULT_MAX_UPLOAD,
    DEFAULT_MAX_UPLOAD_TOTAL,
    WriteSettings,
    check_settings,
)

__all__ = ["DEFAULT_MAX_UPLOAD", "DEFAULT_MAX_UPLOAD_TOTAL", "WriteSettings", "check_settings"]
