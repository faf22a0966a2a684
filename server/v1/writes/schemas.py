"""OpenAPI schemas Litestar cannot derive from a body struct: a nested struct that refuses
unknown keys (`forbid_unknown_fields`) is documented with `additionalProperties: false`, so a
client (or schemathesis) never sends a key the server refuses."""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from server.v1.writes.bodies import ServingPatch


def _nullable(schema: Schema) -> Schema:
    return Schema(one_of=[schema, Schema(type=OpenAPIType.NULL)])


class ServingSchema(OpenAPISchemaPlugin):
    """`ServingPatch`, the `serving:` block of a model PATCH, with its bounds and no other key."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is ServingPatch

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        return Schema(
            type=OpenAPIType.OBJECT,
            title="ServingPatch",
            description=ServingPatch.__doc__,
            properties={
                "max_batch_size": _nullable(
                    Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=4096)
                ),
                "max_batch_delay_ms": _nullable(
                    Schema(type=OpenAPIType.NUMBER, minimum=0, maximum=1000)
                ),
            },
            additional_properties=False,
        )


SCHEMA_PLUGINS = [ServingSchema()]
