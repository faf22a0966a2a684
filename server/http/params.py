"""Path and query parameter types, built once from the core's name patterns (registry.names)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

import registry as core
from registry.names import MODEL_NAME_RE, TAG_RE, VERSION_ID_RE

MODEL = MODEL_NAME_RE.pattern
TAG = TAG_RE.pattern
VERSION_ID = VERSION_ID_RE.pattern
CURSOR_PATTERN = "^(?:[0-9a-f]{2})*$"

# Reads: any name a reference may hold (a model that does not exist is a 404, not a 400).
ModelName = Annotated[str, PathParameter(pattern=f"^{MODEL}$", description="A model name")]
RefText = Annotated[
    str,
    PathParameter(
        pattern=core.REF_PATTERN,
        description="model, model:tag (a pointer, latest or v<n>) or a version id mv_<hex>",
    ),
]
VersionNumber = Annotated[int, PathParameter(description="The version number")]

# Writes: only what the core accepts for a new model or pointer.
WritableModelName = Annotated[
    str, PathParameter(pattern=core.MODEL_PATTERN, description="The model's name", max_length=64)
]
PointerTag = Annotated[
    str,
    PathParameter(
        pattern=core.TAG_PATTERN,
        description="The pointer's tag (not latest or v<n>)",
        max_length=128,
    ),
]
BRANCH_DOC = (
    "Commit on this new branch (for a pull request) instead of the served branch;"
    " the served revision does not change"
)
Branch = Annotated[
    str | None,
    QueryParameter(
        description=BRANCH_DOC, pattern=core.BRANCH_PATTERN, min_length=1, max_length=200
    ),
]

# The pins of an invoke.
ModelIdQuery = Annotated[
    str | None,
    QueryParameter(
        name="modelId", pattern=f"^{VERSION_ID}$", description="Pin a version id (mv_...)"
    ),
]
VersionQuery = Annotated[int | None, QueryParameter(ge=1, description="Pin version n")]
PointerQuery = Annotated[
    str | None,
    QueryParameter(pattern=f"^{TAG}$", description="Use a pointer (tag, latest or v<n>)"),
]

# /v2: documented, and checked by its handlers (whose messages say what to send instead).
V2RefPath = Annotated[
    str,
    PathParameter(
        description="A model name, model:tag (a pointer, latest or v<n>) or a version id mv_<hex>",
        schema_extra={"pattern": core.REF_PATTERN},
    ),
]
V2ModelPath = Annotated[
    str,
    PathParameter(
        description="A model name", schema_extra={"pattern": f"^(?!{VERSION_ID}$){MODEL}$"}
    ),
]
V2VersionPath = Annotated[
    str,
    PathParameter(
        description="A version number, a pointer (prod, latest, v<n>) or a version id mv_<hex>",
        schema_extra={"pattern": f"^{TAG}$"},
    ),
]
# Absent from `/models/{name}` paths, given on `/models/{name}/versions/{version}` ones (the
# OpenAPI document states its pattern there: server.protocols.v2.openapi).
V2OptionalVersion = Annotated[str | None, PathParameter()]
