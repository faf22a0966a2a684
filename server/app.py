"""The Litestar app: `create_app(repo, rev)` serves one revision of a registry, read-only.

The invoke path is kept lean on purpose (it is benchmarked): the version is
resolved from the in-memory revision (memoized), the model comes from the
in-memory pool, predict runs inline for small inputs of fast libraries, and
usage is queued for a background writer. No git, YAML or SQLite on the way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

import registry as core
from registry import (
    InvalidRefError,
    ModelManifest,
    Registry,
    RegistryError,
    VersionManifest,
    VersionNotFoundError,
    parse_ref,
    rfc3339,
)
from server.auth import Auth, Token, load_tokens
from server.errors import EXCEPTION_HANDLERS, ApiError
from server.metrics import Metrics, MetricsMiddleware
from server.state import (
    LATEST,
    ArtifactLocator,
    ModelPool,
    Pin,
    Served,
    fetch_remote_branch,
    rev_parse,
)
from server.usage import UsageStore, iso

log = logging.getLogger("mreg.server")

DEFAULT_MAX_BODY = 1_000_000
# Predict on the event loop up to this many inputs (a thread hop costs more than a small
# scikit-learn or ONNX predict: measured ~0.7 of a bare endpoint's speed at 100 rows in a
# thread, ~0.9 inline); larger batches run in a worker thread.
INLINE_MAX_INPUTS = 1024
INLINE_LIBRARIES = frozenset({"sklearn", "onnx"})  # fast enough to predict on the event loop
JSON = "application/json"


class InvokeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`{"data": x}` for one input or `{"inputs": [x, ...]}` for a batch."""

    data: Any = None
    inputs: list[Any] | None = None


class RunRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`{"pipeline": "iris:prod", "inputs": [...]}` (or `"data"` for one input)."""

    pipeline: str
    inputs: list[Any] | None = None
    data: Any = None


class InvokeResponse(msgspec.Struct):
    model: str
    version: int
    model_id: str
    revision: str
    outputs: list[Any]


def default_locator(
    registry: Registry, snapshot: core.Snapshot, model: FromPath[str], version: Any
) -> Path:
    """The artifact in the local DVC cache, fetched at the snapshot's revision when missing."""
    ensure_local = getattr(core, "ensure_local", None)
    if ensure_local is None:
        raise core.ArtifactError("this mreg has no artifact support (registry.ensure_local)")
    return Path(ensure_local(registry, snapshot, model, version))


@dataclass
class ReloadError:
    revision: str | None
    message: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "message": self.message, "at": rfc3339(self.at)}


