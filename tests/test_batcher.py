"""Adaptive batching (server/runtime/batcher.py) with the real loaders of every format.

Concurrent requests for one loaded version are predicted as one batch; each gets
its own rows back and its own error. No HTTP here: tests/test_serving_e2e.py runs
the same through a real server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from registry import InvalidInputError, load_model, predict
from server.runtime.batcher import (
    MEASURED_CALLS,
    PROBE_EVERY,
    Batching,
    BatchSettings,
    Lane,
    Overloaded,
)
from tests.conftest import ALL_FORMATS
from tests.server_fixtures import FORMATS, LABELS, SETOSA, VIRGINICA

pytest_plugins = ["tests.server_fixtures"]

VERSICOLOR = [6.0, 2.7, 4.2, 1.3]
REQUESTS = [[SETOSA], [VIRGINICA, SETOSA], [VERSICOLOR], [VIRGINICA], [SETOSA, VERSICOLOR]] * 4


async def _gather(batching: Batching, loaded: Any, requests: list[Any], labels: Any) -> list[Any]:
    async def one(rows: Any) -> Any:
        try:
            return await batching.predict(loaded, rows, labels)
        except Exception as exc:
            return exc

    return await asyncio.gather(*(one(rows) for rows in requests))


def _concurrently(batching: Batching, loaded: Any, requests: list[Any]) -> tuple[list[Any], Lane]:
    """The requests sent at once (answers or errors, in order), and the model's lane; then
    `batching` is closed."""
    try:
        return asyncio.run(_gather(batching, loaded, requests, LABELS)), batching.lane(
            loaded, LABELS
        )
    finally:
        batching.close()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_concurrent_requests_are_one_batch_and_each_gets_its_own_rows(
    fmt: str, model_files: dict[str, Path]
) -> None:
    loaded = load_model(model_files[fmt], fmt, ALL_FORMATS)
    batching = Batching(BatchSettings(max_batch_size=32, max_batch_delay_ms=50))
    results, lane = _concurrently(batching, loaded, REQUESTS)
    assert results == [predict(loaded, rows, LABELS) for rows in REQUESTS]
    assert [o["label"] for o in results[1]] == ["virginica", "setosa"]
    # 20 requests, 28 rows: the first goes alone (the model was idle), the rest together.
    assert lane.batches < len(REQUESTS) // 2


@pytest.mark.parametrize("fmt", ["skops", "onnx", "torchscript", "keras"])
def test_a_malformed_request_fails_alone(fmt: str, model_files: dict[str, Path]) -> None:
    loaded = load_model(model_files[fmt], fmt, ALL_FORMATS)
    batching = Batching(BatchSettings(max_batch_size=32, max_batch_delay_ms=50))
    requests: list[Any] = [
        [SETOSA],
        [[1.0, 2.0]],  # a shape the model rejects, with a second request of the same shape
        [[1.0, "x", 2.0, 3.0]],  # not numbers: never joins a batch
        [[3.0, 4.0]],
        [[1.0, 2.0, 3.0], [1.0]],  # not rectangular
        [VIRGINICA],
    ]
    results, _ = _concurrently(batching, loaded, requests)
    assert [o["label"] for o in results[0]] == ["setosa"]
    assert [o["label"] for o in results[5]] == ["virginica"]
    for bad in (results[1], results[2], results[3], results[4]):
        assert isinstance(bad, InvalidInputError), bad


def test_batching_off_predicts_each_request_on_its_own(model_files: dict[str, Path]) -> None:
    loaded = load_model(model_files["skops"], "skops", ALL_FORMATS)
    results, lane = _concurrently(Batching(), loaded, REQUESTS)  # the server's default: off
    assert results == [predict(loaded, rows, LABELS) for rows in REQUESTS]
    assert lane.batches == 0 and not lane.settings.enabled


def test_a_model_holding_max_queued_requests_answers_overloaded(
    model_files: dict[str, Path],
) -> None:
    loaded = load_model(model_files["skops"], "skops", ALL_FORMATS)
    results, _ = _concurrently(Batching(max_queued=2), loaded, [[SETOSA]] * 5)
    answered = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert len(answered) == 2 and len(refused) == 3
    assert refused[0].status == 503 and refused[0].headers == {"Retry-After": "1"}


def test_a_model_s_serving_block_overrides_the_server_defaults() -> None:
    class Serving:
        max_batch_size = 16
        max_batch_delay_ms = None

    defaults = BatchSettings(max_batch_size=1, max_batch_delay_ms=3)
    assert defaults.over(None) == defaults
    assert defaults.over(Serving()) == BatchSettings(16, 3)


async def _one_by_one(batching: Batching, loaded: Any, requests: list[Any]) -> list[Any]:
    return [await batching.predict(loaded, rows, LABELS) for rows in requests]


Run = Callable[[Batching, Any, list[Any]], Coroutine[Any, Any, list[Any]]]


def _lanes_after(
    model_files: dict[str, Path], tmp_path: Path, run: Run, cheap_calls: int, slow_calls: int
) -> tuple[Lane, Lane]:
    """The lanes of a cheap model (iris) and a slow one after `run` sent them one-row and
    20-row requests; the cheap model's answers are checked against its own predict."""
    from tests.test_serving_e2e import slow_model

    cheap = load_model(model_files["skops"], "skops", ALL_FORMATS)
    slow = load_model(slow_model(tmp_path / "slow.skops"), "skops", ALL_FORMATS)
    batching = Batching()
    try:
        requests = [[SETOSA]] * cheap_calls
        results = asyncio.run(run(batching, cheap, requests))
        # 20 rows of 20,000 distances each: tens of ms a call, whatever the machine.
        asyncio.run(run(batching, slow, [[[0.5] * 16] * 20] * slow_calls))
        lanes = batching.lane(cheap, LABELS), batching.lane(slow, LABELS)
    finally:
        batching.close()
    assert results == [predict(cheap, rows, LABELS) for rows in requests]
    return lanes


