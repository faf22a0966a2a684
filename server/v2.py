"""The Open Inference Protocol (KServe V2 REST) over mreg's invoke: `/v2/...` routes.

`{name}` is a model name or any reference to one: `iris`, `iris:prod`,
`iris:v3`, `iris:latest` or a version id; `/versions/{v}` pins a version
number, a pointer or a version id instead (not both). Inference runs through
`Server.invoke`, so it shares the model pool, auth, usage recording and metrics
with `POST /v1/models/{model}/invoke`.

Inputs: one tensor of shape `[batch, ...]` (its rows are the model's inputs),
or one tensor per feature named as the version's `input_info.feature_names`,
each of shape `[batch]` or `[batch, 1]`. Outputs: `label` and `confidence`
for a classifier with labels, else `output`. The binary tensor data extension
(the default of `tritonclient`) works both ways. Errors are the protocol's
`{"error": "message"}`, with mreg's error code beside it in `"code"`: 400 for
a body that is not an inference request (the OpenAPI document has its
schema), 422 for tensors that do not fit (as `/v1` answers `invalid_input`).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Annotated, Any

import msgspec
import numpy as np
from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.params import PathParameter

import registry as core
from registry import InvalidRefError, RegistryError, VersionManifest, parse_ref
from server import visibility
from server.auth import Viewer
from server.errors import (
    STATUS_MEANINGS,
    ApiError,
    error_specs,
    http_error,
    internal_error,
    registry_error,
    too_deep,
)
from server.routes import _pins, _ref_text, media_type
from server.service import JSON, InvokeResponse, Server
from server.state import LATEST, Pin

HEADER_LENGTH = "Inference-Header-Content-Length"
# V2 datatypes and the NumPy types of their binary (little-endian) form.
DTYPES: dict[str, Any] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
MAX_DIMENSIONS = 32  # NumPy's own limit is 64; no model of ours takes more than a few
SCHEMA_TYPES = {"number": "FP32", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}


# JSON's 4.0 is the integer 4 (so says JSON Schema): integers are read as int | float, then checked.
# The parameters mreg reads; others (Triton's priority, timeout, ...) are ignored.
class V2TensorParameters(msgspec.Struct):
    binary_data_size: int | float | None = None

    def __post_init__(self) -> None:
        size = self.binary_data_size
        if size is not None and (size < 0 or (isinstance(size, float) and not size.is_integer())):
            raise ValueError(f"binary_data_size must be a whole number of bytes, not {size}")


class V2Tensor(msgspec.Struct):
    name: str
    shape: list[int | float]  # in JSON, 4.0 is a whole number as much as 4
    datatype: str
    data: Any = None
    parameters: V2TensorParameters | None = None

    def __post_init__(self) -> None:
        if any(isinstance(d, float) and not d.is_integer() for d in self.shape):
            raise ValueError(f"shape {self.shape} has a dimension that is not a whole number")


class V2OutputParameters(msgspec.Struct):
    binary_data: bool | None = None


class V2RequestedOutput(msgspec.Struct):
    name: str
    parameters: V2OutputParameters | None = None


class V2RequestParameters(msgspec.Struct):
    binary_data_output: bool | None = None


class V2InferRequest(msgspec.Struct):
    inputs: list[V2Tensor]
    id: str | None = None
    parameters: V2RequestParameters | None = None
    outputs: list[V2RequestedOutput] | None = None


class V2ServerMetadata(msgspec.Struct):
    name: str
    version: str
    extensions: list[str]


class V2Live(msgspec.Struct):
    live: bool


class V2Ready(msgspec.Struct):
    ready: bool


class V2TensorMetadata(msgspec.Struct):
    name: str
    datatype: str
    shape: list[int]


class V2ModelParameters(msgspec.Struct):
    version: str
    model_id: str
    revision: str
    feature_names: list[str]


class V2ModelMetadata(msgspec.Struct):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]
    parameters: V2ModelParameters


class V2ModelReady(msgspec.Struct):
    name: str
    version: str
    ready: bool


class V2BinarySize(msgspec.Struct):
    binary_data_size: int


class V2OutputTensor(msgspec.Struct):
    """An output: its values in `data`, or (binary extension) their size after the JSON header."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | msgspec.UnsetType = msgspec.UNSET
    parameters: V2BinarySize | msgspec.UnsetType = msgspec.UNSET