class Server:
    """The app's state: the served revision, the model pool, usage, auth, metrics."""

    def __init__(
        self,
        registry: Registry,
        rev: str,
        *,
        follow: str | None,
        poll: float,
        auth: Auth,
        preload: bool,
        max_loaded: int,
        locate: ArtifactLocator,
        usage_path: Path | None,
    ) -> None:
        self.registry = registry
        self.rev = follow or rev
        self.follow = follow
        self.poll = poll
        self.auth = auth
        self.preload = preload
        self.metrics = Metrics()
        self.pool = ModelPool(registry, locate, max_loaded)
        self.usage = UsageStore(usage_path)
        self.served: Served = Served.load(registry, self.rev)
        self.previous: Served | None = None
        self.last_reload_error: ReloadError | None = None
        self.ready = not preload
        self._reload_lock = asyncio.Lock()
        # Record ids: random per process (workers, restarts), then a counter (cheaper than urandom).
        self._id_prefix = secrets.token_hex(4)
        self._ids = itertools.count()
        self._poller: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------

    async def startup(self) -> None:
        self.usage.start()
        if self.preload:
            await anyio.to_thread.run_sync(self.preload_models, self.served)
            self.ready = True
        if self.follow and self.poll > 0:
            self._poller = asyncio.create_task(self._poll_loop())

    async def shutdown(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await anyio.to_thread.run_sync(self.usage.close)

    def preload_models(self, served: Served) -> None:
        """Load the latest version and every pointer target of each served model."""
        for name, model in served.models.items():
            if model.archived:
                continue
            pins = [LATEST, *(Pin("pointer", p.tag) for p in served.pointers[name])]
            for pin in pins:
                try:
                    resolution, _ = served.resolve(name, pin)
                except RegistryError:
                    continue  # nothing servable there (no trained version yet): nothing to load
                try:
                    self.pool.load(served.snapshot, name, resolution.version)
                except RegistryError as exc:
                    self.metrics.load_failures[name] += 1
                    log.warning("preload of %s failed: %s", resolution.ref, exc)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.reload()
            except Exception:  # the poller must survive anything; the error is logged
                log.exception("polling %s failed", self.rev)

    async def reload(self) -> bool:
        """Load the newest commit of the served ref and swap to it; False when unchanged or failed."""
        async with self._reload_lock:
            fetch_error = await anyio.to_thread.run_sync(
                fetch_remote_branch, self.registry, self.rev
            )
            if fetch_error:
                # Keep serving; the next poll tries again. The last good fetch is what rev-parse sees.
                log.warning("fetching %s failed: %s", self.rev, fetch_error)
                self.last_reload_error = ReloadError(
                    None, f"fetching {self.rev} failed: {fetch_error}", datetime.now(UTC)
                )
            elif self.last_reload_error and self.last_reload_error.revision is None:
                self.last_reload_error = None  # the fetch works again
            sha = await anyio.to_thread.run_sync(rev_parse, self.registry, self.rev)
            if sha == self.served.revision:
                return False
            if self.last_reload_error and sha == self.last_reload_error.revision:
                return False  # known bad: wait for the next commit instead of failing every poll
            try:
                if not sha:
                    raise core.RevisionNotFoundError(f"revision {self.rev!r} not found")
                served = await anyio.to_thread.run_sync(Served.load, self.registry, sha, self.rev)
                if self.preload:
                    await anyio.to_thread.run_sync(self.preload_models, served)
            except RegistryError as exc:
                self.metrics.reload_failures += 1
                self.last_reload_error = ReloadError(sha or None, str(exc), datetime.now(UTC))
                log.warning(
                    "keeping %s: revision %s failed to load: %s", self.served.revision, sha, exc
                )
                return False
            # The swap: one assignment. Requests in flight keep the Served they started with.
            self.previous, self.served = self.served, served
            self.last_reload_error = None
            self.pool.forget_failures()
            self.metrics.reloads += 1
            log.info("now serving %s at %s", self.rev, sha)
            return True

    # -- invocation ------------------------------------------------------------

    def _resolve(
        self, served: Served, model: FromPath[str], pin: Pin
    ) -> tuple[Served, core.Resolution]:
        try:
            return served, served.resolve(model, pin)[0]
        except VersionNotFoundError:
            # A pinned id stays valid across a swap even if the new revision lost it somehow.
            previous = self.previous
            if pin.kind != "model_id" or previous is None:
                raise
            return previous, previous.resolve(model, pin)[0]

    async def invoke(
        self,
        kind: str,
        model: str,
        pin: Pin,
        inputs: list[Any],
        authorization: str | None,
        ref: str,
    ) -> tuple[InvokeResponse, str]:
        """Run `inputs` through the version `pin` names; returns the response and the record id."""
        start = time.perf_counter()
        served = self.served
        manifest = served.model(model)
        who = self.auth.require(authorization, "invoke", manifest) if self.auth.enabled else None
        served, resolution = self._resolve(served, model, pin)
        version = resolution.version
        record_id = f"run_{self._id_prefix}{next(self._ids):08x}"
        status, error, outputs = 200, None, None
        try:
            outputs = await self._predict(served, model, version, inputs)
        except RegistryError as exc:
            status, error = exc.status, exc.code
            raise
        finally:
            self.usage.record(
                (
                    record_id,
                    kind,
                    ref,
                    model,
                    version.version,
                    version.id,
                    served.revision,
                    who or "anonymous",
                    status,
                    error,
                    (time.perf_counter() - start) * 1000.0,
                    len(inputs),
                    time.time(),
                    msgspec.json.encode(outputs).decode() if kind == "run" else None,
                )
            )
        self.metrics.invocations[(model, version.version, version.id)] += 1
        return (
            InvokeResponse(model, version.version, version.id, served.revision, outputs),
            record_id,
        )

    async def _predict(
        self, served: Served, model: str, version: VersionManifest, inputs: list[Any]
    ) -> list[Any]:
        assert version.artifact is not None
        loaded = self.pool.get(version.artifact.md5)
        if loaded is None:
            try:
                loaded = await anyio.to_thread.run_sync(
                    self.pool.load, served.snapshot, model, version
                )
            except RegistryError:
                self.metrics.load_failures[model] += 1
                raise
        labels = version.output_info.get("labels")
        if len(inputs) <= INLINE_MAX_INPUTS and loaded.library in INLINE_LIBRARIES:
            return core.predict(loaded, inputs, labels)
        return await anyio.to_thread.run_sync(core.predict, loaded, inputs, labels)

    # -- views -----------------------------------------------------------------

    def model_dict(self, served: Served, model: ModelManifest, *, full: bool) -> dict[str, Any]:
        out = model.model_dump(mode="json")
        versions = served.versions[model.name]
        latest = next(
            (v for v in reversed(versions) if v.status.value == "trained" and not v.deprecated),
            None,
        )
        out["latest"] = None if latest is None else {"version": latest.version, "id": latest.id}
        out["versions_count"] = len(versions)
        out["last_used_at"] = iso(self.usage.last_used.get(model.name))
        if full:
            out["versions"] = [
                {
                    "version": v.version,
                    "id": v.id,
                    "status": v.status.value,
                    "deprecated": v.deprecated,
                    "format": v.artifact.format if v.artifact else None,
                }
                for v in versions
            ]
            out["pointers"] = [self.pointer_dict(served, p) for p in served.pointers[model.name]]
        return out

    def pointer_dict(self, served: Served, pointer: core.Pointer) -> dict[str, Any]:
        out = pointer.to_dict()
        try:
            resolution = served.snapshot.resolve(f"{pointer.model}:{pointer.tag}")
            out["resolves_to"] = {
                "version": resolution.version.version,
                "id": resolution.version.id,
            }
        except RegistryError as exc:
            out["resolves_to"] = None
            out["error"] = str(exc)
        return out

    def registry_dict(self) -> dict[str, Any]:
        out = self.served.to_dict()
        out["follow"] = self.follow
        out["ready"] = self.ready
        out["loaded_models"] = len(self.pool.loaded)
        out["last_reload_error"] = (
            self.last_reload_error.to_dict() if self.last_reload_error else None
        )
        return out


# -- helpers ---------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(msgspec.json.encode(body), status_code=status, media_type=JSON, headers=headers)


def _pin(model_id: str | None, version: int | None, pointer: str | None) -> Pin:
    given = [p for p in (model_id, version, pointer) if p is not None]
    if len(given) > 1:
        raise ApiError(400, "bad_request", "give at most one of modelId, version and pointer")
    if model_id is not None:
        if not core.names.VERSION_ID_RE.fullmatch(model_id):
            raise InvalidRefError(f"invalid modelId {model_id!r}: expected mv_<hex>", ref=model_id)
        return Pin("model_id", model_id)
    if version is not None:
        return Pin("version", str(version))
    if pointer is not None:
        if pointer == "latest":
            return LATEST
        if core.names.VERSION_TAG_RE.fullmatch(pointer):
            return Pin("version", pointer[1:])
        return Pin("pointer", pointer)
    return LATEST


def _ref_text(model: str, pin: Pin) -> str:
    """How a job names what was asked for: iris, iris:prod, iris:v3 or the version id."""
    if pin.kind == "model_id":
        return pin.value
    if pin.kind == "version":
        return f"{model}:v{pin.value}"
    if pin.kind == "pointer":
        return f"{model}:{pin.value}"
    return model


def _inputs(data: Any, inputs: list[Any] | None) -> list[Any]:
    if inputs is not None and data is not None:
        raise ApiError(
            422,
            "invalid_input",
            "give either 'data' or 'inputs', not both: {\"data\": x} for one input"
            ' or {"inputs": [x, ...]} for a batch',
        )
    if inputs is not None:
        return inputs
    if data is not None:
        return [data]
    raise ApiError(
        422, "invalid_input", 'expected a body {"data": x} for one input or {"inputs": [x, ...]}'
    )


def _encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ApiError(
            400, "bad_request", "invalid cursor: pass next_cursor from a previous page"
        ) from None
    if not isinstance(after, str):
        raise ApiError(400, "bad_request", "invalid cursor: pass next_cursor from a previous page")
    return after


# -- routes ----------------------------------------------------------------------


@get("/healthz", summary="Liveness", tags=["server"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Readiness: the revision (and with --preload its models) is loaded",
    tags=["server"],
)
async def readyz(server: NamedDependency[Server]) -> Response[Any]:
    if not server.ready:
        raise ApiError(503, "not_ready", "models are still loading")
    return _json({"status": "ready", "revision": server.served.revision})


@get(
    "/v1/registry",
    summary="The revision served, counts, and the last reload error",
    tags=["registry"],
)
async def registry_info(server: NamedDependency[Server]) -> Response[Any]:
    return _json(server.registry_dict())


@get("/v1/models", summary="Models, a page at a time (opaque cursor) with filters", tags=["models"])
async def list_models(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
    cursor: FromQuery[str | None] = None,
    archived: FromQuery[bool | None] = None,
    used: FromQuery[bool | None] = None,
    library: FromQuery[str | None] = None,
    project: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
) -> Response[Any]:
    served = server.served
    private = server.auth.can_read_private(request.headers.get("authorization"))
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
        if not (private or m.is_public):
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
            "models": [server.model_dict(served, m, full=False) for m in page],
            "next_cursor": _encode_cursor(page[-1].name) if more and page else None,
            "revision": served.revision,
        }
    )


