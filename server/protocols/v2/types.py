"""The Open Inference Protocol's messages (KServe V2 REST) as msgspec structs, and its datatypes."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

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
    route_key: str | None = None  # a weighted pointer's arm is sticky per key (mreg)


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
