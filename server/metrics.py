"""Prometheus metrics, hand-written: a few counters and one histogram, text exposition 0.0.4.

Everything is updated from the event loop thread, so plain dicts suffice.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        # route -> [count per bucket..., +Inf count], and the sum of seconds
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: defaultdict[str, float] = defaultdict(float)
        self.invocations: defaultdict[tuple[str, int, str], int] = defaultdict(int)
        self.load_failures: defaultdict[str, int] = defaultdict(int)
        self.reload_failures = 0
        self.reloads = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        counts = self.latency.get(route)
        if counts is None:
            counts = self.latency[route] = [0] * (len(BUCKETS) + 1)
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
        self.latency_sum[route] += seconds

    def render(self, gauges: dict[str, tuple[str, float, dict[str, str]]]) -> str:
        """The exposition text; `gauges` adds name -> (help, value, labels) from the app's state."""
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        head("mreg_http_requests_total", "counter", "HTTP requests by method, route and status.")
        for (method, route, status), n in sorted(self.requests.items()):
            out.append(
                f"mreg_http_requests_total{_labels(method=method, route=route, status=str(status))} {n}"
            )
        name = "mreg_http_request_duration_seconds"
        head(name, "histogram", "HTTP request latency by route.")
        for route, counts in sorted(self.latency.items()):
            running = 0
            for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f"{name}_bucket{_labels(route=route, le=le)} {running}")
            out.append(f"{name}_sum{_labels(route=route)} {self.latency_sum[route]:.6f}")
            out.append(f"{name}_count{_labels(route=route)} {running}")
        head("mreg_invocations_total", "counter", "Successful invocations by model and version.")
        for (model, version, model_id), n in sorted(self.invocations.items()):
            labels = _labels(model=model, version=str(version), model_id=model_id)
            out.append(f"mreg_invocations_total{labels} {n}")
        head("mreg_model_load_failures_total", "counter", "Model loads that failed, by model.")
        for model, n in sorted(self.load_failures.items()):
            out.append(f"mreg_model_load_failures_total{_labels(model=model)} {n}")
        head("mreg_reloads_total", "counter", "Revisions swapped in after the first.")
        out.append(f"mreg_reloads_total {self.reloads}")
        head("mreg_reload_failures_total", "counter", "Revisions that failed to load.")
        out.append(f"mreg_reload_failures_total {self.reload_failures}")
        for gname, (text, value, gauge_labels) in sorted(gauges.items()):
            head(gname, "gauge", text)
            out.append(f"{gname}{_labels(**gauge_labels) if gauge_labels else ''} {value}")
        return "\n".join(out) + "\n"


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


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