def _readable(
    request: Request[Any, Any, Any], server: NamedDependency[Server], model: FromPath[str]
) -> tuple[Served, ModelManifest]:
    served = server.served
    manifest = served.model(model)
    server.auth.require(request.headers.get("authorization"), "read", manifest)
    return served, manifest


@get(
    "/v1/models/{model:str}",
    summary="One model: fields, versions, pointers, last use",
    tags=["models"],
)
async def show_model(
    request: Request[Any, Any, Any], server: NamedDependency[Server], model: FromPath[str]
) -> Response[Any]:
    served, manifest = _readable(request, server, model)
    return _json(server.model_dict(served, manifest, full=True))


@get("/v1/models/{model:str}/versions", summary="Every version of a model", tags=["models"])
async def list_versions(
    request: Request[Any, Any, Any], server: NamedDependency[Server], model: FromPath[str]
) -> Response[Any]:
    served, _ = _readable(request, server, model)
    return _json(
        {"model": model, "versions": [v.model_dump(mode="json") for v in served.versions[model]]}
    )


@get("/v1/models/{model:str}/versions/{n:int}", summary="One version", tags=["models"])
async def show_version(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: FromPath[str],
    n: FromPath[int],
) -> Response[Any]:
    served, _ = _readable(request, server, model)
    version = served.snapshot.version(model, n)
    return _json({"model": model, **version.model_dump(mode="json")})


