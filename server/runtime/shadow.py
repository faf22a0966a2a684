"""Shadow traffic: a sample of a pointer's calls also goes to its `shadow:` version, off the
request path, and the two answers are compared.

The invoker `offer`s a call after its primary answer is ready; `offer` never
waits and never raises: a call goes into a bounded queue, or, when the queue
is full, is dropped and counted. One background task takes the waiting
calls off the queue (up to `BATCH`) and runs each one's load and predict,
timed on its own, in one worker thread (never on the event loop), so a slow
shadow slows only itself: its queue fills and further calls are dropped. A shadow that fails (cannot load,
predict raises) is counted as failed. What was compared is kept in memory,
per pointer invoked, in a bounded window of the latest `WINDOW` comparisons
(the counts cover the whole life of the process; a restart starts afresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

import registry as core
from registry import RegistryError, Resolution, VersionManifest
from server.runtime.pool import ModelPool
from server.runtime.served import Served

log = logging.getLogger("mreg.server")

QUEUE_SIZE = 256  # calls waiting for their shadow; beyond it they are dropped (and counted)
WINDOW = 1000  # comparisons kept per pointer for the report
BATCH = 64  # queued calls handed to the worker thread at once
RECENT = 10  # calls whose outputs (primary and shadow, side by side) the report shows


@dataclass(frozen=True)
class ShadowCall:
    """One call to repeat on the shadow: what went in and what the primary answered."""

    model: str
    tag: str
    served: Served
    primary: VersionManifest
    shadow: VersionManifest
    rows: list[Any]
    outputs: list[Any]
    primary_ms: float


@dataclass(frozen=True)
class Comparison:
    """One call compared: rows whose labels agreed (of `labels`), the numeric outputs' absolute
    differences, and both latencies."""

    rows: int
    labels: int
    agreed: int
    diffs: tuple[float, ...]
    primary_ms: float
    shadow_ms: float


@dataclass
class ShadowStats:
    """What one pointer's shadow did: the latest comparisons and the counts since start."""

    window: deque[Comparison] = field(default_factory=lambda: deque(maxlen=WINDOW))
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT))
    compared: int = 0
    dropped: int = 0
    failed: int = 0
    last_error: str | None = None
    shadow: tuple[int, str] | None = None  # the shadow version last compared: (n, id)


def _value(out: Any) -> Any:
    """What is compared of one output: a classifier's label, else the output itself."""
    return out["label"] if isinstance(out, dict) and "label" in out else out


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def compare(primary: Sequence[Any], shadow: Sequence[Any]) -> tuple[int, int, list[float]]:
    """(rows with a label, of them those that agree, absolute differences of numeric outputs).

    A float output (or a list of numbers) is a regression's: its difference is
    measured; anything else (a label, a class number) agrees or not.
    """
    labels, agreed, diffs = 0, 0, []
    for a, b in zip(primary, shadow, strict=False):
        a, b = _value(a), _value(b)
        if isinstance(a, float) and _number(b):
            diffs.append(abs(a - float(b)))
        elif (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(_number(x) for x in [*a, *b])
        ):
            diffs.extend(abs(float(x) - float(y)) for x, y in zip(a, b, strict=True))
        else:
            labels += 1
            agreed += a == b
    return labels, agreed, diffs


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


