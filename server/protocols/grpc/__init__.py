"""The Open Inference Protocol over gRPC: KServe's `inference.GRPCInferenceService`.

`grpc_predict_v2.proto` is vendored from KServe (its source, commit and the
changes are in its header; LICENSE-KSERVE is its license), and
`grpc_predict_v2_pb2.py` is generated from it by `make grpc-proto`.
`codec.py` maps tensors, `service.py` the RPCs onto the runtime, `server.py`
runs them beside uvicorn. Imported only when `mreg serve --grpc-port` is given.
"""

from __future__ import annotations

from server.protocols.grpc.server import GrpcServer

__all__ = ["GrpcServer"]
