"""The Open Inference Protocol (KServe V2 REST): types, codec, OpenAPI, routes."""

from __future__ import annotations

from server.protocols.v2.routes import V2_ROUTER

__all__ = ["V2_ROUTER"]
