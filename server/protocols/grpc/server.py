"""The gRPC listener: a `grpc.aio` server on the event loop that runs uvicorn and the runtime.

It starts and stops with the app (Litestar's startup and shutdown hooks), so
its RPCs await the same invoker on the same loop as the REST routes: the
model pool, the usage queue and the metrics are shared without locks or a
second thread, and a predict that leaves the loop (a worker thread) leaves it
for both protocols alike.
"""

from __future__ import annotations

import logging

import grpc

from server.protocols.grpc.service import InferenceService, handler
from server.runtime import Runtime
from server.runtime.errors import ApiError

log = logging.getLogger("mreg.server")

GRACE = 5.0  # seconds in-flight RPCs get at shutdown
# Tensors are larger than gRPC's 4 MiB default; REST's --max-body bounds them as well.
MAX_MESSAGE = 64 << 20


class GrpcListenError(ApiError):
    code = "grpc_listen_failed"
    status = 500


class GrpcServer:
    """`inference.GRPCInferenceService` of `runtime` on `address` (`host:port`)."""

    def __init__(self, runtime: Runtime, address: str, max_message: int = MAX_MESSAGE) -> None:
        self.runtime = runtime
        self.address = address
        self.max_message = max_message
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        options = [
            ("grpc.max_receive_message_length", self.max_message),
            ("grpc.max_send_message_length", self.max_message),
            ("grpc.so_reuseport", 0),  # a second server on a taken port fails, not shares it
        ]
        server = grpc.aio.server(options=options)
        server.add_generic_rpc_handlers((handler(InferenceService(self.runtime)),))
        try:
            server.add_insecure_port(self.address)
        except RuntimeError as exc:
            raise GrpcListenError(f"cannot listen for gRPC on {self.address}: {exc}") from None
        await server.start()
        self.server = server
        log.info("serving gRPC (inference.GRPCInferenceService) on %s", self.address)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(GRACE)
            self.server = None
