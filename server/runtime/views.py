"""What the JSON API and the web page render of the served data, as one caller may see it."""

from __future__ import annotations

import contextlib
from typing import Any

import registry as core
from registry import ModelManifest, RegistryError, rfc3339
from server.runtime import visibility
from server.runtime.auth import Viewer
from server.runtime.runtime import Runtime
from server.runtime.served import Served
from server.usage import iso

PRIVATE_RELOAD_ERROR = "the newest revision failed to load (a token shows why)"
PRIVATE_FETCH_ERROR = "fetching the followed branch failed (a token shows why)"


def model_dict(
    runtime: Runtime,
    served: Served,
    model: ModelManifest,
    *,
    full: bool,
    viewer: Viewer,
    summary: tuple[int, tuple[int, str] | None] | None = None,
) -> dict[str, Any]:
    """A model as `viewer` may see it: its hidden (private) versions are left out.

    `summary` (count, latest) stands for the versions when the viewer sees them all (a
    listing's cached summary): they are then not read."""
    if summary is not None and viewer.reader and not full:
        count, newest = summary
    else:
        versions = visibility.versions(served, model, viewer)
        latest = core.newest_servable(versions)
        count, newest = len(versions), None if latest is None else (latest.version, latest.id)
    out = core.model_view(model.model_dump(mode="json"), count, newest)
    out["last_used_at"] = iso(runtime.usage.last_used.get(model.name))
    if full:
        out["versions"] = core.version_rows(visibility.versions(served, model, viewer))
        out["pointers"] = [pointer_dict(served, p, viewer) for p in served.pointers[model.name]]
    return out


def pointer_dict(served: Served, pointer: core.Pointer, viewer: Viewer) -> dict[str, Any]:
    """A pointer and where it resolves; a hidden target is `null` (both fields), like a missing
    one."""
    try:
        resolution = visibility.resolve_ref(
            served, core.parse_ref(f"{pointer.model}:{pointer.tag}"), viewer
        )
    except RegistryError as exc:
        out = core.pointer_view(pointer, None, str(exc))
        if not viewer.reader:
            # Its target may be a hidden version's id: a pointer that does not resolve for
            # this caller shows no target, whether it leads to a hidden or a missing version.
            out["target"] = None
        return out
    return core.pointer_view(pointer, resolution.version)


def registry_dict(runtime: Runtime, viewer: Viewer) -> dict[str, Any]:
    """The revision served; an anonymous caller gets counts of public things only."""
    served = runtime.served
    out = served.to_dict()
    out["follow"] = runtime.follow
    out["ready"] = runtime.ready
    out["loaded_models"] = len(runtime.pool.loaded)
    reload_error, fetch_error = runtime.last_reload_error, runtime.last_fetch_error
    out["last_reload_error"] = reload_error.to_dict() if reload_error else None
    out["last_fetch_at"] = rfc3339(runtime.last_fetch_at) if runtime.last_fetch_at else None
    out["last_fetch_error"] = fetch_error.to_dict() if fetch_error else None
    since = runtime.fetching_since
    out["fetching_since"] = rfc3339(since) if since else None
    if not viewer.reader:
        out["counts"] = public_counts(served, viewer)
        out["loaded_models"] = None  # the pool holds private models too
        if out["last_reload_error"] is not None:
            # The message may name private files; the revision and the time are enough.
            out["last_reload_error"]["message"] = PRIVATE_RELOAD_ERROR
        if out["last_fetch_error"] is not None:
            out["last_fetch_error"]["message"] = PRIVATE_FETCH_ERROR
    return out


def public_counts(served: Served, viewer: Viewer) -> dict[str, int]:
    """The counts an anonymous caller gets: of public models, and of their versions the ones
    not private (so those are read, in batches), counted once per revision."""
    key = ("counts", "")
    counts: dict[str, int] | None = served.public_memo.get(key)
    if counts is None:
        counts = served.public_memo[key] = served.cached_counts(
            "public", lambda: _count_public(served, viewer)
        )
    return dict(counts)


def _count_public(served: Served, viewer: Viewer) -> dict[str, int]:
    # A model that does not parse is not shown (nothing says it is public).
    shown = [m for m in served.readable_models().values() if viewer.sees(m)]
    # Counted one by one below if a batch fails: a model whose versions do not parse counts none.
    with contextlib.suppress(RegistryError):
        served.versions.fill(m.name for m in shown)
    snap = served.snapshot
    return {
        "models": sum(1 for m in shown if not m.archived),
        "archived_models": sum(1 for m in shown if m.archived),
        "versions": sum(_visible_versions(served, m, viewer) for m in shown),
        "pointers": sum(len(snap.pointer_tags(m.name)) for m in shown),
    }


def _visible_versions(served: Served, model: ModelManifest, viewer: Viewer) -> int:
    try:
        return len(visibility.versions(served, model, viewer))
    except RegistryError:
        return 0


def public_job(served: Served, job: dict[str, Any]) -> bool:
    """Whether an anonymous caller may see a job: its model is public, its version not private."""
    manifest = served.models.get(job["model"])
    if manifest is None or not manifest.is_public:
        return False
    return not any(
        v.id == job["model_id"] and v.visibility == "private"
        for v in served.versions[manifest.name]
    )
