"""What the server serves: one loaded revision (swapped atomically) and a bounded pool of models.

A `Served` revision is immutable once built: the snapshot, every manifest
parsed and checked, and a memo of resolutions. Swapping to a new revision
replaces one attribute; a request that started on the old one keeps its
reference and finishes on it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as _package_version
from pathlib import Path
from typing import Any

from registry import (
    LoadedModel,
    LoaderError,
    ModelManifest,
    ModelNotFoundError,
    NotServableError,
    Pointer,
    Registry,
    RegistryError,
    Resolution,
    Snapshot,
    VersionManifest,
    VersionNotFoundError,
    load_model,
    remote_of,
    rfc3339,
)

# Where the artifact of a version is on local disk: (registry, snapshot, model, version) -> path.
ArtifactLocator = Callable[[Registry, Snapshot, str, VersionManifest], Path]


@dataclass(frozen=True)
class Pin:
    """How a request names a version: latest (kind "latest"), modelId, version or pointer."""

    kind: str
    value: str = ""


LATEST = Pin("latest")
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
    # What anonymous callers may see of each model (server.visibility fills it).
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
        if pin.kind == "latest":
            ref = model
        elif pin.kind == "version":
            ref = f"{model}:v{pin.value}"
        elif pin.kind == "pointer":
            ref = f"{model}:{pin.value}"
        else:
            ref = pin.value
        resolution = self.snapshot.resolve(ref)
        if resolution.model != model:
            raise VersionNotFoundError(
                f"model id {pin.value} is a version of {resolution.model!r}, not of {model!r}",
                ref=pin.value,
            )
        version = resolution.version
        if not version.servable:
            raise NotServableError(
                f"{model}:v{version.version} ({version.id}) is {version.status.value}"
                " and has no artifact to serve",
                ref=ref,
            )
        self._memo[(model, pin)] = (resolution, manifest)
        return resolution, manifest


class ModelPool:
    """Loaded models keyed by artifact md5, at most `max_loaded` (least recently used goes)."""

    FAILURE_TTL = 10.0  # seconds before a failed load is tried again (a `mreg pull` may fix it)

    def __init__(self, registry: Registry, locate: ArtifactLocator, max_loaded: int = 8) -> None:
        self.registry = registry
        self.locate = locate
        self.max_loaded = max(1, max_loaded)
        self.loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._loading: dict[str, Future[LoadedModel]] = {}
        self._failed: dict[str, tuple[float, RegistryError]] = {}
        self._lock = threading.Lock()

    def get(self, md5: str) -> LoadedModel | None:
        """The loaded model, if it is in memory (the fast path: no lock, no I/O)."""
        model = self.loaded.get(md5)
        if model is not None:
            with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
                self.loaded.move_to_end(md5)
        return model

    def load(self, snapshot: Snapshot, model: str, version: VersionManifest) -> LoadedModel:
        """Load (blocking; call from a worker thread); concurrent loads of one artifact share one."""
        assert version.artifact is not None
        md5 = version.artifact.md5
        with self._lock:
            if md5 in self.loaded:
                return self.loaded[md5]
            failed = self._failed.get(md5)
            if failed is not None and time.monotonic() - failed[0] < self.FAILURE_TTL:
                raise failed[1]
            future = self._loading.get(md5)
            owner = future is None
            if future is None:
                future = self._loading[md5] = Future()
        if not owner:
            return future.result()
        try:
            path = self.locate(self.registry, snapshot, model, version)
            trusted = snapshot.settings().trusted_formats  # registry.format_policy
            loaded = load_model(path, version.artifact.format, trusted)
        except RegistryError as exc:
            with self._lock:
                self._failed[md5] = (time.monotonic(), exc)
                del self._loading[md5]
            future.set_exception(exc)
            raise
        except Exception as exc:  # a locator's unexpected failure is still this model's alone
            err = LoaderError(f"cannot load {model}:v{version.version}: {exc}")
            with self._lock:
                self._failed[md5] = (time.monotonic(), err)
                del self._loading[md5]
            future.set_exception(err)
            raise err from exc
        with self._lock:
            self.loaded[md5] = loaded
            self._failed.pop(md5, None)
            while len(self.loaded) > self.max_loaded:
                self.loaded.popitem(last=False)
            del self._loading[md5]
        future.set_result(loaded)
        return loaded

    def forget_failures(self) -> None:
        with self._lock:
            self._failed.clear()


def _git(registry: Registry, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=registry.root, capture_output=True, text=True, check=False
    )


def rev_parse(registry: Registry, rev: str) -> str:
    """The commit sha of `rev` (a full ref name or commit id, see `full_ref`), via git itself."""
    return _git(registry, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout.strip()


FETCH_TIMEOUT = 60.0
"""Seconds a `git fetch` of a followed remote branch may take before it is stopped."""


def remote_branch(registry: Registry, rev: str) -> tuple[str, str] | None:
    """`refs/remotes/origin/main` -> ("origin", "main") when `origin` is a remote of the repository."""
    if not rev.startswith("refs/remotes/"):
        return None
    return remote_of(registry.root, rev)


def fetch_remote_branch(registry: Registry, rev: str, timeout: float = FETCH_TIMEOUT) -> str | None:
    """For `refs/remotes/origin/main`: fetch that branch from its remote; the error text if it fails.

    A server deployed as a clone follows `origin/main`; anything else (a local
    branch, a tag) needs no fetch. The fetch never prompts (no terminal, no
    credential prompt) and is stopped, with whatever it started (ssh, a
    helper), after `timeout` seconds.
    """
    found = remote_branch(registry, rev)
    if found is None:
        return None
    remote, branch = found
    proc = subprocess.Popen(
        ["git", "fetch", "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"],
        cwd=registry.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        start_new_session=True,  # no controlling terminal for ssh to prompt on; one group to stop
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"no answer from the remote {remote!r} in {timeout:g}s: git fetch stopped"
    if proc.returncode:
        return err.strip() or "git fetch failed"
    return None