class V2ResponseParameters(msgspec.Struct):
    model_id: str
    revision: str


class V2InferResponse(msgspec.Struct):
    model_name: str
    model_version: str
    id: str
    parameters: V2ResponseParameters
    outputs: list[V2OutputTensor]


class V2Error(msgspec.Struct):
    """The protocol's error shape `{"error": message}`, with mreg's error code beside it."""

    error: str
    code: str


# -- names and versions ---------------------------------------------------------


def _target(server: Server, name: str, version: str | None, viewer: Viewer) -> tuple[str, Pin]:
    """The model and the version pin that `{name}` and `/versions/{version}` name."""
    ref = parse_ref(name)
    if ref.version_id is not None:
        if version is not None:
            raise ApiError(400, "bad_request", f"{name} is a version id: give no /versions/")
        # The id of a version the viewer may not see is a missing id (never its model's name).
        model = visibility.owner(server.served, ref.version_id, viewer)
        return model, Pin("model_id", ref.version_id)
    assert ref.model is not None
    if ref.tag and version is not None:
        raise ApiError(
            400,
            "bad_request",
            f"{name!r} already names a version: give either MODEL:TAG or /versions/{version}",
        )
    if version is not None and not core.names.TAG_RE.fullmatch(version):
        raise InvalidRefError(
            f"invalid version {version!r}: expected a number, a pointer or a version id",
            ref=version,
        )
    tag = ref.tag or version
    if not tag:
        return ref.model, LATEST
    if tag.isdigit():
        return ref.model, Pin("version", str(int(tag)))
    if core.names.VERSION_ID_RE.fullmatch(tag):
        return ref.model, Pin("model_id", tag)
    # Anything else is a pointer name (`mv_x` too: a pointer may be called that), else not found.
    return ref.model, _pins(None, None, tag)[0]


def _readable(
    server: Server, request: Request[Any, Any, Any], name: str, version: str | None
) -> tuple[str, VersionManifest]:
    served = server.served
    viewer = server.auth.viewer(request.headers.get("authorization"))
    model, pin = _target(server, name, version, viewer)
    manifest = visibility.model(served, model, viewer)
    server.auth.check(viewer, "read", manifest)
    return model, visibility.resolve_pin(served, model, pin, viewer).version


# -- metadata ---------------------------------------------------------------------


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


def _feature_names(version: VersionManifest) -> list[str]:
    names = version.input_info.get("feature_names") or version.input_info.get("features")
    return [str(n) for n in names] if isinstance(names, list) else []


# -- tensors ----------------------------------------------------------------------


