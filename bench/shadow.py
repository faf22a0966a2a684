"""`python -m bench.shadow [--full]`: what a shadow costs the primary's callers.

The same mreg server (one worker, `--preload`) answers single-row iris
invokes of `iris:prod` (-> v1) with no shadow, then with `shadow: v2` on
every call (`shadow_sample: 1.0`), side by side in one run. The shadow runs
off the request path (a bounded queue, one background worker, predict in a
worker thread): the table shows the primary's throughput and latency with
and without it, and how many calls the shadow compared or dropped (a full
queue drops). Also run by `python -m bench --only shadow`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import common
from bench.common import MREG, Mode, Workdir, log, report, run, section_main
from bench.common import table as md_table
from bench.loadgen import have_wrk, load
from bench.serving import CLIENT_CPU, free_port, http, start, stop, train, wait_ready

CONNECTIONS = 8


def registry(work: Workdir, skops_path: Path) -> Path:
    """iris v1 and v2 (the same model twice: a shadow that agrees), prod -> v1."""
    repo = work.path / "shadow-registry"
    run([MREG, "init", str(repo)], env=work.env)
    run([MREG, "--repo", str(repo), "register", "iris", str(skops_path), "--create"], env=work.env)
    run([MREG, "--repo", str(repo), "register", "iris", str(skops_path)], env=work.env)
    run([MREG, "--repo", str(repo), "point", "iris:prod", "v1"], env=work.env)
    return repo


def set_shadow(repo: Path, work: Workdir) -> None:
    (repo / "pointers/iris/prod.yaml").write_text("target: v1\nshadow: v2\nshadow_sample: 1.0\n")
    run(["git", "-C", str(repo), "commit", "-qam", "iris: shadow prod v2"], env=work.env)


def measure(name: str, repo: Path, row: list[float], mode: Mode, work: Workdir) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [MREG, "--repo", str(repo), "serve", "--port", str(port), "--preload"]
    proc = start(argv, dict(work.env), None, work.path / f"shadow-{name}.log")
    try:
        wait_ready(f"{url}/readyz", proc)
        invoke = f"{url}/v1/models/iris/invoke?pointer=prod"
        body = json.dumps({"data": row}).encode()
        for _ in range(20):  # warm: both models loaded, the queue's worker running
            http("POST", invoke, {"data": row})
        res = load(invoke, body, CONNECTIONS, mode.load_seconds, work.path, CLIENT_CPU, have_wrk())
        report = http("GET", f"{url}/v1/models/iris/pointers/prod/shadow")
    finally:
        stop(proc)
    log(f"shadow {name:10s} {res.rps:8.0f} req/s  p99 {res.p99_ms} ms  {report['counts']}")
    return {**res.to_dict(), "shadow": report}


def run_bench(mode: Mode, work: Workdir) -> dict[str, Any]:
    skops_path, _, rows = train(work.sub("shadow-model"))
    repo = registry(work, skops_path)
    results: dict[str, Any] = {
        "mode": mode.name,
        "machine": common.machine(),
        "connections": CONNECTIONS,
        "seconds": mode.load_seconds,
        "load_generator": "wrk" if have_wrk() else "python asyncio (wrk unavailable)",
        "runs": {},
    }
    results["runs"]["no shadow"] = measure("none", repo, rows[0], mode, work)
    set_shadow(repo, work)
    results["runs"]["shadow 100%"] = measure("full", repo, rows[0], mode, work)
    tables = render(results)
    report("shadow", results, tables)
    return results


def render(results: dict[str, Any]) -> list[str]:
    runs = results["runs"]
    base = runs.get("no shadow", {}).get("rps")
    rows = []
    for name, r in runs.items():
        counts = r["shadow"]["counts"]
        agreement = r["shadow"]["agreement"]
        rows.append(
            [
                name,
                f"{r['rps']:.0f}",
                f"{r['rps'] / base:.2f}x" if base else "-",
                r["p50_ms"],
                r["p99_ms"],
                r["errors"],
                f"{counts['compared']} / {counts['dropped']} / {counts['failed']}",
                "-" if agreement is None else f"{agreement:.3f}",
            ]
        )
    title = (
        f"Shadow traffic: single-row invokes of iris:prod, {results['connections']} connections,"
        f" {results['seconds']} s ({results['load_generator']})"
    )
    headers = [
        "primary",
        "req/s",
        "vs none",
        "p50 ms",
        "p99 ms",
        "errors",
        "shadow compared / dropped / failed",
        "agreement",
    ]
    return [md_table(title, headers, rows)]


def main(argv: list[str] | None = None) -> int:
    return section_main("python -m bench.shadow", __doc__, "shadow", run_bench, argv)


if __name__ == "__main__":
    raise SystemExit(main())
