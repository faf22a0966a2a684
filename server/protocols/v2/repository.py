"""The model-repository extension over REST, as Triton and MLServer speak it (and tritonclient).

`POST /v2/repository/index` lists the served models' servable versions with
their state (READY when in memory, else UNAVAILABLE and why);
`POST /v2/repository/models/{name}/load` loads what `{name}` resolves to
(`iris`: its latest version, `iris:prod`: the pointer's target) and
`.../unload` evicts every version of the model, which then answers
`model_unloaded` (409) until it is loaded again (Triton's explicit model
control). All three need a token with the admin scope: a server without
tokens refuses them (as it refuses writes). The work is server.runtime.repository's,
shared with gRPC; errors are the protocol's `{"error": message}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import JSONBody

from server.http.auth import Caller, RuntimeDep, runtime_of
from server.http.openapi import JSON
from server.http.params import V2RefPath
from server.protocols.v2.errors import V2_EXCEPTION_HANDLERS
from server.protocols.v2.openapi import v2_errors
from server.protocols.v2.routes import target
from server.runtime import Pin, Runtime, Served, Viewer
from server.runtime.errors import BadRequest, InvalidRequest

# mreg serves one repository, the registry, whose name is '' (Triton's "any repository").
OneRepository = Annotated[str, msgspec.Meta(pattern="^$", description="'' (mreg serves one)")]


class RepositoryIndexRequest(msgspec.Struct):
    repository_name: OneRepository | None = None
    ready: bool | None = None


class RepositoryIndexEntry(msgspec.Struct):
    name: str
    version: str
    state: str
    reason: str


class RepositoryModelRequest(msgspec.Struct):
    """Load and unload bodies: Triton's `parameters` (config and file overrides are refused)."""

    parameters: dict[str, Any] | None = None


def _check_parameters(body: RepositoryModelRequest | None) -> None:
    given = body.parameters if body is not None else None
    overrides = [k for k in given or {} if k == "config" or k.startswith("file:")]
    if overrides:
        raise BadRequest(
            f"parameter {overrides[0]!r} is not supported: mreg loads models as the registry"
            " has them (change the registry with a commit instead)"
        )


async def admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: a token with the admin scope, always (server.runtime.repository)."""
    runtime = runtime_of(connection)
    viewer = runtime.auth.viewer(connection.headers.get("authorization"))
    runtime.repository.check_admin(runtime.auth, viewer)


@dataclass
class OptionalBody(Operation):
    """The body may be left out (tritonclient posts the index with none): not `required`."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


ROUTE: dict[str, Any] = {
    "tags": ["v2"],
    "guards": [admin],
    "status_code": 200,
    "operation_class": OptionalBody,
}


@dataclass
class IndexBody(OptionalBody):
    """The index body is decoded strictly by hand (`"ready": 0` is no boolean): its schema."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={JSON: OpenAPIMediaType(schema=INDEX_REQUEST)}, required=False
        )


INDEX_REQUEST = Schema(
    one_of=[
        Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "repository_name": Schema(
                    one_of=[
                        Schema(type=OpenAPIType.STRING, pattern="^$"),
                        Schema(type=OpenAPIType.NULL),
                    ],
                    description="'' (mreg serves one repository)",
                ),
                "ready": Schema(
                    one_of=[Schema(type=OpenAPIType.BOOLEAN), Schema(type=OpenAPIType.NULL)],
                    description="Only the versions in memory",
                ),
            },
        ),
        Schema(type=OpenAPIType.NULL),
    ]
)


@post(
    "/index",
    summary="Repository index: the served models' versions and their state",
    responses=v2_errors(400, 401, 403),
    **{**ROUTE, "operation_class": IndexBody},
)
async def repository_index(
    runtime: RuntimeDep, request: Request[Any, Any, Any]
) -> list[RepositoryIndexEntry]:
    raw = await request.body()
    try:  # tritonclient posts no body at all
        data = msgspec.json.decode(raw, type=RepositoryIndexRequest | None) if raw else None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"invalid repository index request: {exc}") from None
    entries = runtime.repository.index(runtime.served, ready=bool(data and data.ready))
    return [RepositoryIndexEntry(e.name, e.version, e.state.value, e.reason) for e in entries]


def _named(
    runtime: Runtime, caller: Viewer, name: str, body: RepositoryModelRequest | None
) -> tuple[Served, str, Pin]:
    """The served revision, and the model and pin `{name}` names (after the body's check)."""
    _check_parameters(body)
    served = runtime.served
    return (served, *target(served, name, None, caller))


@post(
    "/models/{name:str}/load",
    summary="Load a model (its latest version, or the version a ref names) into memory",
    responses=v2_errors(400, 401, 403, 404, 409, 503),
    **ROUTE,
)
async def repository_load(
    runtime: RuntimeDep,
    caller: Caller,
    name: V2RefPath,
    data: JSONBody[RepositoryModelRequest | None] = None,
) -> None:
    served, model, pin = _named(runtime, caller, name, data)
    await runtime.repository.load(served, model, pin)


@post(
    "/models/{name:str}/unload",
    summary="Unload a model: every version leaves memory; invokes answer 409 until loaded",
    responses=v2_errors(400, 401, 403, 404),
    **ROUTE,
)
async def repository_unload(
    runtime: RuntimeDep,
    caller: Caller,
    name: V2RefPath,
    data: JSONBody[RepositoryModelRequest | None] = None,
) -> None:
    served, model, _ = _named(runtime, caller, name, data)
    runtime.repository.unload(served, model)


REPOSITORY_ROUTER = Router(
    path="/v2/repository",
    route_handlers=[repository_index, repository_load, repository_unload],
    exception_handlers=V2_EXCEPTION_HANDLERS,
)