@get(
    "/v1/models/{model:str}/pointers",
    summary="A model's pointers and where they resolve",
    tags=["pointers"],
)
async def model_pointers(
    request: Request[Any, Any, Any], server: NamedDependency[Server], model: FromPath[str]
) -> Response[Any]:
    served, _ = _readable(request, server, model)
    return _json({"pointers": [server.pointer_dict(served, p) for p in served.pointers[model]]})


@get("/v1/pointers", summary="Every pointer of every model you may read", tags=["pointers"])
async def all_pointers(
    request: Request[Any, Any, Any], server: NamedDependency[Server]
) -> Response[Any]:
    served = server.served
    private = server.auth.can_read_private(request.headers.get("authorization"))
    out = [
        server.pointer_dict(served, p)
        for name in sorted(served.pointers)
        if private or served.models[name].is_public
        for p in served.pointers[name]
    ]
    return _json({"pointers": out})


@get("/v1/resolve/{ref:str}", summary="The version a reference resolves to", tags=["registry"])
async def resolve(
    request: Request[Any, Any, Any], server: NamedDependency[Server], ref: FromPath[str]
) -> Response[Any]:
    served = server.served
    parsed = parse_ref(ref)
    resolution = served.snapshot.resolve(parsed)
    server.auth.require(
        request.headers.get("authorization"), "read", served.model(resolution.model)
    )
    return _json({**resolution.to_dict(), "revision": served.revision})


