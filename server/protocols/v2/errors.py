"""The protocol's error shape `{"error": message, "code": ...}` for what the V2 router does not
see: the model-repository routes' own router, and requests to `/v2/...` paths that match no
route (404, 405), which Litestar answers from the app's handlers, before any router's.

server.http.errors decides the status and the message; this module only reshapes the body, so
`/v1` and `/v2` say the same thing about the same failure.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from registry import RegistryError
from server.http.errors import http_error, internal_error, registry_error, too_deep
from server.http.openapi import JSON

V2_PREFIX = "/v2"


def v2_shape(response: Response[Any]) -> Response[bytes]:
    """mreg's error response in the V2 shape: `{"error": message, "code": code}`."""
    content = response.content
    if isinstance(content, bytes | str):
        content = msgspec.json.decode(content)
    error = content["error"]
    return Response(
        msgspec.json.encode({"error": error["message"], "code": error["code"]}),
        status_code=response.status_code,
        media_type=JSON,
        headers=dict(response.headers),
    )


def is_v2(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def app_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """The app's HTTPException handler: in the V2 shape under /v2 (an unknown route), else /v1's."""
    response = http_error(request, exc)
    return v2_shape(response) if is_v2(request) else response


def _registry_error(request: Request[Any, Any, Any], exc: RegistryError) -> Response[bytes]:
    return v2_shape(registry_error(request, exc))


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return v2_shape(http_error(request, exc))


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    return v2_shape(too_deep(request, exc))


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    return v2_shape(internal_error(request, exc))


# A /v2 router's exception handlers: every failure in the protocol's shape.
V2_EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    RegistryError: _registry_error,
    HTTPException: _http_error,
    RecursionError: _too_deep,
    Exception: _internal_error,
}