class Shadows:
    """The shadow queue, its one background worker and the per-pointer reports."""

    def __init__(self, pool: ModelPool, queue_size: int = QUEUE_SIZE) -> None:
        self.pool = pool
        self.queue_size = queue_size
        self._queue: asyncio.Queue[ShadowCall] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stats: dict[tuple[str, str], ShadowStats] = {}
        self._lock = threading.Lock()

    def stats(self, model: str, tag: str) -> ShadowStats:
        with self._lock:
            return self._stats.setdefault((model, tag), ShadowStats())

    def offer(
        self,
        model: str,
        tag: str,
        served: Served,
        resolution: Resolution,
        key: str | None,
        rows: list[Any],
        outputs: list[Any],
        primary_ms: float,
    ) -> None:
        """Queue the call for the pointer's shadow when it is sampled; never waits or raises."""
        shadow = resolution.shadow
        if shadow is None or shadow.version is None or not shadow.takes(key):
            return
        if not shadow.version.servable:
            return
        call = ShadowCall(
            model, tag, served, resolution.version, shadow.version, rows, outputs, primary_ms
        )
        queue = self._queue
        if queue is None:  # not started (no lifespan): nothing runs shadows
            self.stats(model, tag).dropped += 1
            return
        try:
            queue.put_nowait(call)
        except asyncio.QueueFull:
            self.stats(model, tag).dropped += 1

    def start(self) -> None:
        self._queue = asyncio.Queue(self.queue_size)
        self._task = asyncio.create_task(self._work(self._queue))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._queue, self._task = None, None

    async def idle(self) -> None:
        """Until every queued call has been compared (tests and benchmarks wait on it)."""
        if self._queue is not None:
            await self._queue.join()

    async def _work(self, queue: asyncio.Queue[ShadowCall]) -> None:
        while True:
            # The calls waiting now go to one worker thread together (one hop, not one per call);
            # each is still predicted and timed on its own.
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                done = await anyio.to_thread.run_sync(self._predict_all, batch)
                for call, outcome in zip(batch, done, strict=True):
                    self._record(call, outcome)
            finally:
                for _ in batch:
                    queue.task_done()

    def _predict_all(
        self, batch: list[ShadowCall]
    ) -> list[tuple[list[Any], float] | BaseException]:
        out: list[tuple[list[Any], float] | BaseException] = []
        for call in batch:
            try:
                out.append(self._predict(call))
            except Exception as exc:  # any failure of the shadow is counted, never raised
                out.append(exc)
        return out

    def _record(self, call: ShadowCall, outcome: tuple[list[Any], float] | BaseException) -> None:
        stats = self.stats(call.model, call.tag)
        if isinstance(outcome, BaseException):
            stats.failed += 1
            exc = outcome
            stats.last_error = str(exc) if isinstance(exc, RegistryError) else type(exc).__name__
            if not isinstance(exc, RegistryError):
                log.warning("shadow %s:v%s failed", call.model, call.shadow.version, exc_info=exc)
            return
        outputs, ms = outcome
        labels, agreed, diffs = compare(call.outputs, outputs)
        with self._lock:
            stats.window.append(
                Comparison(len(call.rows), labels, agreed, tuple(diffs), call.primary_ms, ms)
            )
            stats.recent.append(
                {
                    "at": round(time.time(), 3),
                    "primary": {"outputs": call.outputs, "latency_ms": round(call.primary_ms, 3)},
                    "shadow": {"outputs": outputs, "latency_ms": round(ms, 3)},
                }
            )
            stats.compared += 1
            stats.shadow = (call.shadow.version, call.shadow.id)

    def _predict(self, call: ShadowCall) -> tuple[list[Any], float]:
        """Load (through the shared pool) and predict with the shadow; its output and latency."""
        version = call.shadow
        assert version.artifact is not None
        loaded = self.pool.get(version.artifact.md5) or self.pool.load(
            call.served.snapshot, call.model, version
        )
        start = time.perf_counter()
        outputs = core.predict(loaded, call.rows, version.output_info.get("labels"))
        return outputs, (time.perf_counter() - start) * 1000.0

    def report(self, model: str, tag: str, resolution: Resolution | None) -> dict[str, Any]:
        """What `GET /v1/models/{m}/pointers/{tag}/shadow` answers for this pointer."""
        stats = self.stats(model, tag)
        with self._lock:
            window = list(stats.window)
            counts = {"compared": stats.compared, "dropped": stats.dropped, "failed": stats.failed}
            last_error, compared_with = stats.last_error, stats.shadow
            recent = list(stats.recent)
        labels = sum(c.labels for c in window)
        diffs = [d for c in window for d in c.diffs]
        shadow = resolution.shadow if resolution is not None else None
        return {
            "model": model,
            "pointer": tag,
            "shadow": shadow.to_dict() if shadow is not None else None,
            "primary": (
                {"version": resolution.version.version, "id": resolution.version.id}
                if resolution is not None
                else None
            ),
            "compared_with": (
                {"version": compared_with[0], "id": compared_with[1]} if compared_with else None
            ),
            "window": {"size": WINDOW, "calls": len(window), "rows": sum(c.rows for c in window)},
            "agreement": round(sum(c.agreed for c in window) / labels, 4) if labels else None,
            "mean_abs_diff": round(sum(diffs) / len(diffs), 6) if diffs else None,
            "latency_ms": {
                side: {
                    "p50": percentile([getattr(c, f"{side}_ms") for c in window], 50),
                    "p95": percentile([getattr(c, f"{side}_ms") for c in window], 95),
                }
                for side in ("primary", "shadow")
            },
            "counts": counts,
            "last_error": last_error,
            "recent": list(reversed(recent)),  # newest first
        }
