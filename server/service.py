"""The server's state and behaviour: the served revision, invoke, reloads, and what routes render.

The invoke path is kept lean on purpose (it is benchmarked): the version is
resolved from the in-memory revision (memoized), the model comes from the
in-memory pool, predict runs inline for small inputs of fast libraries, and
usage is queued for a background writer. No git, YAML or SQLite on the way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
from litestar.params import FromPath

import registry as core
from registry import (
    ModelManifest,
    Registry,
    RegistryError,
    VersionManifest,
    VersionNotFoundError,
    rfc3339,
)
from server.auth import Auth
from server.metrics import Metrics
from server.state import (
    LATEST,
    ArtifactLocator,
    ModelPool,
    Pin,
    Served,
    fetch_remote_branch,
    rev_parse,
)
from server.usage import iso, open_usage_store

log = logging.getLogger("mreg.server")

DEFAULT_MAX_BODY = 1_000_000
# Predict on the event loop up to this many inputs (a thread hop costs more than a small
# scikit-learn or ONNX predict: measured ~0.7 of a bare endpoint's speed at 100 rows in a
# thread, ~0.9 inline); larger batches run in a worker thread.
INLINE_MAX_INPUTS = 1024
INLINE_LIBRARIES = frozenset({"sklearn", "onnx"})  # fast enough to predict on the event loop
JSON = "application/json"


class InvokeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`{"data": x}` for one input or `{"inputs": [x, ...]}` for a batch."""

    data: Any = None
    inputs: list[Any] | None = None


class RunRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`{"pipeline": "iris:prod", "inputs": [...]}` (or `"data"` for one input)."""

    pipeline: str
    inputs: list[Any] | None = None
    data: Any = None


class InvokeResponse(msgspec.Struct):
    model: str
    version: int
    model_id: str
    revision: str
    outputs: list[Any]


def default_locator(
    registry: Registry, snapshot: core.Snapshot, model: FromPath[str], version: Any
) -> Path:
    """The artifact in the local DVC cache, fetched at the snapshot's revision when missing."""
    ensure_local = getattr(core, "ensure_local", None)
    if ensure_local is None:
        raise core.ArtifactError("this mreg has no artifact support (registry.ensure_local)")
    return Path(ensure_local(registry, snapshot, model, version))


@dataclass
class ReloadError:
    revision: str | None
    message: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "message": self.message, "at": rfc3339(self.at)}


