"""`/v1/models`: models a page at a time and one model; create, patch, archive, restore, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi.spec import Operation
from litestar.params import FromQuery, QueryParameter

from server.http.auth import Caller, RuntimeDep, SeenModel
from server.http.errors import documented
from server.http.openapi import STRICT, json_response
from server.http.options import allowed_methods
from server.http.params import CURSOR_PATTERN, Branch, WritableModelName
from server.runtime.errors import BadRequest
from server.runtime.views import model_dict
from server.v1.schemas import ModelDetail, ModelPage
from server.v1.writes.bodies import ModelCreate, ModelDeleted, ModelPatch, ModelWritten
from server.v1.writes.writer import CREATES, WRITER, WRITES, WriterDep


def decode_cursor(cursor: str) -> str:
    """The name a page starts after. Any cursor of the documented pattern is a valid position."""
    try:
        return bytes.fromhex(cursor).decode("utf-8", "replace")
    except ValueError:
        raise BadRequest("invalid cursor: pass next_cursor from a previous page") from None


LIFECYCLE = {
    "Archive": "Archive a model: hidden and not served, until restored",
    "Restore": "Restore an archived model",
}


@dataclass
class LifecycleOperation(Operation):
    """One handler archives and restores; each path keeps its own summary and operation id."""

    def __post_init__(self) -> None:
        for verb, summary in LIFECYCLE.items():
            if (self.operation_id or "").startswith(f"V1Models{verb}"):
                self.operation_id, self.summary = f"V1Models{verb}{verb}Model", summary


class ModelsController(Controller):
    """Models: reads for anyone who may see them; writes (one commit each) with the write scope."""

    path = "/v1/models"
    dependencies = WRITER
    options = allowed_methods("/", "/{model:str}")

    @get(
        "/",
        summary="Models, a page at a time (opaque cursor) with filters",
        **documented("models", 400, 401),
    )
    async def list_models(
        self,
        runtime: RuntimeDep,
        caller: Caller,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
        cursor: Annotated[
            str | None,
            QueryParameter(pattern=CURSOR_PATTERN, description="next_cursor of the previous page"),
        ] = None,
        archived: FromQuery[bool | None] = None,
        used: FromQuery[bool | None] = None,
        library: FromQuery[str | None] = None,
        project: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
    ) -> Response[ModelPage]:
        served = runtime.served
        after = decode_cursor(cursor) if cursor else None
        last_used = runtime.usage.last_used
        # Only the models this page looks at are read (the snapshot pages by name).
        page = await anyio.to_thread.run_sync(
            lambda: served.snapshot.models_page(
                limit=limit,
                after=after,
                archived=bool(archived),
                library=library,
                project=project,
                q=q,
                keep=lambda m: caller.sees(m) and (used is None or (m.name in last_used) == used),
            )
        )
        summaries = (
            await anyio.to_thread.run_sync(
                served.snapshot.version_summaries, [m.name for m in page.models]
            )
            if caller.reader
            else {}
        )
        rows = []
        for m in page.models:
            s = summaries.get(m.name)
            listed = (
                None
                if s is None
                else (s.count, None if s.latest is None else (s.latest, s.latest_id or ""))
            )
            rows.append(model_dict(runtime, served, m, full=False, viewer=caller, summary=listed))
        return json_response(
            {"models": rows, "next_cursor": page.next_cursor, "revision": served.revision}
        )

    @get(
        "/{model:str}",
        summary="One model: fields, versions, pointers, last use",
        **documented("models", 400, 401, 404),
    )
    async def show_model(self, seen: SeenModel) -> Response[ModelDetail]:
        info = model_dict(seen.runtime, seen.served, seen.model, full=True, viewer=seen.caller)
        return json_response(info)

    @post(
        "/",
        summary="Create a model (one commit)",
        opt={"expects": 'a JSON body {"name": "iris", "library": "sklearn", ...}'},
        **CREATES,
    )
    async def create_model(
        self, writer: WriterDep, data: Annotated[ModelCreate, STRICT], branch: Branch = None
    ) -> ModelWritten:
        fields = msgspec.structs.asdict(data)
        name = fields.pop("name")
        value, info = await writer.commit(
            name, branch, lambda reg, br: reg.create_model(name, branch=br, **fields)
        )
        return ModelWritten(value.model_dump(mode="json"), info)

    @patch(
        "/{model:str}",
        summary="Patch model-level fields (labels and metadata merge; null clears)",
        opt={"expects": 'a JSON body of model fields, e.g. {"description": "...", "labels": {}}'},
        **WRITES,
    )
    async def update_model(
        self,
        writer: WriterDep,
        model: WritableModelName,
        data: Annotated[ModelPatch, STRICT],
        branch: Branch = None,
    ) -> ModelWritten:
        given = {
            k: v
            for k, v in msgspec.structs.asdict(data).items()
            if v is not msgspec.UNSET and k != "remove_labels"
        }
        if given.get("serving") is not None:
            given["serving"] = msgspec.to_builtins(given["serving"])
        if not given and not data.remove_labels:
            value, info = await writer.unchanged(lambda reg: reg.snapshot("HEAD").model(model))
        else:
            value, info = await writer.commit(
                model,
                branch,
                lambda reg, br: reg.update_model(
                    model, remove_labels=data.remove_labels, branch=br, **given
                ),
            )
        return ModelWritten(value.model_dump(mode="json"), info)

    @post(
        ["/{model:str}/archive", "/{model:str}/restore"],
        operation_class=LifecycleOperation,
        **WRITES,
    )
    async def archive_or_restore(
        self,
        request: Request[Any, Any, Any],
        writer: WriterDep,
        model: WritableModelName,
        branch: Branch = None,
    ) -> ModelWritten:
        verb = request.url.path.rstrip("/").rpartition("/")[2]  # archive or restore
        value, info = await writer.commit(
            model, branch, lambda reg, br: getattr(reg, f"{verb}_model")(model, branch=br)
        )
        return ModelWritten(value.model_dump(mode="json"), info)

    @delete(
        "/{model:str}",
        summary="Delete a model for good: its manifests, pointers and .dvc files"
        " (git history keeps them)",
        **WRITES,
    )
    async def delete_model(
        self, writer: WriterDep, model: WritableModelName, branch: Branch = None
    ) -> ModelDeleted:
        value, info = await writer.commit(
            model, branch, lambda reg, br: reg.delete_model(model, branch=br)
        )
        return ModelDeleted(model, list(value), info)
