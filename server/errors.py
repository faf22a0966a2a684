"""One JSON error shape for every failure: `{"error": {"code", "message", "detail"}}`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from registry import RegistryError

log = logging.getLogger("mreg.server")

# Codes for the HTTP errors Litestar raises itself (routing, body parsing, limits).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(RegistryError):
    """An HTTP-level failure of the server itself (auth, limits, bad query)."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message, detail=detail)
        self.status = status
        self.code = code


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def error_response(
    status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return Response(error_body(code, message, detail), status_code=status, headers=headers)


def registry_error(request: Request[Any, Any, Any], exc: RegistryError) -> Response[Any]:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.detail)
    body = exc.to_dict()
    return error_response(exc.status, body["code"], body["message"], body["detail"])


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = exc.extra if isinstance(exc, ValidationException) else None
    if isinstance(exc, ValidationException):
        # Litestar says "Validation failed for POST /v1/..."; say what is wrong and what was expected.
        problems = [e.get("message") for e in detail or [] if isinstance(e, dict)]
        message = "invalid request" + (f": {problems[0]}" if problems and problems[0] else "")
        expects = (
            request.route_handler.opt.get("expects") if request.scope.get("route_handler") else None
        )
        if expects:
            message += f"; expected {expects}"
    else:
        message = exc.detail or HTTP_CODES.get(status, "error")
    # Keep what Litestar says in headers (a 405's Allow lists the methods the path takes).
    headers = dict(exc.headers) if exc.headers else None
    return error_response(
        status, HTTP_CODES.get(status, f"http_{status}"), message, detail, headers
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", "unexpected server error (see the server log)", None
    )


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    RegistryError: registry_error,
    HTTPException: http_error,
    Exception: internal_error,
}
