"""The HTTP routes of DESIGN.md section 6: parse the request, call the Server, render JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.params import Body, FromQuery, PathParameter, QueryParameter

import registry as core
from registry import (
    InvalidRefError,
    ModelManifest,
    parse_ref,
)
from server import visibility
from server.auth import Viewer
from server.errors import ApiError, errors
from server.metrics import scrape
from server.service import (
    INVOKE_SCHEMA,
    JSON,
    RUN_SCHEMA,
    InvokeRequest,
    InvokeResponse,
    RunRequest,
    Server,
)
from server.state import (
    LATEST,
    Pin,
    Served,
)

_MODEL = core.names.MODEL_NAME_RE.pattern
_TAG = core.names.TAG_RE.pattern
_ID = core.names.VERSION_ID_RE.pattern
ModelName = Annotated[str, PathParameter(pattern=f"^{_MODEL}$", description="A model name")]
RefText = Annotated[
    str,
    PathParameter(
        pattern=f"^(?:{_ID}|{_MODEL}(?::{_TAG})?)$",
        description="model, model:tag (a pointer, latest or v<n>) or a version id mv_<hex>",
    ),
]
CURSOR_PATTERN = "^(?:[0-9a-f]{2})*$"


def media_type(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The request's Content-Type without its parameters, lower case; None when absent."""
    value = connection.headers.get("content-type")
    return value.split(";", 1)[0].strip().lower() if value is not None else None


