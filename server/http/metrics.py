"""Metrics over HTTP: the middleware that counts and times every request, and the scrape."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from litestar import Response
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest

from server.runtime import Runtime
from server.runtime.metrics import MODEL_LABEL, Metrics

# The classic text format: what generate_latest writes with its default (underscore) escaping.
CONTENT_TYPE = "text/plain; version=0.0.4"


class _Scrape:
    """The app's registry as one caller may see it: series of hidden models left out."""

    def __init__(
        self, registry: CollectorRegistry, hidden: Callable[[dict[str, str]], bool] | None
    ) -> None:
        self.registry = registry
        self.hidden = hidden

    def collect(self) -> Iterable[Metric]:
        hidden = self.hidden
        for metric in self.registry.collect():
            if hidden is not None:
                metric.samples = [s for s in metric.samples if not hidden(s.labels)]
            yield metric


def scrape(runtime: Runtime, reader: bool) -> Response[bytes]:
    """The `/metrics` response for a caller: private models' and versions' series need a read
    token."""
    hidden: Callable[[dict[str, str]], bool] | None = None
    if not reader:
        served = runtime.served
        shown = {
            name: {v.id for v in served.versions[name] if v.visibility != "private"}
            for name, model in served.models.items()
            if model.is_public
        }

        def hidden(labels: dict[str, str]) -> bool:
            name = labels.get(MODEL_LABEL)
            if name is None:
                return False
            ids = shown.get(name)  # None: private, or gone from the revision: not shown
            return ids is None or ("model_id" in labels and labels["model_id"] not in ids)

    text = generate_latest(_Scrape(runtime.metrics.registry, hidden))
    return Response(text, media_type=CONTENT_TYPE)


class MetricsMiddleware:
    """Counts every HTTP request by its route template and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("path_template") or "unmatched"
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - start)
