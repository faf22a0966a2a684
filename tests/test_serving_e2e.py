"""Serving at the speed of the model, end to end: a real `mreg serve` process over HTTP.

A slow model predicts in its own worker threads: /healthz and another model answer
while it runs, and a model holding `--max-queued` requests answers 503 with
Retry-After. Models with a `serving:` block batch concurrent /v1 invoke, /v1/runs
and /v2 infer calls; each caller gets its own rows, its own record and its own error.
No timed thresholds: overlap is shown by ordering (see `_during`).
"""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from registry import Registry
from tests.processes import MREG, serving
from tests.server_fixtures import LABELS, SETOSA, VIRGINICA

pytest_plugins = ["tests.server_fixtures"]

BIG = 1000  # rows of the slow call: seconds of pairwise distances for the slow model


def slow_model(path: Path) -> Path:
    """A real, skops-trusted estimator that is genuinely slow on a big input: brute-force
    k-nearest-neighbours in a non-Euclidean metric (no BLAS) over 20,000 points."""
    import skops.io
    from sklearn.neighbors import KNeighborsClassifier

    x = np.random.default_rng(0).random((20_000, 16))
    knn = KNeighborsClassifier(n_neighbors=3, algorithm="brute", metric="minkowski", p=3)
    skops.io.dump(knn.fit(x, (x[:, 0] > 0.5).astype(int)), path)
    return path


@pytest.fixture
def registry(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("slow")
    reg.register("slow", slow_model(tmp_path / "slow.skops"))
    for name, fmt in (("iris", "skops"), ("flowers", "onnx")):
        reg.create_model(name)
        reg.register(name, model_files[fmt], output_info={"labels": LABELS}, point=["prod"])
        reg.update_model(name, serving={"max_batch_size": 32, "max_batch_delay_ms": 20})
    return reg


def _during(start: float, end: float, latency_ms: float, sent: float, answered: float) -> bool:
    """Whether a call sent at `sent` and answered at `answered` (client clock) was answered
    while the slow call (sent at `start`, answered at `end`, its server-side latency
    `latency_ms`) was being predicted: the slow call began by `end - latency` and went on
    at least until `start + latency`."""
    latency = latency_ms / 1000.0
    return end - latency < sent and answered < start + latency


@pytest.mark.slow
def test_a_slow_model_delays_neither_healthz_nor_another_model(registry: Registry) -> None:
    big = np.random.default_rng(1).random((BIG, 16)).tolist()
    with serving(registry.root, "--max-queued", "1", timeout=120) as server:
        slow: dict[str, Any] = {}

        def call_slow() -> None:
            slow["start"] = time.perf_counter()
            slow["response"] = server.post(
                "/v1/models/slow/invoke", json={"inputs": big}, timeout=300
            )
            slow["end"] = time.perf_counter()

        thread = threading.Thread(target=call_slow)
        thread.start()
        calls: list[tuple[str, float, httpx.Response, float]] = []
        while thread.is_alive():
            for what, send in (
                ("healthz", lambda: server.get("/healthz")),
                ("iris", lambda: server.post("/v1/models/iris/invoke", json={"data": SETOSA})),
                ("slow", lambda: server.post("/v1/models/slow/invoke", json={"data": big[0]})),
            ):
                sent = time.perf_counter()
                response = send()
                calls.append((what, sent, response, time.perf_counter()))
        thread.join()
        assert slow["response"].status_code == 200, slow["response"].text
        assert len(slow["response"].json()["outputs"]) == BIG
        jobs = server.get("/v1/jobs", params={"model": "slow", "limit": 1000}).json()["jobs"]
        (record,) = [j for j in jobs if j["inputs"] == BIG]

    during = [
        (what, r)
        for what, sent, r, answered in calls
        if _during(slow["start"], slow["end"], record["latency_ms"], sent, answered)
    ]
    answered = {what for what, r in during if r.status_code == 200}
    assert {"healthz", "iris"} <= answered, [(w, r.status_code) for w, r in during]
    iris = next(r for what, r in during if what == "iris")
    assert iris.json()["outputs"][0]["label"] == "setosa"
    # The slow model holds its one allowed request: another one is refused at once.
    refused = [r for what, r in during if what == "slow"]
    assert refused and all(r.status_code == 503 for r in refused)
    assert refused[0].headers["retry-after"] == "1"
    assert refused[0].json()["error"]["code"] == "overloaded"
    assert set(refused[0].json()["error"]) == {"code", "message", "detail"}


def _v2(rows: list[list[float]]) -> dict[str, Any]:
    data = [x for row in rows for x in row]
    return {
        "inputs": [{"name": "input", "shape": [len(rows), 4], "datatype": "FP32", "data": data}]
    }


@pytest.mark.slow
def test_batched_models_answer_every_protocol_each_with_its_own_rows(registry: Registry) -> None:
    with serving(registry.root, timeout=120) as server:
        calls: list[tuple[str, str, dict[str, Any], Any]] = []
        for model in ("iris", "flowers"):
            for i in range(8):
                rows = [SETOSA, VIRGINICA][: 1 + i % 2] if i % 3 else [VIRGINICA] * (1 + i % 3)
                want = ["setosa", "virginica"][: len(rows)] if i % 3 else ["virginica"] * len(rows)
                calls.append((model, f"/v1/models/{model}/invoke", {"inputs": rows}, want))
                calls.append(
                    (model, "/v1/runs", {"pipeline": f"{model}:prod", "inputs": rows}, want)
                )
                calls.append((model, f"/v2/models/{model}/infer", _v2(rows), want))
            calls.append((model, f"/v1/models/{model}/invoke", {"inputs": [[1.0, 2.0]]}, None))
            calls.append((model, f"/v1/models/{model}/invoke", {"inputs": [[1, "x"]]}, None))

        def send(call: tuple[str, str, dict[str, Any], Any]) -> httpx.Response:
            return server.post(call[1], json=call[2])

        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(send, calls))
        for (_, path, _, want), r in zip(calls, responses, strict=True):
            if want is None:
                assert r.status_code in (400, 422), r.text
                assert r.json()["error"]["code"] in ("invalid_input", "bad_request"), r.text
                continue
            assert r.status_code == 200, (path, r.text)
            if path.startswith("/v2"):
                label = next(o for o in r.json()["outputs"] if o["name"] == "label")
                assert label["data"] == want, (path, r.text)
            else:
                assert [o["label"] for o in r.json()["outputs"]] == want, (path, r.text)

        def records() -> list[dict[str, Any]]:
            return server.get("/v1/jobs", params={"limit": 1000}).json()["jobs"]

        server.wait_until(lambda: len(records()) >= len(calls), "did not record every call")
        jobs = records()
    for model in ("iris", "flowers"):
        mine = [j for j in jobs if j["model"] == model]
        wanted = [len(w) for m, _, _, w in calls if m == model and w is not None]
        succeeded = [j["inputs"] for j in mine if j["http_status"] == 200]
        assert sorted(succeeded) == sorted(wanted)  # each call its own record, its own count
        assert sum(1 for j in mine if j["http_status"] >= 400) == 2
        assert len({j["id"] for j in mine}) == len(mine)


