"""Allowed hosts: a request whose `Host` is not accepted gets mreg's one error shape (400).

Litestar's `AllowedHostsConfig` answers `{"message": "invalid host header"}`
from its middleware, before any exception handler runs; this middleware
applies the same matching (`host`, `host:port`, `*.domain`) and answers
`{"error": {"code": "bad_request", ...}}` as every other 400 does.
"""

from __future__ import annotations

import re

import msgspec
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Receive, Scope, Send

JSON = "application/json"
INVALID_HOST = msgspec.json.encode(
    {
        "error": {
            "code": "bad_request",
            "message": "invalid Host header: this server answers only its own names",
            "detail": None,
        }
    }
)


def host_pattern(allowed: list[str]) -> re.Pattern[str]:
    """One regex for the accepted Host values (`*.domain` matches any subdomain)."""
    parts = sorted(
        rf".*\.{re.escape(h[2:])}" if h.startswith("*.") else re.escape(h) for h in allowed
    )
    return re.compile("|".join(parts), re.IGNORECASE)


class AllowedHostsMiddleware:
    """An ASGI middleware answering an HTTP request with an unaccepted Host with a 400."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.pattern = host_pattern(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:  # the app has no websocket routes
            host = Headers.from_scope(scope).get("host")
            if host is None or not self.pattern.fullmatch(host):
                response = ASGIResponse(body=INVALID_HOST, status_code=400, media_type=JSON)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
