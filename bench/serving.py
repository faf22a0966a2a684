"""Serving: one iris-sized scikit-learn model behind mreg, `mlflow models serve` and a minimal endpoint.

Each server runs with one worker pinned to CPU 0 (`taskset -c 0`), the load
generator on CPU 1. Every server gets the same load: one client, eight
clients, and batches of 100 rows, each for a fixed duration after a short
warm-up; every server is checked to answer the same predictions first.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import MREG, Mode, Workdir, log, ratio, report, run, table
from bench.loadgen import Load, have_wrk, load


def _cpus() -> tuple[str | None, str | None]:
    """The server's core and the load generator's: the first two this process may use.

    With fewer than two (or no taskset), nothing is pinned and the tables say so.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2 and shutil.which("taskset"):
        return str(cpus[0]), str(cpus[1])
    return None, None


SERVER_CPU, CLIENT_CPU = _cpus()
BATCH = 100


@dataclass
class Server:
    name: str
    argv: list[str]
    ready_path: str
    invoke_path: str
    single: Callable[[list[float]], dict[str, Any]]
    batch: Callable[[list[list[float]]], dict[str, Any]]
    cwd: Path | None = None
    path_prefix: str | None = None  # MLflow execs `uvicorn` from PATH: its venv's bin goes first


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(workdir: Path) -> tuple[Path, Path, list[list[float]]]:
    """The model: logistic regression on iris (bundled with scikit-learn), as skops and pickle."""
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    skops_path = workdir / "iris.skops"
    skops.io.dump(model, skops_path)
    pickle_path = workdir / "iris.pkl"
    pickle_path.write_bytes(pickle.dumps(model))
    rows = [list(map(float, r)) for r in x[:BATCH]]
    return skops_path, pickle_path, rows


def expected_predictions(skops_path: Path, rows: list[list[float]]) -> list[Any]:
    """What the model itself predicts: every server must answer the same."""
    import skops.io

    model = skops.io.load(skops_path, trusted=skops.io.get_untrusted_types(file=skops_path))
    return list(model.predict(rows).tolist())


def http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 5) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s")


def start(
    argv: list[str], env: dict[str, str], cwd: Path | None, log_file: Path
) -> subprocess.Popen[bytes]:
    out = log_file.open("wb")
    pin = ["taskset", "-c", SERVER_CPU] if SERVER_CPU is not None else []
    return subprocess.Popen(
        [*pin, *argv],
        env=env,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so stop() ends the server and any worker it spawned
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)  # a graceful stop drains requests and flushes usage: slow when busy
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def outputs_of(name: str, answer: Any) -> list[Any]:
    """The predictions in each server's answer, for the same-output check."""
    if name == "mlflow":
        return list(answer["predictions"])
    out = answer["outputs"]
    return [o["label"] if isinstance(o, dict) and "label" in o else o for o in out]


def mreg_registry(work: Workdir, skops_path: Path) -> Path:
    repo = work.path / "serve-registry"
    run([MREG, "init", str(repo)], env=work.env)
    run([MREG, "--repo", str(repo), "register", "iris", str(skops_path), "--create"], env=work.env)
    return repo


def mlflow_model(python: Path, pickle_path: Path, work: Workdir) -> Path:
    target = work.path / "mlflow-model"
    code = (
        "import pickle, sys, warnings, logging; warnings.simplefilter('ignore');"
        "logging.disable(logging.WARNING); import mlflow.sklearn;"
        "m = pickle.load(open(sys.argv[1], 'rb'));"
        "mlflow.sklearn.save_model(m, sys.argv[2], serialization_format='pickle')"
    )
    run([str(python), "-c", code, str(pickle_path), str(target)], env=work.env, cwd=work.path)
    return target


