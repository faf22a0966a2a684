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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


@dataclass(frozen=True)
class Gauges:
    """What a scrape reads from the runtime at that moment."""

    models_loaded: int
    revision: str
    ref: str
    loaded_at: float
    usage_dropped: int


class Watched(Protocol):
    """Where the gauges come from (the runtime): no import of it here, so no cycle."""

    def gauges(self) -> Gauges: ...


class Observer(Protocol):
    """What the runtime reports as it serves; `Metrics` is one."""

    def invoked(self, model: str, version: int, model_id: str) -> None: ...
    def load_failed(self, model: str) -> None: ...
    def reloaded(self) -> None: ...
    def reload_failed(self) -> None: ...


# No `_created` series: they doubled the exposition and no dashboard of ours reads them
# (prometheus_client's switch is process-wide; the serving process is ours).
disable_created_metrics()  # type: ignore[no-untyped-call]

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MODEL_LABEL = "model"


class Metrics:
    """The app's metrics; every update happens on the event loop or a worker thread (thread-safe)."""

    def __init__(self) -> None:
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

    def watch(self, source: Watched) -> None:
        """Read the gauges (loaded models, the revision, dropped usage) from `source` at scrape."""
        self.registry.register(_GaugeCollector(source))

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


class _GaugeCollector:
    """Values read at scrape time: loaded models, the revision, dropped usage."""

    def __init__(self, source: Watched) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        now = self.source.gauges()
        yield GaugeMetricFamily("mreg_models_loaded", "Models in memory.", now.models_loaded)
        info = GaugeMetricFamily(
            "mreg_revision_info", "The revision served.", labels=["revision", "ref"]
        )
        info.add_metric([now.revision, now.ref], 1.0)
        yield info
        yield GaugeMetricFamily(
            "mreg_revision_loaded_timestamp_seconds",
            "When the served revision was loaded.",
            now.loaded_at,
        )
        yield CounterMetricFamily(
            "mreg_usage_dropped",
            "Usage records dropped (the usage store could not keep up or failed).",
            float(now.usage_dropped),
        )
