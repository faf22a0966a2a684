"""Predictions off the event loop, and adaptive batching per loaded model version.

Every prediction runs in a worker thread of its model's own executor (a slow or
looping model holds its threads, never the event loop nor another model's), except
one that is measured to be cheap: after MEASURED_CALLS timed predictions, an idle
model whose rows cost less than INLINE_BUDGET (1 ms) in all predicts on the loop,
where the thread hop would cost more than the model; any slow call moves it back to
its thread at once. A call timed in the thread also counts the wait for the GIL,
which a busy event loop holds: so that a cheap model is not kept in its thread by
load alone, one call in PROBE_EVERY is tried on the loop again, unless no call in
the thread took less than PROBE_LIMIT (a slow model never is). Each model bounds
the requests it holds: beyond `max_queued` the caller gets 503 with `Retry-After`
at once instead of a latency that grows without limit.

With batching on (a model's `serving.max_batch_size` > 1, or the server's default),
concurrent requests for the same loaded version are predicted as one batch of at
most `max_batch_size` rows. The batcher is adaptive: an idle model predicts a lone
request at once (no delay at one client); while a batch runs, new requests queue and
go together as the next batch, and once batches of several requests are seen the
next one waits up to `max_batch_delay_ms` to fill. A request whose rows are not a
rectangular array of numbers never joins a batch (it fails alone), and a batch the
model rejects is predicted request by request, so each request gets its own error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

import registry as core
from registry import LoadedModel
from server.runtime.errors import ApiError

DEFAULT_MAX_QUEUED = 128  # requests one model may hold (running and waiting) before 503
THREADS_PER_MODEL = 1  # one per model: two threads were slower under the GIL (BENCHMARKS.md)
MAX_LANES = 64  # idle lanes beyond this many are dropped (their model was evicted or re-set)
# A prediction measured to take less than this may run on the event loop itself: the thread
# hop costs more than such a model (iris: 740 req/s through the thread, ~1,900 inline).
INLINE_BUDGET = 0.001  # seconds a prediction may hold the event loop
MEASURED_CALLS = 8  # predictions timed in the thread before one may run inline
PROBE_EVERY = 32  # a model in its thread tries the loop again once in this many calls...
PROBE_LIMIT = 10 * INLINE_BUDGET  # ...when one of those calls took less than this


class Overloaded(ApiError):
    """The model holds `max_queued` requests already: try again shortly."""

    code = "overloaded"
    status = 503
    headers = {"Retry-After": "1"}


@dataclass(frozen=True)
class BatchSettings:
    """How one model batches: `max_batch_size` rows (1: off) waiting at most `max_batch_delay_ms`."""

    max_batch_size: int = 1
    max_batch_delay_ms: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1

    def over(self, serving: Any) -> BatchSettings:
        """These defaults, overridden by a model's `serving:` block (None: no block)."""
        if serving is None:
            return self
        size = serving.max_batch_size
        delay = serving.max_batch_delay_ms
        return BatchSettings(
            self.max_batch_size if size is None else size,
            self.max_batch_delay_ms if delay is None else delay,
        )


def _batch_key(rows: Sequence[Any]) -> tuple[int, ...] | None:
    """The shape of one row when `rows` is a rectangular array of numbers, else None."""
    try:
        array = np.asarray(rows)
    except (ValueError, TypeError):
        return None
    if array.ndim < 1 or array.dtype.kind not in "biuf":
        return None
    return tuple(array.shape[1:])


@dataclass
class _Waiting:
    rows: Sequence[Any]
    key: tuple[int, ...]
    future: asyncio.Future[list[Any]]
    since: float


