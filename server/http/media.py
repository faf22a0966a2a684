"""What a body must say it is: a guard per kind of body, so that a web page's form or
`text/plain` post (which a browser sends cross-origin without asking) cannot invoke a model."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from server.http.openapi import JSON, OCTET_STREAM
from server.runtime.errors import UnsupportedMediaType


def media_type(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The request's Content-Type without its parameters, lower case; None when absent."""
    value = connection.headers.get("content-type")
    return value.split(";", 1)[0].strip().lower() if value is not None else None


async def json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: the body must say it is JSON."""
    if media_type(connection) != JSON:
        raise UnsupportedMediaType("expected a JSON body (Content-Type: application/json)")


# JSON, or the binary extension's JSON-then-bytes: tritonclient's HTTP client sends no
# Content-Type, its asyncio client application/octet-stream. Never a form or text/plain.
INFER_MEDIA_TYPES = frozenset({None, JSON, OCTET_STREAM})


async def infer_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: an inference body (/v2) is JSON or the binary extension's."""
    if media_type(connection) not in INFER_MEDIA_TYPES:
        raise UnsupportedMediaType(
            "expected an inference request (Content-Type: application/json,"
            " or application/octet-stream with the binary extension)"
        )
