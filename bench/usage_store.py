"""`python -m bench.usage_store [--full]`: the cost of the shared usage store.

The same mreg server (one worker, pinned like bench/serving.py) answers
single-row iris invokes while its usage store is the embedded SQLite file,
then a PostgreSQL 15 database (a throwaway cluster, bench/pg.py), side by
side in one run. Every invocation is recorded by the store's background
writer; the table also shows that every one of them reached the database.
Also run by `python -m bench --only usage`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench import common
from bench.common import MREG, Mode, Workdir, log, report, section_main
from bench.common import table as md_table
from bench.loadgen import have_wrk, load
from bench.pg import cluster, create_database
from bench.serving import CLIENT_CPU, free_port, http, mreg_registry, start, stop, train, wait_ready

CONNECTIONS = 8


def written(url: str, store: str) -> int:
    """How many answered invocations the store holds (counted in the database itself).

    Failed calls are recorded too (a request cut off when the load generator
    closes its connections at its deadline is one): not answers, so not counted.
    """
    if store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store) as conn:
            row = conn.execute("SELECT count(*) FROM mreg_jobs WHERE status < 400").fetchone()
            return int(row[0]) if row else 0
    import sqlite3

    with sqlite3.connect(store) as conn:
        return int(conn.execute("SELECT count(*) FROM jobs WHERE status < 400").fetchone()[0])


def measure_store(
    name: str, store: str, repo: Path, row: list[float], mode: Mode, work: Workdir, use_wrk: bool
) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [MREG, "--repo", str(repo), "serve", "--port", str(port), "--preload"]
    env = dict(work.env)
    if store.startswith("postgresql://"):
        env["MREG_USAGE_URL"] = store
    else:
        env.pop("MREG_USAGE_URL", None)
    proc = start(argv, env, None, work.path / f"usage-{name}.log")
    try:
        wait_ready(f"{url}/readyz", proc)
        invoke = f"{url}/v1/models/iris/invoke"
        body = json.dumps({"data": row}).encode()
        http("POST", invoke, {"data": row})  # warm: the model is loaded, the store open
        res = load(invoke, body, CONNECTIONS, mode.load_seconds, work.path, CLIENT_CPU, use_wrk)
        http("GET", f"{url}/v1/jobs?limit=1")  # flushes what is still queued
    finally:
        stop(proc)  # shutdown flushes the rest
    total = written(url, store)
    answered = server_answered(work.path / f"usage-{name}.log")
    log(f"usage {name:10s} {res.rps:8.0f} req/s  p99 {res.p99_ms} ms  written {total}")
    return {**res.to_dict(), "written": total, "answered": answered}


def server_answered(log_file: Path) -> int:
    """The invocations the server answered, from the line it logs once shut down.

    Not the load generator's count: that one stops at its deadline, while the
    server still answers (and records) the requests in flight then.
    """
    found = re.findall(r"answered (\d+) invocations", log_file.read_text(errors="replace"))
    if not found:
        raise RuntimeError(f"the server did not log its invocation count: see {log_file}")
    return int(found[-1])


def run(mode: Mode, work: Workdir) -> dict[str, Any]:
    use_wrk = have_wrk()
    skops_path, _, rows = train(work.sub("usage-model"))
    repo = mreg_registry(work, skops_path)
    results: dict[str, Any] = {
        "mode": mode.name,
        "machine": common.machine(),
        "connections": CONNECTIONS,
        "seconds": mode.load_seconds,
        "load_generator": "wrk" if use_wrk else "python asyncio (wrk unavailable)",
        "stores": {},
    }
    with cluster() as server:
        stores = {
            "sqlite": str(repo / ".git" / "mreg" / "usage.sqlite"),
            "postgresql": create_database(server, "mreg_bench"),
        }
        for name, store in stores.items():
            results["stores"][name] = measure_store(name, store, repo, rows[0], mode, work, use_wrk)
    tables = render(results)
    report("usage_store", results, tables)
    return results


def render(results: dict[str, Any]) -> list[str]:
    stores = results["stores"]
    base = stores.get("sqlite", {}).get("rps")
    rows = []
    for name, r in stores.items():
        rows.append(
            [
                name,
                f"{r['rps']:.0f}",
                f"{r['rps'] / base:.2f}x" if base else "-",
                r["p50_ms"],
                r["p99_ms"],
                r["errors"],
                f"{r['written']} / {r['answered']}",
            ]
        )
    title = (
        f"Usage store: single-row iris invokes, {results['connections']} connections,"
        f" {results['seconds']} s ({results['load_generator']})"
    )
    headers = ["store", "req/s", "vs sqlite", "p50 ms", "p99 ms", "errors", "recorded / answered"]
    return [md_table(title, headers, rows)]


def main(argv: list[str] | None = None) -> int:
    return section_main("python -m bench.usage_store", __doc__, "usage store", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