def _decode_bytes(raw: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ApiError(422, "invalid_input", "BYTES tensor data ends inside a length prefix")
        (size,) = struct.unpack_from("<I", raw, offset)
        out.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return out


def _input_array(tensor: V2Tensor, binary: memoryview, offset: int) -> tuple[np.ndarray, int]:
    """The tensor as an array of its shape, and the offset of the next binary tensor."""
    dtype = DTYPES.get(tensor.datatype)
    if dtype is None:
        raise ApiError(
            400,
            "invalid_input",
            f"input {tensor.name!r}: unsupported datatype {tensor.datatype!r}"
            f" (expected one of {', '.join(DTYPES)})",
        )
    shape = [int(d) for d in tensor.shape]  # whole numbers (V2Tensor checks)
    if any(d < 0 for d in shape):
        raise ApiError(400, "invalid_input", f"input {tensor.name!r}: negative dimension in shape")
    if len(shape) > MAX_DIMENSIONS:
        raise ApiError(
            422,
            "invalid_input",
            f"input {tensor.name!r}: shape has {len(shape)} dimensions, at most {MAX_DIMENSIONS}",
        )
    given = tensor.parameters.binary_data_size if tensor.parameters else None
    if given is not None:
        size = int(given)
        if offset + size > len(binary):
            raise ApiError(
                422,
                "invalid_input",
                f"input {tensor.name!r}: binary_data_size {size} overruns the request body",
            )
        raw = bytes(binary[offset : offset + size])
        offset += size
        if tensor.datatype == "BYTES":
            flat = np.array(_decode_bytes(raw) or [], dtype=object)
        elif size % dtype.itemsize:
            raise ApiError(
                422,
                "invalid_input",
                f"input {tensor.name!r}: {size} bytes is not a whole number of {tensor.datatype}",
            )
        else:
            flat = np.frombuffer(raw, dtype=dtype)
    elif tensor.data is None:
        raise ApiError(422, "invalid_input", f"input {tensor.name!r} has no data")
    else:
        try:
            flat = np.asarray(tensor.data, dtype=dtype).reshape(-1)
        except (ValueError, TypeError, OverflowError) as exc:  # Overflow: 500 as INT8
            raise ApiError(
                422, "invalid_input", f"input {tensor.name!r}: data is not {tensor.datatype}: {exc}"
            ) from None
    if flat.size != math.prod(shape):
        raise ApiError(
            422,
            "invalid_input",
            f"input {tensor.name!r}: {flat.size} values do not fill shape {shape}",
        )
    if tensor.datatype == "BYTES":
        try:
            texts = [v.decode() if isinstance(v, bytes) else v for v in flat]
        except UnicodeDecodeError:
            raise ApiError(
                422, "invalid_input", f"input {tensor.name!r}: BYTES values must be UTF-8 text"
            ) from None
        flat = np.array(texts, dtype=object)
    try:
        return flat.reshape(shape), offset
    except ValueError:  # [9223372036854775807, 0]: no values, but more than an array can hold
        raise ApiError(
            422, "invalid_input", f"input {tensor.name!r}: shape {shape} is too large"
        ) from None


def _rows(
    server: Server,
    model: str,
    pin: Pin,
    authorization: str | None,
    arrays: dict[str, np.ndarray],
) -> list[Any]:
    """The model's inputs (one per row of the batch) from the request's tensors."""
    if len(arrays) == 1:
        ((name, array),) = arrays.items()
        if array.ndim == 0:
            raise ApiError(
                422, "invalid_input", f"input {name!r}: shape needs a batch dimension first"
            )
        return list(array.tolist())
    served = server.served
    viewer = server.auth.viewer(authorization)
    server.auth.check(viewer, "invoke", visibility.model(served, model, viewer))
    features = _feature_names(visibility.resolve_pin(served, model, pin, viewer).version)
    if set(arrays) != set(features):
        expected = ", ".join(features) if features else "no feature_names in its input_info"
        raise ApiError(
            422,
            "invalid_input",
            f"several inputs must be one per feature of {model} ({expected});"
            " or send one tensor of shape [batch, features]",
        )
    columns = []
    for name in features:
        array = arrays[name]
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ApiError(
                422, "invalid_input", f"input {name!r}: a feature is shape [batch] or [batch, 1]"
            )
        columns.append(array)
    if len({len(c) for c in columns}) != 1:
        raise ApiError(422, "invalid_input", "the feature inputs differ in batch size")
    return list(np.stack(columns, axis=1).tolist())


def _output_tensors(outputs: list[Any]) -> dict[str, np.ndarray]:
    if outputs and all(isinstance(o, dict) and "label" in o for o in outputs):
        tensors = {"label": _array([o["label"] for o in outputs])}
        confidence = [o.get("confidence") for o in outputs]
        if None not in confidence:
            tensors["confidence"] = np.asarray(confidence, dtype=np.float64)
        return tensors
    return {"output": _array(outputs)}


def _array(values: list[Any]) -> np.ndarray:
    """Numbers as they are; anything else as text (BYTES), a non-string as its JSON."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged
        array = None
    if array is not None and array.dtype.kind in "biuf":
        return array
    texts = [v if isinstance(v, str) else msgspec.json.encode(v).decode() for v in values]
    return np.array(texts, dtype=object)


def _datatype(array: np.ndarray) -> str:
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


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


def _render(
    request_body: V2InferRequest, result: InvokeResponse, record_id: str
) -> Response[bytes]:
    tensors = _output_tensors(result.outputs)
    wanted = request_body.outputs
    parameters = request_body.parameters
    binary_default = bool(parameters and parameters.binary_data_output)
    if wanted is None:
        chosen = [(name, binary_default) for name in tensors]
    else:
        unknown = [o.name for o in wanted if o.name not in tensors]
        if unknown:
            raise ApiError(
                422,
                "invalid_input",
                f"unknown output {unknown[0]!r}: {result.model} gives {', '.join(tensors)}",
            )
        chosen = [(o.name, _binary(o, binary_default)) for o in wanted]
    outputs, blobs = [], []
    for name, binary in chosen:
        array = tensors[name]
        datatype = _datatype(array)
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
    return Response(body + b"".join(blobs), media_type="application/octet-stream", headers=headers)


# -- the OpenAPI document -----------------------------------------------------------

_MODEL = core.names.MODEL_NAME_RE.pattern
_TAG = core.names.TAG_RE.pattern
_ID = core.names.VERSION_ID_RE.pattern
# Documented, and checked by _target (whose messages say what to send instead).
RefPath = Annotated[
    str,
    PathParameter(
        description="A model name, model:tag (a pointer, latest or v<n>) or a version id mv_<hex>",
        schema_extra={"pattern": f"^(?:{_ID}|{_MODEL}(?::{_TAG})?)$"},
    ),
]
ModelPath = Annotated[
    str,
    PathParameter(
        description="A model name",
        schema_extra={"pattern": f"^(?!{_ID}$){_MODEL}$"},
    ),
]
VersionPath = Annotated[
    str,
    PathParameter(
        description="A version number, a pointer (prod, latest, v<n>) or a version id mv_<hex>",
        schema_extra={"pattern": f"^{_TAG}$"},
    ),
]

V2_MEANINGS = {
    **STATUS_MEANINGS,
    400: "Bad request: an invalid name or version, or a body that is not an inference request",
    422: "The inputs do not fit: data that does not fill its shape or datatype, tensors that"
    " are not the model's inputs, an unknown output, or the model rejected them",
}


def v2_errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The `responses=` of a /v2 route: each error status it may answer (500 always), V2 shape."""
    return error_specs(V2Error, V2_MEANINGS, statuses)


def _object(required: list[str], **properties: Schema) -> Schema:
    return Schema(type=OpenAPIType.OBJECT, required=required or None, properties={**properties})


def _nullable(schema: Schema) -> Schema:
    """What clients may also send as null (the server reads null as not given)."""
    return Schema(one_of=[schema, Schema(type=OpenAPIType.NULL)])


_BOOLEAN = Schema(type=OpenAPIType.BOOLEAN)
_TENSOR = _object(
    ["name", "shape", "datatype"],
    name=Schema(type=OpenAPIType.STRING),
    shape=Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.INTEGER, minimum=0)),
    datatype=Schema(type=OpenAPIType.STRING, enum=list(DTYPES)),
    data=Schema(description="The values in row-major order, flat or nested; none when binary"),
    parameters=_nullable(
        _object([], binary_data_size=_nullable(Schema(type=OpenAPIType.INTEGER, minimum=0)))
    ),
)
INFER_REQUEST = _object(
    ["inputs"],
    id=_nullable(Schema(type=OpenAPIType.STRING)),
    parameters=_nullable(_object([], binary_data_output=_nullable(_BOOLEAN))),
    inputs=Schema(type=OpenAPIType.ARRAY, items=_TENSOR, min_items=1),
    outputs=_nullable(
        Schema(
            type=OpenAPIType.ARRAY,
            items=_object(
                ["name"],
                name=Schema(type=OpenAPIType.STRING),
                parameters=_nullable(_object([], binary_data=_nullable(_BOOLEAN))),
            ),
        )
    ),
)
BINARY = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))