def json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: the body must say it is JSON. A web page's form or `text/plain` post (which a
    browser sends cross-origin without asking) cannot invoke a model."""
    if media_type(connection) != JSON:
        raise ApiError(
            415, "unsupported_media_type", "expected a JSON body (Content-Type: application/json)"
        )


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(msgspec.json.encode(body), status_code=status, media_type=JSON, headers=headers)


def _pins(model_id: str | None, version: int | None, pointer: str | None) -> list[Pin]:
    """The pins a request gives, most specific first; none is latest.

    Several must agree: `?pointer=prod&modelId=mv_...` invokes prod only while it is that version.
    """
    pins: list[Pin] = []
    if model_id is not None:
        if not core.names.VERSION_ID_RE.fullmatch(model_id):
            raise InvalidRefError(f"invalid modelId {model_id!r}: expected mv_<hex>", ref=model_id)
        pins.append(Pin("model_id", model_id))
    if version is not None:
        pins.append(Pin("version", str(version)))
    if pointer is not None:
        if pointer == "latest":
            pins.append(LATEST)
        elif core.names.VERSION_TAG_RE.fullmatch(pointer):
            pins.append(Pin("version", pointer[1:]))
        else:
            pins.append(Pin("pointer", pointer))
    return pins or [LATEST]


def _ref_text(model: str, pin: Pin) -> str:
    """How a job names what was asked for: iris, iris:prod, iris:v3 or the version id."""
    if pin.kind == "model_id":
        return pin.value
    if pin.kind == "version":
        return f"{model}:v{pin.value}"
    if pin.kind == "pointer":
        return f"{model}:{pin.value}"
    return model


def _inputs(data: Any, inputs: list[Any] | msgspec.UnsetType) -> list[Any]:
    given = data is not msgspec.UNSET
    if inputs is not msgspec.UNSET and given:
        raise ApiError(
            422,
            "invalid_input",
            "give either 'data' or 'inputs', not both: {\"data\": x} for one input"
            ' or {"inputs": [x, ...]} for a batch',
        )
    if inputs is not msgspec.UNSET:
        return inputs
    if given:
        return [data]
    raise ApiError(
        422, "invalid_input", 'expected a body {"data": x} for one input or {"inputs": [x, ...]}'
    )


def _public_job(served: Served, job: dict[str, Any]) -> bool:
    """Whether an anonymous caller may see a job: its model is public, its version not private."""
    manifest = served.models.get(job["model"])
    if manifest is None or not manifest.is_public:
        return False
    return not any(
        v.id == job["model_id"] and v.visibility == "private"
        for v in served.versions[manifest.name]
    )


def _encode_cursor(name: str) -> str:
    return name.encode().hex()


def _decode_cursor(cursor: str) -> str:
    """The name a page starts after. Any cursor of the documented pattern is a valid position."""
    try:
        return bytes.fromhex(cursor).decode("utf-8", "replace")
    except ValueError:
        raise ApiError(
            400, "bad_request", "invalid cursor: pass next_cursor from a previous page"
        ) from None


# -- routes ----------------------------------------------------------------------


@get("/healthz", summary="Liveness", tags=["server"], responses=errors())
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Readiness: the revision (and with --preload its models) is loaded",
    tags=["server"],
    responses=errors(503),
)
async def readyz(server: NamedDependency[Server]) -> Response[Any]:
    if not server.ready:
        raise ApiError(503, "not_ready", "models are still loading")
    return _json({"status": "ready", "revision": server.served.revision})


@get(
    "/v1/registry",
    summary="The revision served, counts, and the last reload error",
    tags=["registry"],
    responses=errors(401),
)
async def registry_info(
    request: Request[Any, Any, Any], server: NamedDependency[Server]
) -> Response[Any]:
    return _json(server.registry_dict(_viewer(request, server)))


@get(
    "/v1/models",
    summary="Models, a page at a time (opaque cursor) with filters",
    tags=["models"],
    responses=errors(400, 401),
)
async def list_models(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
    cursor: Annotated[
        str | None,
        QueryParameter(pattern=CURSOR_PATTERN, description="next_cursor of the previous page"),
    ] = None,
    archived: FromQuery[bool | None] = None,
    used: FromQuery[bool | None] = None,
    library: FromQuery[str | None] = None,
    project: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
) -> Response[Any]:
    served = server.served
    viewer = _viewer(request, server)
    after = _decode_cursor(cursor) if cursor else None
    needle = q.lower() if q else None
    last_used = server.usage.last_used
    page: list[ModelManifest] = []
    more = False
    for name in sorted(served.models):
        m = served.models[name]
        if after is not None and name <= after:
            continue
        if m.archived != bool(archived):
            continue
        if not viewer.sees(m):
            continue
        if used is not None and (name in last_used) != used:
            continue
        if library is not None and m.library != library:
            continue
        if project is not None and m.project != project:
            continue
        if needle and not any(
            needle in (text or "").lower() for text in (m.name, m.description, m.project, m.task)
        ):
            continue
        if len(page) == limit:
            more = True
            break
        page.append(m)
    return _json(
        {
            "models": [server.model_dict(served, m, full=False, viewer=viewer) for m in page],
            "next_cursor": _encode_cursor(page[-1].name) if more and page else None,
            "revision": served.revision,
        }
    )


def _viewer(request: Request[Any, Any, Any], server: Server) -> Viewer:
    return server.auth.viewer(request.headers.get("authorization"))


def _readable(
    request: Request[Any, Any, Any], server: NamedDependency[Server], model: str
) -> tuple[Served, ModelManifest, Viewer]:
    """The model as the caller may see it: a private one is missing without a token."""
    served = server.served
    viewer = _viewer(request, server)
    return served, visibility.model(served, model, viewer), viewer


@get(
    "/v1/models/{model:str}",
    summary="One model: fields, versions, pointers, last use",
    tags=["models"],
    responses=errors(400, 401, 404),
)
async def show_model(
    request: Request[Any, Any, Any], server: NamedDependency[Server], model: ModelName
) -> Response[Any]:
    served, manifest, viewer = _readable(request, server, model)
    return _json(server.model_dict(served, manifest, full=True, viewer=viewer))


@get(
    "/v1/models/{model:str}/versions",
    summary="Every version of a model",
    tags=["models"],
    responses=errors(400, 401, 404),
)
async def list_versions(
    request: Request[Any, Any, Any], server: NamedDependency[Server], model: ModelName
) -> Response[Any]:
    served, manifest, viewer = _readable(request, server, model)
    shown = visibility.versions(served, manifest, viewer)
    return _json({"model": model, "versions": [v.model_dump(mode="json") for v in shown]})


@get(
    "/v1/models/{model:str}/versions/{n:int}",
    summary="One version",
    tags=["models"],
    responses=errors(400, 401, 404),
)
async def show_version(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: ModelName,
    n: Annotated[int, PathParameter(description="The version number")],
) -> Response[Any]:
    served, manifest, viewer = _readable(request, server, model)
    version = visibility.version(served, manifest, n, viewer)
    return _json({"model": model, **version.model_dump(mode="json")})


@get(
    "/v1/models/{model:str}/pointers",
    summary="A model's pointers and where they resolve",
    tags=["pointers"],
    responses=errors(400, 401, 404),
)
async def model_pointers(
    request: Request[Any, Any, Any], server: NamedDependency[Server], model: ModelName
) -> Response[Any]:
    served, _, viewer = _readable(request, server, model)
    return _json(
        {"pointers": [server.pointer_dict(served, p, viewer) for p in served.pointers[model]]}
    )


@get(
    "/v1/pointers",
    summary="Every pointer of every model you may read",
    tags=["pointers"],
    responses=errors(401),
)
async def all_pointers(
    request: Request[Any, Any, Any], server: NamedDependency[Server]
) -> Response[Any]:
    served = server.served
    viewer = _viewer(request, server)
    out = [
        server.pointer_dict(served, p, viewer)
        for name in sorted(served.pointers)
        if viewer.sees(served.models[name])
        for p in served.pointers[name]
    ]
    return _json({"pointers": out})


@get(
    "/v1/resolve/{ref:str}",
    summary="The version a reference resolves to",
    tags=["registry"],
    responses=errors(400, 401, 404, 409, 422),
)
async def resolve(
    request: Request[Any, Any, Any], server: NamedDependency[Server], ref: RefText
) -> Response[Any]:
    served = server.served
    viewer = _viewer(request, server)
    resolution = visibility.resolve_ref(served, parse_ref(ref), viewer)
    return _json({**resolution.to_dict(), "revision": served.revision})


@post(
    "/v1/models/{model:str}/invoke",
    status_code=200,
    guards=[json_body],
    summary="Predict with the latest version, or the one modelId, version or pointer names",
    opt={
        "expects": 'a JSON body {"data": x} for one input or {"inputs": [x, ...]}',
        "usage": "invoke",
    },
    tags=["inference"],
    responses=errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def invoke(
    request: Request[Any, Any, Any],
    model: ModelName,
    data: Annotated[InvokeRequest, Body(schema_extra=INVOKE_SCHEMA)],
    model_id: Annotated[
        str | None,
        QueryParameter(name="modelId", pattern=f"^{_ID}$", description="Pin a version id (mv_...)"),
    ] = None,
    version: Annotated[int | None, QueryParameter(ge=1, description="Pin version n")] = None,
    pointer: Annotated[
        str | None,
        QueryParameter(pattern=f"^{_TAG}$", description="Use a pointer (tag, latest or v<n>)"),
    ] = None,
) -> Response[InvokeResponse]:
    # The hot path: app state instead of dependency injection saves a few microseconds a call.
    server: Server = request.app.state.server
    pin, *agree = _pins(model_id, version, pointer)
    inputs = _inputs(data.data, data.inputs)
    ref = _ref_text(model, pin)
    viewer = server.auth.viewer(request.headers.get("authorization"))
    body, _ = await server.invoke("invoke", model, pin, inputs, viewer, ref, agree=agree)
    return Response(body, headers={"X-Mreg-Model-Id": body.model_id})


@post(
    "/v1/runs",
    opt={
        "expects": 'a JSON body {"pipeline": "model[:tag]", "inputs": [x, ...]} (or "data": x)',
        "usage": "run",
    },
    status_code=200,
    guards=[json_body],
    summary="Run a pipeline reference (iris:prod) on inputs",
    tags=["inference"],
    responses=errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def create_run(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    data: Annotated[RunRequest, Body(schema_extra=RUN_SCHEMA)],
) -> Response[Any]:
    viewer = _viewer(request, server)
    inputs = _inputs(data.data, data.inputs)
    parsed = parse_ref(data.pipeline)
    if parsed.version_id is not None:
        model = visibility.owner(server.served, parsed.version_id, viewer)
        pin = Pin("model_id", parsed.version_id)
    else:
        assert parsed.model is not None
        model = parsed.model
        pin = _pins(None, None, parsed.tag)[0] if parsed.tag else LATEST
    start = datetime.now(UTC)
    body, record_id = await server.invoke("run", model, pin, inputs, viewer, data.pipeline)
    run = {
        "id": record_id,
        "pipeline": data.pipeline,
        "status": "succeeded",
        "created_at": start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **msgspec.structs.asdict(body),
    }
    return _json(run, headers={"X-Mreg-Model-Id": body.model_id})


@get(
    "/v1/runs/{run_id:str}",
    summary="One recorded run or invocation",
    tags=["usage"],
    responses=errors(401, 404),
)
async def show_run(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    run_id: Annotated[str, PathParameter(description="The id a run answered")],
) -> Response[Any]:
    viewer = _viewer(request, server)
    run = await anyio.to_thread.run_sync(server.usage.run, run_id)
    if run is None or not (viewer.reader or _public_job(server.served, run)):
        # A run of a private model or version is missing for an anonymous caller.
        raise ApiError(404, "run_not_found", f"run {run_id!r} not found")
    return _json(run)


@get(
    "/v1/jobs",
    summary="Recent invocations: who, which version, status, latency, when",
    tags=["usage"],
    responses=errors(400, 401),
)
async def list_jobs(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
) -> Response[Any]:
    served = server.served
    viewer = _viewer(request, server)
    if viewer.reader:
        jobs = await anyio.to_thread.run_sync(
            lambda: server.usage.jobs(model=model, models=None, limit=limit)
        )
        return _json({"jobs": jobs, **server.usage.freshness()})
    public = {n for n, m in served.models.items() if m.is_public}
    # Jobs of public models' private versions are dropped after the query: ask for more.
    hidden = sum(1 for n in public for v in served.versions[n] if v.visibility == "private")
    jobs = await anyio.to_thread.run_sync(
        lambda: server.usage.jobs(
            model=model, models=public, limit=limit if not hidden else 10 * limit
        )
    )
    shown = [j for j in jobs if _public_job(served, j)][:limit]
    # stale/warning: records still queued in memory (the store cannot write) are not in `jobs`.
    return _json({"jobs": shown, **server.usage.freshness()})


@post(
    "/v1/admin/reload",
    status_code=200,
    summary="Load the newest commit of the served ref now",
    tags=["server"],
    responses=errors(401, 403),
    description="Needs a token with the admin scope when the server has tokens.",
)
async def admin_reload(
    request: Request[Any, Any, Any], server: NamedDependency[Server]
) -> Response[Any]:
    viewer = _viewer(request, server)
    server.auth.check(viewer, "admin")
    swapped = await server.reload()
    return _json({"reloaded": swapped, **server.registry_dict(viewer)})


@get(
    "/metrics",
    summary="Prometheus metrics",
    tags=["server"],
    media_type="text/plain",
    responses=errors(401),
)
async def metrics(
    request: Request[Any, Any, Any], server: NamedDependency[Server]
) -> Response[Any]:
    return scrape(server, request.headers.get("authorization"))


ROUTES = [
    healthz,
    readyz,
    registry_info,
    list_models,
    show_model,
    list_versions,
    show_version,
    model_pointers,
    all_pointers,
    resolve,
    invoke,
    create_run,
    show_run,
    list_jobs,
    admin_reload,
    metrics,
]
