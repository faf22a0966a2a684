"""What the server serves: one revision, read as requests need it, swapped atomically.

A `Served` revision never changes: the snapshot of one commit, and what was
read of it so far. Loading one resolves the revision and lists nothing, so a
server is ready at once whatever the registry's size: a model's manifests
are parsed when a request first needs them (one model's files, by path in
the tree, through the parse cache), listings are paged from the snapshot and
the cached version summaries, and the counts of /v1/registry come from the
tree's listing (model manifests only, never versions). A new revision of a
followed branch is checked before it is swapped in, as far as it differs
from the served one (`check_change`). Swapping replaces one attribute; a
request that started on the old revision keeps its reference and finishes on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from registry import (
    ModelManifest,
    ModelNotFoundError,
    NotServableError,
    Registry,
    RegistryError,
    Resolution,
    Snapshot,
    VersionNotFoundError,
    changed_paths,
    rfc3339,
)
from server.runtime.lazy import Models, Pointers, Versions
from server.runtime.pins import Pin


class RevisionCounts(BaseModel):
    """What /v1/registry counts at one revision (cached: a commit's content never changes)."""

    models: int
    archived_models: int
    versions: int
    pointers: int


# Past this many changed models, the new revision is checked through one full listing.
MAX_SCOPED_CHECK = 2000


@dataclass
class Served:
    """One revision of the registry, read lazily: models, versions and pointers on first use."""

    revision: str
    ref: str
    snapshot: Snapshot
    loaded_at: datetime
    models: Models
    versions: Versions
    pointers: Pointers
    _memo: dict[tuple[str, Pin], tuple[Resolution, ModelManifest]] = field(default_factory=dict)
    # What anonymous callers may see of each model (server.runtime.visibility fills it).
    public_memo: dict[tuple[str, str], Any] = field(default_factory=dict)
    _counts: dict[str, int] | None = None

    @classmethod
    def load(cls, registry: Registry, rev: str, ref: str | None = None) -> Served:
        """The registry at `rev`, read nothing yet; raises RevisionNotFoundError."""
        snapshot = registry.snapshot(rev)
        assert snapshot.revision is not None
        return cls(
            snapshot.revision,
            ref or rev,
            snapshot,
            datetime.now(UTC),
            Models(snapshot),
            Versions(snapshot),
            Pointers(snapshot),
        )

    def check_change(self, registry: Registry, since: str | None) -> Snapshot:
        """Check what differs from revision `since` (None: everything), as a full load did:
        the changed models' manifests parse, their pointers belong to a model and resolve.

        Returns the snapshot of the changed models (for the served-artifact check); raises
        RegistryError at the first problem.
        """
        snapshot = self.snapshot
        if since is not None:
            touched = changed_paths(registry, since, self.revision)
            if touched.settings:
                snapshot.settings()
            if len(touched.models) <= MAX_SCOPED_CHECK:
                snapshot = registry.snapshot(self.revision, models=sorted(touched.models))
        models = {m.name: m for m in snapshot.models(archived=None)}
        names = list(models)
        for start in range(0, len(names), 1000):
            snapshot.versions_of(names[start : start + 1000])
        for p in snapshot.pointers():
            if p.model not in models:
                raise ModelNotFoundError(
                    f"pointer {p.model}:{p.tag} belongs to no model", file=p.file, ref=p.model
                )
            if not models[p.model].archived:
                snapshot.resolve(f"{p.model}:{p.tag}")
        return snapshot

    def counts(self) -> dict[str, int]:
        """Models, archived models, versions and pointers, counted once per revision: from the
        parse cache (keyed by the commit, whose content never changes), else from the tree's
        listing and the model manifests (no version is parsed)."""
        if self._counts is None:
            self._counts = self.cached_counts("all", self._count)
        return dict(self._counts)

    def cached_counts(self, who: str, count: Callable[[], dict[str, int]]) -> dict[str, int]:
        """`count()` of this revision, kept in the parse cache under `who` (all, public)."""
        cache, key = self.snapshot.cache, f"{who} {self.revision}"
        hit = cache.get_many(RevisionCounts, [key]).get(key)
        if hit is None:
            hit = RevisionCounts(**count())
            cache.put_many(RevisionCounts, {key: hit})
        return hit.model_dump()

    def _count(self) -> dict[str, int]:
        snap = self.snapshot
        names = snap.model_names()
        # A model whose manifest does not parse counts as active: its requests say why.
        archived = sum(1 for m in self.readable_models().values() if m.archived)
        return {
            "models": len(names) - archived,
            "archived_models": archived,
            "versions": sum(len(snap.version_files(n)) for n in names),
            "pointers": sum(len(snap.pointer_tags(n)) for n in names),
        }

    def readable_models(self) -> dict[str, ModelManifest]:
        """Every model whose manifest parses, by name (in batches; one by one around a bad one)."""
        try:
            self.models.fill()
        except RegistryError:
            for name in self.snapshot.model_names():
                try:
                    self.models[name]
                except RegistryError:
                    continue
        return {n: m for n, m in self.models.memo.items()}

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
