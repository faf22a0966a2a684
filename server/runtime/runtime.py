"""The server's state and behaviour without HTTP: the served revision, reloads, following a branch.

`Runtime` owns the served revision (and the one before it), the model pool,
the usage store, auth, metrics and the one `Invoker` that every protocol calls.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

import anyio.to_thread

import registry as core
from registry import (
    InvalidRefError,
    Registry,
    RegistryError,
    RevisionNotFoundError,
    check_served_artifacts,
    clean_uploads,
)
from server.runtime.auth import Auth
from server.runtime.batcher import Batching
from server.runtime.follow import (
    FETCH_TIMEOUT,
    ReloadError,
    fetch_remote_branch,
    remote_branch,
    rev_parse,
)
from server.runtime.invoker import Invoker
from server.runtime.metrics import Gauges, Metrics
from server.runtime.pins import LATEST, Pin, PinKind
from server.runtime.pool import ArtifactLocator, ModelPool, default_locator
from server.runtime.repository import ModelRepository
from server.runtime.served import Served
from server.runtime.shadow import Shadows
from server.runtime.webhook_config import Webhook
from server.runtime.webhooks import Webhooks
from server.usage import open_usage_store

log = logging.getLogger("mreg.server")

# Revisions other than the served one that pages were asked for (a few, least recently used go).
MAX_OTHER_REVISIONS = 4
# Preloading looks at most this many models per pool slot (many may have nothing to load).
PRELOAD_LOOKS = 8


class Runtime:
    """The app's state: the served revision, the model pool, usage, auth, metrics, the invoker."""

    def __init__(
        self,
        registry: Registry,
        rev: str,
        *,
        follow: str | None = None,
        poll: float = 5.0,
        fetch_timeout: float = FETCH_TIMEOUT,
        auth: Auth,
        preload: bool = False,
        max_loaded: int = 8,
        locate: ArtifactLocator = default_locator,
        usage_path: Path | str | None = None,
        webhooks: list[Webhook] | None = None,
        batching: Batching | None = None,
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
        self.metrics = Metrics()
        self.pool = ModelPool(registry, locate, max_loaded)
        self.repository = ModelRepository(self.pool)  # the V2 model-repository extension
        self.usage = open_usage_store(usage_path)
        self.served: Served = Served.load(registry, self.rev, self.label)
        self.previous: Served | None = None
        self.last_reload_error: ReloadError | None = None
        self.ready = not preload
        self.invoker = Invoker(
            lambda: (self.served, self.previous), auth, self.pool, self.usage, self.metrics
        )
        self.shadows = self.invoker.shadows = Shadows(self.pool)
        if batching is not None:  # the server's batching defaults and queue bound (batcher.py)
            self.invoker.batching = batching
        self.metrics.watch(self)
        self.webhooks = Webhooks(registry, webhooks or [])
        self._reload_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._other: OrderedDict[str, Served] = OrderedDict()
        self._other_lock = threading.Lock()

    def gauges(self) -> Gauges:
        served = self.served
        return Gauges(
            len(self.pool.loaded),
            served.revision,
            served.ref,
            served.loaded_at.timestamp(),
            getattr(self.usage, "dropped", 0),
        )

    # -- lifecycle -------------------------------------------------------------

    async def startup(self) -> None:
        # Uploads of a server killed mid-transfer; a live worker's own are locked and stay.
        await anyio.to_thread.run_sync(clean_uploads, self.registry.state_dir)
        self.usage.start()
        self.webhooks.start()
        self.shadows.start()
        if self.preload:
            await anyio.to_thread.run_sync(self.preload_models, self.served)
            self.ready = True
        # What start-up made (every import, the preloaded models) lives as long as the server:
        # out of the cyclic collector's reach, whose full passes over it (some 340,000 objects,
        # 200 ms) paused every request now and then.
        gc.collect()
        gc.freeze()
        if self.follow and self.poll > 0:
            self._poller = asyncio.create_task(self._poll_loop())

    async def shutdown(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await self.webhooks.stop()
        await self.shadows.stop()
        await anyio.to_thread.run_sync(self.usage.close)
        self.invoker.batching.close()
        # Said after uvicorn drained the in-flight requests: the exact count of what was answered.
        log.info(
            "answered %d invocations, %d usage records dropped",
            self.metrics.invocations_total(),
            getattr(self.usage, "dropped", 0),
        )

    def preload_models(self, served: Served) -> None:
        """Load the latest version and every pointer target of the most recently used models,
        until the pool is full (it could hold no more): a bounded read, whatever the registry's
        size, of one model's files at a time."""
        looks = PRELOAD_LOOKS * self.pool.max_loaded
        last_used = self.usage.last_used
        recent = sorted(last_used, key=last_used.__getitem__, reverse=True)[:looks]
        # Then the first models by name: a page, so the tree is never listed whole.
        try:
            first = served.snapshot.models_page(limit=looks).models
        except RegistryError as exc:  # a broken manifest there: its own requests will say so
            log.warning("preload: %s", exc)
            first = []
        order = list(dict.fromkeys([*recent, *(m.name for m in first)]))
        for name in order[:looks]:
            if len(self.pool.loaded) >= self.pool.max_loaded:
                return
            model = served.models.get(name)
            if model is None or model.archived or self.pool.is_unloaded(name):
                continue  # archived, or unloaded through the repository extension
            pins = [LATEST, *(Pin(PinKind.POINTER, p.tag) for p in served.pointers[name])]
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

    # -- following the served ref ------------------------------------------------

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
                # What changed since the served revision must read and resolve (the rest was
                # served already): a bad commit is refused here, not in a request.
                changed = await anyio.to_thread.run_sync(
                    served.check_change, self.registry, self.served.revision
                )
                # Swapping in a commit whose served artifacts are corrupt or gone fails every
                # unpinned call: keep the last good revision instead.
                problems = await anyio.to_thread.run_sync(
                    check_served_artifacts, self.registry.root, changed
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
            self.webhooks.revision_changed(self.previous.revision, sha)
            self.last_reload_error = None
            self.pool.forget_failures()
            self.metrics.reloaded()
            log.info("now serving %s at %s", self.rev, sha)
            return True

    def serves_checked_out(self) -> bool:
        """Whether the served ref is the checked-out branch (a write there is served at once)."""
        branch = self.registry.branch
        return self.rev == "HEAD" or (
            branch is not None and self.rev in (branch, f"refs/heads/{branch}")
        )

    # -- other revisions (the web page's ?rev=) ----------------------------------

    def served_at(self, rev: str | None) -> Served:
        """The served revision by default, else `rev` read from git (blocking; a few are kept)."""
        served = self.served
        if not rev:
            return served
        if rev.startswith("-") or any(c.isspace() for c in rev):
            raise InvalidRefError(f"invalid revision {rev!r}", ref=rev)
        sha = rev_parse(self.registry, rev)
        if not sha:
            raise RevisionNotFoundError(f"revision {rev!r} not found", ref=rev)
        for candidate in (served, self.previous):
            if candidate is not None and candidate.revision == sha:
                return candidate
        with self._other_lock:
            hit = self._other.get(sha)
            if hit is not None:
                self._other.move_to_end(sha)
                return hit
        loaded = Served.load(self.registry, sha, rev)
        with self._other_lock:
            self._other[sha] = loaded
            while len(self._other) > MAX_OTHER_REVISIONS:
                self._other.popitem(last=False)
        return loaded