@dataclass
class InferOperation(Operation):
    """The infer operation: its JSON body, and the binary form of its response.

    The body is read by hand (the binary extension appends raw tensors to the JSON), so the
    schema of the JSON is written here.
    """

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={JSON: OpenAPIMediaType(schema=INFER_REQUEST)},
            required=True,
            description=(
                "An inference request. Binary tensor data extension: send the JSON, then the"
                f" tensors' bytes, with header {HEADER_LENGTH} giving the length of the JSON"
            ),
        )
        ok = self.responses["200"] if self.responses else None
        if ok is not None and not isinstance(ok, Reference) and ok.content is not None:
            # binary_data_output or an output's binary_data: JSON, then the tensors' bytes.
            ok.content["application/octet-stream"] = BINARY


METADATA = "Model metadata: inputs and outputs from the version's input_info and output_info"
READY = "Whether the version is servable (Open Inference Protocol)"
INFER = "Inference (Open Inference Protocol): the same path as /v1/models/{model}/invoke"
INFER_RESPONSES = {
    200: ResponseSpec(V2InferResponse, description="The outputs (JSON, or JSON then binary)"),
    **v2_errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
}


# JSON, or the binary extension's JSON-then-bytes: tritonclient's HTTP client sends no
# Content-Type, its asyncio client application/octet-stream. Never a form or text/plain.
INFER_MEDIA_TYPES = frozenset({None, JSON, "application/octet-stream"})