class Lane:
    """One loaded model version with its labels and settings: its executor, queue and bound."""

    def __init__(
        self, loaded: LoadedModel, labels: Any, settings: BatchSettings, max_queued: int
    ) -> None:
        self.loaded = loaded
        self.labels = labels
        self.settings = settings
        self.max_queued = max_queued
        self.held = 0  # requests running or waiting
        self.batches = 0  # batches predicted (for tests and the benchmark)
        self.executor = ThreadPoolExecutor(THREADS_PER_MODEL, thread_name_prefix="mreg-predict")
        self._queue: deque[_Waiting] = deque()
        self._arrived = asyncio.Event()
        self._collector: asyncio.Task[None] | None = None
        self._last_batch = 1  # requests in the last batch: > 1 means callers are concurrent
        self._busy = 0  # predictions running in the executor
        self._idle = asyncio.Event()  # set while none runs: the next batch starts then
        self._idle.set()
        self._timed = 0  # predictions measured so far
        self._per_row = 0.0  # seconds a row costs: the slowest seen, decaying slowly
        self._threaded = 0  # calls in the thread since the loop was last tried
        self._fastest = float("inf")  # the cheapest of those calls, seconds a row
        self.inline = 0  # predictions run on the event loop (for tests and the benchmark)

    async def predict(self, rows: Sequence[Any]) -> list[Any]:
        if self.held >= self.max_queued:
            raise Overloaded(
                f"the model holds {self.held} requests already (its limit): try again shortly",
                detail={"max_queued": self.max_queued},
            )
        self.held += 1
        try:
            key = _batch_key(rows) if self.settings.enabled and rows else None
            idle = not self._busy and not self._queue  # an idle model predicts at once
            if key is None or len(rows) >= self.settings.max_batch_size or idle:
                return await self._run(rows)
            return await self._join(rows, key)
        finally:
            self.held -= 1

    def _fits_inline(self, n: int) -> bool:
        """Whether `n` rows are measured to cost less than INLINE_BUDGET (and nothing runs)."""
        return (
            not self._busy
            and self._timed >= MEASURED_CALLS
            and self._per_row * max(n, 1) < INLINE_BUDGET
        )

    def _may_probe(self, n: int) -> bool:
        """Whether to try the loop again for `n` rows: the calls in the thread were many, and
        one was cheap enough that the GIL's wait may be what made the others slow."""
        return (
            not self._busy
            and self._threaded >= PROBE_EVERY
            and self._fastest * max(n, 1) < PROBE_LIMIT
        )

    def _timed_predict(self, rows: Sequence[Any], where: str = "thread") -> list[Any]:
        """Predict and time it; `where` it runs: "thread", "loop", or "probe" (the loop,
        tried again after calls in the thread)."""
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return core.predict(self.loaded, rows, self.labels)
        finally:
            elapsed = time.perf_counter() - start
            if where != "thread" and elapsed < PROBE_LIMIT:
                # On the loop, the process's CPU time (the model's own threads, native ones
                # too): another program taking the core meanwhile does not make it look slow.
                # A call that held the loop PROBE_LIMIT or more counts whatever the cause.
                elapsed = time.process_time() - cpu
            per_row = elapsed / max(len(rows), 1)
            if where == "probe":  # no wait for the GIL on the loop: this is the model's cost
                self._per_row = per_row
                self._threaded, self._fastest = 0, float("inf")
            else:
                # A slow call counts at once; a fast one lowers the estimate only slowly.
                self._per_row = max(per_row, 0.9 * self._per_row + 0.1 * per_row)
            if where == "thread":
                self._threaded += 1
                self._fastest = min(self._fastest, per_row)
            self._timed += 1

    async def _run(self, rows: Sequence[Any]) -> list[Any]:
        if self._fits_inline(len(rows)):
            self.inline += 1
            return self._timed_predict(rows, "loop")
        if self._may_probe(len(rows)):
            self.inline += 1
            return self._timed_predict(rows, "probe")
        loop = asyncio.get_running_loop()
        self._busy += 1
        self._idle.clear()
        try:
            return await loop.run_in_executor(self.executor, self._timed_predict, rows)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _join(self, rows: Sequence[Any], key: tuple[int, ...]) -> list[Any]:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(rows, key, loop.create_future(), time.monotonic())
        self._queue.append(waiting)
        self._arrived.set()
        if self._collector is None or self._collector.done():
            self._collector = loop.create_task(self._collect())
        return await waiting.future

    def _queued_rows(self, key: tuple[int, ...]) -> int:
        return sum(len(w.rows) for w in self._queue if w.key == key)

    async def _collect(self) -> None:
        """Predict what is queued, batch after batch, until the queue is empty."""
        settings = self.settings
        while self._queue:
            await self._idle.wait()  # while a prediction runs, the queue fills
            first = self._queue[0]
            if self._last_batch > 1:  # concurrent callers: let the batch fill, up to the delay
                deadline = first.since + settings.max_batch_delay_ms / 1000.0
                while self._queued_rows(first.key) < settings.max_batch_size:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), left)
                    except TimeoutError:
                        break
            batch, rows, kept = [], 0, deque[_Waiting]()
            while self._queue:
                item = self._queue.popleft()
                if item.key == first.key and rows + len(item.rows) <= settings.max_batch_size:
                    batch.append(item)
                    rows += len(item.rows)
                else:
                    kept.append(item)
            self._queue.extendleft(reversed(kept))
            self._last_batch = len(batch)
            await self._predict_batch(batch)

    async def _predict_batch(self, batch: list[_Waiting]) -> None:
        self.batches += 1
        live = [w for w in batch if not w.future.done()]  # a caller gone (cancelled) is skipped
        if not live:
            return
        rows = [row for w in live for row in w.rows]
        try:
            outputs = await self._run(rows)
        except Exception as exc:
            if len(live) == 1:
                _settle(live[0], exc)
                return
            outputs = None
        if outputs is None or len(outputs) != len(rows):
            # The model rejected the batch: each request alone gets its own answer or error.
            for w in live:
                try:
                    _settle(w, await self._run(w.rows))
                except Exception as exc:
                    _settle(w, exc)
            return
        start = 0
        for w in live:
            _settle(w, outputs[start : start + len(w.rows)])
            start += len(w.rows)

    def close(self) -> None:
        self.executor.shutdown(wait=False)