def test_serving_settings_are_validated_and_patched_from_the_cli(registry: Registry) -> None:
    root = str(registry.root)
    run = [*MREG, "--repo", root, "model", "update", "iris", "--set"]
    ok = subprocess.run([*run, "serving={max_batch_delay_ms: 5}"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    serving_block = registry.snapshot("HEAD").model("iris").serving
    assert serving_block is not None
    assert (serving_block.max_batch_size, serving_block.max_batch_delay_ms) == (32, 5)
    before = registry.snapshot("HEAD").revision
    bad = subprocess.run([*run, "serving={max_batch_size: 0}"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ") and "max_batch_size" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert registry.snapshot("HEAD").revision == before


def test_the_serving_block_is_patched_over_http_and_validated(
    registry: Registry, tmp_path: Path
) -> None:
    from litestar.testing import TestClient

    from server import create_app
    from server.runtime.auth import Token, hash_token
    from tests.server_fixtures import bearer, token_secret

    writer = Token("writer", hash_token(token_secret("writer")), frozenset({"read", "write"}))
    app = create_app(registry.root, tokens=[writer], usage_path=tmp_path / "usage.sqlite")
    with TestClient(app=app) as client:
        r = client.patch(
            "/v1/models/flowers", json={"serving": {"max_batch_size": 8}}, headers=bearer("writer")
        )
        assert r.status_code == 200, r.text
        assert r.json()["model"]["serving"] == {"max_batch_size": 8, "max_batch_delay_ms": 20.0}
        before = registry.snapshot("HEAD").revision
        for bad in ({"max_batch_size": 0}, {"max_batch_delay_ms": -1}, {"size": 3}):
            r = client.patch("/v1/models/flowers", json={"serving": bad}, headers=bearer("writer"))
            assert r.status_code == 400, r.text
            assert set(r.json()["error"]) == {"code", "message", "detail"}
        assert registry.snapshot("HEAD").revision == before
        r = client.patch("/v1/models/flowers", json={"serving": None}, headers=bearer("writer"))
        assert r.status_code == 200, r.text
        assert "serving" not in r.json()["model"] or r.json()["model"]["serving"] is None