def servers(
    work: Workdir, skops_path: Path, pickle_path: Path, mlflow_python: Path | None
) -> tuple[list[Server], dict[str, str]]:
    found: list[Server] = []
    missing: dict[str, str] = {}
    try:
        repo = mreg_registry(work, skops_path)
        found.append(
            Server(
                "mreg",
                [MREG, "--repo", str(repo), "serve", "--workers", "1"],
                "/readyz",
                "/v1/models/iris/invoke",
                lambda row: {"data": row},
                lambda rows: {"inputs": rows},
            )
        )
    except RuntimeError as exc:
        missing["mreg"] = str(exc).splitlines()[-1]
    if mlflow_python is not None:
        model_dir = mlflow_model(mlflow_python, pickle_path, work)
        found.append(
            Server(
                "mlflow",
                [
                    str(mlflow_python.parent / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    str(model_dir),
                    "--env-manager",
                    "local",
                    "-w",
                    "1",
                    "-h",
                    "127.0.0.1",
                ],
                "/ping",
                "/invocations",
                lambda row: {"inputs": [row]},
                lambda rows: {"inputs": rows},
                cwd=work.path,
                path_prefix=str(mlflow_python.parent),
            )
        )
    else:
        missing["mlflow"] = "peers skipped"
    found.append(
        Server(
            "minimal",
            [sys.executable, "-m", "bench.minimal_app", "--model", str(skops_path)],
            "/readyz",
            "/invoke",
            lambda row: {"data": row},
            lambda rows: {"inputs": rows},
        )
    )
    return found, missing


def port_args(server: Server, port: int) -> list[str]:
    return (
        [*server.argv, "--port", str(port)]
        if server.name != "mlflow"
        else [*server.argv, "-p", str(port)]
    )


SCENARIOS = (
    ("1 client", 1, False),
    ("8 clients", 8, False),
    ("batch 100, 1 client", 1, True),
    ("batch 100, 8 clients", 8, True),
)


@dataclass
class Running:
    server: Server
    proc: subprocess.Popen[bytes]
    base: str
    result: dict[str, Any]

    @property
    def url(self) -> str:
        return self.base + self.server.invoke_path


def launch(server: Server, work: Workdir) -> Running:
    port = free_port()
    env = {**work.env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    if server.path_prefix:
        env = {**work.env, "PATH": f"{server.path_prefix}:{work.env['PATH']}"}
    proc = start(port_args(server, port), env, server.cwd, work.path / f"{server.name}.log")
    return Running(server, proc, f"http://127.0.0.1:{port}", {"name": server.name})


def check(
    r: Running, rows: list[list[float]], expected: list[Any], work: Workdir, use_wrk: bool
) -> None:
    """Ready, same predictions as the model itself, and warmed up (lazy loading paid)."""
    r.result["ready_s"] = wait_ready(r.base + r.server.ready_path, r.proc)
    # The first request may load the model (lazily, from the DVC cache): give it time.
    answer = http("POST", r.url, r.server.batch(rows), timeout=120)
    got = outputs_of(r.server.name, answer)
    r.result["same_predictions"] = [str(g) for g in got] == [str(e) for e in expected]
    r.result["sample_answer"] = http("POST", r.url, r.server.single(rows[0]))
    load(r.url, json.dumps(r.server.single(rows[0])).encode(), 8, 1, work.path, CLIENT_CPU, use_wrk)


def fail(r: Running, exc: Exception, work: Workdir) -> None:
    r.result["error"] = f"{type(exc).__name__}: {exc}"
    log(f"serving {r.server.name}: {r.result['error']}")
    r.result["log_tail"] = (work.path / f"{r.server.name}.log").read_text(errors="replace")[-1500:]


def measure(
    running: list[Running], rows: list[list[float]], mode: Mode, work: Workdir, use_wrk: bool
) -> None:
    """Each scenario on each server in turn (rounds interleaved), so drift hits all alike.

    All servers are up at once on the server CPU; the idle ones cost nothing.
    Per server and scenario the run with the median req/s is kept.
    """
    rounds = 3 if mode.name == "full" else 1
    for label, connections, is_batch in SCENARIOS:
        runs: dict[str, list[Load]] = {r.server.name: [] for r in running}
        for _ in range(rounds):
            for r in running:
                if "error" in r.result:
                    continue
                body = r.server.batch(rows) if is_batch else r.server.single(rows[0])
                try:
                    res = load(
                        r.url,
                        json.dumps(body).encode(),
                        connections,
                        mode.load_seconds,
                        work.path,
                        CLIENT_CPU,
                        use_wrk,
                    )
                except (subprocess.CalledProcessError, OSError, StopIteration) as exc:
                    fail(r, RuntimeError(str(exc)), work)
                    continue
                runs[r.server.name].append(res)
                log(
                    f"serving {r.server.name:8s} {label:22s} {res.rps:8.0f} req/s"
                    f"  p99 {res.p99_ms} ms  errors {res.errors}"
                )
        for r in running:
            done = sorted(runs[r.server.name], key=lambda x: x.rps)
            if done:
                r.result[label] = done[len(done) // 2].to_dict()
                r.result[label + " (all rounds)"] = [x.to_dict() for x in done]


def main(mode: Mode, work: Workdir, mlflow_python: Path | None) -> dict[str, Any]:
    use_wrk = have_wrk()
    if not use_wrk:
        log("wrk not available: falling back to the Python asyncio load generator")
    skops_path, pickle_path, rows = train(work.path)
    expected = expected_predictions(skops_path, rows)
    found, missing = servers(work, skops_path, pickle_path, mlflow_python)
    results: dict[str, Any] = {
        "load_generator": "wrk 4 (Debian), 1 thread, Lua POST body"
        if use_wrk
        else "python asyncio (wrk unavailable)",
        "seconds_per_run": mode.load_seconds,
        "rounds": 3 if mode.name == "full" else 1,
        "server_cpu": SERVER_CPU,
        "client_cpu": CLIENT_CPU,
        "missing": missing,
        "servers": {},
    }
    running: list[Running] = []
    try:
        # One at a time, so start-up and first loads do not compete for the server CPU.
        for server in found:
            r = launch(server, work)
            running.append(r)
            try:
                check(r, rows, expected, work, use_wrk)
            except (RuntimeError, urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                fail(r, exc, work)
        measure(running, rows, mode, work, use_wrk)
    finally:
        for r in running:
            stop(r.proc)
            results["servers"][r.server.name] = r.result
    tables = render(results)
    report("serving", results, tables)
    return results


def _get(results: dict[str, Any], name: str, label: str) -> Load | None:
    r = results["servers"].get(name, {}).get(label)
    return Load(**r) if r else None


def render(results: dict[str, Any]) -> list[str]:
    rows = []
    for label, _, is_batch in SCENARIOS:
        for name in ("mreg", "mlflow", "minimal"):
            r = _get(results, name, label)
            if r is None:
                err = results["servers"].get(name, {}).get("error") or results["missing"].get(
                    name, "not run"
                )
                rows.append([label, name, "-", "-", "-", "-", "-", err[:60]])
                continue
            per_row = r.rps * BATCH if is_batch else r.rps
            rows.append(
                [
                    label,
                    name,
                    f"{r.rps:,.0f}",
                    f"{per_row:,.0f}",
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    str(r.errors),
                    "",
                ]
            )
    main_table = table(
        f"Serving: iris LogisticRegression, one worker on CPU {results['server_cpu'] or '(unpinned)'}, "
        f"load ({results['load_generator']}) on CPU {results['client_cpu'] or '(unpinned)'}, {results['seconds_per_run']} s per run",
        ["load", "server", "req/s", "rows/s", "p50 ms", "p99 ms", "errors", "note"],
        rows,
    )
    ratio_rows = []
    for label, _, is_batch in SCENARIOS:
        m, f, n = (_get(results, s, label) for s in ("mreg", "mlflow", "minimal"))
        ratio_rows.append(
            [
                label,
                ratio(m.rps if m else None, f.rps if f else None),
                "target >= 3x (rows/s)" if is_batch else "target >= 2x",
                ratio(m.p99_ms if m else None, f.p99_ms if f else None),
                "-" if is_batch else "target <= 0.10x",
                ratio(m.rps if m else None, n.rps if n else None),
                "-" if is_batch else "target >= 0.80x",
            ]
        )
    ratios = table(
        "Serving ratios (mreg / peer; req/s higher is better, p99 lower is better)",
        ["load", "req/s mreg/MLflow", "", "p99 mreg/MLflow", "", "req/s mreg/minimal", ""],
        ratio_rows,
    )
    return [main_table, ratios]
