"""The Open Inference Protocol (KServe V2 REST) over mreg's invoker: the `/v2/...` routes.

`{name}` is a model name or any reference to one: `iris`, `iris:prod`,
`iris:v3`, `iris:latest` or a version id; `/versions/{v}` pins a version
number, a pointer or a version id instead (not both). One handler serves each
operation on both paths, as MLServer's `rest/endpoints.py` does. Inference
runs through the runtime's invoker, so it shares the model pool, auth, usage
recording and metrics with `POST /v1/models/{model}/invoke`. Errors are the
protocol's `{"error": "message"}`, with mreg's error code beside it in
`"code"`: 400 for a body that is not an inference request (the OpenAPI
document has its schema), 422 for tensors that do not fit (as `/v1` answers
`invalid_input`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide

from registry import InvalidRefError, VersionManifest, parse_ref
from registry.names import TAG_RE, VERSION_ID_RE
from server.http.auth import Caller, Invoker, RuntimeDep
from server.http.media import infer_body
from server.http.params import V2OptionalVersion, V2RefPath
from server.protocols.v2.codec import (
    decode_request,
    feature_names,
    input_metadata,
    output_metadata,
    render,
    route_key,
    rows,
)
from server.protocols.v2.errors import V2_EXCEPTION_HANDLERS
from server.protocols.v2.openapi import (
    INFER,
    INFER_RESPONSES,
    METADATA,
    READY,
    InferOperation,
    V2Operation,
    v2_errors,
)
from server.protocols.v2.types import (
    HEADER_LENGTH,
    V2InferRequest,
    V2Live,
    V2ModelMetadata,
    V2ModelParameters,
    V2ModelReady,
    V2Ready,
    V2ServerMetadata,
)
from server.runtime import LATEST, Call, Pin, PinKind, Served, Viewer, visibility
from server.runtime.errors import BadRequest, NotReady


def paths(operation: str = "") -> list[str]:
    """An operation's two paths: by `{name}` alone, and with `/versions/{version}`."""
    return [
        f"/models/{{name:str}}{operation}",
        f"/models/{{name:str}}/versions/{{version:str}}{operation}",
    ]


def target(served: Served, name: str, version: str | None, viewer: Viewer) -> tuple[str, Pin]:
    """The model and the version pin that `{name}` and `/versions/{version}` name."""
    ref = parse_ref(name)
    if ref.version_id is not None:
        if version is not None:
            raise BadRequest(f"{name} is a version id: give no /versions/")
        # The id of a version the viewer may not see is a missing id (never its model's name).
        model = visibility.owner(served, ref.version_id, viewer)
        return model, Pin(PinKind.MODEL_ID, ref.version_id)
    assert ref.model is not None
    if ref.tag and version is not None:
        raise BadRequest(
            f"{name!r} already names a version: give either MODEL:TAG or /versions/{version}"
        )
    if version is not None and not TAG_RE.fullmatch(version):
        raise InvalidRefError(
            f"invalid version {version!r}: expected a number, a pointer or a version id",
            ref=version,
        )
    tag = ref.tag or version
    if not tag:
        return ref.model, LATEST
    if tag.isdigit():
        return ref.model, Pin(PinKind.VERSION, str(int(tag)))
    if VERSION_ID_RE.fullmatch(tag):
        return ref.model, Pin(PinKind.MODEL_ID, tag)
    # Anything else is a pointer name (`mv_x` too: a pointer may be called that), else not found.
    return ref.model, Pin.of_tag(tag)


@get("/", summary="Server metadata (Open Inference Protocol)", tags=["v2"], responses=v2_errors())
async def server_metadata() -> V2ServerMetadata:
    return V2ServerMetadata("mreg", package_version("mreg"), ["binary_tensor_data"])


@get(
    "/health/live", summary="Liveness (Open Inference Protocol)", tags=["v2"], responses=v2_errors()
)
async def live() -> V2Live:
    return V2Live(live=True)


@get(
    "/health/ready",
    summary="Readiness (Open Inference Protocol)",
    tags=["v2"],
    responses=v2_errors(503),
)
async def ready(runtime: RuntimeDep) -> V2Ready:
    if not runtime.ready:
        raise NotReady()
    return V2Ready(ready=True)


@dataclass(frozen=True)
class Target:
    """What a `/models/{name}[/versions/{version}]` path names: a model and a version pin."""

    model: str
    pin: Pin


def named(invoker: Invoker, name: V2RefPath, version: V2OptionalVersion = None) -> Target:
    """The model a path names, as the caller sees it (after the invoker: one dependency chain)."""
    return Target(*target(invoker.runtime.served, name, version, invoker.caller))


TargetDep = NamedDependency[Target]
MODEL_ROUTE: dict[str, Any] = {"tags": ["v2"], "operation_class": V2Operation}


@get(paths(), summary=METADATA, responses=v2_errors(400, 401, 403, 404, 409), **MODEL_ROUTE)
async def model_metadata(runtime: RuntimeDep, caller: Caller, model: TargetDep) -> V2ModelMetadata:
    served, found = runtime.invoker.readable(model.model, model.pin, caller)
    manifest = served.model(model.model)
    seen = visibility.versions(served, manifest, caller)
    artifact = found.artifact
    library = (artifact.library if artifact else None) or manifest.library or "unknown"
    return V2ModelMetadata(
        name=model.model,
        versions=[str(v.version) for v in seen if v.servable],
        platform=f"{library}_{artifact.format}" if artifact and artifact.format else library,
        inputs=input_metadata(found),
        outputs=output_metadata(found),
        parameters=V2ModelParameters(
            version=str(found.version),
            model_id=found.id,
            revision=served.revision,
            feature_names=feature_names(found),
        ),
    )


@get(
    paths("/ready"), summary=READY, responses=v2_errors(400, 401, 403, 404, 409, 503), **MODEL_ROUTE
)
async def model_ready(runtime: RuntimeDep, caller: Caller, model: TargetDep) -> V2ModelReady:
    _, found = runtime.invoker.readable(model.model, model.pin, caller)
    if not runtime.ready:
        raise NotReady()
    runtime.repository.check_loaded(model.model)  # unloaded through /v2/repository: not ready
    return V2ModelReady(name=model.model, version=str(found.version), ready=True)


@post(
    paths("/infer"),
    status_code=200,
    summary=INFER,
    tags=["v2"],
    operation_class=InferOperation,
    guards=[infer_body],
    responses=INFER_RESPONSES,
)
async def infer(
    request: Request[Any, Any, Any], invoker: Invoker, model: TargetDep
) -> Response[bytes]:
    raw = await request.body()
    header_length = request.headers.get(HEADER_LENGTH)
    decoded: list[V2InferRequest] = []

    def inputs(version: VersionManifest) -> list[Any]:
        # After the invoker's permission check: an unknown or hidden model is a 404, whatever
        # the body is.
        body, arrays = decode_request(raw, header_length)
        decoded.append(body)
        return rows(model.model, arrays, version)

    call = Call("invoke", model.pin.ref(model.model))
    key = route_key(raw, header_length)
    result, record_id = await invoker(call, model.model, model.pin, inputs, route_key=key)
    return render(decoded[0], result, record_id)


# -- errors: the protocol's {"error": message}, with mreg's code beside it ----------------


V2_ROUTER = Router(
    path="/v2",
    route_handlers=[server_metadata, live, ready, model_metadata, model_ready, infer],
    dependencies={"model": Provide(named, sync_to_thread=False)},
    exception_handlers=V2_EXCEPTION_HANDLERS,  # the protocol's shape (deep JSON too)
)
