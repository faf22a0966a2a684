"""KServe's `inference.GRPCInferenceService` over the runtime: the same invoker, auth and usage
records as `/v2` REST, and Triton's repository calls over server.runtime.repository.

The caller's token is the `authorization` metadata (`Bearer <token>`), as
tritonclient sends `headers=`. The core's and the server's errors keep their
messages and map their HTTP status onto a gRPC status code.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version as package_version
from typing import Any

import grpc

from registry import RegistryError, VersionManifest
from server.protocols.grpc import grpc_predict_v2_pb2 as pb
from server.protocols.grpc.codec import infer_response, input_arrays
from server.protocols.v2.codec import input_metadata, output_metadata, rows
from server.protocols.v2.routes import target
from server.runtime import Call, Pin, Runtime, Served, Viewer, visibility
from server.runtime.errors import INTERNAL_MESSAGE, BadRequest, NotReady

log = logging.getLogger("mreg.server")

SERVICE = "inference.GRPCInferenceService"
# The HTTP status of an mreg error as a gRPC status code.
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}

Context = Any  # grpc.aio.ServicerContext (grpcio ships no type hints)
Method = Callable[["InferenceService", Any, Context], Awaitable[Any]]


def status_code(exc: RegistryError) -> grpc.StatusCode:
    return STATUS_CODES.get(exc.status, grpc.StatusCode.INTERNAL)


def _rpc(method: Method) -> Method:
    """An RPC whose RegistryError becomes its status (code and message); anything else INTERNAL.

    Each call is counted and timed in the HTTP request metrics, as method `GRPC`, route
    `/inference.GRPCInferenceService/<RPC>` and the HTTP status of its outcome.
    """
    route = f"/{SERVICE}/{''.join(w.title() for w in method.__name__.split('_'))}"

    @functools.wraps(method)
    async def call(self: InferenceService, request: Any, context: Context) -> Any:
        start, status = time.perf_counter(), 200
        try:
            return await method(self, request, context)
        except RegistryError as exc:
            status, code, message = exc.status, status_code(exc), exc.message
        except Exception:
            log.exception("gRPC %s failed unexpectedly", method.__name__)
            status, code, message = 500, grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE
        finally:
            self.runtime.metrics.observe("GRPC", route, status, time.perf_counter() - start)
        await context.abort(code, message)

    return call


def authorization(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return None


class InferenceService:
    """The RPCs, each a few lines over the runtime (as the REST routes are)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def viewer(self, context: Context) -> Viewer:
        return self.runtime.auth.viewer(authorization(context))

    def admin(self, context: Context) -> Viewer:
        viewer = self.viewer(context)
        self.runtime.repository.check_admin(self.runtime.auth, viewer)
        return viewer

    @_rpc
    async def server_live(self, request: Any, context: Context) -> Any:
        return pb.ServerLiveResponse(live=True)

    @_rpc
    async def server_ready(self, request: Any, context: Context) -> Any:
        return pb.ServerReadyResponse(ready=self.runtime.ready)

    @_rpc
    async def server_metadata(self, request: Any, context: Context) -> Any:
        return pb.ServerMetadataResponse(
            name="mreg", version=package_version("mreg"), extensions=["model_repository"]
        )

    @_rpc
    async def model_ready(self, request: Any, context: Context) -> Any:
        viewer = self.viewer(context)
        model, pin = target(self.runtime.served, request.name, request.version or None, viewer)
        self.runtime.invoker.readable(model, pin, viewer)
        ready = self.runtime.ready and not self.runtime.pool.is_unloaded(model)
        return pb.ModelReadyResponse(ready=ready)

    @_rpc
    async def model_metadata(self, request: Any, context: Context) -> Any:
        viewer = self.viewer(context)
        model, pin = target(self.runtime.served, request.name, request.version or None, viewer)
        served, found = self.runtime.invoker.readable(model, pin, viewer)
        manifest = served.model(model)
        seen = visibility.versions(served, manifest, viewer)
        artifact = found.artifact
        library = (artifact.library if artifact else None) or manifest.library or "unknown"
        response = pb.ModelMetadataResponse(
            name=model,
            versions=[str(v.version) for v in seen if v.servable],
            platform=f"{library}_{artifact.format}" if artifact and artifact.format else library,
        )
        for tensors, out in (
            (input_metadata(found), response.inputs),
            (output_metadata(found), response.outputs),
        ):
            for t in tensors:
                out.add(name=t.name, datatype=t.datatype, shape=t.shape)
        return response

    @_rpc
    async def model_infer(self, request: Any, context: Context) -> Any:
        runtime = self.runtime
        name = request.model_name
        try:
            viewer = self.viewer(context)
        except RegistryError as exc:  # a bad token never reaches the invoker: recorded here
            runtime.invoker.record_failure("invoke", name, name, "anonymous", exc.status, exc.code)
            raise
        model, pin = target(runtime.served, name, request.model_version or None, viewer)

        def inputs(version: VersionManifest) -> list[Any]:
            # After the invoker's permission check: a hidden model is not found, whatever the body.
            return rows(model, input_arrays(request), version)

        call = Call("invoke", pin.ref(model))
        result, record_id = await runtime.invoker.invoke(call, model, pin, inputs, viewer)
        return infer_response(request, result, record_id)

    # -- the model-repository extension (Triton's messages) ---------------------------

    def _check_repository(self, name: str) -> None:
        if name:
            raise BadRequest(f"unknown repository {name!r}: mreg serves one registry, named ''")

    def _repository_model(self, request: Any, context: Context) -> tuple[Served, str, Pin]:
        """For an admin, the served revision and the model and pin `request.model_name` names."""
        viewer = self.admin(context)
        self._check_repository(request.repository_name)
        served = self.runtime.served
        return (served, *target(served, request.model_name, None, viewer))

    @_rpc
    async def repository_index(self, request: Any, context: Context) -> Any:
        self.admin(context)
        self._check_repository(request.repository_name)
        entries = self.runtime.repository.index(self.runtime.served, ready=request.ready)
        response = pb.RepositoryIndexResponse()
        for e in entries:
            response.models.add(
                name=e.name, version=e.version, state=e.state.value, reason=e.reason
            )
        return response

    @_rpc
    async def repository_model_load(self, request: Any, context: Context) -> Any:
        served, model, pin = self._repository_model(request, context)
        if not self.runtime.ready:
            raise NotReady()
        await self.runtime.repository.load(served, model, pin)
        return pb.RepositoryModelLoadResponse()

    @_rpc
    async def repository_model_unload(self, request: Any, context: Context) -> Any:
        served, model, _ = self._repository_model(request, context)
        self.runtime.repository.unload(served, model)
        return pb.RepositoryModelUnloadResponse()


# RPC name -> (the service's method name, request type, response type).
RPCS: dict[str, tuple[str, Any, Any]] = {
    "ServerLive": ("server_live", pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": ("server_ready", pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": ("model_ready", pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": ("server_metadata", pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": ("model_metadata", pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": ("model_infer", pb.ModelInferRequest, pb.ModelInferResponse),
    "RepositoryIndex": ("repository_index", pb.RepositoryIndexRequest, pb.RepositoryIndexResponse),
    "RepositoryModelLoad": (
        "repository_model_load",
        pb.RepositoryModelLoadRequest,
        pb.RepositoryModelLoadResponse,
    ),
    "RepositoryModelUnload": (
        "repository_model_unload",
        pb.RepositoryModelUnloadRequest,
        pb.RepositoryModelUnloadResponse,
    ),
}


def handler(service: InferenceService) -> grpc.GenericRpcHandler:
    """The service's RPCs for a `grpc.aio` server (no generated servicer: the messages suffice)."""
    methods = {
        rpc: grpc.unary_unary_rpc_method_handler(
            getattr(service, method),
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
        for rpc, (method, request, response) in RPCS.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)
