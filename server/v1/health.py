"""The server itself: liveness, readiness, the revision served, reloads, metrics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post

from server.http.auth import Caller, RuntimeDep, requires
from server.http.errors import documented, errors
from server.http.metrics import scrape
from server.http.openapi import json_response
from server.runtime.errors import NotReady
from server.runtime.views import registry_dict
from server.v1.schemas import Ready, RegistryInfo, Reloaded


class HealthController(Controller):
    path = "/"

    @get("/healthz", summary="Liveness", tags=["server"], responses=errors())
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/readyz",
        summary="Readiness: the revision (and with --preload its models) is loaded",
        **documented("server", 503),
    )
    async def readyz(self, runtime: RuntimeDep) -> Response[Ready]:
        if not runtime.ready:
            raise NotReady()
        return json_response({"status": "ready", "revision": runtime.served.revision})

    @get(
        "/v1/registry",
        summary="The revision served, counts, and the last reload error",
        **documented("registry", 401),
    )
    async def registry_info(self, runtime: RuntimeDep, caller: Caller) -> Response[RegistryInfo]:
        return json_response(registry_dict(runtime, caller))

    @post(
        "/v1/admin/reload",
        status_code=200,
        summary="Load the newest commit of the served ref now",
        tags=["server"],
        responses=errors(401, 403),
        description="Needs a token with the admin scope when the server has tokens.",
        guards=[requires("admin")],
    )
    async def admin_reload(self, runtime: RuntimeDep, caller: Caller) -> Response[Reloaded]:
        swapped = await runtime.reload()
        return json_response({"reloaded": swapped, **registry_dict(runtime, caller)})

    @get(
        "/metrics",
        summary="Prometheus metrics",
        media_type="text/plain",
        **documented("server", 401),
    )
    async def metrics(self, runtime: RuntimeDep, caller: Caller) -> Response[Any]:
        return scrape(runtime, caller.reader)
