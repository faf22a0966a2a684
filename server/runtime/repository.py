"""The model-repository extension (Triton's and MLServer's) over the model pool, for REST and gRPC.

`index` lists the servable versions of every served model, READY when the
version is in the pool, else UNAVAILABLE; `load` loads what a name or ref
resolves to (`iris` is its latest, `iris:prod` the pointer's target);
`unload` evicts the model's versions from the pool. As in Triton's explicit
model control, an unloaded model stays unloaded: invokes of it answer 409
`model_unloaded` (and V2 readiness says not ready) until it is loaded again;
a reload of the revision does not bring it back either.

All three need a token with the admin scope, always: a server without tokens
refuses them (as it refuses writes), since any web page could otherwise post
an unload to a loopback server.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import anyio.to_thread

from server.runtime.auth import Auth, Viewer
from server.runtime.errors import AdminTokenRequired, ModelUnloaded
from server.runtime.pins import LATEST, Pin
from server.runtime.pool import ModelPool
from server.runtime.served import Served


class State(StrEnum):
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class IndexEntry:
    """One row of the repository index, as Triton's `RepositoryIndexResponse.ModelIndex`."""

    name: str
    version: str
    state: State
    reason: str


class ModelRepository:
    """Index, load and unload on the served revision's models and the shared model pool."""

    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool

    @staticmethod
    def check_admin(auth: Auth, viewer: Viewer) -> None:
        """403 without tokens configured; else 401 or 403 unless `viewer` holds the admin scope."""
        if not auth.enabled:
            raise AdminTokenRequired(
                "the model-repository extension needs a token with the 'admin' scope:"
                " start mreg serve with --tokens FILE (or MREG_TOKENS)"
            )
        auth.check(viewer, "admin")

    def index(self, served: Served, *, ready: bool = False) -> list[IndexEntry]:
        """Every servable version of each served (not archived) model; `ready`: the loaded only."""
        entries = []
        for name, model in sorted(served.models.items()):
            if model.archived:
                continue
            unloaded = self.pool.is_unloaded(name)
            for version in served.versions[name]:
                if not version.servable:
                    continue
                assert version.artifact is not None
                loaded = version.artifact.md5 in self.pool.loaded
                if ready and not loaded:
                    continue
                reason = "" if loaded else ("unloaded" if unloaded else "not loaded yet")
                state = State.READY if loaded else State.UNAVAILABLE
                entries.append(IndexEntry(name, str(version.version), state, reason))
        return entries

    async def load(self, served: Served, model: str, pin: Pin = LATEST) -> int:
        """Load the version `pin` names into the pool (blocking work in a thread); its number."""
        resolution, _ = served.resolve(model, pin)
        self.pool.mark_loaded(model)
        await anyio.to_thread.run_sync(self.pool.load, served.snapshot, model, resolution.version)
        return resolution.version.version

    def unload(self, served: Served, model: str) -> int:
        """Evict every version of the model (as Triton unloads a model, not one version); later
        invokes answer `model_unloaded`. Returns how many were in memory."""
        versions = served.versions[served.model(model).name]
        md5s = {v.artifact.md5 for v in versions if v.artifact is not None}
        return self.pool.unload(model, md5s)

    def check_loaded(self, model: str) -> None:
        """409 `model_unloaded` for a model unloaded through the repository extension."""
        if self.pool.is_unloaded(model):
            raise ModelUnloaded(model)
