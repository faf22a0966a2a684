"""`python -m bench.grpc_peers --tiny`: mreg's gRPC and MLServer's, under real load, complete.

Numbers are not checked (no timing assertions): every peer - mreg and MLServer,
batching off and on - must have served both models over gRPC, with the model's
own prediction (checked by the benchmark before its load), and no RPC failed.
MLServer comes from its venv (tests/mlserver_venv.py), which the test builds
when missing and fails, not skips, without.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mlserver_process import mlserver_bin
from tests.processes import run_bench

pytestmark = pytest.mark.slow

PEERS = {"mreg", "mreg batched", "mlserver", "mlserver batched"}


def test_the_grpc_benchmark_loads_every_peer_without_an_error(tmp_path: Path) -> None:
    mlserver_bin()  # built here (or fail) rather than inside the benchmark
    done = run_bench("bench.grpc_peers", "--tiny", results=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "grpc.json").read_text())
    assert "missing" not in results, results["missing"]
    assert set(results["peers"]) == PEERS
    for peer, runs in results["peers"].items():
        assert "error" not in runs, f"{peer}: {runs['error']}"
        assert set(runs) == {f"{m} {n}" for m in ("iris", "forest") for n in results["clients"]}
        for key, load in runs.items():
            assert load["requests"] > 0, f"{peer} {key}"
            assert load["errors"] == 0, f"{peer} {key}: {load['errors']} failed RPCs"
    assert "| mlserver batched |" in (tmp_path / "grpc.md").read_text()