class Server:
    """The app's state: the served revision, the model pool, usage, auth, metrics."""

    def __init__(
        self,
        registry: Registry,
        rev: str,
        *,
        follow: str | None,
        poll: float,
        auth: Auth,
        preload: bool,
        max_loaded: int,
        locate: ArtifactLocator,
        usage_path: Path | str | None,
    ) -> None:
        self.registry = registry
        self.rev = follow or rev
        self.follow = follow
        self.poll = poll
        self.auth = auth
        self.preload = preload
        self.metrics = Metrics()
        self.pool = ModelPool(registry, locate, max_loaded)
        self.usage = open_usage_store(usage_path)
        self.served: Served = Served.load(registry, self.rev)
        self.previous: Served | None = None
        self.last_reload_error: ReloadError | None = None
        self.ready = not preload
        self._reload_lock = asyncio.Lock()
        # Record ids: random per process (workers, restarts), then a counter (cheaper than urandom).
        self._id_prefix = secrets.token_hex(4)
        self._ids = itertools.count()
        self._poller: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------

    async def startup(self) -> None:
        self.usage.start()
        if self.preload:
            await anyio.to_thread.run_sync(self.preload_models, self.served)
            self.ready = True
        if self.follow and self.poll > 0:
            self._poller = asyncio.create_task(self._poll_loop())

    async def shutdown(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await anyio.to_thread.run_sync(self.usage.close)

    def preload_models(self, served: Served) -> None:
        """Load the latest version and every pointer target of each served model."""
        for name, model in served.models.items():
            if model.archived:
                continue
            pins = [LATEST, *(Pin("pointer", p.tag) for p in served.pointers[name])]
            for pin in pins:
                try:
                    resolution, _ = served.resolve(name, pin)
                except RegistryError:
                    continue  # nothing servable there (no trained version yet): nothing to load
                try:
                    self.pool.load(served.snapshot, name, resolution.version)
                except RegistryError as exc:
                    self.metrics.load_failures[name] += 1
                    log.warning("preload of %s failed: %s", resolution.ref, exc)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.reload()
            except Exception:  # the poller must survive anything; the error is logged
                log.exception("polling %s failed", self.rev)

    async def reload(self) -> bool:
        """Load the newest commit of the served ref and swap to it; False when unchanged or failed."""
        async with self._reload_lock:
            fetch_error = await anyio.to_thread.run_sync(
                fetch_remote_branch, self.registry, self.rev
            )
            if fetch_error:
                # Keep serving; the next poll tries again. The last good fetch is what rev-parse sees.
                log.warning("fetching %s failed: %s", self.rev, fetch_error)
                self.last_reload_error = ReloadError(
                    None, f"fetching {self.rev} failed: {fetch_error}", datetime.now(UTC)
                )
            elif self.last_reload_error and self.last_reload_error.revision is None:
                self.last_reload_error = None  # the fetch works again
            sha = await anyio.to_thread.run_sync(rev_parse, self.registry, self.rev)
            if sha == self.served.revision:
                return False
            if self.last_reload_error and sha == self.last_reload_error.revision:
                return False  # known bad: wait for the next commit instead of failing every poll
            try:
                if not sha:
                    raise core.RevisionNotFoundError(f"revision {self.rev!r} not found")
                served = await anyio.to_thread.run_sync(Served.load, self.registry, sha, self.rev)
                if self.preload:
                    await anyio.to_thread.run_sync(self.preload_models, served)
            except RegistryError as exc:
                self.metrics.reload_failures += 1
                self.last_reload_error = ReloadError(sha or None, str(exc), datetime.now(UTC))
                log.warning(
                    "keeping %s: revision %s failed to load: %s", self.served.revision, sha, exc
                )
                return False
            # The swap: one assignment. Requests in flight keep the Served they started with.
            self.previous, self.served = self.served, served
            self.last_reload_error = None
            self.pool.forget_failures()
            self.metrics.reloads += 1
            log.info("now serving %s at %s", self.rev, sha)
            return True

    # -- invocation ------------------------------------------------------------

    def _resolve(
        self, served: Served, model: FromPath[str], pin: Pin
    ) -> tuple[Served, core.Resolution]:
        try:
            return served, served.resolve(model, pin)[0]
        except VersionNotFoundError:
            # A pinned id stays valid across a swap even if the new revision lost it somehow.
            previous = self.previous
            if pin.kind != "model_id" or previous is None:
                raise
            return previous, previous.resolve(model, pin)[0]

    async def invoke(
        self,
        kind: str,
        model: str,
        pin: Pin,
        inputs: list[Any],
        authorization: str | None,
        ref: str,
    ) -> tuple[InvokeResponse, str]:
        """Run `inputs` through the version `pin` names; returns the response and the record id."""
        start = time.perf_counter()
        served = self.served
        manifest = served.model(model)
        who = self.auth.require(authorization, "invoke", manifest) if self.auth.enabled else None
        served, resolution = self._resolve(served, model, pin)
        version = resolution.version
        record_id = f"run_{self._id_prefix}{next(self._ids):08x}"
        status, error, outputs = 200, None, None
        try:
            outputs = await self._predict(served, model, version, inputs)
        except RegistryError as exc:
            status, error = exc.status, exc.code
            raise
        finally:
            self.usage.record(
                (
                    record_id,
                    kind,
                    ref,
                    model,
                    version.version,
                    version.id,
                    served.revision,
                    who or "anonymous",
                    status,
                    error,
                    (time.perf_counter() - start) * 1000.0,
                    len(inputs),
                    time.time(),
                    msgspec.json.encode(outputs).decode() if kind == "run" else None,
                )
            )
        self.metrics.invocations[(model, version.version, version.id)] += 1
        return (
            InvokeResponse(model, version.version, version.id, served.revision, outputs),
            record_id,
        )

    async def _predict(
        self, served: Served, model: str, version: VersionManifest, inputs: list[Any]
    ) -> list[Any]:
        assert version.artifact is not None
        loaded = self.pool.get(version.artifact.md5)
        if loaded is None:
            try:
                loaded = await anyio.to_thread.run_sync(
                    self.pool.load, served.snapshot, model, version
                )
            except RegistryError:
                self.metrics.load_failures[model] += 1
                raise
        labels = version.output_info.get("labels")
        if len(inputs) <= INLINE_MAX_INPUTS and loaded.library in INLINE_LIBRARIES:
            return core.predict(loaded, inputs, labels)
        return await anyio.to_thread.run_sync(core.predict, loaded, inputs, labels)

    # -- views -----------------------------------------------------------------

    def model_dict(self, served: Served, model: ModelManifest, *, full: bool) -> dict[str, Any]:
        out = model.model_dump(mode="json")
        versions = served.versions[model.name]
        latest = next(
            (v for v in reversed(versions) if v.status.value == "trained" and not v.deprecated),
            None,
        )
        out["latest"] = None if latest is None else {"version": latest.version, "id": latest.id}
        out["versions_count"] = len(versions)
        out["last_used_at"] = iso(self.usage.last_used.get(model.name))
        if full:
            out["versions"] = [
                {
                    "version": v.version,
                    "id": v.id,
                    "status": v.status.value,
                    "deprecated": v.deprecated,
                    "format": v.artifact.format if v.artifact else None,
                }
                for v in versions
            ]
            out["pointers"] = [self.pointer_dict(served, p) for p in served.pointers[model.name]]
        return out

    def pointer_dict(self, served: Served, pointer: core.Pointer) -> dict[str, Any]:
        out = pointer.to_dict()
        try:
            resolution = served.snapshot.resolve(f"{pointer.model}:{pointer.tag}")
            out["resolves_to"] = {
                "version": resolution.version.version,
                "id": resolution.version.id,
            }
        except RegistryError as exc:
            out["resolves_to"] = None
            out["error"] = str(exc)
        return out

    def registry_dict(self) -> dict[str, Any]:
        out = self.served.to_dict()
        out["follow"] = self.follow
        out["ready"] = self.ready
        out["loaded_models"] = len(self.pool.loaded)
        out["last_reload_error"] = (
            self.last_reload_error.to_dict() if self.last_reload_error else None
        )
        return out


# -- helpers ---------------------------------------------------------------------
