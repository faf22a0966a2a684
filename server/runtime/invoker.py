"""The one invoke path: resolve -> permission -> predict -> usage record, for every protocol.

`/v1` invoke and runs, `/v2` infer and the web page all call `Invoker.invoke`.
It is kept lean on purpose (it is benchmarked): the version is resolved from
the in-memory revision (memoized), the model comes from the in-memory pool,
predict runs in the model's worker threads (server.runtime.batcher), and usage is queued
for a background writer. No git, YAML or SQLite on the way.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec

import registry as core
from registry import InvalidInputError, RegistryError, VersionManifest, VersionNotFoundError
from server.runtime import visibility
from server.runtime.auth import Auth, Viewer
from server.runtime.batcher import Batching
from server.runtime.errors import InternalError
from server.runtime.metrics import Observer
from server.runtime.pins import Pin, PinKind, check_agreement
from server.runtime.pool import ModelPool
from server.runtime.served import Served
from server.runtime.shadow import Shadows
from server.usage import QueuedUsageStore, UsageRecord

log = logging.getLogger("mreg.server")


class InvokeResponse(msgspec.Struct):
    model: str
    version: int
    model_id: str
    revision: str
    outputs: list[Any]


@dataclass(frozen=True)
class Call:
    """One call as the usage record names it: `invoke` or `run`, and what was asked for."""

    kind: str
    ref: str


def one_or_batch(data: Any, inputs: list[Any] | msgspec.UnsetType) -> list[Any]:
    """`{"data": x}` is one input, `{"inputs": [...]}` a batch; not both, not neither."""
    given = data is not msgspec.UNSET
    if inputs is not msgspec.UNSET and given:
        raise InvalidInputError(
            "give either 'data' or 'inputs', not both: {\"data\": x} for one input"
            ' or {"inputs": [x, ...]} for a batch'
        )
    if inputs is not msgspec.UNSET:
        return inputs
    if given:
        return [data]
    raise InvalidInputError('expected a body {"data": x} for one input or {"inputs": [x, ...]}')


class Invoker:
    """Resolves, checks permission once, predicts and records; shared by every protocol."""

    def __init__(
        self,
        served: Callable[[], tuple[Served, Served | None]],
        auth: Auth,
        pool: ModelPool,
        usage: QueuedUsageStore,
        metrics: Observer,
        batching: Batching | None = None,
    ) -> None:
        self.batching = batching or Batching()
        self._served = served  # the served revision and the one before it, read per call
        self.shadows: Shadows | None = None  # where sampled calls of a pointer with a shadow go
        self.auth = auth
        self.pool = pool
        self.usage = usage
        self.metrics = metrics
        # Record ids: random per process (workers, restarts), then a counter (cheaper than urandom).
        self._id_prefix = secrets.token_hex(4)
        self._ids = itertools.count()

    def next_id(self) -> str:
        return f"run_{self._id_prefix}{next(self._ids):08x}"

    def resolve(
        self, served: Served, previous: Served | None, model: str, pin: Pin, viewer: Viewer
    ) -> tuple[Served, core.Resolution]:
        try:
            return served, visibility.resolve_pin(served, model, pin, viewer)
        except VersionNotFoundError:
            # A pinned id stays valid across a swap even if the new revision lost it somehow.
            if pin.kind is not PinKind.MODEL_ID or previous is None:
                raise
            return previous, visibility.resolve_pin(previous, model, pin, viewer)

    def readable(
        self, model: str, pin: Pin, viewer: Viewer, scope: str = "read"
    ) -> tuple[Served, VersionManifest]:
        """The version `pin` names, once `viewer` may use `scope` on the model (V2 metadata)."""
        served, previous = self._served()
        self.auth.check(viewer, scope, visibility.model(served, model, viewer))
        served, resolution = self.resolve(served, previous, model, pin, viewer)
        return served, resolution.version

    async def invoke(
        self,
        call: Call,
        model: str,
        pin: Pin,
        inputs: list[Any] | Callable[[VersionManifest], list[Any]],
        viewer: Viewer,
        *,
        agree: Sequence[Pin] = (),
        route_key: str | None = None,
    ) -> tuple[InvokeResponse, str]:
        """Run `inputs` through the version `pin` names; returns the response and the record id.

        `inputs` may be a function of the version (V2 maps tensors to its features).
        Pins in `agree` must name the same version (else 409). Every call is
        recorded, failed ones too, with the status the caller gets. A weighted
        pointer's arm is chosen per call, sticky per `route_key` when given.
        """
        start = time.perf_counter()
        served, previous = self._served()
        record_id = self.next_id()
        status, error, outputs = 200, None, None
        count = len(inputs) if isinstance(inputs, list) else 0
        version: VersionManifest | None = None
        try:
            manifest = visibility.model(served, model, viewer)
            self.auth.check(viewer, "invoke", manifest)
            served, resolution = self.resolve(served, previous, model, pin, viewer)
            resolution = resolution.choose(route_key)  # a weighted pointer's arm for this call
            version = resolution.version
            for other in agree:
                found = self.resolve(served, None, model, other, viewer)[1].version
                check_agreement(model, pin, version, other, found)
            rows = inputs if isinstance(inputs, list) else inputs(version)
            count = len(rows)
            outputs = await self._predict(served, model, version, rows)
            if resolution.shadow is not None and self.shadows is not None:
                ms = (time.perf_counter() - start) * 1000.0
                self.shadows.offer(
                    model, pin.value, served, resolution, route_key, rows, outputs, ms
                )
        except RegistryError as exc:
            status, error = exc.status, exc.code
            raise
        except Exception as exc:  # a model failing in a way no loader expects: 500, recorded
            status, error = 500, "internal_error"
            log.exception("%s of %s failed unexpectedly", call.kind, call.ref)
            raise InternalError() from exc
        finally:
            self.usage.record(
                UsageRecord(
                    record_id,
                    call.kind,
                    call.ref,
                    model,
                    version.version if version else None,
                    version.id if version else None,
                    served.revision,
                    viewer.who,
                    status,
                    error,
                    (time.perf_counter() - start) * 1000.0,
                    count,
                    time.time(),
                    msgspec.json.encode(outputs).decode()
                    if call.kind == "run" and status < 400
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
        self.usage.record(
            UsageRecord(
                self.next_id(),
                kind,
                ref,
                model,
                None,
                None,
                self._served()[0].revision,
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
        # In the model's worker threads (never on the event loop), batched when it is on.
        serving = served.models[model].serving if model in served.models else None
        return await self.batching.predict(loaded, inputs, labels, serving)
