"""Prometheus metrics through `prometheus_client`: one CollectorRegistry per app.

Names: `mreg_http_requests_total`, `mreg_http_request_duration_seconds`,
`mreg_invocations_total`, `mreg_model_load_failures_total`, `mreg_reloads_total`,
`mreg_reload_failures_total`, `mreg_usage_dropped_total` and the gauges
`mreg_models_loaded`, `mreg_revision_info`, `mreg_revision_loaded_timestamp_seconds`.

Series labelled with a private model (its name, version and id), or with a
private version of a public model, are left out of a scrape unless it presents
a token with the read scope (or the server has no tokens): a metric never names
a model or version the caller may not see.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from litestar import Response
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

if TYPE_CHECKING:
    from server.service import Server

# No `_created` series: they doubled the exposition and no dashboard of ours reads them
# (prometheus_client's switch is process-wide; the serving process is ours).
disable_created_metrics()  # type: ignore[no-untyped-call]

# The classic text format: what generate_latest writes with its default (underscore) escaping.
CONTENT_TYPE = "text/plain; version=0.0.4"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MODEL_LABEL = "model"


class Metrics:
    """The app's metrics; every update happens on the event loop or a worker thread (thread-safe)."""

    def __init__(self, server: Server | None = None) -> None:
        """`server`: where the gauges read loaded models, the revision and dropped usage."""
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter(
            "mreg_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mreg_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.invocations = Counter(
            "mreg_invocations",
            "Successful invocations by model and version.",
            ["model", "version", "model_id"],
            registry=r,
        )
        self.load_failures = Counter(
            "mreg_model_load_failures", "Model loads that failed, by model.", ["model"], registry=r
        )
        self.reloads = Counter("mreg_reloads", "Revisions swapped in after the first.", registry=r)
        self.reload_failures = Counter(
            "mreg_reload_failures", "Revisions that failed to load.", registry=r
        )
        # The hot path looks a labelled child up in a plain dict: `labels()` validates
        # and locks on every call, a measurable share of a fast invoke.
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._invocation_children: dict[tuple[str, int, str], Any] = {}
        if server is not None:
            r.register(_ServerCollector(server))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency."""
        key = (method, route, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(method, route, str(status))
        counter.inc()
        histogram = self._latency_children.get(route)
        if histogram is None:
            histogram = self._latency_children[route] = self.latency.labels(route)
        histogram.observe(seconds)

    def invoked(self, model: str, version: int, model_id: str) -> None:
        key = (model, version, model_id)
        counter = self._invocation_children.get(key)
        if counter is None:
            counter = self._invocation_children[key] = self.invocations.labels(
                model, str(version), model_id
            )
        counter.inc()

    def invocations_total(self) -> int:
        """Successful invocations since start, over every model and version."""
        samples = (s for m in self.invocations.collect() for s in m.samples)
        return int(sum(s.value for s in samples if s.name.endswith("_total")))

    def load_failed(self, model: str) -> None:
        self.load_failures.labels(model).inc()

    def reloaded(self) -> None:
        self.reloads.inc()

    def reload_failed(self) -> None:
        self.reload_failures.inc()


class _ServerCollector:
    """Values read from the server at scrape time: loaded models, the revision, dropped usage."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterable[Metric]:
        server, served = self.server, self.server.served
        yield GaugeMetricFamily("mreg_models_loaded", "Models in memory.", len(server.pool.loaded))
        info = GaugeMetricFamily(
            "mreg_revision_info", "The revision served.", labels=["revision", "ref"]
        )
        info.add_metric([served.revision, served.ref], 1.0)
        yield info
        yield GaugeMetricFamily(
            "mreg_revision_loaded_timestamp_seconds",
            "When the served revision was loaded.",
            served.loaded_at.timestamp(),
        )
        yield CounterMetricFamily(
            "mreg_usage_dropped",
            "Usage records dropped (the usage store could not keep up or failed).",
            float(getattr(server.usage, "dropped", 0)),
        )


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


def scrape(server: Server, authorization: str | None) -> Response[bytes]:
    """The `/metrics` response for a caller: private models' series need a read token."""
    hidden: Callable[[dict[str, str]], bool] | None = None
    if not server.auth.can_read_private(authorization):
        served = server.served
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

    text = generate_latest(_Scrape(server.metrics.registry, hidden))
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
