"""What changed in a registry between two revisions (DESIGN.md `mreg diff REV1 [REV2]`).

Only what git says changed is read: `git diff --name-only` names the touched
models and pointers, and both sides are read through snapshots limited to
them, so a diff on a registry of 10,000 models costs about as much as one
on 10. Validation with `--base` uses the same helpers.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from registry.base import RegistryBase
from registry.errors import RegistryError
from registry.layout import VERSION_FILE_RE, Pointer, model_path
from registry.manifests import ModelManifest, VersionManifest
from registry.snapshot import Snapshot
from registry.source import REGISTRY_ROOTS, GitSource, resolve_revision
from registry.worktree import WorkTreeSource

# Past this many touched models a partial listing saves nothing: read everything.
MAX_SCOPED_MODELS = 2000


@dataclass(frozen=True)
class Touched:
    """The registry paths a change touched, and the models they belong to."""

    paths: tuple[str, ...]
    models: frozenset[str]
    settings: bool

    @classmethod
    def from_paths(cls, paths: Iterable[str]) -> Touched:
        kept = sorted({p for p in paths if p.split("/")[0] in REGISTRY_ROOTS})
        models = {p.split("/")[1] for p in kept if p.count("/") >= 2}
        return cls(tuple(kept), frozenset(models), "registry.yaml" in kept)


def _git(registry: RegistryBase, *commands: list[str]) -> list[bytes]:
    """Run git commands side by side (each scans the work tree: in parallel they cost one)."""
    procs = [
        subprocess.Popen(
            ["git", *args],
            cwd=registry.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for args in commands
    ]
    outputs = [proc.communicate() for proc in procs]
    for args, proc, (_, err) in zip(commands, procs, outputs, strict=True):
        if proc.returncode != 0:
            raise RegistryError(f"git {args[0]} failed: {err.decode().strip()}")
    return [out for out, _ in outputs]


def changed_paths(registry: RegistryBase, base: str, rev: str | None = None) -> Touched:
    """Registry paths that differ between `base` and `rev` (None: the work tree, untracked files too)."""
    base_sha = resolve_revision(registry.where, base)
    diff = ["diff", "--name-only", "-z", "--no-renames", base_sha]
    if rev is not None:
        diff.append(resolve_revision(registry.where, rev))
    commands = [[*diff, "--", *REGISTRY_ROOTS]]
    if rev is None:
        untracked = ["ls-files", "--others", "--exclude-standard", "-z", "--", *REGISTRY_ROOTS]
        commands.append(untracked)
    raw = b"\0".join(_git(registry, *commands))
    return Touched.from_paths(p for p in raw.decode().split("\0") if p)


def scoped_snapshot(
    registry: RegistryBase, rev: str | None, models: Iterable[str] | None = None
) -> Snapshot:
    """A snapshot that lists only registry.yaml and these models' files and pointers (None: all)."""
    names = sorted(set(models)) if models is not None else None
    if names is None or len(names) > MAX_SCOPED_MODELS:
        return registry.snapshot(rev)
    roots = ["registry.yaml"]
    for name in names:
        roots += [f"models/{name}", f"pointers/{name}"]
    source = (
        WorkTreeSource(registry.root, roots=roots)
        if rev is None
        else GitSource(registry.where, rev, roots=roots)
    )
    return Snapshot(source, registry.cache)


# -- the diff ------------------------------------------------------------


@dataclass(frozen=True)
class MetricChange:
    """One metric of a registered version next to the same metric of the version it replaces."""

    name: str
    old: Any
    new: Any

    @property
    def delta(self) -> float | None:
        try:
            return float(self.new) - float(self.old)
        except (TypeError, ValueError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "old": self.old, "new": self.new, "delta": self.delta}


@dataclass(frozen=True)
class ModelChange:
    """change: added, deleted, archived, restored or updated (fields names what changed)."""

    model: str
    change: str
    fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "change": self.change, "fields": list(self.fields)}


@dataclass(frozen=True)
class VersionChange:
    """change: registered, deleted, status, deprecated, undeprecated or updated."""

    model: str
    version: int
    id: str | None
    change: str
    status: str | None
    old_status: str | None = None
    replaces: int | None = None
    """The version a registered one is compared with: the latest trained one at the base."""
    metrics: tuple[MetricChange, ...] = ()
    fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "id": self.id,
            "change": self.change,
            "status": self.status,
            "old_status": self.old_status,
            "replaces": self.replaces,
            "metrics": [m.to_dict() for m in self.metrics],
            "fields": list(self.fields),
        }