def _settle(waiting: _Waiting, result: list[Any] | BaseException) -> None:
    if waiting.future.done():
        return
    if isinstance(result, BaseException):
        waiting.future.set_exception(result)
    else:
        waiting.future.set_result(result)


class Batching:
    """The lanes of every loaded model version, and the server's defaults for them."""

    def __init__(
        self, defaults: BatchSettings | None = None, max_queued: int = DEFAULT_MAX_QUEUED
    ) -> None:
        self.defaults = defaults or BatchSettings()
        self.max_queued = max(1, max_queued)
        self.lanes: dict[tuple[int, str, BatchSettings], Lane] = {}

    def lane(self, loaded: LoadedModel, labels: Any, serving: Any = None) -> Lane:
        settings = self.defaults.over(serving)
        key = (id(loaded), json.dumps(labels, sort_keys=True, default=str), settings)
        lane = self.lanes.get(key)
        if lane is None or lane.loaded is not loaded:
            if len(self.lanes) >= MAX_LANES:
                self._drop_idle()
            lane = self.lanes[key] = Lane(loaded, labels, settings, self.max_queued)
        return lane

    async def predict(
        self, loaded: LoadedModel, rows: Sequence[Any], labels: Any, serving: Any = None
    ) -> list[Any]:
        """`core.predict(loaded, rows, labels)` in the model's worker threads, batched when on."""
        return await self.lane(loaded, labels, serving).predict(rows)

    def _drop_idle(self) -> None:
        for key, lane in list(self.lanes.items()):
            if lane.held == 0:
                lane.close()
                del self.lanes[key]

    def close(self) -> None:
        for lane in self.lanes.values():
            lane.close()
        self.lanes.clear()
