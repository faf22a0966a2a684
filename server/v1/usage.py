"""Usage: one recorded run or invocation, and the recent ones."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from litestar import Controller, Response, get
from litestar.params import FromQuery, PathParameter, QueryParameter

from server.http.auth import Caller, RuntimeDep
from server.http.errors import errors
from server.http.openapi import json_response
from server.runtime.errors import RunNotFound
from server.runtime.views import public_job
from server.v1.schemas import JobList, RunRecord


class UsageController(Controller):
    path = "/v1"
    tags = ["usage"]

    @get(
        "/runs/{run_id:str}",
        summary="One recorded run or invocation",
        responses=errors(400, 401, 404),
    )
    async def show_run(
        self,
        runtime: RuntimeDep,
        caller: Caller,
        run_id: Annotated[str, PathParameter(description="The id a run answered")],
    ) -> Response[RunRecord]:
        run = await anyio.to_thread.run_sync(runtime.usage.run, run_id)
        if run is None or not (caller.reader or public_job(runtime.served, run)):
            # A run of a private model or version is missing for an anonymous caller.
            raise RunNotFound(f"run {run_id!r} not found")
        return json_response(run)

    @get(
        "/jobs",
        summary="Recent invocations: who, which version, status, latency, when",
        responses=errors(400, 401),
    )
    async def list_jobs(
        self,
        runtime: RuntimeDep,
        caller: Caller,
        model: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
    ) -> Response[JobList]:
        served, usage = runtime.served, runtime.usage
        if caller.reader:
            jobs = await anyio.to_thread.run_sync(
                lambda: usage.jobs(model=model, models=None, limit=limit)
            )
            return json_response({"jobs": jobs, **usage.freshness()})
        public = {n for n, m in served.models.items() if m.is_public}
        served.versions.fill(sorted(public))  # in batches, once per revision
        # Jobs of public models' private versions are dropped after the query: ask for more.
        hidden = sum(1 for n in public for v in served.versions[n] if v.visibility == "private")
        wanted = limit if not hidden else 10 * limit
        jobs = await anyio.to_thread.run_sync(
            lambda: usage.jobs(model=model, models=public, limit=wanted)
        )
        shown = [j for j in jobs if public_job(served, j)][:limit]
        # stale/warning: records still queued in memory (the store cannot write) are not in `jobs`.
        return json_response({"jobs": shown, **usage.freshness()})
