"""`/v1/models/{model}/versions`: every version and one; register the next one (JSON fields, or
the artifact's bytes), patch one, upload an untrained one's artifact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.params import FromPath, QueryParameter

from registry import FILENAME_PATTERN, FORMAT_FILES, ConflictError, Registry, Status, WriteResult
from server.http.auth import SeenModel
from server.http.errors import documented, errors
from server.http.openapi import OCTET_STREAM, STRICT, json_response
from server.http.options import allowed_methods
from server.http.params import Branch, VersionNumber, WritableModelName
from server.runtime import visibility
from server.runtime.errors import ArtifactRequired
from server.v1.schemas import ModelVersion, VersionList
from server.v1.writes.bodies import Format, VersionPatch, VersionWritten
from server.v1.writes.upload import (
    CreateVersionOperation,
    UploadOperation,
    json_fields,
    md5_header,
    received,
)
from server.v1.writes.writer import CREATES_WITH_UPLOAD, UPLOADS, WRITER, WRITES, WriterDep


class VersionsController(Controller):
    """A model's versions: reads for anyone who may see the model; writes with the write scope."""

    path = "/v1/models/{model:str}/versions"
    dependencies = WRITER
    options = allowed_methods("/", "/{n:int}")

    @get(
        "/",
        summary="Every version of a model",
        **documented("models", 400, 401, 404),
    )
    async def list_versions(self, seen: SeenModel) -> Response[VersionList]:
        shown = visibility.versions(seen.served, seen.model, seen.caller)
        versions = [v.model_dump(mode="json") for v in shown]
        return json_response({"model": seen.model.name, "versions": versions})

    @get("/{n:int}", summary="One version", tags=["models"], responses=errors(400, 401, 404))
    async def show_version(self, seen: SeenModel, n: VersionNumber) -> Response[ModelVersion]:
        version = visibility.version(seen.served, seen.model, n, seen.caller)
        return json_response({"model": seen.model.name, **version.model_dump(mode="json")})

    @post(
        "/",
        summary="Register the next version: untrained with its *_info (JSON), or trained with its"
        " artifact (application/octet-stream)",
        operation_class=CreateVersionOperation,
        request_max_body_size=None,  # an artifact: bounded by max_upload; JSON: by max_body,
        **CREATES_WITH_UPLOAD,
    )
    async def create_version(
        self,
        request: Request[Any, Any, Any],
        writer: WriterDep,
        model: WritableModelName,
        filename: Annotated[
            str | None,
            QueryParameter(
                description="With an artifact body: its file name (default model.<format>)",
                pattern=FILENAME_PATTERN,
                max_length=120,
            ),
        ] = None,
        format: Annotated[
            Format | None,
            QueryParameter(
                description="With an artifact body: its format (default: from filename, else skops)"
            ),
        ] = None,
        content_md5: Annotated[
            str, md5_header("With an artifact body: its md5, base64 (RFC 1864) or 32 hex digits")
        ] = "",
        branch: Branch = None,
    ) -> VersionWritten:
        # One handler for both bodies, by necessity: Litestar routes on path and method only
        # (a second handler for POST on this path is refused when the app is built; another
        # path would change the URL), and a `data` parameter would have it read every body as
        # JSON before the handler runs, an artifact too (into memory). So the JSON fields are
        # decoded here (json_fields: the VersionCreate struct, the app's body limit) and the
        # bytes streamed to disk (received); CreateVersionOperation documents both bodies.
        if request.content_type[0] == OCTET_STREAM:
            name = filename or FORMAT_FILES[format or "skops"]
            settings = writer.settings
            async with received(request, writer.registry, name, content_md5, settings) as path:
                value, info = await writer.commit(
                    model,
                    branch,
                    lambda reg, br: reg.register(model, path, format=format, branch=br),
                    check=writer.trusted_format(format, name),
                )
        else:
            fields = msgspec.structs.asdict(await json_fields(request))
            value, info = await writer.commit(
                model,
                branch,
                lambda reg, br: reg.register(model, untrained=True, branch=br, **fields),
            )
        return VersionWritten(model, value.model_dump(mode="json"), info)

    @patch(
        "/{n:int}",
        summary="Patch version-level fields, or move the status forward (training, failed)",
        opt={
            "expects": 'a JSON body of version fields, e.g. {"notes": "..."} or {"status": "training"}'
        },
        **WRITES,
    )
    async def update_version(
        self,
        writer: WriterDep,
        model: WritableModelName,
        n: FromPath[int],
        data: Annotated[VersionPatch, STRICT],
        branch: Branch = None,
    ) -> VersionWritten:
        given = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        ref = f"{model}:v{n}"
        status = given.pop("status", None)
        deprecate = given.pop("deprecated", None)
        action: Callable[[Registry, str | None], WriteResult[Any]]
        if status is not None:
            if given or deprecate is not None:
                raise ConflictError(
                    "a status move is a write of its own: send 'status' alone, fields in another PATCH"
                )
            if status == Status.trained.value:
                raise ArtifactRequired(
                    f"{ref} becomes trained when its artifact is uploaded:"
                    f" PUT /v1/models/{model}/versions/{n}/artifact"
                )
            action = lambda reg, br: reg.set_status(ref, status, branch=br)  # noqa: E731
        elif not given and deprecate is None:
            value, info = await writer.unchanged(
                lambda reg: reg.snapshot("HEAD", models=[model]).version(model, n)
            )
            return VersionWritten(model, value.model_dump(mode="json"), info)
        else:
            action = lambda reg, br: reg.update_version(  # noqa: E731
                ref, deprecate=deprecate, branch=br, **given
            )
        value, info = await writer.commit(model, branch, action)
        return VersionWritten(model, value.model_dump(mode="json"), info)

    @put(
        "/{n:int}/artifact",
        summary="Upload a version's artifact: pushed to the DVC remote, the version becomes trained",
        operation_class=UploadOperation,
        request_max_body_size=None,  # bounded by the server's max_upload, checked while streaming,
        **UPLOADS,
    )
    async def upload_artifact(
        self,
        request: Request[Any, Any, Any],
        writer: WriterDep,
        model: WritableModelName,
        n: FromPath[int],
        filename: Annotated[
            str,
            QueryParameter(
                description="The artifact's file name; its suffix names the format",
                pattern=FILENAME_PATTERN,
                max_length=120,
            ),
        ],
        format: Annotated[
            Format | None, QueryParameter(description="The format, when the name does not say")
        ] = None,
        content_md5: Annotated[
            str, md5_header("md5 of the body: base64 of the digest (RFC 1864) or 32 hex digits")
        ] = "",
        branch: Branch = None,
    ) -> VersionWritten:
        ref = f"{model}:v{n}"
        # Refused early (before the bytes travel) when the version cannot take an artifact.
        await anyio.to_thread.run_sync(
            lambda: writer.registry.check_status(ref, "trained", artifact=True)
        )
        settings = writer.settings
        async with received(request, writer.registry, filename, content_md5, settings) as path:
            value, info = await writer.commit(
                model,
                branch,
                lambda r, br: r.set_status(ref, "trained", artifact=path, format=format, branch=br),
                check=writer.trusted_format(format, filename),
            )
        return VersionWritten(model, value.model_dump(mode="json"), info)
