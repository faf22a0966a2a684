"""`python -m bench.grpc_peers [--full|--tiny]`: V2 over gRPC, mreg against MLServer (issue 22).

The servers, models and settings of bench/batching.py, over KServe's
`inference.GRPCInferenceService` instead of REST: `mreg serve --grpc-port`
(batching off, and on with `--max-batch-size 32 --max-batch-delay-ms 2`)
against MLServer's gRPC server (`mlserver-sklearn`, MLSERVER_GRPC_PORT;
batching off, and on with `max_batch_size: 32, max_batch_time: 0.01`), on the
iris LogisticRegression and the digits RandomForest, at 1, 8 and 32 clients
(bench/grpc_load.py: one FP32 row per ModelInfer). Each server is pinned to
CPU 0, the load generator to CPU 1. Every server is first asked once and must
answer the model's own prediction. Also run by `python -m bench --only grpc`.
"""

from __future__ import annotations

from typing import Any

from bench import batching, grpc_load
from bench.common import Mode, Workdir, log, ratio, report, section_main, table
from bench.loadgen import Load
from bench.serving import CLIENT_CPU, SERVER_CPU, free_port

CLIENTS = (1, 8, 32)
TINY_CLIENTS = (1, 32)
PAIRS = (("mreg", "mlserver"), ("mreg batched", "mlserver batched"))


def predictions(models: batching.Models) -> dict[str, int]:
    """What each model itself predicts for its row (every server must answer the same)."""
    import skops.io

    out = {}
    for name, (skops_path, _, row) in models.items():
        model = skops.io.load(skops_path, trusted=skops.io.get_untrusted_types(file=skops_path))
        out[name] = int(model.predict([row])[0])
    return out


DTYPES = {"INT64": "int64", "INT32": "int32", "FP64": "float64", "FP32": "float32"}
CONTENTS = {"INT64": "int64_contents", "INT32": "int_contents"}
CONTENTS.update(FP64="fp64_contents", FP32="fp32_contents")


def predicted(response: Any) -> int:
    """The class in a ModelInferResponse: its first output, as raw contents or typed ones."""
    import numpy as np

    output = response.outputs[0]
    if response.raw_output_contents:
        raw = response.raw_output_contents[0]
        return int(np.frombuffer(raw, dtype=DTYPES[output.datatype])[0])
    return int(getattr(output.contents, CONTENTS[output.datatype])[0])


def grpc_drive(
    target: str, models: batching.Models, expected: dict[str, int], work: Workdir
) -> batching.Drive:
    bodies = {name: grpc_load.request(name, row) for name, (_, _, row) in models.items()}
    checked: set[str] = set()

    def drive(base: str, name: str, clients: int, seconds: float) -> Load:
        if name not in checked:
            got = predicted(grpc_load.answer(target, bodies[name]))
            if got != expected[name]:
                raise RuntimeError(f"{name}: answered {got}, the model predicts {expected[name]}")
            checked.add(name)
        return grpc_load.load(target, bodies[name], clients, seconds, work.path, CLIENT_CPU)

    return drive


def render(results: dict[str, Any]) -> list[str]:
    rows = [row for name in batching.MODELS for row in batching.load_rows(results, name)]
    main_table = table(
        f"gRPC: V2 ModelInfer, one FP32 row per request, server on CPU {results['server_cpu']},"
        f" load ({results['load_generator']}) on CPU {results['client_cpu']},"
        f" {results['seconds']} s per run",
        batching.LOAD_HEADERS,
        rows,
    )

    def get(peer: str, key: str) -> Load | None:
        return batching.peer_load(results, peer, key)

    ratios = []
    for name in batching.MODELS:
        for n in results["clients"]:
            for ours, theirs in PAIRS:
                a, b = get(ours, f"{name} {n}"), get(theirs, f"{name} {n}")
                ratios.append(
                    [name, n, f"{ours} / {theirs}",
                     ratio(a.rps if a else None, b.rps if b else None),
                     ratio(a.p99_ms if a else None, b.p99_ms if b else None)]
                )  # fmt: skip
    return [
        main_table,
        table(
            "gRPC: mreg against MLServer (ratios in this run; > 1x req/s and < 1x p99 favour mreg)",
            ["model", "clients", "servers", "req/s ratio", "p99 ratio"],
            ratios,
        ),
    ]


def run_bench(mode: Mode, work: Workdir) -> dict[str, Any]:
    clients = TINY_CLIENTS if mode.tiny else CLIENTS
    results: dict[str, Any] = {
        "clients": clients,
        "seconds": mode.load_seconds,
        "server_cpu": SERVER_CPU,
        "client_cpu": CLIENT_CPU,
        "load_generator": "python grpc.aio",
        "peers": {},
    }
    models = batching.train(work.path)
    expected = predictions(models)
    mls, missing = batching.mlserver_peers(work, models)
    if missing:
        results["missing"] = missing
        log(f"grpc: {missing}")
    for peer in [*batching.mreg_peers(work, models), *mls]:
        port = free_port()
        drive = grpc_drive(f"127.0.0.1:{port}", models, expected, work)
        results["peers"][peer.name] = batching.measure_peer(
            peer, clients, mode.load_seconds, work, drive, "grpc", port
        )
    tables = render(results)
    report("grpc", results, tables)
    return results


def main(argv: list[str] | None = None) -> int:
    return section_main("python -m bench.grpc_peers", __doc__, "gRPC", run_bench, argv)


if __name__ == "__main__":
    raise SystemExit(main())