SplitArm = tuple[str, int, int | None]
"""(target, weight, version it resolves to) of one arm; a single target is one arm of 100."""


@dataclass(frozen=True)
class PointerChange:
    """change: created, moved (target, weights or resolved version) or deleted."""

    model: str
    tag: str
    change: str
    old_target: str | None
    new_target: str | None
    old_version: int | None
    new_version: int | None
    old_targets: tuple[SplitArm, ...] = ()
    new_targets: tuple[SplitArm, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def arms(split: tuple[SplitArm, ...]) -> list[dict[str, Any]]:
            return [{"target": t, "weight": w, "version": v} for t, w, v in split]

        return {
            "model": self.model,
            "tag": self.tag,
            "ref": f"{self.model}:{self.tag}",
            "change": self.change,
            "old_target": self.old_target,
            "new_target": self.new_target,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "old_targets": arms(self.old_targets),
            "new_targets": arms(self.new_targets),
        }


@dataclass
class RegistryDiff:
    """The registry-level change from `base` to `head` (labels as the user named them)."""

    base: str
    head: str
    base_revision: str | None
    head_revision: str | None
    settings: tuple[str, ...] = ()
    models: list[ModelChange] = field(default_factory=list)
    versions: list[VersionChange] = field(default_factory=list)
    pointers: list[PointerChange] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Manifests that could not be read (run `mreg validate` for details)."""

    @property
    def empty(self) -> bool:
        return not (self.settings or self.models or self.versions or self.pointers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "base_revision": self.base_revision,
            "head_revision": self.head_revision,
            "settings": list(self.settings),
            "models": [c.to_dict() for c in self.models],
            "versions": [c.to_dict() for c in self.versions],
            "pointers": [c.to_dict() for c in self.pointers],
            "unreadable": list(self.unreadable),
        }


def diff_registry(registry: RegistryBase, base: str, head: str | None = None) -> RegistryDiff:
    """What changed from revision `base` to `head` (None: the work tree, like `git diff REV`)."""
    touched = changed_paths(registry, base, head)
    old = scoped_snapshot(registry, base, touched.models)
    new = scoped_snapshot(registry, head, touched.models)
    return _Differ(old, new).run(touched)


def _changed_fields(old: Any, new: Any, skip: Iterable[str] = ()) -> tuple[str, ...]:
    a = old.model_dump(mode="json", exclude_none=True)
    b = new.model_dump(mode="json", exclude_none=True)
    return tuple(k for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k))


def _metrics(version: VersionManifest) -> dict[str, Any]:
    metrics = version.train_info.get("metrics")
    return dict(metrics) if isinstance(metrics, dict) else {}


class _Differ:
    def __init__(self, old: Snapshot, new: Snapshot) -> None:
        self.old = old
        self.new = new
        self.result = RegistryDiff(
            base=old.label,
            head=new.label,
            base_revision=old.revision,
            head_revision=new.revision,
        )

    def run(self, touched: Touched) -> RegistryDiff:
        if touched.settings:
            old, new = self._read(self.old.settings), self._read(self.new.settings)
            if old is not None and new is not None:
                self.result.settings = _changed_fields(old, new)
        for name in sorted(touched.models):
            self._model(name)
            self._versions(name)
            self._pointers(name)
        return self.result

    def _read(self, fn: Any, *args: Any) -> Any:
        """fn(*args), or None with the error noted: a diff shows what it can read."""
        try:
            return fn(*args)
        except RegistryError as exc:
            text = str(exc)
            if text not in self.result.unreadable:
                self.result.unreadable.append(text)
            return None

    def _model(self, name: str) -> None:
        was, now = self.old.has_model(name), self.new.has_model(name)
        if not was and not now:
            return
        if not was:
            self.result.models.append(ModelChange(name, "added"))
            return
        if not now:
            self.result.models.append(ModelChange(name, "deleted"))
            return
        path = model_path(name)
        if self.old.source.blob_ids([path]) == self.new.source.blob_ids([path]):
            return
        old, new = self._read(self.old.model, name), self._read(self.new.model, name)
        if not isinstance(old, ModelManifest) or not isinstance(new, ModelManifest):
            return
        fields = _changed_fields(old, new)
        if not fields:
            return
        if old.archived != new.archived:
            change = "archived" if new.archived else "restored"
            fields = tuple(f for f in fields if f != "archived_at")
        else:
            change = "updated"
        self.result.models.append(ModelChange(name, change, fields))

    def _version_map(self, snap: Snapshot, name: str) -> dict[int, VersionManifest]:
        if not snap.has_model(name):
            return {}
        files = {f: p for f, p in snap.version_files(name).items() if VERSION_FILE_RE.fullmatch(f)}
        out: dict[int, VersionManifest] = {}
        for fname, path in files.items():
            parsed = self._read(snap.parse, VersionManifest, [path])
            if parsed:
                out[int(fname[: -len(".yaml")])] = parsed[path]
        return out

    def _versions(self, name: str) -> None:
        old, new = self._version_map(self.old, name), self._version_map(self.new, name)
        replaced = self._latest(old)
        for n in sorted(set(old) | set(new)):
            a, b = old.get(n), new.get(n)
            if a is None and b is not None:
                self.result.versions.append(self._registered(name, b, replaced))
            elif b is None and a is not None:
                if self.new.has_model(name):
                    self.result.versions.append(
                        VersionChange(name, n, a.id, "deleted", a.status.value)
                    )
            elif a is not None and b is not None and a != b:
                fields = _changed_fields(a, b)
                if a.status != b.status:
                    change = "status"
                elif a.deprecated != b.deprecated:
                    change = "deprecated" if b.deprecated else "undeprecated"
                else:
                    change = "updated"
                self.result.versions.append(
                    VersionChange(
                        name, n, b.id, change, b.status.value, a.status.value, fields=fields
                    )
                )

    @staticmethod
    def _latest(versions: dict[int, VersionManifest]) -> VersionManifest | None:
        trained = [v for v in versions.values() if v.servable and not v.deprecated]
        return max(trained, key=lambda v: v.version, default=None)

    @staticmethod
    def _registered(
        name: str, version: VersionManifest, replaced: VersionManifest | None
    ) -> VersionChange:
        new_metrics = _metrics(version)
        old_metrics = _metrics(replaced) if replaced is not None else {}
        metrics = tuple(
            MetricChange(k, old_metrics.get(k), new_metrics.get(k))
            for k in sorted(set(new_metrics) | set(old_metrics))
        )
        return VersionChange(
            name,
            version.version,
            version.id,
            "registered",
            version.status.value,
            replaces=replaced.version if replaced is not None else None,
            metrics=metrics,
        )

    def _split(self, snap: Snapshot, name: str, pointer: Pointer) -> tuple[SplitArm, ...]:
        try:
            res = snap.resolve(f"{name}:{pointer.tag}")
        except RegistryError:
            return tuple((t, w, None) for t, w in pointer.arms)
        ends = {pointer.target: res.version.version}
        if pointer.weighted:
            ends = {a.target: a.version.version for a in res.arms}
        return tuple((t, w, ends.get(t)) for t, w in pointer.arms)

    def _pointer_map(self, snap: Snapshot, name: str) -> dict[str, tuple[SplitArm, ...]]:
        out: dict[str, tuple[SplitArm, ...]] = {}
        for tag in snap.pointer_tags(name):
            pointer = self._read(snap.pointer, name, tag)
            out[tag] = self._split(snap, name, pointer) if pointer is not None else ()
        return out

    def _pointers(self, name: str) -> None:
        old, new = self._pointer_map(self.old, name), self._pointer_map(self.new, name)
        for tag in sorted(set(old) | set(new)):
            a, b = old.get(tag, ()), new.get(tag, ())
            if tag not in old:
                change = "created"
            elif tag not in new:
                change = "deleted"
            elif a != b:
                change = "moved"
            else:
                continue
            # The heaviest arm stands for the pointer in the one-target fields.
            was = max(a, key=lambda arm: arm[1]) if a else (None, 0, None)
            now = max(b, key=lambda arm: arm[1]) if b else (None, 0, None)
            self.result.pointers.append(
                PointerChange(name, tag, change, was[0], now[0], was[2], now[2], a, b)
            )
