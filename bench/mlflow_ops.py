"""MLflow's model registry (sqlite backend) on the scale benchmark's shape.

Runs inside the MLflow virtual environment (bench/peers.py), so it imports
nothing from mreg or bench. Prints one JSON object on stdout.

    python mlflow_ops.py setup --db reg.db --models 200 --versions 5
    python mlflow_ops.py time --db reg.db --repeats 5
    python mlflow_ops.py once --db reg.db --op resolve
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings

SOURCE = "s3://bench-bucket/models/{name}/v{n}"


def client(db: str):  # type: ignore[no-untyped-def]
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.set_registry_uri(f"sqlite:///{db}")
    return MlflowClient()


def name(i: int) -> str:
    return f"model-{i:05d}"


def setup(args: argparse.Namespace) -> dict[str, object]:
    start = time.perf_counter()
    c = client(args.db)
    for i in range(args.models):
        c.create_registered_model(name(i), description=f"synthetic model {i}")
        for n in range(1, args.versions + 1):
            c.create_model_version(name(i), SOURCE.format(name=name(i), n=n))
        c.set_registered_model_alias(name(i), "prod", str(args.versions))
        c.set_registered_model_alias(name(i), "staging", str(max(1, args.versions - 1)))
    return {"setup_s": time.perf_counter() - start}


def bulk(args: argparse.Namespace) -> dict[str, object]:
    """The same shape as `setup`, written straight into MLflow's own tables (its schema made by
    MLflow itself): 100,000 client calls would take an hour on a shared machine."""
    import sqlite3

    start = time.perf_counter()
    c = client(args.db)
    c.search_registered_models(max_results=1)  # creates and migrates the schema
    now = int(time.time() * 1000)
    db = sqlite3.connect(args.db)
    with db:
        db.executemany(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, description)"
            " VALUES (?, ?, ?, ?)",
            [(name(i), now, now, f"synthetic model {i}") for i in range(args.models)],
        )
        db.executemany(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time,"
            " current_stage, source, status, storage_location) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (name(i), n, now, now, "None", src, "READY", src)
                for i in range(args.models)
                for n in range(1, args.versions + 1)
                for src in [SOURCE.format(name=name(i), n=n)]
            ],
        )
        db.executemany(
            "INSERT INTO registered_model_aliases (alias, version, name) VALUES (?, ?, ?)",
            [
                (alias, v, name(i))
                for i in range(args.models)
                for alias, v in (("prod", args.versions), ("staging", max(1, args.versions - 1)))
            ],
        )
    db.close()
    return {"setup_s": time.perf_counter() - start}


def reads(args: argparse.Namespace) -> dict[str, object]:
    """The reads only (the registry is reused across runs), warm, in one process."""
    c = client(args.db)
    target = name(7)
    list_all(c)
    return {
        "models_listed": list_all(c),
        "search_registered_models (first page of 10)": _median(
            lambda: c.search_registered_models(max_results=10), args.repeats
        ),
        "search_registered_models": _median(lambda: list_all(c), max(1, args.repeats // 3)),
        "get_model_version_by_alias": _median(
            lambda: c.get_model_version_by_alias(target, "prod"), args.repeats
        ),
    }


def _median(fn, repeats: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "n": len(samples)}


def list_all(c) -> int:  # type: ignore[no-untyped-def]
    count, token = 0, None
    while True:
        page = c.search_registered_models(max_results=100, page_token=token)
        count += len(page)
        token = page.token
        if not token:
            return count


def timed(args: argparse.Namespace) -> dict[str, object]:
    c = client(args.db)
    target = name(7)
    created: list[str] = []

    def create() -> None:
        mv = c.create_model_version(target, SOURCE.format(name=target, n="new"))
        created.append(mv.version)

    def alias() -> None:
        c.set_registered_model_alias(target, "prod", created[-1] if created else "1")

    list_all(c)  # warm: the first call pays SQLAlchemy's setup
    return {
        "models_listed": list_all(c),
        "search_registered_models": _median(lambda: list_all(c), args.repeats),
        "get_model_version_by_alias": _median(
            lambda: c.get_model_version_by_alias(target, "prod"), args.repeats
        ),
        "create_model_version": _median(create, args.repeats),
        "set_registered_model_alias": _median(alias, args.repeats),
    }


def once(args: argparse.Namespace) -> dict[str, object]:
    """One operation in a fresh process: what a CLI user or a CI step pays."""
    c = client(args.db)
    if args.op == "list":
        return {"models": list_all(c)}
    mv = c.get_model_version_by_alias(name(7), "prod")
    return {"version": mv.version}


def main() -> None:
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["setup", "bulk", "time", "reads", "once"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--op", choices=["list", "resolve"], default="resolve")
    args = parser.parse_args()
    action = {"setup": setup, "bulk": bulk, "time": timed, "reads": reads, "once": once}
    print(json.dumps(action[args.action](args)))


if __name__ == "__main__":
    main()
