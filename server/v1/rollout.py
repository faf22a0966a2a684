"""Progressive delivery by pointer over HTTP: promote a canary, roll a pointer back, and the
report of a pointer's shadow traffic.

A canary is the pointer write with a weight (`PUT .../pointers/{tag}` with
`{"target": "v4", "weight": 10}`, server/v1/pointers.py). Promote and
rollback call the core's `Registry.promote` and `Registry.rollback`, so the
protected-pointer and promotion rules are the CLI's; like every HTTP write a
protected pointer moves only on a `?branch=`.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post

from registry import PointerNotFoundError, Registry, RegistryError, Resolution, parse_ref
from server.http.auth import Seen, SeenModel
from server.http.errors import documented
from server.http.openapi import STRICT, json_response
from server.http.params import Branch, PointerTag, WritableModelName
from server.runtime import visibility
from server.v1.pointers import write_pointer
from server.v1.writes.bodies import PointerPromote, PointerWritten
from server.v1.writes.writer import WRITER, WRITES, WriterDep


class RolloutController(Controller):
    """Promote and roll back with the write scope; the shadow report for anyone who sees the model."""

    path = "/v1/models/{model:str}/pointers/{tag:str}"
    dependencies = WRITER

    @post(
        "/promote",
        summary="Give one arm of a weighted pointer all the traffic (default: the newest arm)",
        opt={"expects": 'an optional JSON body {"target": "v4"} naming the arm'},
        **WRITES,
    )
    async def promote(
        self,
        writer: WriterDep,
        model: WritableModelName,
        tag: PointerTag,
        data: Annotated[PointerPromote | None, STRICT] = None,
        branch: Branch = None,
    ) -> PointerWritten:
        target = data.target if data is not None else None
        return await write_pointer(writer, model, tag, branch, Registry.promote, target)

    @post(
        "/rollback",
        summary="Restore the pointer as it was before its last change (one commit)",
        **WRITES,
    )
    async def rollback(
        self, writer: WriterDep, model: WritableModelName, tag: PointerTag, branch: Branch = None
    ) -> PointerWritten:
        return await write_pointer(writer, model, tag, branch, Registry.rollback)

    @get(
        "/shadow",
        summary="How the pointer's shadow compares with it on real calls (kept in memory)",
        **documented("pointers", 400, 401, 404),
    )
    async def shadow(self, seen: SeenModel, tag: PointerTag) -> Response[Any]:
        return json_response(shadow_report(seen, tag))


def shadow_report(seen: Seen, tag: str) -> dict[str, Any]:
    """The shadow report of pointer `tag` of the seen model (also on the web page)."""
    served, model, caller = seen.served, seen.model.name, seen.caller
    if tag not in {p.tag for p in served.pointers[model]}:
        raise PointerNotFoundError(f"pointer {model}:{tag} not found", ref=f"{model}:{tag}")
    resolution: Resolution | None
    try:
        resolution = visibility.resolve_ref(served, parse_ref(f"{model}:{tag}"), caller)
    except RegistryError:
        resolution = None
    report = seen.runtime.shadows.report(model, tag, resolution)
    if not caller.reader:
        # A private shadow version is not named to a caller who may not see it.
        shadow = resolution.shadow if resolution is not None else None
        version = shadow.version if shadow is not None else None
        shown = version is not None and caller.sees_version(seen.model, version)
        if not shown:
            report["shadow"] = None
        compared = report["compared_with"]
        if compared is not None and not (shown and compared["id"] == report["shadow"]["id"]):
            report["compared_with"], report["recent"] = None, []
    return report
