"""The benchmarks start and complete a tiny run (numbers are not checked: no timing assertions).

mreg's side runs for real (a registry built with the CLI, `mreg serve` under
load, synthetic registries, validate, writes); GTO too. MLflow is skipped:
it needs its own virtual environment, which `make bench` creates.

One test runs the benchmark once (a module fixture would run once per xdist
worker, two benchmarks at once), with the isolated HOME and git identity.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_tiny_bench_run_completes_with_real_measurements(tmp_path: Path) -> None:
    results = tmp_path / "bench-results"
    env = {
        **os.environ,
        "MREG_BENCH_RESULTS": str(results),
        "MREG_BENCH_NO_INSTALL": "1",  # never apt-get from a test; without wrk, the Python client runs
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--no-mlflow"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for title in ("### Serving", "### Registry 5 x 2", "### Cost growth"):
        assert title in done.stdout

    def load(name: str) -> dict:  # type: ignore[type-arg]
        return json.loads((results / f"{name}.json").read_text())

    assert load("run")["mode"] == "tiny"

    for server in ("mreg", "minimal"):
        serving = load("serving")["servers"][server]
        assert "error" not in serving, serving.get("log_tail")
        assert serving["same_predictions"] is True
        for scenario in ("1 client", "8 clients", "batch 100, 1 client", "batch 100, 8 clients"):
            assert serving[scenario]["requests"] > 0
            assert serving[scenario]["errors"] == 0

    shape = load("scale")["shapes"]["5 x 2"]
    for op in ("model list", "resolve", "validate", "validate --base HEAD~1", "register", "point"):
        assert shape["mreg"][op]["median_s"] > 0
    assert shape["mreg"]["serve warm"]["ready_s"] > 0
    for op in ("gto show", "gto show NAME#prod --ref", "gto register", "gto assign"):
        assert shape["gto"][op]["median_s"] > 0
    assert "mlflow" not in shape

    assert list(load("growth")["sizes"]) == ["5"]
