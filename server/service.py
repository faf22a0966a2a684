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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar.openapi.spec import Schema
from litestar.params import FromPath

import registry as core
from registry import (
    ModelManifest,
    Registry,
    RegistryError,
    VersionManifest,
    VersionNotFoundError,
    check_served_artifacts,
    clean_uploads,
    rfc3339,
)
from server import visibility
from server.auth import Auth, Viewer
from server.errors import ApiError, unexpected_error
from server.metrics import Metrics
from server.state import (
    FETCH_TIMEOUT,
    LATEST,
    ArtifactLocator,
    ModelPool,
    Pin,
    Served,
    fetch_remote_branch,
    remote_branch,
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
PRIVATE_RELOAD_ERROR = "the newest revision failed to load (a token shows why)"
PRIVATE_FETCH_ERROR = "fetching the followed branch failed (a token shows why)"


_REF_PATTERN = (
    f"^(?:{core.names.VERSION_ID_RE.pattern}"
    f"|{core.names.MODEL_NAME_RE.pattern}(?::{core.names.TAG_RE.pattern})?)$"
)
# The bodies take exactly one of "data" and "inputs", and nothing else (OpenAPI says so too).
_ONE_OF_DATA_OR_INPUTS = {
    "one_of": [Schema(required=["data"]), Schema(required=["inputs"])],
    "additional_properties": False,
}
INVOKE_SCHEMA = _ONE_OF_DATA_OR_INPUTS
RUN_SCHEMA = _ONE_OF_DATA_OR_INPUTS


class InvokeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`{"data": x}` for one input or `{"inputs": [x, ...]}` for a batch."""

    data: Any | msgspec.UnsetType = msgspec.UNSET
    inputs: list[Any] | msgspec.UnsetType = msgspec.UNSET


class RunRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`{"pipeline": "iris:prod", "inputs": [...]}` (or `"data"` for one input)."""

    pipeline: Annotated[str, msgspec.Meta(pattern=_REF_PATTERN)]
    inputs: list[Any] | msgspec.UnsetType = msgspec.UNSET
    data: Any | msgspec.UnsetType = msgspec.UNSET


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
        fetch_timeout: float = FETCH_TIMEOUT,
        auth: Auth,
        preload: bool,
        max_loaded: int,
        locate: ArtifactLocator,
        usage_path: Path | str | None,
    ) -> None:
        self.registry = registry
        # What is served is pinned to a full ref name or commit id, never a short name that a
        # new branch (`refs/heads/origin/main`) could shadow; `label` is the name as given.
        self.label = follow or rev
        self.rev = core.full_ref(registry.root, self.label)
        self.follow = follow
        self.poll = poll
        self.fetch_timeout = fetch_timeout
        # The last fetch of a followed remote branch: when it last worked, its last error, and
        # since when one is running (a remote that hangs shows here before the timeout stops it).
        self.last_fetch_at: datetime | None = None
        self.last_fetch_error: ReloadError | None = None
        self.fetching_since: datetime | None = None
        self.fetches = follow is not None and remote_branch(registry, self.rev) is not None
        self.auth = auth
        self.preload = preload
        self.metrics = Metrics(self)
        self.pool = ModelPool(registry, locate, max_loaded)
        self.usage = open_usage_store(usage_path)
        self.served: Served = Served.load(registry, self.rev, self.label)
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
        # Uploads of a server killed mid-transfer; a live worker's own are locked and stay.
        await anyio.to_thread.run_sync(clean_uploads, self.registry.state_dir)
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
        # Said after uvicorn drained the in-flight requests: the exact count of what was answered.
        log.info(
            "answered %d invocations, %d usage records dropped",
            self.metrics.invocations_total(),
            getattr(self.usage, "dropped", 0),
        )

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
                    self.metrics.load_failed(name)
                    log.warning("preload of %s failed: %s", resolution.ref, exc)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.reload()
            except Exception:  # the poller must survive anything; the error is logged
                log.exception("polling %s failed", self.rev)

    async def _fetch(self) -> str | None:
        """Fetch the followed remote branch (bounded by fetch_timeout); the error text if it fails."""
        self.fetching_since = datetime.now(UTC)
        try:
            error = await anyio.to_thread.run_sync(
                fetch_remote_branch, self.registry, self.rev, self.fetch_timeout
            )
        finally:
            self.fetching_since = None
        if error:
            self.last_fetch_error = ReloadError(None, error, datetime.now(UTC))
        else:
            self.last_fetch_at, self.last_fetch_error = datetime.now(UTC), None
        return error

    async def reload(self) -> bool:
        """Load the newest commit of the served ref and swap to it; False when unchanged or failed."""
        async with self._reload_lock:
            fetch_error = await self._fetch() if self.fetches else None
            if fetch_error:
                # Keep serving; the next poll tries again. The last good fetch is what rev-parse sees.
                log.warning("fetching %s failed: %s", self.label, fetch_error)
                self.last_reload_error = ReloadError(
                    None, f"fetching {self.label} failed: {fetch_error}", datetime.now(UTC)
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
                served = await anyio.to_thread.run_sync(Served.load, self.registry, sha, self.label)
                # Swapping in a commit whose served artifacts are corrupt or gone fails every
                # unpinned call: keep the last good revision instead.
                problems = await anyio.to_thread.run_sync(
                    check_served_artifacts, self.registry.root, served.snapshot
                )
                if problems:
                    raise core.ArtifactError("; ".join(str(p) for p in problems))
                if self.preload:
                    await anyio.to_thread.run_sync(self.preload_models, served)
            except RegistryError as exc:
                self.metrics.reload_failed()
                self.last_reload_error = ReloadError(sha or None, str(exc), datetime.now(UTC))
                log.warning(
                    "keeping %s: revision %s failed to load: %s", self.served.revision, sha, exc
                )
                return False
            # The swap: one assignment. Requests in flight keep the Served they started with.
            self.previous, self.served = self.served, served
            self.last_reload_error = None
            self.pool.forget_failures()
            self.metrics.reloaded()
            log.info("now serving %s at %s", self.rev, sha)
            return True

    # -- invocation ------------------------------------------------------------

    def _resolve(
        self, served: Served, model: str, pin: Pin, viewer: Viewer
    ) -> tuple[Served, core.Resolution]:
        try:
            return served, visibility.resolve_pin(served, model, pin, viewer)
        except VersionNotFoundError:
            # A pinned id stays valid across a swap even if the new revision lost it somehow.
            previous = self.previous
            if pin.kind != "model_id" or previous is None:
                raise
            return previous, visibility.resolve_pin(previous, model, pin, viewer)

    async def invoke(
        self,
        kind: str,
        model: str,
        pin: Pin,
        inputs: list[Any],
        viewer: Viewer,
        ref: str,
        *,
        agree: Sequence[Pin] = (),
    ) -> tuple[InvokeResponse, str]:
        """Run `inputs` through the version `pin` names; returns the response and the record id.

        Pins in `agree` must name the same version (else 409). Every call is
        recorded, failed ones too, with the status the caller gets.
        """
        start = time.perf_counter()
        served = self.served
        record_id = f"run_{self._id_prefix}{next(self._ids):08x}"
        status, error, outputs = 200, None, None
        version: VersionManifest | None = None
        try:
            manifest = visibility.model(served, model, viewer)
            self.auth.check(viewer, "invoke", manifest)
            served, resolution = self._resolve(served, model, pin, viewer)
            version = resolution.version
            for other in agree:
                check_agreement(
                    model,
                    pin,
                    version,
                    other,
                    self._resolve(served, model, other, viewer)[1].version,
                )
            outputs = await self._predict(served, model, version, inputs)
        except RegistryError as exc:
            status, error = exc.status, exc.code
            exc.recorded = True  # type: ignore[attr-defined]
            raise
        except Exception as exc:  # a model failing in a way no loader expects: 500, recorded
            status, error = 500, "internal_error"
            log.exception("%s of %s failed unexpectedly", kind, ref)
            failure = unexpected_error()
            failure.recorded = True  # type: ignore[attr-defined]
            raise failure from exc
        finally:
            self.usage.record(
                (
                    record_id,
                    kind,
                    ref,
                    model,
                    version.version if version else None,
                    version.id if version else None,
                    served.revision,
                    viewer.who,
                    status,
                    error,
                    (time.perf_counter() - start) * 1000.0,
                    len(inputs),
                    time.time(),
                    msgspec.json.encode(outputs).decode()
                    if kind == "run" and status < 400
                    else None,
                )
            )
        self.metrics.invoked(model, version.version, version.id)
        return (
            InvokeResponse(model, version.version, version.id, served.revision, outputs),
            record_id,
        )

    def record_failure(
        self, kind: str, model: str, ref: str | None, who: str, status: int, code: str
    ) -> None:
        """Record a call that failed before it reached `invoke` (its body, query or token)."""
        record_id = f"run_{self._id_prefix}{next(self._ids):08x}"
        self.usage.record(
            (
                record_id,
                kind,
                ref,
                model,
                None,
                None,
                self.served.revision,
                who,
                status,
                code,
                0.0,
                0,
                time.time(),
                None,
            )
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
                self.metrics.load_failed(model)
                raise
        labels = version.output_info.get("labels")
        if len(inputs) <= INLINE_MAX_INPUTS and loaded.library in INLINE_LIBRARIES:
            return core.predict(loaded, inputs, labels)
        return await anyio.to_thread.run_sync(core.predict, loaded, inputs, labels)

    # -- views -----------------------------------------------------------------

    def model_dict(
        self, served: Served, model: ModelManifest, *, full: bool, viewer: Viewer
    ) -> dict[str, Any]:
        """A model as `viewer` may see it: its hidden (private) versions are left out."""
        versions = visibility.versions(served, model, viewer)
        latest = core.newest_servable(versions)
        out = core.model_view(
            model.model_dump(mode="json"),
            len(versions),
            None if latest is None else (latest.version, latest.id),
        )
        out["last_used_at"] = iso(self.usage.last_used.get(model.name))
        if full:
            out["versions"] = core.version_rows(versions)
            out["pointers"] = [
                self.pointer_dict(served, p, viewer) for p in served.pointers[model.name]
            ]
        return out

    def pointer_dict(self, served: Served, pointer: core.Pointer, viewer: Viewer) -> dict[str, Any]:
        """A pointer and where it resolves; a hidden target is `null` (both fields), like a missing one."""
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

    def registry_dict(self, viewer: Viewer) -> dict[str, Any]:
        """The revision served; an anonymous caller gets counts of public things only."""
        served = self.served
        out = served.to_dict()
        out["follow"] = self.follow
        out["ready"] = self.ready
        out["loaded_models"] = len(self.pool.loaded)
        out["last_reload_error"] = (
            self.last_reload_error.to_dict() if self.last_reload_error else None
        )
        out["last_fetch_at"] = rfc3339(self.last_fetch_at) if self.last_fetch_at else None
        out["last_fetch_error"] = self.last_fetch_error.to_dict() if self.last_fetch_error else None
        out["fetching_since"] = rfc3339(self.fetching_since) if self.fetching_since else None
        if not viewer.reader:
            shown = [m for m in served.models.values() if viewer.sees(m)]
            out["counts"] = {
                "models": sum(1 for m in shown if not m.archived),
                "archived_models": sum(1 for m in shown if m.archived),
                "versions": sum(len(visibility.versions(served, m, viewer)) for m in shown),
                "pointers": sum(len(served.pointers[m.name]) for m in shown),
            }
            out["loaded_models"] = None  # the pool holds private models too
            if out["last_reload_error"] is not None:
                # The message may name private files; the revision and the time are enough.
                out["last_reload_error"]["message"] = PRIVATE_RELOAD_ERROR
            if out["last_fetch_error"] is not None:
                out["last_fetch_error"]["message"] = PRIVATE_FETCH_ERROR
        return out


# -- helpers ---------------------------------------------------------------------


def _pin_text(pin: Pin) -> str:
    return {"model_id": "modelId", "version": "version", "pointer": "pointer"}.get(
        pin.kind, "latest"
    ) + (f"={pin.value}" if pin.value else "")


def check_agreement(
    model: str, pin: Pin, version: VersionManifest, other: Pin, found: VersionManifest
) -> None:
    """409 when two pins of one request name different versions."""
    if found.id != version.id:
        raise ApiError(
            409,
            "pins_disagree",
            f"{_pin_text(pin)} names {model}:v{version.version} but {_pin_text(other)}"
            f" names {model}:v{found.version}",
        )
