"""Batching (issue 21): mreg against MLServer (`mlserver-sklearn`), each with batching on and off.

The same two models behind every server: an iris LogisticRegression and a
RandomForest of 100 trees on digits (both bundled with scikit-learn). Both
servers speak `/v2` REST (one FP32 tensor of one row per request); the minimal
Litestar endpoint (bench/minimal_app.py) is the floor for this stack. Each
server runs pinned to CPU 0 (`taskset`, see bench/serving.py), the load on CPU 1,
at 1, 8, 32 and 64 clients. MLServer batching on is `max_batch_size: 32,
max_batch_time: 0.01` (the issue's setting); mreg batching on is
`--max-batch-size 32 --max-batch-delay-ms 2`. The physical limit row is the
model's own in-process `predict` on 32 rows, in rows/s.

    python -m bench.batching [--seconds 3] [--clients 1,8,32,64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import MREG, Workdir, log, ratio, report, run, table
from bench.loadgen import Load, have_wrk, load
from bench.serving import CLIENT_CPU, free_port, start, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("iris", "forest")
CLIENTS = (1, 8, 32, 64)
MLSERVER_BATCH = {"max_batch_size": 32, "max_batch_time": 0.01}
MREG_BATCH = ["--max-batch-size", "32", "--max-batch-delay-ms", "2"]
Models = dict[str, tuple[Path, Path, list[float]]]
"""Each model's skops file (mreg), joblib file (mlserver-sklearn) and one input row."""


def train(work: Path) -> Models:
    """Each model as skops (mreg, minimal) and joblib (mlserver-sklearn), with one input row."""
    import joblib
    import skops.io
    from sklearn.datasets import load_digits, load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    out = {}
    for name, (x, y), model in (
        ("iris", load_iris(return_X_y=True), LogisticRegression(max_iter=1000)),
        ("forest", load_digits(return_X_y=True), RandomForestClassifier(100, random_state=0)),
    ):
        model.fit(x, y)
        skops_path, joblib_path = work / f"{name}.skops", work / f"{name}.joblib"
        skops.io.dump(model, skops_path)
        joblib.dump(model, joblib_path)
        out[name] = (skops_path, joblib_path, [float(v) for v in x[1]])
    return out


def in_process_rows_per_s(skops_path: Path, row: list[float], seconds: float = 2.0) -> float:
    """The model's own `predict` on batches of 32 rows, in rows per second (the physical limit)."""
    import numpy as np
    import skops.io

    model = skops.io.load(skops_path, trusted=skops.io.get_untrusted_types(file=skops_path))
    x = np.asarray([row] * 32)
    model.predict(x)
    n, start_t = 0, time.perf_counter()
    while time.perf_counter() - start_t < seconds:
        model.predict(x)
        n += 1
    return 32 * n / (time.perf_counter() - start_t)


def v2_body(name: str, row: list[float]) -> bytes:
    tensor = {"name": "input-0", "shape": [1, len(row)], "datatype": "FP32", "data": row}
    return json.dumps({"inputs": [tensor]}).encode()


@dataclass
class Peer:
    name: str
    argv: list[str]
    ready: str
    path: str  # the invoke path, with {model}
    env: dict[str, str]
    cwd: Path | None = None
    port_flag: str | None = "--port"


def mreg_peers(work: Workdir, models: Models) -> list[Peer]:
    repo = work.path / "batching-registry"
    run([MREG, "init", str(repo)], env=work.env)
    for name, (skops_path, _, _) in models.items():
        run(
            [MREG, "--repo", str(repo), "register", name, str(skops_path), "--create"], env=work.env
        )
    env = {**work.env, "PYTHONPATH": str(ROOT)}
    base = [MREG, "--repo", str(repo), "serve", "--workers", "1"]
    return [
        Peer("mreg", base, "/readyz", "/v2/models/{model}/infer", env),
        Peer("mreg batched", [*base, *MREG_BATCH], "/readyz", "/v2/models/{model}/infer", env),
    ]