@post(
    "/v1/models/{model:str}/invoke",
    status_code=200,
    summary="Predict with the latest version, or the one modelId, version or pointer names",
    opt={"expects": 'a JSON body {"data": x} for one input or {"inputs": [x, ...]}'},
    tags=["inference"],
)
async def invoke(
    request: Request[Any, Any, Any],
    model: FromPath[str],
    data: JSONBody[InvokeRequest],
    model_id: Annotated[
        str | None, QueryParameter(name="modelId", description="Pin a version id (mv_...)")
    ] = None,
    version: Annotated[int | None, QueryParameter(ge=1, description="Pin version n")] = None,
    pointer: Annotated[str | None, QueryParameter(description="Use a pointer (tag)")] = None,
) -> Response[InvokeResponse]:
    # The hot path: app state instead of dependency injection saves a few microseconds a call.
    server: Server = request.app.state.server
    pin = _pin(model_id, version, pointer)
    inputs = _inputs(data.data, data.inputs)
    ref = _ref_text(model, pin)
    authorization = request.headers.get("authorization") if server.auth.enabled else None
    body, _ = await server.invoke("invoke", model, pin, inputs, authorization, ref)
    return Response(body, headers={"X-Mreg-Model-Id": body.model_id})


@post(
    "/v1/runs",
    opt={"expects": 'a JSON body {"pipeline": "model[:tag]", "inputs": [x, ...]} (or "data": x)'},
    status_code=200,
    summary="Run a pipeline reference (iris:prod) on inputs",
    tags=["inference"],
)
async def create_run(
    request: Request[Any, Any, Any], server: NamedDependency[Server], data: JSONBody[RunRequest]
) -> Response[Any]:
    inputs = _inputs(data.data, data.inputs)
    parsed = parse_ref(data.pipeline)
    if parsed.version_id is not None:
        model, _ = server.served.snapshot.version_by_id(parsed.version_id)
        pin = Pin("model_id", parsed.version_id)
    else:
        assert parsed.model is not None
        model = parsed.model
        pin = _pin(None, None, parsed.tag) if parsed.tag else LATEST
    start = datetime.now(UTC)
    body, record_id = await server.invoke(
        "run", model, pin, inputs, request.headers.get("authorization"), data.pipeline
    )
    run = {
        "id": record_id,
        "pipeline": data.pipeline,
        "status": "succeeded",
        "created_at": start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **msgspec.structs.asdict(body),
    }
    return _json(run, headers={"X-Mreg-Model-Id": body.model_id})


