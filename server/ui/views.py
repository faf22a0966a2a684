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

import numpy as np

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


@dataclass(frozen=True)
class PageViewer(ApiViewer):
    """The API's viewer, with the served revision's privacy applied at every revision.

    A version private at the served revision (by id), or any version of a model
    private there, stays hidden at every other revision a page or a diff shows.
    """

    hidden_ids: frozenset[str] = frozenset()
    private_models: frozenset[str] = frozenset()

    def sees(self, model: ModelManifest) -> bool:
        return super().sees(model) and model.name not in self.private_models

    def sees_version(self, model: ModelManifest, version: VersionManifest) -> bool:
        return super().sees_version(model, version) and version.id not in self.hidden_ids


def _served_privacy(served: Served) -> tuple[frozenset[str], frozenset[str]]:
    """The ids of versions hidden at `served` from anonymous callers, and its private models."""
    key = ("page_privacy", "")
    found = served.public_memo.get(key)
    if found is None:
        private = frozenset(n for n, m in served.models.items() if not m.is_public)
        served.versions.fill()  # every model's versions, in batches (once per revision)
        ids = frozenset(
            v.id
            for name in served.models
            for v in served.versions[name]
            if name in private or v.visibility == "private"
        )
        found = served.public_memo[key] = (ids, private)
    return found


def page_viewer(runtime: Runtime, caller: ApiViewer) -> Viewer:
    """Who looks at a page: the caller, with the served revision's privacy at every revision."""
    if caller.reader:
        return Viewer(caller)
    ids, private = _served_privacy(runtime.served)
    return Viewer(PageViewer(caller.reader, caller.token, ids, private))


def hides_state(
    served: Served, manifest: ModelManifest, who: Viewer, state: dict[str, Any]
) -> bool:
    """Whether a pointer history state names a version `who` may not see (its number or id)."""
    if who.private:
        return False
    by_number = {v.version: v for v in served.versions.get(manifest.name, [])}
    ids = who.api.hidden_ids if isinstance(who.api, PageViewer) else frozenset()
    for target, number in (
        (state["target"], state["version"]),
        (state["from_target"], state["from_version"]),
    ):
        if target in ids:
            return True
        found = by_number.get(number) if number is not None else None
        if found is not None and not who.api.sees_version(manifest, found):
            return True
    return False


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

    @property
    def ticks(self) -> list[tuple[float, float]]:
        """(y, value) of the value axis' ticks: high and low, or one when every point is equal."""
        if self.high > self.low:
            return [(self.pad, self.high), (self.height - self.pad, self.low)]
        return [(self.height / 2, self.high)]


# Sizes of the training data, not measures of a model: listed with the metrics, never charted.
DATA_SIZES = frozenset(
    {"rows", "n_rows", "samples", "n_samples", "train_rows", "test_rows", "train_size", "test_size"}
)


def metric_charts(versions: list[VersionManifest]) -> list[Chart]:
    """A chart per numeric metric of `train_info.metrics`, over the versions that have it."""
    names: list[str] = []
    for v in versions:
        names += [
            k
            for k, value in metrics_of(v).items()
            if k not in names and k not in DATA_SIZES and _number(value) is not None
        ]
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


def input_width(info: dict[str, Any]) -> int | None:
    """How many features one input has, by `input_info` (schema `minItems`, `feature_names`)."""
    schema = info.get("schema")
    if isinstance(schema, dict) and isinstance(schema.get("minItems"), int):
        return int(schema["minItems"])
    names = info.get("feature_names")
    return len(names) if isinstance(names, list) and names else None


def example_input(version: VersionManifest | None, n_features: int | None = None) -> str:
    """A body for the try-it form and the curl line: `input_info.example`, else zeros as wide as
    `input_info` says, else as the loaded artifact says (`n_features`)."""
    info = version.input_info if version is not None else {}
    example = info.get("example")
    if example is not None:
        return json.dumps({"data": example})
    size = input_width(info) or n_features
    return json.dumps({"data": [0.0] * (size or 1)})


def artifact_width(
    server: Runtime, served: Served, model: str, version: VersionManifest
) -> int | None:
    """`n_features_in_` of the version's scikit-learn artifact, loaded as an invoke would load it,
    when `input_info` does not say how wide an input is (blocking; None when it cannot load)."""
    if version.input_info.get("example") is not None or input_width(version.input_info):
        return None
    if not version.servable:
        return None
    try:
        loaded = server.pool.load(served.snapshot, model, version)
    except RegistryError:
        return None
    width = getattr(getattr(loaded, "estimator", None), "n_features_in_", None)
    return int(width) if isinstance(width, int | np.integer) and width > 0 else None


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
    _hide_versions(out, snapshots, names - hidden, who)
    return out


def _hide_versions(out: dict[str, Any], snapshots: list[Any], names: set[str], who: Viewer) -> None:
    """Drop the changes of versions private at either side or at the served revision, and blank
    the pointer sides and comparisons that name them (their number or id)."""
    ids = set(who.api.hidden_ids) if isinstance(who.api, PageViewer) else set()
    secret: set[tuple[str, int]] = set()
    for snap in snapshots:
        for name in names:
            if not snap.has_model(name):
                continue
            try:
                versions = snap.versions(name)
            except RegistryError:
                continue
            for v in versions:
                if v.visibility == "private" or v.id in ids:
                    secret.add((name, v.version))
                    ids.add(v.id)
    out["versions"] = [
        c
        for c in out["versions"]
        if (c["model"], c["version"]) not in secret and c["id"] not in ids
    ]
    for c in out["versions"]:
        if (c["model"], c["replaces"]) in secret:
            c["replaces"], c["metrics"] = None, []
    for p in out["pointers"]:
        for side in ("old", "new"):
            if (p["model"], p[f"{side}_version"]) in secret or p[f"{side}_target"] in ids:
                p[f"{side}_target"] = p[f"{side}_version"] = None