def mlserver_peers(work: Workdir, models: Models) -> tuple[list[Peer], str | None]:
    try:
        from tests import mlserver_venv

        bin_dir = mlserver_venv.ensure()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        return [], f"no MLServer venv: {str(exc).splitlines()[0]}"
    peers = []
    for label, batch in (("mlserver", {}), ("mlserver batched", MLSERVER_BATCH)):
        repo = work.sub(label.replace(" ", "-"))
        for name, (_, joblib_path, _) in models.items():
            model_dir = repo / name
            model_dir.mkdir()
            (model_dir / "model.joblib").write_bytes(joblib_path.read_bytes())
            settings = {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
                **batch,
            }
            (model_dir / "model-settings.json").write_text(json.dumps(settings))
        env = {
            **work.env,
            "VIRTUAL_ENV": str(bin_dir.parent),
            "MLSERVER_HOST": "127.0.0.1",
            "MLSERVER_GRPC_PORT": str(free_port()),
            "MLSERVER_METRICS_PORT": str(free_port()),
        }
        env.pop("PYTHONPATH", None)
        argv = [str(bin_dir / "mlserver"), "start", str(repo)]
        peers.append(
            Peer(label, argv, "/v2/health/ready", "/v2/models/{model}/infer", env, repo, None)
        )
    return peers, None


def minimal_peers(work: Workdir, models: Models) -> list[Peer]:
    env = {**work.env, "PYTHONPATH": str(ROOT)}
    return [
        Peer(
            f"minimal {name}",
            [sys.executable, "-m", "bench.minimal_app", "--model", str(skops_path)],
            "/readyz",
            "/invoke",
            env,
        )
        for name, (skops_path, _, _) in models.items()
    ]


Drive = Callable[[str, str, int, float], Load]
"""A load generator: (the server's HTTP base URL, model, clients, seconds) -> its Load."""


def rest_drive(peer: Peer, models: Models, work: Workdir, use_wrk: bool) -> Drive:
    """wrk (or the asyncio client) on `peer`'s REST invoke path, one row per request."""

    def drive(base: str, name: str, clients: int, seconds: float) -> Load:
        row = models[name][2]
        if peer.name.startswith("minimal"):
            url, body = base + peer.path, json.dumps({"data": row}).encode()
        else:
            url, body = base + peer.path.format(model=name), v2_body(name, row)
        return load(url, body, clients, seconds, work.path, CLIENT_CPU, use_wrk)

    return drive


def measure_peer(
    peer: Peer,
    clients: tuple[int, ...],
    seconds: float,
    work: Workdir,
    drive: Drive,
    section: str = "batching",
    grpc_port: int | None = None,
) -> dict[str, Any]:
    """Start `peer` (pinned), and `drive` each of its models at each client count after a warm-up.

    With `grpc_port`, the peer also serves gRPC there (mreg `--grpc-port`, MLServer's
    MLSERVER_GRPC_PORT).
    """
    port = free_port()
    env = dict(peer.env)
    argv = list(peer.argv)
    if peer.port_flag:
        argv += [peer.port_flag, str(port)]
        if grpc_port is not None:
            argv += ["--grpc-port", str(grpc_port)]
    else:
        env["MLSERVER_HTTP_PORT"] = str(port)
        if grpc_port is not None:
            env["MLSERVER_GRPC_PORT"] = str(grpc_port)
    log_file = work.path / f"{section}-{peer.name.replace(' ', '-')}.log"
    proc = start(argv, env, peer.cwd, log_file)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    try:
        wait_ready(base + peer.ready, proc, timeout=180)
        names = [n for n in MODELS if not peer.name.startswith("minimal") or n in peer.name]
        for name in names:
            drive(base, name, 8, 1)  # warm-up (first loads paid)
            for n in clients:
                res = drive(base, name, n, seconds)
                result[f"{name} {n}"] = res.to_dict()
                log(
                    f"{section} {peer.name:18s} {name:6s} {n:3d} clients {res.rps:8.0f} req/s"
                    f"  p50 {res.p50_ms} p99 {res.p99_ms} ms  errors {res.errors}"
                )
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"{section} {peer.name}: {result['error']}")
    finally:
        stop(proc)
    return result


