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
from litestar.types import ASGIApp, Receive, Scope, Send

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
    """An ASGI middleware answering HTTP requests with an unaccepted Host with a 400."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.pattern = host_pattern(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Headers.from_scope(scope).get("host")
            if host is None or not self.pattern.fullmatch(host):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": ""})
                    return
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(INVALID_HOST)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": INVALID_HOST})
                return
        await self.app(scope, receive, send)