def test_a_model_measured_cheap_predicts_on_the_loop_and_a_slow_one_never(
    model_files: dict[str, Path], tmp_path: Path
) -> None:
    calls = MEASURED_CALLS + 20
    cheap, slow = _lanes_after(model_files, tmp_path, _one_by_one, calls, MEASURED_CALLS + 2)
    # The first MEASURED_CALLS go through the thread, to be timed; then the loop takes them
    # (a noisy machine may send a few back to the thread: each slow call counts at once).
    assert 0 < cheap.inline <= calls - MEASURED_CALLS
    assert slow.inline == 0  # measured slow: always in its thread


async def _beside_a_busy_loop(batching: Batching, loaded: Any, requests: list[Any]) -> list[Any]:
    """The requests one by one while another task holds the event loop (and so the GIL) in
    pure Python for 3 ms at a time, as a loaded server's other requests do."""
    done = False

    async def busy() -> None:
        while not done:
            until = time.perf_counter() + 0.003
            while time.perf_counter() < until:
                pass
            await asyncio.sleep(0)

    task = asyncio.create_task(busy())
    try:
        return await _one_by_one(batching, loaded, requests)
    finally:
        done = True
        await task


def test_a_cheap_model_kept_in_its_thread_by_a_busy_loop_comes_back_to_the_loop(
    model_files: dict[str, Path], tmp_path: Path
) -> None:
    """Timed in its thread, a cheap model also waits for the GIL the busy loop holds (3 ms a
    call, over the budget): the loop is tried again once in PROBE_EVERY calls, and its cost
    there is the model's own. A slow model is never tried."""
    cheap, slow = _lanes_after(
        model_files, tmp_path, _beside_a_busy_loop, 3 * PROBE_EVERY, PROBE_EVERY + 2
    )
    assert cheap.inline > PROBE_EVERY  # back on the loop after at most one probe or two
    assert slow.inline == 0
