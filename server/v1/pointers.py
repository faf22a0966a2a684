"""Pointers and references: a model's pointers, every pointer, what a reference resolves to;
create or move a pointer, delete one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from litestar import Controller, Response, delete, get, put

from registry import Pointer, Registry, WriteResult, parse_ref
from server.http.auth import Caller, RuntimeDep, SeenModel
from server.http.errors import documented
from server.http.openapi import STRICT, json_response
from server.http.options import allowed_methods
from server.http.params import Branch, PointerTag, RefText, WritableModelName
from server.runtime import visibility
from server.runtime.views import pointer_dict
from server.v1.schemas import PointerList, Resolved
from server.v1.writes.bodies import PointerSet, PointerWritten
from server.v1.writes.writer import WRITER, WRITES, Writer, WriterDep

PointerWrite = Callable[..., WriteResult[Pointer]]


async def write_pointer(
    writer: Writer,
    model: str,
    tag: str,
    branch: str | None,
    write: PointerWrite,
    *args: Any,
    **options: Any,
) -> PointerWritten:
    """One commit of `write` (the core's `Registry.point`, `delete_pointer`, `promote` or
    `rollback`) on `model:tag`, unreviewed (see PointersController), and the pointer it leaves."""
    ref = f"{model}:{tag}"
    value, info = await writer.commit(
        model, branch, lambda reg, br: write(reg, ref, *args, branch=br, unreviewed=True, **options)
    )
    return PointerWritten(value.to_dict(), info)


class PointersController(Controller):
    """Pointers: reads for anyone who may see the model; writes with the write scope.

    A protected pointer moves only on a branch: the rule is the core's
    (`ProtectedPointerError`); an HTTP write lands on the served branch without
    review, and says so with `unreviewed=True`.
    """

    path = "/v1"
    dependencies = WRITER
    options = allowed_methods("/models/{model:str}/pointers/{tag:str}")

    @get(
        "/models/{model:str}/pointers",
        summary="A model's pointers and where they resolve",
        **documented("pointers", 400, 401, 404),
    )
    async def model_pointers(self, seen: SeenModel) -> Response[PointerList]:
        pointers = seen.served.pointers[seen.model.name]
        return json_response(
            {"pointers": [pointer_dict(seen.served, p, seen.caller) for p in pointers]}
        )

    @get(
        "/pointers",
        summary="Every pointer of every model you may read",
        **documented("pointers", 401),
    )
    async def all_pointers(self, runtime: RuntimeDep, caller: Caller) -> Response[PointerList]:
        served = runtime.served
        # The models that have pointers (from the listing), not every model.
        holders = [n for n in served.snapshot.pointer_models() if n in served.models]
        out = [
            pointer_dict(served, p, caller)
            for name in holders
            if caller.sees(served.models[name])
            for p in served.pointers[name]
        ]
        return json_response({"pointers": out})

    @get(
        "/resolve/{ref:str}",
        summary="The version a reference resolves to",
        **documented("registry", 400, 401, 404, 409, 422),
    )
    async def resolve(
        self, runtime: RuntimeDep, caller: Caller, ref: RefText
    ) -> Response[Resolved]:
        served = runtime.served
        resolution = visibility.resolve_ref(served, parse_ref(ref), caller)
        return json_response({**resolution.to_dict(), "revision": served.revision})

    @put(
        "/models/{model:str}/pointers/{tag:str}",
        summary="Create or move a pointer (a protected one only on a branch)",
        opt={
            "expects": 'a JSON body {"target": "v3"} (v<n>, another tag or a version id),'
            ' with "weight": 10 for a canary'
        },
        **WRITES,
    )
    async def set_pointer(
        self,
        writer: WriterDep,
        model: WritableModelName,
        tag: PointerTag,
        data: Annotated[PointerSet, STRICT],
        branch: Branch = None,
    ) -> PointerWritten:
        return await write_pointer(
            writer,
            model,
            tag,
            branch,
            Registry.point,
            data.target,
            weight=data.weight,
            description=data.description,
        )

    @delete(
        "/models/{model:str}/pointers/{tag:str}",
        summary="Delete a pointer (a protected one only on a branch)",
        **WRITES,
    )
    async def delete_pointer(
        self, writer: WriterDep, model: WritableModelName, tag: PointerTag, branch: Branch = None
    ) -> PointerWritten:
        return await write_pointer(writer, model, tag, branch, Registry.delete_pointer)