def peer_load(results: dict[str, Any], peer: str, key: str) -> Load | None:
    r = results["peers"].get(peer, {}).get(key)
    return Load(**r) if r else None


LOAD_HEADERS = ["model", "clients", "server", "req/s", "p50 ms", "p99 ms", "errors"]


def load_rows(results: dict[str, Any], name: str) -> list[list[Any]]:
    """The table rows of model `name`: each client count, each peer that served it."""
    rows: list[list[Any]] = []
    for n in results["clients"]:
        for peer in results["peers"]:
            if peer.startswith("minimal") and name not in peer:
                continue
            r = peer_load(results, peer, f"{name} {n}")
            if r is not None:
                rows.append(
                    [name, n, peer, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", r.errors]
                )
    return rows


def render(results: dict[str, Any]) -> list[str]:
    rows = []
    for name in MODELS:
        rows += load_rows(results, name)
        rows.append([name, 32, "in-process predict, batch 32 (rows/s)",
                     f"{results['in_process'][name]:,.0f}", "-", "-", "-"])  # fmt: skip
    main_table = table(
        f"Batching: /v2 REST, one row per request, server on CPU {results['server_cpu']},"
        f" load ({results['load_generator']}) on CPU {CLIENT_CPU}, {results['seconds']} s per run",
        LOAD_HEADERS,
        rows,
    )

    def rps(peer: str, name: str, n: int) -> float | None:
        r = peer_load(results, peer, f"{name} {n}")
        return r.rps if r else None

    def p99(peer: str, name: str, n: int) -> float | None:
        r = peer_load(results, peer, f"{name} {n}")
        return r.p99_ms if r else None

    one = peer_load(results, "mreg", "iris 1")
    targets = [
        ["forest 32: req/s mreg batched / MLServer batched", ">= 2x",
         ratio(rps("mreg batched", "forest", 32), rps("mlserver batched", "forest", 32))],
        ["forest 32: p99 mreg batched / MLServer batched", "< 1x",
         ratio(p99("mreg batched", "forest", 32), p99("mlserver batched", "forest", 32))],
        ["forest 32: mreg batched req/s / in-process rows/s", ">= 0.5x",
         ratio(rps("mreg batched", "forest", 32), results["in_process"]["forest"])],
        ["iris 1: req/s mreg / MLServer", ">= 2x",
         ratio(rps("mreg", "iris", 1), rps("mlserver", "iris", 1))],
        ["iris 8: req/s mreg / minimal", ">= 0.9x",
         ratio(rps("mreg", "iris", 8), rps("minimal iris", "iris", 8))],
        ["iris 1: mreg p99 / its p50", "<= 3x",
         ratio(one.p99_ms if one else None, one.p50_ms if one else None)],
    ]  # fmt: skip
    return [
        main_table,
        table("Batching targets (ratios in this run)", ["", "target", "measured"], targets),
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", default=",".join(map(str, CLIENTS)))
    parser.add_argument("--only", action="append", help="peers whose name starts with this")
    args = parser.parse_args(argv)
    clients = tuple(int(c) for c in args.clients.split(","))
    use_wrk = have_wrk()
    work = Workdir()
    from bench.serving import SERVER_CPU

    results: dict[str, Any] = {
        "clients": clients,
        "seconds": args.seconds,
        "server_cpu": SERVER_CPU,
        "load_generator": "wrk" if use_wrk else "python asyncio",
        "peers": {},
    }
    try:
        models = train(work.path)
        results["in_process"] = {
            name: in_process_rows_per_s(skops_path, row)
            for name, (skops_path, _, row) in models.items()
        }
        mls, missing = mlserver_peers(work, models)
        if missing:
            results["missing"] = missing
            log(f"batching: {missing}")
        for peer in [*mreg_peers(work, models), *mls, *minimal_peers(work, models)]:
            if args.only and not any(peer.name.startswith(o) for o in args.only):
                continue
            drive = rest_drive(peer, models, work, use_wrk)
            results["peers"][peer.name] = measure_peer(peer, clients, args.seconds, work, drive)
    finally:
        work.close()
    tables = render(results)
    report("batching", results, tables)
    return results


if __name__ == "__main__":
    main()
