"""The webhook delivery log: what was sent to which webhook, every attempt, what is pending."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Response, get
from litestar.params import QueryParameter

from server.http.auth import RuntimeDep, requires
from server.http.errors import errors
from server.http.openapi import json_response


class WebhooksController(Controller):
    path = "/v1/webhooks"
    tags = ["server"]
    guards = [requires("admin")]

    @get(
        "/deliveries",
        summary="Recent webhook deliveries (newest first), with every attempt",
        description="Needs a token with the admin scope when the server has tokens.",
        responses=errors(400, 401, 403),
    )
    async def deliveries(
        self,
        runtime: RuntimeDep,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        status: Literal["pending", "delivered", "failed", "dropped"] | None = None,
    ) -> Response[Any]:
        hooks = runtime.webhooks
        return json_response(
            {
                "webhooks": [h.to_dict() for h in hooks.hooks],
                "deliveries": hooks.deliveries(limit, status),
                "pending": hooks.pending(),
                "dropped": hooks.dropped,
            }
        )
