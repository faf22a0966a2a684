"""What the web page shows, built from the same runtime and Served data the JSON API renders.

Pure functions (no Litestar): who may read which model, metric charts,
example inputs, pointer histories, a diff without hidden models.
`server/ui/routes.py` holds the routes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from registry import (
    ModelManifest,
    ModelNotFoundError,
    Registry,
    RegistryError,
    VersionManifest,
    diff_registry,
)
from server.runtime import Runtime, Served
from server.runtime import Viewer as ApiViewer


@dataclass(frozen=True)
class Viewer:
    """Who looks at the page, and whether they read private models."""

    api: ApiViewer  # the caller: the same privacy rules, applied by server.runtime.visibility

    @property
    def private(self) -> bool:
        return self.api.reader

    @property
    def name(self) -> str | None:
        return self.api.token.name if self.api.token else None

    def may_read(self, server: Runtime, model: ModelManifest) -> bool:
        """Exactly the API's rule, at any revision: private models need a read token.

        A model private at the served revision stays hidden at every other
        revision too (making a model private hides its history in the page).
        """
        if self.private:
            return True
        current = server.served.models.get(model.name)
        return model.is_public and (current is None or current.is_public)


def readable_model(server: Runtime, served: Served, who: Viewer, name: str) -> ModelManifest:
    """The model, or the same not-found error a missing one gives when `who` may not read it."""
    manifest = served.models.get(name)
    if manifest is None or not who.may_read(server, manifest):
        raise ModelNotFoundError(f"model {name!r} not found at {served.ref}", ref=name)
    return manifest


def metrics_of(version: VersionManifest) -> dict[str, Any]:
    metrics = version.train_info.get("metrics")
    return dict(metrics) if isinstance(metrics, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class ChartPoint:
    version: int
    value: float
    x: float
    y: float


@dataclass(frozen=True)
class Chart:
    """One metric across versions, laid out for an inline SVG (no JavaScript)."""

    metric: str
    points: tuple[ChartPoint, ...]
    low: float
    high: float
    width: int = 340
    height: int = 150
    pad: int = 40

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def metric_charts(versions: list[VersionManifest]) -> list[Chart]:
    """A chart per numeric metric of `train_info.metrics`, over the versions that have it."""
    names: list[str] = []
    for v in versions:
        names += [k for k, value in metrics_of(v).items() if k not in names and _number(value)]
    charts = []
    for name in names:
        values = [(v.version, _number(metrics_of(v).get(name))) for v in versions]
        known = [(n, x) for n, x in values if x is not None]
        if not known:
            continue
        low, high = min(x for _, x in known), max(x for _, x in known)
        span = (high - low) or (abs(high) or 1.0)
        chart = Chart(name, (), low, high)
        inner_w, inner_h = chart.width - 2 * chart.pad, chart.height - 2 * chart.pad
        first, last = known[0][0], known[-1][0]
        points = tuple(
            ChartPoint(
                n,
                x,
                chart.pad
                + (inner_w * (n - first) / (last - first) if last > first else inner_w / 2),
                chart.pad + inner_h * (1 - ((x - low) / span if high > low else 0.5)),
            )
            for n, x in known
        )
        charts.append(Chart(name, points, low, high))
    return charts


def example_input(version: VersionManifest | None) -> str:
    """A body for the try-it form and the curl line: the input's shape from `input_info`."""
    info = version.input_info if version is not None else {}
    example = info.get("example")
    if example is not None:
        return json.dumps({"data": example})
    schema = info.get("schema") if isinstance(info.get("schema"), dict) else {}
    size = None
    if isinstance(schema, dict) and isinstance(schema.get("minItems"), int):
        size = schema["minItems"]
    names = info.get("feature_names")
    if size is None and isinstance(names, list):
        size = len(names)
    return json.dumps({"data": [0.0] * (size or 1)})


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def pointer_histories(
    registry: Registry, served: Served, model: str, tags: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each pointer's states over the history up to the page's revision, newest first (blocking)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for tag in tags:
        try:
            states = registry.pointer_history(f"{model}:{tag}", rev=served.revision)
        except RegistryError:
            out[tag] = []
            continue
        out[tag] = [s.to_dict() for s in states]
    return out


def visible_diff(server: Runtime, who: Viewer, base: str, head: str) -> dict[str, Any]:
    """`diff_registry(base, head)` as a dict, without the models `who` may not read (blocking)."""
    registry = server.registry
    result = diff_registry(registry, base, head)
    out = result.to_dict()
    if who.private:
        return out
    names = {c["model"] for kind in ("models", "versions", "pointers") for c in out[kind]}
    snapshots = [registry.snapshot(rev, models=sorted(names)) for rev in (head, base)]
    hidden = set()
    for name in names:
        manifest = None
        for snap in snapshots:
            if snap.has_model(name):
                try:
                    manifest = snap.model(name)
                except RegistryError:
                    continue
                break
        if manifest is None or not who.may_read(server, manifest):
            hidden.add(name)
    for kind in ("models", "versions", "pointers"):
        out[kind] = [c for c in out[kind] if c["model"] not in hidden]
    out["unreadable"] = [t for t in out["unreadable"] if not any(h in t for h in hidden)]
    return out
