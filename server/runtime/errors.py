"""The server's own errors: named classes with their code and status, as the core's are.

The HTTP layer renders every RegistryError in one shape; these are the
failures that belong to serving rather than to the registry (auth, limits,
readiness, a request's own inconsistency). No Litestar here.
"""

from __future__ import annotations

from typing import Any

from registry import RegistryError


class ApiError(RegistryError):
    """A failure of the server itself; its `message` and `detail` are shown as they are."""

    code = "api_error"
    status = 400

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message, detail=detail)


class BadRequest(ApiError):
    code = "bad_request"
    status = 400


class InvalidRequest(ApiError):
    """A body that is not the operation's (V2 says invalid_input for it, with a 400)."""

    code = "invalid_input"
    status = 400


class Unauthorized(ApiError):
    code = "unauthorized"
    status = 401


class Forbidden(ApiError):
    code = "forbidden"
    status = 403


class WritesDisabled(ApiError):
    code = "writes_disabled"
    status = 403


class RunNotFound(ApiError):
    code = "run_not_found"
    status = 404


class PinsDisagree(ApiError):
    code = "pins_disagree"
    status = 409


class ReadOnlyRevision(ApiError):
    code = "read_only_revision"
    status = 409


class ArtifactRequired(ApiError):
    code = "artifact_required"
    status = 409


class BodyTooLarge(ApiError):
    code = "body_too_large"
    status = 413


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"
    status = 415


class Md5Mismatch(ApiError):
    code = "md5_mismatch"
    status = 400


class NotReady(ApiError):
    code = "not_ready"
    status = 503

    def __init__(self, message: str = "models are still loading") -> None:
        super().__init__(message)


class AdminTokenRequired(ApiError):
    """The model-repository extension on a server without tokens (it needs one, always)."""

    code = "admin_token_required"
    status = 403


class ModelUnloaded(ApiError):
    """A model unloaded through the model-repository extension (server.runtime.repository)."""

    code = "model_unloaded"
    status = 409  # the model is there, the server's state refuses it (gRPC FAILED_PRECONDITION)

    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} is unloaded: load it with POST /v2/repository/models/{model}/load"
        )


INTERNAL_MESSAGE = "unexpected server error (see the server log)"


class InternalError(ApiError):
    """The 500 a caller gets for a failure the server did not expect (logged, never detailed)."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str = INTERNAL_MESSAGE) -> None:
        super().__init__(message)
