"""Tensors in and out: V2 inputs as the model's rows, its outputs as V2 tensors (JSON or binary).

Inputs: one tensor of shape `[batch, ...]` (its rows are the model's inputs),
or one tensor per feature named as the version's `input_info.feature_names`,
each of shape `[batch]` or `[batch, 1]`. Outputs: `label` and `confidence`
for a classifier with labels, else `output`. The binary tensor data extension
(the default of `tritonclient`) works both ways.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import msgspec
import numpy as np
from litestar import Response

from registry import (
    InvalidInputError,
    VersionManifest,
    input_rows,
    output_tensors,
    v2_datatype,
)
from server.http.openapi import JSON, OCTET_STREAM
from server.protocols.v2.types import (
    DTYPES,
    HEADER_LENGTH,
    MAX_DIMENSIONS,
    SCHEMA_TYPES,
    V2BinarySize,
    V2InferRequest,
    V2InferResponse,
    V2OutputTensor,
    V2RequestedOutput,
    V2ResponseParameters,
    V2Tensor,
    V2TensorMetadata,
)
from server.runtime import InvokeResponse
from server.runtime.errors import BadRequest, InvalidRequest


def input_metadata(version: VersionManifest) -> list[V2TensorMetadata]:
    """One tensor `input` of shape [-1, k] (k features when the manifest says how many)."""
    info = version.input_info
    found = info.get("schema")
    schema: dict[str, Any] = found if isinstance(found, dict) else {}
    features = info.get("feature_names") or info.get("features")
    width = -1
    if isinstance(features, list) and features:
        width = len(features)
    elif schema.get("minItems") is not None and schema.get("minItems") == schema.get("maxItems"):
        width = int(schema["maxItems"])
    found = schema.get("items")
    items: dict[str, Any] = found if isinstance(found, dict) else {}
    datatype = SCHEMA_TYPES.get(items.get("type", "number"), "FP32")
    return [V2TensorMetadata("input", datatype, [-1, width])]


def output_metadata(version: VersionManifest) -> list[V2TensorMetadata]:
    if version.output_info.get("labels"):
        return [
            V2TensorMetadata("label", "BYTES", [-1]),
            V2TensorMetadata("confidence", "FP64", [-1]),
        ]
    return [V2TensorMetadata("output", "FP64", [-1])]


def feature_names(version: VersionManifest) -> list[str]:
    names = version.input_info.get("feature_names") or version.input_info.get("features")
    return [str(n) for n in names] if isinstance(names, list) else []


class _RouteParameters(msgspec.Struct):
    route_key: Any = None


class _Routed(msgspec.Struct):
    parameters: _RouteParameters | None = None


def route_key(raw: bytes, header_length: str | None) -> str | None:
    """The request's `parameters.route_key`, read before the rest of the body is decoded.

    None when there is none, or when the body is one `decode_request` refuses later.
    """
    split = int(header_length) if header_length and header_length.isdigit() else len(raw)
    if raw.find(b'"route_key"', 0, split) < 0:
        return None
    try:
        body = msgspec.json.decode(raw[:split], type=_Routed)
    except (msgspec.DecodeError, RecursionError):
        return None
    key = body.parameters.route_key if body.parameters is not None else None
    return key if isinstance(key, str) and key else None


def decode_request(
    raw: bytes, header_length: str | None
) -> tuple[V2InferRequest, dict[str, np.ndarray]]:
    """The request's JSON and its input tensors as arrays (binary ones after the JSON)."""
    split = len(raw)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(raw):
            raise BadRequest(f"invalid {HEADER_LENGTH}: {header_length!r}")
        split = int(header_length)
    try:
        body = msgspec.json.decode(raw[:split], type=V2InferRequest)
    except RecursionError:  # deeper than the decoder's limit: the caller's mistake
        raise BadRequest("invalid request: JSON nested too deeply") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(
            f"invalid inference request: {exc}; expected"
            ' {"inputs": [{"name", "shape", "datatype", "data"}]}'
        ) from None
    if not body.inputs:
        raise InvalidRequest("the request has no inputs")
    binary, offset = memoryview(raw)[split:], 0
    arrays: dict[str, np.ndarray] = {}
    for tensor in body.inputs:
        if tensor.name in arrays:
            raise InvalidInputError(f"input {tensor.name!r} is given twice")
        arrays[tensor.name], offset = _input_array(tensor, binary, offset)
    return body, arrays


