"""The management API over HTTP: every write is one commit, made by the same `Registry` method as the CLI.

By default a write commits to the branch the server serves (the checked-out
branch) and the server swaps to the new commit before it answers; with
`?branch=NAME`, or when the server runs with `write_mode="branch"`, the commit
goes to a new branch for a pull request and the served revision stays as it
is. Writes need a token with the `write` scope and are authored as the
token's name. Blocking git and DVC work runs in worker threads.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
import msgspec
from litestar import HttpMethod, Request, Response, delete, patch, post, put, route
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.typing import FieldDefinition

from registry import (
    FORMATS,
    Registry,
    RegistryError,
    Status,
    WriteResult,
    check_write_format,
    named_format,
    receive_upload,
)
from server.errors import STATUS_MEANINGS, ApiError, ErrorBody
from server.service import DEFAULT_MAX_BODY, Server

T = TypeVar("T")

WRITE_MODES = ("commit", "branch")
DEFAULT_MAX_UPLOAD = 1 << 30  # 1 GiB
DEFAULT_MAX_UPLOAD_TOTAL = 4 << 30  # 4 GiB
# The OpenAPI document states every rule a request must follow, so that a request
# the schema allows is never refused as malformed (schemathesis checks that).
# What git refuses in a ref (registry.names.git_ref_problem): '..', a trailing '.' or '.lock'.
GIT_SAFE = r"(?!.*\.\.)(?!.*\.$)(?!.*\.lock$)"
MODEL_PATTERN = rf"^{GIT_SAFE}(?!mv_[0-9a-f]{{8,64}}$)[a-z0-9][a-z0-9._-]{{0,63}}$"
TAG_PATTERN = rf"^{GIT_SAFE}(?!latest$)(?!v[0-9]+$)[a-z0-9][a-z0-9._-]{{0,127}}$"
TARGET_PATTERN = r"^(v[0-9]+|[a-z0-9][a-z0-9._-]{0,127}|mv_[0-9a-f]{8,64})$"
BRANCH_PATTERN = r"^(?!HEAD$)(?!.*\.lock(/|$))[A-Za-z0-9_][A-Za-z0-9_-]*([./][A-Za-z0-9_-]+)*$"
FILENAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}\.(skops|joblib|pkl|pickle|onnx|pt|pth|torchscript|keras|h5)$"
MD5_PATTERN = r"^([A-Za-z0-9+/]{22}==|[0-9a-fA-F]{32})?$"
ModelName = Annotated[
    str, PathParameter(pattern=MODEL_PATTERN, description="The model's name", max_length=64)
]
TagName = Annotated[
    str,
    PathParameter(
        pattern=TAG_PATTERN, description="The pointer's tag (not latest or v<n>)", max_length=128
    ),
]
Format = Literal["skops", "joblib", "pickle", "onnx", "torchscript", "keras", "h5", "mlflow"]
# The file name an uploaded artifact gets when only its format is given.
FORMAT_FILES: dict[str, str] = {
    "skops": "model.skops",
    "joblib": "model.joblib",
    "pickle": "model.pkl",
    "onnx": "model.onnx",
    "torchscript": "model.pt",
    "keras": "model.keras",
    "h5": "model.h5",
    "mlflow": "model.mlflow",
}
assert set(FORMAT_FILES) == set(FORMATS)


@dataclass(frozen=True)
class WriteSettings:
    """How this server writes: straight to the served branch (commit) or to new branches."""

    mode: str = "commit"
    max_upload: int = DEFAULT_MAX_UPLOAD
    max_upload_total: int = DEFAULT_MAX_UPLOAD_TOTAL
    """The bound on the bytes of all uploads in progress together (507 beyond it)."""
    # Code-running formats (registry.format_policy) may be uploaded, on a branch only.
    allow_code_formats: bool = False


# -- bodies ----------------------------------------------------------------------


class ModelCreate(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/models`: the model-level fields of a new model."""

    name: Annotated[str, msgspec.Meta(pattern=MODEL_PATTERN, max_length=64)]
    description: str | None = None
    project: str | None = None
    task: str | None = None
    owner: str | None = None
    library: str | None = None
    is_public: bool = False
    labels: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None
    license: str | None = None


