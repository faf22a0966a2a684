"""What the V2 routes' OpenAPI says that Litestar cannot infer: the hand-read infer body, the
binary response, the protocol's error shape, and each path's own name parameter."""

from __future__ import annotations

from dataclasses import dataclass, replace

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)

from server.http.errors import STATUS_MEANINGS, error_specs
from server.http.openapi import JSON
from server.http.params import MODEL, TAG, VERSION_ID
from server.protocols.v2.types import DTYPES, HEADER_LENGTH, V2Error, V2InferResponse

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


# On the `/versions/{version}` path, `{name}` is a model name only (the version comes apart).
MODEL_DOC = "A model name"
VERSION_DOC = "A version number, a pointer (prod, latest, v<n>) or a version id mv_<hex>"
MODEL_NAME = Schema(
    type=OpenAPIType.STRING, pattern=f"^(?!{VERSION_ID}$){MODEL}$", description=MODEL_DOC
)
VERSION = Schema(type=OpenAPIType.STRING, pattern=f"^{TAG}$", description=VERSION_DOC)
# The operation ids the versioned paths had when each had a handler of its own.
VERSIONED_IDS = {
    "ModelMetadata": "VersionMetadata",
    "ModelReady": "VersionReady",
    "Infer": "VersionInfer",
}


@dataclass
class V2Operation(Operation):
    """One handler serves both paths of an operation: each path documents its own parameters."""

    def __post_init__(self) -> None:
        given = [p for p in self.parameters or [] if isinstance(p, Parameter)]
        versioned = any(p.name == "version" and p.param_in == "path" for p in given)
        kept: list[Parameter | Reference] = []
        for p in self.parameters or []:
            if not isinstance(p, Parameter):
                kept.append(p)
            elif p.name == "version":
                if versioned:  # elsewhere `version` is no parameter at all
                    kept.append(replace(p, schema=VERSION, description=VERSION_DOC))
            elif p.name == "name" and versioned:
                kept.append(replace(p, schema=MODEL_NAME, description=MODEL_DOC))
            else:
                kept.append(p)
        self.parameters = kept or None
        if versioned and self.operation_id:
            for mine, theirs in VERSIONED_IDS.items():
                if self.operation_id.endswith(mine):
                    self.operation_id = self.operation_id.removesuffix(mine) + theirs
                    break


@dataclass
class InferOperation(V2Operation):
    """The infer operation: its JSON body, and the binary form of its response.

    The body is read by hand (the binary extension appends raw tensors to the JSON), so the
    schema of the JSON is written here.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
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
