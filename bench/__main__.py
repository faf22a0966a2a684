"""`python -m bench [--full]`: every benchmark, side by side with its peers, in one run.

Prints the tables and writes JSON and Markdown to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import time

from bench import common
from bench.common import FULL, QUICK, TINY, Workdir, log, machine

SECTIONS = (
    "serving",
    "batching",
    "grpc",
    "cold",
    "scale",
    "growth",
    "validate",
    "usage",
    "shadow",
    "cli",
)


def run_validate_scale(mode: common.Mode) -> None:
    """bench/validate_scale.py (the validation engineer's benchmark): a one-change PR at scale."""
    try:
        from bench import validate_scale
    except ImportError as exc:
        log(f"validate_scale not available: {exc}")
        return
    results = validate_scale.run(quick=mode.name != "full")
    print(results.get("table", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="full shapes and durations")
    parser.add_argument("--tiny", action="store_true", help="a few seconds, for the smoke test")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section")
    parser.add_argument("--no-peers", action="store_true", help="skip MLflow and GTO")
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow (no venv needed)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    mode = FULL if args.full else TINY if args.tiny else QUICK
    if args.no_peers:
        mode = common.Mode(**{**mode.__dict__, "peers": False, "gto": False})
    if args.no_mlflow:
        mode = common.Mode(**{**mode.__dict__, "peers": False})
    sections = args.only or list(SECTIONS)
    started = time.perf_counter()
    info = {
        "mode": mode.name,
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    log(f"mode {mode.name}; machine {info['machine']}")
    work = Workdir(keep=args.keep)
    try:
        mlflow_python = None
        # The growth section reads MLflow from this venv (the `mlflow` extra).
        if mode.peers and {"serving", "scale"} & set(sections):
            from bench.peers import mlflow_venv

            mlflow_python, info["mlflow_venv"] = mlflow_venv()
        if "serving" in sections:
            from bench import serving

            serving.main(mode, work, mlflow_python)
        if "batching" in sections and not mode.tiny:
            from bench import batching  # MLServer from .venv-mlserver (make mlserver-venv)

            batching.main(["--seconds", str(max(3, mode.load_seconds))])
        if "grpc" in sections and not mode.tiny:
            from bench import grpc_peers  # MLServer's gRPC from .venv-mlserver, as batching

            grpc_peers.run_bench(mode, work)
        if "cold" in sections and not mode.tiny:
            from bench import cold_start

            cold_start.main()
        if "scale" in sections:
            from bench import scale

            scale.main(mode, work, mlflow_python)
        if "growth" in sections:
            from bench import growth

            growth.main(mode, work)
        if "validate" in sections and not mode.tiny:
            run_validate_scale(mode)
        if "usage" in sections and not mode.tiny:
            from bench import usage_store  # the shared usage store's cost (needs PostgreSQL)

            usage_store.run(mode, work)
        if "shadow" in sections and not mode.tiny:
            from bench import shadow  # primary latency with and without a shadow

            shadow.run_bench(mode, work)
        if "cli" in sections and mode.gto and not mode.tiny:
            from bench import cli_reads

            cli_reads.main(mode, work)
    finally:
        work.close()
    info["total_s"] = round(time.perf_counter() - started, 1)
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    (common.RESULTS / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    log(f"done in {info['total_s']} s; results in {common.RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
