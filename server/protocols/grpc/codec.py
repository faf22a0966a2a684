"""Tensors over gRPC: `ModelInferRequest` inputs as arrays, the invoker's outputs as a response.

Inputs come as `raw_input_contents` (little-endian bytes, BYTES as 4-byte
length-prefixed strings: what tritonclient sends) or as typed `contents`.
Outputs go back as `raw_output_contents`, as Triton answers: `label` and
`confidence` for a classifier with labels, else `output`, as over REST.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import msgspec
import numpy as np

from registry import InvalidInputError
from server.protocols.grpc import grpc_predict_v2_pb2 as pb
from server.protocols.v2.types import DTYPES, MAX_DIMENSIONS
from server.runtime import InvokeResponse
from server.runtime.errors import InvalidRequest

# Which `InferTensorContents` field holds each datatype (FP16 only travels raw).
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _split_bytes(raw: bytes, name: str) -> list[bytes]:
    out, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInputError(f"input {name!r}: BYTES data ends inside a length prefix")
        (size,) = struct.unpack_from("<I", raw, offset)
        out.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return out


def _flat(tensor: Any, raw: bytes | None) -> np.ndarray:
    name, datatype = tensor.name, tensor.datatype
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise InvalidRequest(
            f"input {name!r}: unsupported datatype {datatype!r} (expected one of {', '.join(DTYPES)})"
        )
    if raw is not None:
        if datatype == "BYTES":
            return np.array(_split_bytes(raw, name), dtype=object)
        if len(raw) % dtype.itemsize:
            raise InvalidInputError(f"input {name!r}: {len(raw)} bytes is not a whole {datatype}")
        return np.frombuffer(raw, dtype=dtype)
    field = CONTENTS.get(datatype)
    if field is None or not tensor.HasField("contents"):
        raise InvalidInputError(f"input {name!r} has no data (raw_input_contents or contents)")
    values = list(getattr(tensor.contents, field))
    return np.array(values, dtype=object if datatype == "BYTES" else dtype)


def input_arrays(request: Any) -> dict[str, np.ndarray]:
    """The request's input tensors as arrays of their shapes (422 for data that does not fit)."""
    if not request.inputs:
        raise InvalidRequest("the request has no inputs")
    raws = list(request.raw_input_contents)
    if raws and len(raws) != len(request.inputs):
        raise InvalidInputError(
            f"{len(raws)} raw_input_contents for {len(request.inputs)} inputs: give one per input"
        )
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        if tensor.name in arrays:
            raise InvalidInputError(f"input {tensor.name!r} is given twice")
        shape = [int(d) for d in tensor.shape]
        if any(d < 0 for d in shape):
            raise InvalidRequest(f"input {tensor.name!r}: negative dimension in shape")
        if len(shape) > MAX_DIMENSIONS:
            raise InvalidInputError(
                f"input {tensor.name!r}: shape has {len(shape)} dimensions, at most {MAX_DIMENSIONS}"
            )
        flat = _flat(tensor, raws[i] if raws else None)
        if flat.size != math.prod(shape):
            raise InvalidInputError(
                f"input {tensor.name!r}: {flat.size} values do not fill shape {shape}"
            )
        if tensor.datatype == "BYTES":
            try:
                flat = np.array([v.decode() for v in flat], dtype=object)
            except UnicodeDecodeError:
                raise InvalidInputError(
                    f"input {tensor.name!r}: BYTES values must be UTF-8 text"
                ) from None
        try:
            arrays[tensor.name] = flat.reshape(shape)
        except ValueError:
            raise InvalidInputError(f"input {tensor.name!r}: shape {shape} is too large") from None
    return arrays


def _tensors(outputs: list[Any]) -> dict[str, tuple[str, np.ndarray]]:
    """The outputs as named tensors with their datatypes, as the REST codec names them."""
    if outputs and all(isinstance(o, dict) and "label" in o for o in outputs):
        tensors = {"label": _typed([o["label"] for o in outputs])}
        confidence = [o.get("confidence") for o in outputs]
        if None not in confidence:
            tensors["confidence"] = ("FP64", np.asarray(confidence, dtype=np.float64))
        return tensors
    return {"output": _typed(outputs)}


def _typed(values: list[Any]) -> tuple[str, np.ndarray]:
    try:
        array = np.asarray(values)
    except ValueError:  # ragged
        array = None
    if array is not None and array.dtype.kind in "biuf":
        datatype = {"b": "BOOL", "i": "INT64", "u": "INT64", "f": "FP64"}[array.dtype.kind]
        return datatype, array
    texts = [v if isinstance(v, str) else msgspec.json.encode(v).decode() for v in values]
    return "BYTES", np.array(texts, dtype=object)


def _raw(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = [str(v).encode() for v in array.reshape(-1).tolist()]
        return b"".join(struct.pack("<I", len(p)) + p for p in parts)
    return np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()


def infer_response(request: Any, result: InvokeResponse, record_id: str) -> Any:
    """The `ModelInferResponse`: the requested outputs (all by default) as raw contents."""
    tensors = _tensors(result.outputs)
    wanted = [o.name for o in request.outputs] or list(tensors)
    unknown = [name for name in wanted if name not in tensors]
    if unknown:
        raise InvalidInputError(
            f"unknown output {unknown[0]!r}: {result.model} gives {', '.join(tensors)}"
        )
    response = pb.ModelInferResponse(
        model_name=result.model,
        model_version=str(result.version),
        id=request.id or record_id,
    )
    response.parameters["model_id"].string_param = result.model_id
    response.parameters["revision"].string_param = result.revision
    for name in wanted:
        datatype, array = tensors[name]
        response.outputs.add(name=name, datatype=datatype, shape=list(array.shape))
        response.raw_output_contents.append(_raw(array, datatype))
    return response
