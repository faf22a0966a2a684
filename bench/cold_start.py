"""Cold start per format: how long after `mreg serve` starts the first invoke is answered.

For each format (the same iris classifier as skops, ONNX, TorchScript and Keras,
saved by tests/server_fixtures.save_model), a fresh `mreg serve` process:
with preload (the default) /readyz waits for the model, so the first invoke after
it is warm; with `--no-preload` /readyz answers at once and the first invoke
pays the load (the library's import included). Each row is one fresh process.

    python -m bench.cold_start
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import MREG, Workdir, log, report, run, table
from bench.serving import free_port, start, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent
FORMATS = {
    "skops": "iris.skops",
    "onnx": "iris.onnx",
    "torchscript": "iris.pt",
    "keras": "iris.keras",
}
TRUSTED = "skops, onnx, torchscript, keras"


def first_invoke(repo: Path, preload: bool, work: Workdir) -> dict[str, float]:
    port = free_port()
    argv = [MREG, "--repo", str(repo), "serve", "--port", str(port)]
    argv += [] if preload else ["--no-preload"]
    env = {**work.env, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch"}
    started = time.perf_counter()
    proc = start(argv, env, None, work.path / f"cold-{repo.name}-{preload}.log")
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}/readyz", proc, timeout=180)
        body = json.dumps({"data": [5.1, 3.5, 1.4, 0.2]}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/iris/invoke", data=body, method="POST"
        )
        request.add_header("Content-Type", "application/json")
        t0 = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as resp:
            resp.read()
        first = time.perf_counter() - t0
        return {"ready_s": ready, "first_invoke_s": first, "total_s": time.perf_counter() - started}
    finally:
        stop(proc)


def main() -> dict[str, Any]:
    from tests.server_fixtures import save_model, train_iris

    work = Workdir()
    results: dict[str, Any] = {}
    try:
        model = train_iris()
        for fmt, filename in FORMATS.items():
            path = save_model(model, fmt, work.path / filename)
            repo = work.path / f"reg-{fmt}"
            run([MREG, "init", str(repo)], env=work.env)
            settings = f"schema_version: 1\nname: {repo.name}\ntrusted_formats: [{TRUSTED}]\n"
            (repo / "registry.yaml").write_text(settings)
            run(["git", "-C", str(repo), "commit", "-qam", "trust"], env=work.env)
            run(
                [MREG, "--repo", str(repo), "register", "iris", str(path), "--create"], env=work.env
            )
            for preload in (True, False):
                r = first_invoke(repo, preload, work)
                results[f"{fmt} {'preload' if preload else 'no-preload'}"] = r
                log(f"cold start {fmt:12s} preload={preload}: {r}")
    finally:
        work.close()
    rows = [
        [key, f"{r['ready_s']:.2f}", f"{r['first_invoke_s'] * 1000:.1f}", f"{r['total_s']:.2f}"]
        for key, r in results.items()
    ]
    tables = [
        table(
            "Cold start: a fresh `mreg serve`, then one invoke",
            ["format", "start to /readyz s", "first invoke ms", "start to answer s"],
            rows,
        )
    ]
    report("cold_start", results, tables)
    return results


if __name__ == "__main__":
    main()
