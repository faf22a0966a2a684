"""The OpenAPI document: its config, and the schemas Litestar cannot infer from a handler.

Everything here is Litestar's public API and msgspec's own JSON Schema
(`msgspec.json.schema_components`): no private Litestar modules.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Schema,
    SecurityScheme,
)
from litestar.params import Body

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"

# Errors are documented per route (server.http.errors.errors); tokens as an HTTP bearer scheme.
OPENAPI = OpenAPIConfig(
    title="mreg",
    version="1",
    path="/schema",
    # A token is optional: public models need none; without configured tokens nothing needs one.
    security=[{}, {"bearer": []}],
    components=Components(
        security_schemes={
            "bearer": SecurityScheme(
                type="http",
                scheme="bearer",
                description="A token from the server's tokens file; public models need none",
            )
        }
    ),
)

# A body that refuses unknown keys says so (`additionalProperties: false`).
STRICT = Body(schema_extra={"additional_properties": False})
# The invoke bodies take exactly one of "data" and "inputs", and nothing else.
ONE_OF_DATA_OR_INPUTS = Body(
    schema_extra={
        "one_of": [Schema(required=["data"]), Schema(required=["inputs"])],
        "additional_properties": False,
    }
)


def bytes_body() -> OpenAPIMediaType:
    """A body of raw bytes (an artifact), at least one."""
    return OpenAPIMediaType(
        schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, min_length=1)
    )


def struct_body(struct: type[msgspec.Struct]) -> OpenAPIMediaType:
    """A JSON body of `struct`, its schema as msgspec writes it (for a body read by hand)."""
    _, components = msgspec.json.schema_components([struct])
    return OpenAPIMediaType(schema=components[struct.__name__])


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response[Any]:
    """`body` encoded by msgspec (faster than Litestar's serializer for plain dicts)."""
    return Response(msgspec.json.encode(body), status_code=status, media_type=JSON, headers=headers)