def _decode_bytes(raw: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInputError("BYTES tensor data ends inside a length prefix")
        (size,) = struct.unpack_from("<I", raw, offset)
        out.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return out


def _input_array(tensor: V2Tensor, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    """The tensor as an array of its shape, and the offset of the next binary tensor."""
    dtype = DTYPES.get(tensor.datatype)
    if dtype is None:
        raise InvalidRequest(
            f"input {tensor.name!r}: unsupported datatype {tensor.datatype!r}"
            f" (expected one of {', '.join(DTYPES)})",
        )
    shape = [int(d) for d in tensor.shape]  # whole numbers (V2Tensor checks)
    if any(d < 0 for d in shape):
        raise InvalidRequest(f"input {tensor.name!r}: negative dimension in shape")
    if len(shape) > MAX_DIMENSIONS:
        raise InvalidInputError(
            f"input {tensor.name!r}: shape has {len(shape)} dimensions, at most {MAX_DIMENSIONS}"
        )
    given = tensor.parameters.binary_data_size if tensor.parameters else None
    if given is not None:
        size = int(given)
        if offset + size > len(binary):
            raise InvalidInputError(
                f"input {tensor.name!r}: binary_data_size {size} overruns the request body",
            )
        raw = bytes(binary[offset : offset + size])
        offset += size
        if tensor.datatype == "BYTES":
            flat = np.array(_decode_bytes(raw) or [], dtype=object)
        elif size % dtype.itemsize:
            raise InvalidInputError(
                f"input {tensor.name!r}: {size} bytes is not a whole number of {tensor.datatype}",
            )
        else:
            flat = np.frombuffer(raw, dtype=dtype)
    elif tensor.data is None:
        raise InvalidInputError(f"input {tensor.name!r} has no data")
    else:
        try:
            flat = np.asarray(tensor.data, dtype=dtype).reshape(-1)
        except (ValueError, TypeError, OverflowError) as exc:  # Overflow: 500 as INT8
            raise InvalidInputError(
                f"input {tensor.name!r}: data is not {tensor.datatype}: {exc}"
            ) from None
    if flat.size != math.prod(shape):
        raise InvalidInputError(
            f"input {tensor.name!r}: {flat.size} values do not fill shape {shape}",
        )
    if tensor.datatype == "BYTES":
        try:
            texts = [v.decode() if isinstance(v, bytes) else v for v in flat]
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"input {tensor.name!r}: BYTES values must be UTF-8 text"
            ) from None
        flat = np.array(texts, dtype=object)
    try:
        return flat.reshape(shape), offset
    except ValueError:  # [9223372036854775807, 0]: no values, but more than an array can hold
        raise InvalidInputError(f"input {tensor.name!r}: shape {shape} is too large") from None


def rows(model: str, arrays: dict[str, np.ndarray], version: VersionManifest) -> list[Any]:
    """The model's inputs (one per row of the batch) from the request's tensors."""
    return input_rows(arrays, feature_names(version), model)


def _encode(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            raw = str(value).encode()
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()


def _binary(output: V2RequestedOutput, default: bool) -> bool:
    """Whether an output goes in binary: its own binary_data if it says, else the request's."""
    said = output.parameters.binary_data if output.parameters else None
    return default if said is None else said


def render(request_body: V2InferRequest, result: InvokeResponse, record_id: str) -> Response[bytes]:
    tensors = output_tensors(result.outputs)
    wanted = request_body.outputs
    parameters = request_body.parameters
    binary_default = bool(parameters and parameters.binary_data_output)
    if wanted is None:
        chosen = [(name, binary_default) for name in tensors]
    else:
        unknown = [o.name for o in wanted if o.name not in tensors]
        if unknown:
            raise InvalidInputError(
                f"unknown output {unknown[0]!r}: {result.model} gives {', '.join(tensors)}",
            )
        chosen = [(o.name, _binary(o, binary_default)) for o in wanted]
    outputs, blobs = [], []
    for name, binary in chosen:
        array = tensors[name]
        datatype = v2_datatype(array)
        output = V2OutputTensor(name, datatype, list(array.shape))
        if binary:
            blob = _encode(array, datatype)
            output.parameters = V2BinarySize(len(blob))
            blobs.append(blob)
        else:
            output.data = array.reshape(-1).tolist()
        outputs.append(output)
    body = msgspec.json.encode(
        V2InferResponse(
            model_name=result.model,
            model_version=str(result.version),
            id=request_body.id or record_id,
            parameters=V2ResponseParameters(result.model_id, result.revision),
            outputs=outputs,
        )
    )
    headers = {"X-Mreg-Model-Id": result.model_id}
    if not blobs:
        return Response(body, media_type=JSON, headers=headers)
    headers[HEADER_LENGTH] = str(len(body))
    return Response(body + b"".join(blobs), media_type=OCTET_STREAM, headers=headers)
