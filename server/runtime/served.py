"""What the server serves: one loaded revision, swapped atomically.

A `Served` revision is immutable once built: the snapshot, every manifest
parsed and checked, and a memo of resolutions. Swapping to a new revision
replaces one attribute; a request that started on the old one keeps its
reference and finishes on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as _package_version
from typing import Any

from registry import (
    ModelManifest,
    ModelNotFoundError,
    NotServableError,
    Pointer,
    Registry,
    Resolution,
    Snapshot,
    VersionManifest,
    VersionNotFoundError,
    rfc3339,
)
from server.runtime.pins import Pin

_MREG_VERSION = _package_version("mreg")


class _LazyVersions(dict[str, list[VersionManifest]]):
    """Versions of each model, read from the snapshot on first use (a warm start)."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self._snapshot = snapshot

    def __missing__(self, name: str) -> list[VersionManifest]:
        versions = self[name] = self._snapshot.versions(name)
        return versions


@dataclass
class Served:
    """One revision of the registry, fully read: manifests checked, resolutions memoized."""

    revision: str
    ref: str
    snapshot: Snapshot
    loaded_at: datetime
    models: dict[str, ModelManifest]
    versions: dict[str, list[VersionManifest]]
    pointers: dict[str, list[Pointer]]
    _memo: dict[tuple[str, Pin], tuple[Resolution, ModelManifest]] = field(default_factory=dict)
    # What anonymous callers may see of each model (server.runtime.visibility fills it).
    public_memo: dict[tuple[str, str], Any] = field(default_factory=dict)

    @classmethod
    def load(cls, registry: Registry, rev: str, ref: str | None = None) -> Served:
        """Read every manifest at `rev`; raises RegistryError if any is invalid."""
        snapshot = registry.snapshot(rev)
        assert snapshot.revision is not None
        models = {m.name: m for m in snapshot.models(archived=None)}
        # A commit that loaded cleanly once always will (its content cannot change): a warm
        # start reads versions on first use instead of checking all of them again.
        checked = f"mreg {_MREG_VERSION}: {snapshot.revision} loads"
        warm = registry.cache.remembers(checked)
        versions = _LazyVersions(snapshot) if warm else snapshot.versions_of(models)
        pointers: dict[str, list[Pointer]] = {name: [] for name in models}
        for p in snapshot.pointers():
            if p.model not in models:
                raise ModelNotFoundError(
                    f"pointer {p.model}:{p.tag} belongs to no model", file=p.file, ref=p.model
                )
            pointers[p.model].append(p)
        served = cls(
            snapshot.revision, ref or rev, snapshot, datetime.now(UTC), models, versions, pointers
        )
        if not warm:
            # Resolve every pointer once: a dangling pointer or a cycle fails the load.
            for name, model in models.items():
                if model.archived:
                    continue
                for p in pointers[name]:
                    snapshot.resolve(f"{name}:{p.tag}")
            registry.cache.remember(checked)
        return served

    def counts(self) -> dict[str, int]:
        return {
            "models": sum(1 for m in self.models.values() if not m.archived),
            "archived_models": sum(1 for m in self.models.values() if m.archived),
            "versions": sum(len(self.snapshot.version_files(name)) for name in self.models),
            "pointers": sum(len(p) for p in self.pointers.values()),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "ref": self.ref,
            "loaded_at": rfc3339(self.loaded_at),
            "counts": self.counts(),
        }

    def model(self, name: str) -> ModelManifest:
        model = self.models.get(name)
        if model is None:
            raise ModelNotFoundError(f"model {name!r} not found at {self.ref}", ref=name)
        return model

    def resolve(self, model: str, pin: Pin) -> tuple[Resolution, ModelManifest]:
        """The servable version `pin` names for `model` (memoized for this revision)."""
        hit = self._memo.get((model, pin))
        if hit is not None:
            return hit
        manifest = self.model(model)
        ref = pin.ref(model)
        resolution = self.snapshot.resolve(ref)
        if resolution.model != model:
            raise VersionNotFoundError(
                f"model id {pin.value} is a version of {resolution.model!r}, not of {model!r}",
                ref=pin.value,
            )
        # Every arm of a weighted pointer must be servable: a call may be routed to any of them.
        for version in (*(arm.version for arm in resolution.arms), resolution.version):
            if version.servable:
                continue
            raise NotServableError(
                f"{model}:v{version.version} ({version.id}) is {version.status.value}"
                " and has no artifact to serve",
                ref=ref,
            )
        self._memo[(model, pin)] = (resolution, manifest)
        return resolution, manifest
