"""The OpenAPI document: its config, and the schemas Litestar cannot infer from a handler.

Everything here is Litestar's public API and msgspec's own JSON Schema
(`msgspec.json.schema_components`): no private Litestar modules.
Swagger UI (`/schema/swagger`) loads its script and stylesheet from the
`swagger-ui-bundle-v2` package, served under `/schema/swagger-ui/`, so it
works without network access (Litestar's default loads them from a CDN).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    RapidocRenderPlugin,
    RedocRenderPlugin,
    StoplightRenderPlugin,
    SwaggerRenderPlugin,
    YamlRenderPlugin,
)
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Schema,
    SecurityScheme,
)
from litestar.params import Body
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"

SWAGGER_ASSETS = "/swagger-ui"  # under the schema's path


class LocalSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI whose assets (and favicon) come from this server, not from a CDN."""

    def __init__(self, base: str) -> None:
        assets = f"{base}{SWAGGER_ASSETS}"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(
                path=SWAGGER_ASSETS,
                directories=[str(swagger_ui_path)],
                include_in_schema=False,
                name="swagger-ui-assets",
            )
        )


# Errors are documented per route (server.http.errors.errors); tokens as an HTTP bearer scheme.
OPENAPI = OpenAPIConfig(
    title="mreg",
    version="1",
    path="/schema",
    # The pages Litestar serves by default (ReDoc at /schema), with Swagger UI's assets local.
    render_plugins=[
        RedocRenderPlugin(),
        LocalSwaggerRenderPlugin("/schema"),
        RapidocRenderPlugin(),
        StoplightRenderPlugin(),
        JsonRenderPlugin(),
        YamlRenderPlugin(),
    ],
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
