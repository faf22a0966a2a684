"""One JSON error shape for every failure: `{"error": {"code", "message", "detail"}}`.

The handlers render the core's errors and the server's own (server.runtime.errors)
alike, document each route's error statuses in the OpenAPI, and record in the
usage store an invoke or run that failed before it reached the invoker.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from registry import RegistryError
from server.runtime.errors import INTERNAL_MESSAGE, ApiError

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
    507: "insufficient_storage",
}


# What each error status means, as the OpenAPI document says it.
STATUS_MEANINGS = {
    400: "Bad request: a parameter or the body does not match this operation's schema",
    401: "Malformed or unknown token, or a token is required (admin routes)",
    403: "The token lacks the scope this operation needs",
    404: "Not found; without a token, private models and versions are not found either",
    409: "The request conflicts with the registry: no servable version, or pins that disagree",
    413: "The body is larger than the server's limit",
    415: "The body is not of a media type this operation takes (application/json)",
    422: "The model rejected the input, or the body has neither data nor inputs",
    500: "Unexpected server error (the server log has the details)",
    503: "Not ready, or the model's artifact cannot be fetched or loaded",
    507: "The uploads in progress would exceed the server's --max-upload-total",
}


class ErrorInfo(msgspec.Struct):
    code: str
    message: str
    detail: Any


class ErrorBody(msgspec.Struct):
    """mreg's one error shape: `{"error": {"code", "message", "detail"}}`."""

    error: ErrorInfo


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The `responses=` of a route: each error status it may answer (500 always), in mreg's shape.

    A route declares them in one line, e.g.
    `@get("/v1/things/{name:str}", responses=errors(400, 401, 404))`.
    """
    return error_specs(ErrorBody, STATUS_MEANINGS, statuses)


def documented(tag: str, *statuses: int) -> dict[str, Any]:
    """A route's tag and error statuses, as route decorator arguments: `@get(path, **documented(...))`."""
    return {"tags": [tag], "responses": errors(*statuses)}


def error_specs(
    body: type[msgspec.Struct], meanings: dict[int, str], statuses: tuple[int, ...]
) -> dict[int, ResponseSpec]:
    """Each of `statuses` (and 500) as a response of shape `body`, described by `meanings`."""
    return {
        status: ResponseSpec(
            data_container=body,
            description=meanings[status],
            generate_examples=False,
        )
        for status in sorted({*statuses, 500})
    }


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def error_response(
    status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(error_body(code, message, detail), status_code=status, headers=headers or None)


INVOKED = "invoked"  # request.state: the invoker has the call, and records it however it ends


def mark_invoked(request: Request[Any, Any, Any]) -> None:
    request.state[INVOKED] = True


def _record(request: Request[Any, Any, Any], status: int, code: str) -> None:
    """A failed invoke or run that never reached the invoker is recorded here, with its status."""
    handler = request.scope.get("route_handler")
    kind = handler.opt.get("usage") if handler is not None else None
    if kind is None or request.state.get(INVOKED):
        return
    runtime = request.app.state.runtime
    model = request.path_params.get("model", "") if kind == "invoke" else ""
    who = runtime.auth.name_of(request.headers.get("authorization"))
    runtime.invoker.record_failure(kind, model, model or None, who, status, code)


def registry_error(request: Request[Any, Any, Any], exc: RegistryError) -> Response[Any]:
    if isinstance(exc, ApiError):
        _record(request, exc.status, exc.code)
        headers = getattr(exc, "headers", None)  # e.g. Retry-After on a 503 (batcher.Overloaded)
        return error_response(exc.status, exc.code, exc.message, exc.detail, headers=headers)
    body = exc.to_dict()
    _record(request, exc.status, body["code"])
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
    code = HTTP_CODES.get(status, f"http_{status}")
    _record(request, status, code)
    # Litestar's own headers stay: `Allow` on a 405 (RFC 9110), its methods in a stable order
    # (a Controller's routes list them in whatever order its handlers were registered).
    headers = dict(exc.headers or {})
    for key in [k for k in headers if k.lower() == "allow"]:
        headers[key] = ", ".join(sorted(m.strip() for m in headers[key].split(",")))
    return error_response(status, code, message, detail, headers=headers)


def too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """A body nested deeper than the JSON decoder's limit (20,000 `[`) is the caller's mistake."""
    _record(request, 400, "bad_request")
    return error_response(400, "bad_request", "invalid request: JSON nested too deeply")


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    _record(request, 500, "internal_error")
    return error_response(500, "internal_error", INTERNAL_MESSAGE, None)


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    RegistryError: registry_error,
    HTTPException: http_error,
    RecursionError: too_deep,
    Exception: internal_error,
}