def infer_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: an inference body is JSON or the binary extension's, never what a web page's
    form or `text/plain` post sends cross-origin."""
    if media_type(connection) not in INFER_MEDIA_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            "expected an inference request (Content-Type: application/json,"
            " or application/octet-stream with the binary extension)",
        )


# -- routes -----------------------------------------------------------------------


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
async def ready(request: Request[Any, Any, Any]) -> V2Ready:
    server: Server = request.app.state.server
    if not server.ready:
        raise ApiError(503, "not_ready", "models are still loading")
    return V2Ready(ready=True)


@get(
    "/models/{name:str}",
    summary=METADATA,
    tags=["v2"],
    responses=v2_errors(400, 401, 403, 404, 409),
)
async def model_metadata(request: Request[Any, Any, Any], name: RefPath) -> V2ModelMetadata:
    return _metadata(request, name, None)


@get(
    "/models/{name:str}/versions/{version:str}",
    summary=METADATA,
    tags=["v2"],
    responses=v2_errors(400, 401, 403, 404, 409),
)
async def version_metadata(
    request: Request[Any, Any, Any], name: ModelPath, version: VersionPath
) -> V2ModelMetadata:
    return _metadata(request, name, version)


def _metadata(request: Request[Any, Any, Any], name: str, version: str | None) -> V2ModelMetadata:
    server: Server = request.app.state.server
    model, found = _readable(server, request, name, version)
    viewer = server.auth.viewer(request.headers.get("authorization"))
    manifest = server.served.model(model)
    seen = visibility.versions(server.served, manifest, viewer)
    artifact = found.artifact
    library = (artifact.library if artifact else None) or manifest.library or "unknown"
    return V2ModelMetadata(
        name=model,
        versions=[str(v.version) for v in seen if v.servable],
        platform=f"{library}_{artifact.format}" if artifact and artifact.format else library,
        inputs=input_metadata(found),
        outputs=output_metadata(found),
        parameters=V2ModelParameters(
            version=str(found.version),
            model_id=found.id,
            revision=server.served.revision,
            feature_names=_feature_names(found),
        ),
    )


@get(
    "/models/{name:str}/ready",
    summary=READY,
    tags=["v2"],
    responses=v2_errors(400, 401, 403, 404, 409, 503),
)
async def model_ready(request: Request[Any, Any, Any], name: RefPath) -> V2ModelReady:
    return _ready(request, name, None)


@get(
    "/models/{name:str}/versions/{version:str}/ready",
    summary=READY,
    tags=["v2"],
    responses=v2_errors(400, 401, 403, 404, 409, 503),
)
async def version_ready(
    request: Request[Any, Any, Any], name: ModelPath, version: VersionPath
) -> V2ModelReady:
    return _ready(request, name, version)


def _ready(request: Request[Any, Any, Any], name: str, version: str | None) -> V2ModelReady:
    server: Server = request.app.state.server
    model, found = _readable(server, request, name, version)
    if not server.ready:
        raise ApiError(503, "not_ready", "models are still loading")
    return V2ModelReady(name=model, version=str(found.version), ready=True)


@post(
    "/models/{name:str}/infer",
    status_code=200,
    summary=INFER,
    tags=["v2"],
    operation_class=InferOperation,
    guards=[infer_body],
    responses=INFER_RESPONSES,
)
async def infer(request: Request[Any, Any, Any], name: RefPath) -> Response[bytes]:
    return await _infer(request, name, None)


@post(
    "/models/{name:str}/versions/{version:str}/infer",
    status_code=200,
    summary=INFER,
    tags=["v2"],
    operation_class=InferOperation,
    guards=[infer_body],
    responses=INFER_RESPONSES,
)
async def version_infer(
    request: Request[Any, Any, Any], name: ModelPath, version: VersionPath
) -> Response[bytes]:
    return await _infer(request, name, version)


async def _infer(
    request: Request[Any, Any, Any], name: str, version: str | None
) -> Response[bytes]:
    server: Server = request.app.state.server
    # Who may call what comes first: an unknown or hidden model is a 404 whatever the body is.
    authorization = request.headers.get("authorization")
    viewer = server.auth.viewer(authorization)
    model, pin = _target(server, name, version, viewer)
    server.auth.check(viewer, "invoke", visibility.model(server.served, model, viewer))
    raw = await request.body()
    header_length = request.headers.get(HEADER_LENGTH)
    split = len(raw)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(raw):
            raise ApiError(400, "bad_request", f"invalid {HEADER_LENGTH}: {header_length!r}")
        split = int(header_length)
    try:
        body = msgspec.json.decode(raw[:split], type=V2InferRequest)
    except msgspec.DecodeError as exc:
        raise ApiError(
            400,
            "invalid_input",
            f"invalid inference request: {exc}; expected"
            ' {"inputs": [{"name", "shape", "datatype", "data"}]}',
        ) from None
    if not body.inputs:
        raise ApiError(400, "invalid_input", "the request has no inputs")
    binary, offset = memoryview(raw)[split:], 0
    arrays: dict[str, np.ndarray] = {}
    for tensor in body.inputs:
        if tensor.name in arrays:
            raise ApiError(422, "invalid_input", f"input {tensor.name!r} is given twice")
        arrays[tensor.name], offset = _input_array(tensor, binary, offset)
    rows = _rows(server, model, pin, authorization, arrays)
    result, record_id = await server.invoke(
        "invoke", model, pin, rows, viewer, _ref_text(model, pin)
    )
    return _render(body, result, record_id)


# -- errors: the protocol's {"error": message}, with mreg's code beside it ----------------


def _v2_shape(response: Response[Any]) -> Response[bytes]:
    """mreg's error response (server/errors.py decides status and text) in the V2 shape."""
    content = response.content
    if isinstance(content, bytes | str):
        content = msgspec.json.decode(content)
    error = content["error"]
    body = {"error": error["message"], "code": error["code"]}
    return Response(
        msgspec.json.encode(body),
        status_code=response.status_code,
        media_type=JSON,
        headers=dict(response.headers),
    )


def _registry_error(request: Request[Any, Any, Any], exc: RegistryError) -> Response[bytes]:
    return _v2_shape(registry_error(request, exc))


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return _v2_shape(http_error(request, exc))


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    return _v2_shape(too_deep(request, exc))


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    return _v2_shape(internal_error(request, exc))


V2_ROUTER = Router(
    path="/v2",
    route_handlers=[
        server_metadata,
        live,
        ready,
        model_metadata,
        version_metadata,
        model_ready,
        version_ready,
        infer,
        version_infer,
    ],
    exception_handlers={
        RegistryError: _registry_error,
        HTTPException: _http_error,
        RecursionError: _too_deep,  # else the app's handler answers in /v1's shape
        Exception: _internal_error,
    },
)