@get("/v1/runs/{run_id:str}", summary="One recorded run or invocation", tags=["usage"])
async def show_run(
    request: Request[Any, Any, Any], server: NamedDependency[Server], run_id: FromPath[str]
) -> Response[Any]:
    run = await anyio.to_thread.run_sync(server.usage.run, run_id)
    if run is None:
        raise ApiError(404, "run_not_found", f"run {run_id!r} not found")
    manifest = server.served.models.get(run["model"])
    if manifest is not None:
        server.auth.require(request.headers.get("authorization"), "read", manifest)
    else:
        server.auth.require(request.headers.get("authorization"), "read")
    return _json(run)


@get(
    "/v1/jobs",
    summary="Recent invocations: who, which version, status, latency, when",
    tags=["usage"],
)
async def list_jobs(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
) -> Response[Any]:
    served = server.served
    visible = None
    if not server.auth.can_read_private(request.headers.get("authorization")):
        visible = {n for n, m in served.models.items() if m.is_public}
    jobs = await anyio.to_thread.run_sync(
        lambda: server.usage.jobs(model=model, models=visible, limit=limit)
    )
    return _json({"jobs": jobs})


@post(
    "/v1/admin/reload",
    status_code=200,
    summary="Load the newest commit of the served ref now",
    tags=["server"],
)
async def admin_reload(
    request: Request[Any, Any, Any], server: NamedDependency[Server]
) -> Response[Any]:
    server.auth.require(request.headers.get("authorization"), "admin")
    swapped = await server.reload()
    return _json({"reloaded": swapped, **server.registry_dict()})


@get("/metrics", summary="Prometheus metrics", tags=["server"], media_type="text/plain")
async def metrics(server: NamedDependency[Server]) -> Response[Any]:
    served = server.served
    gauges = {
        "mreg_models_loaded": ("Models in memory.", float(len(server.pool.loaded)), {}),
        "mreg_revision_info": (
            "The revision served.",
            1.0,
            {"revision": served.revision, "ref": served.ref},
        ),
        "mreg_revision_loaded_timestamp_seconds": (
            "When the served revision was loaded.",
            served.loaded_at.timestamp(),
            {},
        ),
    }
    return Response(
        server.metrics.render(gauges),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


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


def create_app(
    repo: str | os.PathLike[str] | Registry | None = None,
    rev: str = "HEAD",
    *,
    follow: str | None = None,
    poll: float = 5.0,
    tokens: list[Token] | str | os.PathLike[str] | None = None,
    preload: bool = False,
    max_loaded: int = 8,
    max_body: int = DEFAULT_MAX_BODY,
    locate: ArtifactLocator | None = None,
    usage_path: str | os.PathLike[str] | None = None,
) -> Litestar:
    """A Litestar app serving the registry `repo` at `rev` (or following branch `follow`).

    tokens: a list of Token, a tokens file, or None to read MREG_TOKENS (none: no auth).
    Raises RegistryError when the revision cannot be loaded.
    """
    registry = repo if isinstance(repo, Registry) else Registry(repo)
    auth = Auth(tokens if isinstance(tokens, list) else load_tokens(tokens))
    server = Server(
        registry,
        rev,
        follow=follow,
        poll=poll,
        auth=auth,
        preload=preload,
        max_loaded=max_loaded,
        locate=locate or default_locator,
        usage_path=Path(usage_path) if usage_path else registry.state_dir / "usage.sqlite",
    )
    app = Litestar(
        route_handlers=ROUTES,
        dependencies={"server": Provide(lambda: server, use_cache=True, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[DefineMiddleware(MetricsMiddleware, metrics=server.metrics)],
        on_startup=[server.startup],
        on_shutdown=[server.shutdown],
        openapi_config=OpenAPIConfig(title="mreg", version="1", path="/schema"),
        request_max_body_size=max_body,
        debug=False,
        logging_config=None,  # the process configures logging (mreg serve, uvicorn, tests)
    )
    app.state.server = server
    return app


def app_from_env() -> Litestar:
    """App factory for `uvicorn --factory` workers: options come from MREG_SERVE_* variables."""
    options = json.loads(os.environ["MREG_SERVE_OPTIONS"])
    return create_app(**options)