class ModelPatch(msgspec.Struct, forbid_unknown_fields=True):
    """`PATCH /v1/models/{model}`: only the fields given change; null clears one."""

    description: str | msgspec.UnsetType | None = msgspec.UNSET
    project: str | msgspec.UnsetType | None = msgspec.UNSET
    task: str | msgspec.UnsetType | None = msgspec.UNSET
    owner: str | msgspec.UnsetType | None = msgspec.UNSET
    library: str | msgspec.UnsetType | None = msgspec.UNSET
    is_public: bool | msgspec.UnsetType = msgspec.UNSET
    labels: dict[str, str] | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    license: str | msgspec.UnsetType | None = msgspec.UNSET
    remove_labels: list[str] = msgspec.field(default_factory=list)


class VersionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/models/{model}/versions`: an untrained version; its artifact comes with PUT."""

    description: str | None = None
    notes: str | None = None
    license: str | None = None
    input_info: dict[str, Any] | None = None
    output_info: dict[str, Any] | None = None
    train_info: dict[str, Any] | None = None
    import_info: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    labels: dict[str, str] | None = None
    create: bool = False


class VersionPatch(msgspec.Struct, forbid_unknown_fields=True):
    """`PATCH .../versions/{n}`: version-level fields, or a status move (not both)."""

    description: str | msgspec.UnsetType | None = msgspec.UNSET
    notes: str | msgspec.UnsetType | None = msgspec.UNSET
    license: str | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    visibility: Literal["public", "private"] | msgspec.UnsetType | None = msgspec.UNSET
    deprecated: bool | msgspec.UnsetType = msgspec.UNSET
    status: Literal["training", "trained", "failed"] | msgspec.UnsetType = msgspec.UNSET


class PointerSet(msgspec.Struct, forbid_unknown_fields=True):
    """`PUT .../pointers/{tag}`: where the pointer goes (v<n>, another tag or a version id)."""

    target: Annotated[str, msgspec.Meta(pattern=TARGET_PATTERN, max_length=128)]
    description: str | None = None


# -- answers -----------------------------------------------------------------------


class WriteInfo(msgspec.Struct):
    """The commit a write made (null when it changed nothing), and the revision served after it."""

    subject: str
    commit: str | None
    branch: str | None
    tag: str | None
    paths: list[str]
    revision: str


class ModelWritten(msgspec.Struct):
    model: dict[str, Any]
    write: WriteInfo


class ModelDeleted(msgspec.Struct):
    model: str
    deleted: list[str]
    write: WriteInfo


class VersionWritten(msgspec.Struct):
    model: str
    version: dict[str, Any]
    write: WriteInfo


class PointerWritten(msgspec.Struct):
    pointer: dict[str, Any]
    write: WriteInfo


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    why = {
        400: "Invalid request, name, field or value",
        401: "No token, or an unknown one",
        403: "The token lacks the write scope",
        404: "No such model, version or pointer",
        409: "Conflicts with the registry (exists, immutable, status, protected pointer)",
        413: "The upload is larger than the server's --max-upload",
        422: "The change would leave an invalid manifest or pointer",
        500: STATUS_MEANINGS[500],
        503: "The DVC remote cannot be reached",
        507: "The uploads in progress would exceed the server's --max-upload-total",
    }
    return {
        s: ResponseSpec(data_container=ErrorBody, description=why[s], generate_examples=False)
        for s in sorted({*statuses, 500})
    }


WRITE_ERRORS = _errors(400, 401, 403, 404, 409, 422)
BRANCH_DOC = (
    "Commit on this new branch (for a pull request) instead of the served branch;"
    " the served revision does not change"
)
Branch = Annotated[
    str | None,
    QueryParameter(description=BRANCH_DOC, pattern=BRANCH_PATTERN, min_length=1, max_length=200),
]


class StrictBodies(StructSchemaPlugin):
    """Bodies that refuse unknown keys say so in the OpenAPI (`additionalProperties: false`)."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


# -- the write path ----------------------------------------------------------------


def _settings(request: Request[Any, Any, Any]) -> WriteSettings:
    settings = getattr(request.app.state, "writes", None)
    return settings if isinstance(settings, WriteSettings) else WriteSettings()


def _serves_checked_out(server: Server) -> bool:
    branch = server.registry.branch
    return server.rev == "HEAD" or (
        branch is not None and server.rev in (branch, f"refs/heads/{branch}")
    )


async def _write(
    request: Request[Any, Any, Any],
    server: Server,
    model: str,
    branch: str | None,
    action: Callable[[Registry, str | None], WriteResult[T]],
    *,
    check: Callable[[Registry, str | None], None] | None = None,
) -> tuple[T, WriteInfo]:
    """Authorise, then run `action` in a worker thread as the token; swap to its commit."""
    who = _writer(request, server)
    if branch is None and _settings(request).mode == "branch":
        branch = f"mreg/{model}-{secrets.token_hex(4)}"

    def run() -> WriteResult[T]:
        reg = server.registry
        if branch is None and not _serves_checked_out(server):
            raise ApiError(
                409,
                "read_only_revision",
                f"this server serves {server.rev}, not the checked-out branch:"
                " write to a new branch with ?branch=NAME",
            )
        if check is not None:
            check(reg, branch)
        with reg.authored_as(who, f"{who}@mreg.invalid"):
            return action(reg, branch)

    result = await anyio.to_thread.run_sync(run)
    if result.branch is None and result.commit is not None:
        await server.reload()
    info = WriteInfo(
        subject=result.subject,
        commit=result.commit,
        branch=result.branch,
        tag=result.tag,
        paths=list(result.paths),
        revision=server.served.revision,
    )
    return result.value, info


def _writer(request: Request[Any, Any, Any], server: Server) -> str:
    """The name of a caller that may write: a token with the `write` scope, always.

    A server without tokens is open for reads and invokes on loopback, but never
    for writes: any web page a developer opens could otherwise post a form to
    http://127.0.0.1:8000/v1/models/iris/archive, which needs no CORS preflight.
    """
    if not server.auth.enabled:
        raise ApiError(
            403,
            "writes_disabled",
            "writes over HTTP need a token with the 'write' scope:"
            " start mreg serve with --tokens FILE (or MREG_TOKENS)",
        )
    return server.auth.require(request.headers.get("authorization"), "write")


async def _unchanged(
    request: Request[Any, Any, Any], server: Server, read: Callable[[Registry], T]
) -> T:
    """An empty patch changes nothing: authorise it, and answer with what is there."""
    _writer(request, server)
    return await anyio.to_thread.run_sync(read, server.registry)


def _no_change(server: Server) -> WriteInfo:
    return WriteInfo("no change", None, None, None, [], server.served.revision)


def _version_dict(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = value.model_dump(mode="json")
    return out


# -- models ------------------------------------------------------------------------


@post(
    "/v1/models",
    status_code=201,
    summary="Create a model (one commit)",
    tags=["writes"],
    responses=WRITE_ERRORS,
    opt={"expects": 'a JSON body {"name": "iris", "library": "sklearn", ...}'},
)
async def create_model(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    data: JSONBody[ModelCreate],
    branch: Branch = None,
) -> ModelWritten:
    fields = msgspec.structs.asdict(data)
    name = fields.pop("name")
    value, info = await _write(
        request,
        server,
        name,
        branch,
        lambda reg, br: reg.create_model(name, branch=br, **fields),
    )
    return ModelWritten(value.model_dump(mode="json"), info)


@patch(
    "/v1/models/{model:str}",
    status_code=200,
    summary="Patch model-level fields (labels and metadata merge; null clears)",
    tags=["writes"],
    responses=WRITE_ERRORS,
    opt={"expects": 'a JSON body of model fields, e.g. {"description": "...", "labels": {}}'},
)
async def update_model(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    data: JSONBody[ModelPatch],
    branch: Branch = None,
) -> ModelWritten:
    given = {
        k: v
        for k, v in msgspec.structs.asdict(data).items()
        if v is not msgspec.UNSET and k != "remove_labels"
    }
    if not given and not data.remove_labels:
        current = await _unchanged(request, server, lambda reg: reg.snapshot("HEAD").model(model))
        return ModelWritten(current.model_dump(mode="json"), _no_change(server))
    value, info = await _write(
        request,
        server,
        model,
        branch,
        lambda reg, br: reg.update_model(
            model, remove_labels=data.remove_labels, branch=br, **given
        ),
    )
    return ModelWritten(value.model_dump(mode="json"), info)


@post(
    "/v1/models/{model:str}/archive",
    status_code=200,
    summary="Archive a model: hidden and not served, until restored",
    tags=["writes"],
    responses=WRITE_ERRORS,
)
async def archive_model(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    branch: Branch = None,
) -> ModelWritten:
    value, info = await _write(
        request, server, model, branch, lambda reg, br: reg.archive_model(model, branch=br)
    )
    return ModelWritten(value.model_dump(mode="json"), info)


@post(
    "/v1/models/{model:str}/restore",
    status_code=200,
    summary="Restore an archived model",
    tags=["writes"],
    responses=WRITE_ERRORS,
)
async def restore_model(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    branch: Branch = None,
) -> ModelWritten:
    value, info = await _write(
        request, server, model, branch, lambda reg, br: reg.restore_model(model, branch=br)
    )
    return ModelWritten(value.model_dump(mode="json"), info)


@delete(
    "/v1/models/{model:str}",
    status_code=200,
    summary="Delete a model for good: its manifests, pointers and .dvc files (git history keeps them)",
    tags=["writes"],
    responses=WRITE_ERRORS,
)
async def delete_model(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    branch: Branch = None,
) -> ModelDeleted:
    value, info = await _write(
        request, server, model, branch, lambda reg, br: reg.delete_model(model, branch=br)
    )
    return ModelDeleted(model, list(value), info)


# -- versions ----------------------------------------------------------------------


@dataclass
class CreateVersionOperation(Operation):
    """A new version comes as JSON fields (untrained) or as the artifact's bytes (trained)."""

    def __post_init__(self) -> None:
        _, components = msgspec.json.schema_components([VersionCreate])
        self.request_body = RequestBody(
            content={
                "application/json": OpenAPIMediaType(schema=components["VersionCreate"]),
                "application/octet-stream": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, min_length=1
                    )
                ),
            },
            description="Version fields (an untrained version), or the artifact's bytes"
            " (a trained version, streamed to disk; see filename and format)",
            required=True,
        )


@post(
    "/v1/models/{model:str}/versions",
    status_code=201,
    summary="Register the next version: untrained with its *_info (JSON), or trained with its"
    " artifact (application/octet-stream)",
    tags=["writes"],
    responses=_errors(400, 401, 403, 404, 409, 413, 422, 503, 507),
    operation_class=CreateVersionOperation,
    request_max_body_size=None,  # an artifact: bounded by max_upload; JSON: by max_body
)
async def create_version(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    filename: Annotated[
        str | None,
        QueryParameter(
            description="With an artifact body: its file name (default model.<format>)",
            pattern=FILENAME_PATTERN,
            max_length=120,
        ),
    ] = None,
    format: Annotated[
        Format | None,
        QueryParameter(
            description="With an artifact body: its format (default: from filename, else skops)"
        ),
    ] = None,
    content_md5: Annotated[
        str,
        HeaderParameter(
            name="Content-MD5",
            description="With an artifact body: its md5, base64 (RFC 1864) or 32 hex digits",
            pattern=MD5_PATTERN,
            required=False,
        ),
    ] = "",
    branch: Branch = None,
) -> VersionWritten:
    _writer(request, server)
    if request.content_type[0] == "application/octet-stream":
        name = filename or FORMAT_FILES[format or "skops"]
        limit = _settings(request).max_upload
        async with _received(request, server.registry, name, content_md5, limit) as path:
            value, info = await _write(
                request,
                server,
                model,
                branch,
                lambda reg, br: reg.register(model, path, format=format, branch=br),
                check=_trusted_format(request, format, name),
            )
        return VersionWritten(model, _version_dict(value), info)
    limit = getattr(request.app, "request_max_body_size", None) or DEFAULT_MAX_BODY
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "body_too_large", f"the body is larger than {limit} bytes")
    try:
        data = msgspec.json.decode(bytes(body) or b"{}", type=VersionCreate)
    except msgspec.DecodeError as exc:
        raise ApiError(
            400,
            "bad_request",
            f"invalid request: {exc}; expected a JSON body of version fields"
            ' (e.g. {"input_info": {...}}) or the artifact as application/octet-stream',
        ) from None
    fields = msgspec.structs.asdict(data)
    value, info = await _write(
        request,
        server,
        model,
        branch,
        lambda reg, br: reg.register(model, untrained=True, branch=br, **fields),
    )
    return VersionWritten(model, _version_dict(value), info)


@patch(
    "/v1/models/{model:str}/versions/{n:int}",
    status_code=200,
    summary="Patch version-level fields, or move the status forward (training, failed)",
    tags=["writes"],
    responses=WRITE_ERRORS,
    opt={
        "expects": 'a JSON body of version fields, e.g. {"notes": "..."} or {"status": "training"}'
    },
)
async def update_version(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    n: FromPath[int],
    data: JSONBody[VersionPatch],
    branch: Branch = None,
) -> VersionWritten:
    given = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    ref = f"{model}:v{n}"
    status = given.pop("status", None)
    deprecate = given.pop("deprecated", None)
    action: Callable[[Registry, str | None], WriteResult[Any]]
    if status is not None:
        if given or deprecate is not None:
            raise ApiError(
                409,
                "conflict",
                "a status move is a write of its own: send 'status' alone, fields in another PATCH",
            )
        if status == Status.trained.value:
            raise ApiError(
                409,
                "artifact_required",
                f"{ref} becomes trained when its artifact is uploaded:"
                f" PUT /v1/models/{model}/versions/{n}/artifact",
            )
        action = lambda reg, br: reg.set_status(ref, status, branch=br)  # noqa: E731
    elif not given and deprecate is None:
        current = await _unchanged(
            request, server, lambda reg: reg.snapshot("HEAD", models=[model]).version(model, n)
        )
        return VersionWritten(model, _version_dict(current), _no_change(server))
    else:
        action = lambda reg, br: reg.update_version(  # noqa: E731
            ref, deprecate=deprecate, branch=br, **given
        )
    value, info = await _write(request, server, model, branch, action)
    return VersionWritten(model, _version_dict(value), info)


@dataclass
class UploadOperation(Operation):
    """The upload's body is raw bytes, streamed: Litestar cannot infer that from the handler."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "application/octet-stream": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, min_length=1
                    )
                )
            },
            description="The artifact's bytes (streamed to disk, never held in memory)",
            required=True,
        )


def _expected_md5(header: str | None) -> str | None:
    """Content-MD5 as RFC 1864 says (base64 of the digest), or as 32 hex digits."""
    if header is None:
        return None
    text = header.strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise ApiError(
            400,
            "bad_request",
            "invalid Content-MD5: expected the base64 of the 16-byte md5 digest (or 32 hex digits)",
        )
    return raw.hex()


@contextlib.asynccontextmanager
async def _received(
    request: Request[Any, Any, Any], reg: Registry, filename: str, content_md5: str, limit: int
) -> AsyncIterator[Path]:
    """The request body streamed to a file of its own (md5-checked, at most `limit` bytes).

    The file and its folder are removed when the block ends, however it ends:
    an interrupted or refused upload leaves nothing behind.
    """
    expected = _expected_md5(content_md5 or None)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"the upload is larger than {limit} bytes")
    total = _settings(request).max_upload_total
    with receive_upload(reg.state_dir, total, request.content_length) as spool:
        path = spool.folder / filename
        digest = hashlib.md5()
        size = 0
        async with await anyio.open_file(path, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413, "body_too_large", f"the upload is larger than {limit} bytes"
                    )
                spool.check(size)
                digest.update(chunk)
                await out.write(chunk)
        if size == 0:
            raise ApiError(400, "bad_request", "the upload is empty: send the artifact's bytes")
        if expected is not None and digest.hexdigest() != expected:
            raise ApiError(
                400,
                "md5_mismatch",
                f"the body's md5 is {digest.hexdigest()}, Content-MD5 says {expected}:"
                " the upload was damaged, send it again",
            )
        yield path


def _check_untrained(reg: Registry, model: str, n: int) -> None:
    """Refuse early (before the bytes travel) when the version cannot take an artifact."""
    version = reg.snapshot("HEAD", models=[model]).version(model, n)
    if version.artifact is not None:
        raise ApiError(409, "immutable_field", f"{model}:v{n} has an artifact already")
    if version.status not in (Status.untrained, Status.training):
        raise ApiError(
            409,
            "conflict",
            f"{model}:v{n} is {version.status.value}: it cannot become trained",
        )


@put(
    "/v1/models/{model:str}/versions/{n:int}/artifact",
    status_code=200,
    summary="Upload a version's artifact: pushed to the DVC remote, the version becomes trained",
    tags=["writes"],
    responses=_errors(400, 401, 403, 404, 409, 413, 422, 503, 507),
    operation_class=UploadOperation,
    request_max_body_size=None,  # bounded by the server's max_upload, checked while streaming
)
async def upload_artifact(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    n: FromPath[int],
    filename: Annotated[
        str,
        QueryParameter(
            description="The artifact's file name; its suffix names the format",
            pattern=FILENAME_PATTERN,
            max_length=120,
        ),
    ],
    format: Annotated[
        Format | None, QueryParameter(description="The format, when the name does not say")
    ] = None,
    content_md5: Annotated[
        str,
        HeaderParameter(
            name="Content-MD5",
            description="md5 of the body: base64 of the digest (RFC 1864) or 32 hex digits",
            pattern=MD5_PATTERN,
            required=False,
        ),
    ] = "",
    branch: Branch = None,
) -> VersionWritten:
    _writer(request, server)
    settings = _settings(request)
    reg = server.registry
    await anyio.to_thread.run_sync(_check_untrained, reg, model, n)
    async with _received(request, reg, filename, content_md5, settings.max_upload) as path:
        ref = f"{model}:v{n}"
        value, info = await _write(
            request,
            server,
            model,
            branch,
            lambda r, br: r.set_status(ref, "trained", artifact=path, format=format, branch=br),
            check=_trusted_format(request, format, filename),
        )
    return VersionWritten(model, _version_dict(value), info)


# -- pointers ----------------------------------------------------------------------


def _refuse_protected(model: str, tag: str) -> Callable[[Registry, str | None], None]:
    def check(reg: Registry, branch: str | None) -> None:
        if branch is not None:
            return
        protected = reg.snapshot("HEAD", models=[model]).settings().protected_pointers
        if tag in protected:
            raise ApiError(
                409,
                "protected_pointer",
                f"{model}:{tag} is a protected pointer (registry.yaml protected_pointers):"
                " change it on a branch with ?branch=NAME and merge a reviewed pull request",
            )

    return check


@put(
    "/v1/models/{model:str}/pointers/{tag:str}",
    status_code=200,
    summary="Create or move a pointer (a protected one only on a branch)",
    tags=["writes"],
    responses=WRITE_ERRORS,
    opt={"expects": 'a JSON body {"target": "v3"} (v<n>, another tag or a version id)'},
)
async def set_pointer(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    tag: TagName,
    data: JSONBody[PointerSet],
    branch: Branch = None,
) -> PointerWritten:
    value, info = await _write(
        request,
        server,
        model,
        branch,
        lambda reg, br: reg.point(
            f"{model}:{tag}", data.target, description=data.description, branch=br
        ),
        check=_refuse_protected(model, tag),
    )
    return PointerWritten(value.to_dict(), info)


@delete(
    "/v1/models/{model:str}/pointers/{tag:str}",
    status_code=200,
    summary="Delete a pointer (a protected one only on a branch)",
    tags=["writes"],
    responses=WRITE_ERRORS,
)
async def delete_pointer(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    tag: TagName,
    branch: Branch = None,
) -> PointerWritten:
    value, info = await _write(
        request,
        server,
        model,
        branch,
        lambda reg, br: reg.delete_pointer(f"{model}:{tag}", branch=br),
        check=_refuse_protected(model, tag),
    )
    return PointerWritten(value.to_dict(), info)


@route(
    [
        "/v1/models",
        "/v1/models/{model:str}",
        "/v1/models/{model:str}/versions",
        "/v1/models/{model:str}/versions/{n:int}",
        "/v1/models/{model:str}/pointers/{tag:str}",
    ],
    http_method=[HttpMethod.OPTIONS],
    include_in_schema=False,
    sync_to_thread=False,
)
def allowed_methods(request: Request[Any, Any, Any]) -> Response[None]:
    """OPTIONS for paths that reads and writes share, listing every method of the path.

    Litestar's own OPTIONS handler keeps the methods of the first handler registered
    on a path; registered first, this one answers for all of them.
    """
    template = request.scope.get("path_template")
    methods = next(
        (r.methods for r in request.app.routes if template in (r.path, r.path_format)),
        {"OPTIONS"},
    )
    return Response(None, status_code=204, headers={"Allow": ", ".join(sorted(methods))})


WRITE_ROUTES = [
    create_model,
    update_model,
    archive_model,
    restore_model,
    delete_model,
    create_version,
    update_version,
    upload_artifact,
    set_pointer,
    delete_pointer,
]


def check_settings(
    mode: str,
    max_upload: int,
    max_upload_total: int = DEFAULT_MAX_UPLOAD_TOTAL,
    allow_code_formats: bool = False,
) -> WriteSettings:
    if mode not in WRITE_MODES:
        raise RegistryError(f"unknown write mode {mode!r}: use {' or '.join(WRITE_MODES)}")
    if max_upload < 1:
        raise RegistryError("max_upload must be at least 1 byte")
    if max_upload_total < 1:
        raise RegistryError("max_upload_total must be at least 1 byte")
    return WriteSettings(mode, max_upload, max_upload_total, allow_code_formats)


def _trusted_format(
    request: Request[Any, Any, Any], fmt: str | None, filename: str
) -> Callable[[Registry, str | None], None]:
    """The `_write` check for an uploaded artifact: registry.format_policy's rule for HTTP."""
    allow = _settings(request).allow_code_formats

    def check(reg: Registry, branch: str | None) -> None:
        named = named_format(fmt, filename)
        if named is not None:
            trusted = reg.snapshot("HEAD", models=[]).settings().trusted_formats
            check_write_format(named, trusted, branch=branch, allow_code_formats=allow)

    return check
