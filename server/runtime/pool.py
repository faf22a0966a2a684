"""The model pool: loaded models keyed by artifact md5, bounded, loaded once however many ask."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import registry as core
from registry import (
    LoadedModel,
    LoaderError,
    Registry,
    RegistryError,
    Snapshot,
    VersionManifest,
    load_model,
)
from server.runtime.errors import ModelUnloaded

# Where the artifact of a version is on local disk: (registry, snapshot, model, version) -> path.
ArtifactLocator = Callable[[Registry, Snapshot, str, VersionManifest], Path]


def default_locator(
    registry: Registry, snapshot: Snapshot, model: str, version: VersionManifest
) -> Path:
    """The artifact in the local DVC cache, fetched at the snapshot's revision when missing."""
    return Path(core.ensure_local(registry, snapshot, model, version))


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
        # Models unloaded through the repository extension: not loaded again until asked to.
        self.unloaded: set[str] = set()

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
        if model in self.unloaded:
            raise ModelUnloaded(model)
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

    # -- the model-repository extension (server.runtime.repository) ----------------

    def is_unloaded(self, model: str) -> bool:
        return model in self.unloaded

    def mark_loaded(self, model: str) -> None:
        self.unloaded.discard(model)

    def unload(self, model: str, md5s: set[str]) -> int:
        """Evict `md5s` and keep `model` out of the pool until `mark_loaded`; how many were in."""
        with self._lock:
            self.unloaded.add(model)
            evicted = [md5 for md5 in md5s if self.loaded.pop(md5, None) is not None]
            for md5 in md5s:
                self._failed.pop(md5, None)
        return len(evicted)
