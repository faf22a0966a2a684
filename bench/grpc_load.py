"""gRPC load: closed-loop `inference.GRPCInferenceService/ModelInfer` from N clients on `grpc.aio`.

wrk speaks HTTP/1.1 only and ghz is neither a Debian nor a PyPI package, so this
is the gRPC twin of bench/loadgen.py's asyncio client: `clients` channels, each
its own HTTP/2 connection (like wrk's connections), each sending its next
request as soon as the last answer arrived, for a fixed duration. It runs in its
own process pinned to the load generator's CPU (`os.sched_setaffinity`, before
gRPC starts its threads) and reports the same `Load`: requests/s, p50 and p99
latency, and the errors (every status but OK). The request is serialized once,
by the caller, and answers are not parsed: the client spends its CPU on the
transport only (`answer` parses one, to check what a server says).

    python -m bench.grpc_load --target 127.0.0.1:8001 --body request.bin --clients 8 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from bench.common import ROOT
from bench.loadgen import Load, summary

METHOD = "/inference.GRPCInferenceService/ModelInfer"
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel, not one shared
TIMEOUT = 10.0  # seconds an RPC may take, as wrk's --timeout


def request(model: str, row: list[float]) -> bytes:
    """A ModelInferRequest of one FP32 row for `model`, serialized."""
    from server.protocols.grpc import grpc_predict_v2_pb2 as pb

    message = pb.ModelInferRequest(model_name=model)
    tensor = message.inputs.add(name="input-0", datatype="FP32", shape=[1, len(row)])
    tensor.contents.fp32_contents.extend(row)
    return bytes(message.SerializeToString())


def answer(target: str, body: bytes) -> Any:
    """One ModelInfer of `body` on `target`, its ModelInferResponse parsed (raises on an error)."""
    from server.protocols.grpc import grpc_predict_v2_pb2 as pb

    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD, response_deserializer=pb.ModelInferResponse.FromString)
        return call(body, timeout=TIMEOUT)


async def _client(
    call: Any, body: bytes, deadline: float, lat: list[float], errors: list[int]
) -> None:
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        try:
            await call(body, timeout=TIMEOUT)
        except grpc.aio.AioRpcError:
            errors[0] += 1
            continue
        lat.append(time.perf_counter() - t)


def run(target: str, body: bytes, clients: int, seconds: float) -> Load:
    """The load itself, in this process (`load` runs it in a pinned one)."""
    lat: list[float] = []
    errors = [0]

    async def main() -> float:
        channels = [grpc.aio.insecure_channel(target, options=OPTIONS) for _ in range(clients)]
        try:  # connected first: the clock starts with every client ready to send
            await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), TIMEOUT)
            start = time.perf_counter()
            deadline = start + seconds
            # No (de)serializers: bytes go out as they are and come back unparsed.
            calls = [c.unary_unary(METHOD) for c in channels]
            await asyncio.gather(*(_client(c, body, deadline, lat, errors) for c in calls))
            return time.perf_counter() - start
        finally:
            await asyncio.gather(*(c.close() for c in channels))

    duration = asyncio.run(main())
    return summary("python grpc.aio", clients, duration, lat, errors[0])


def load(
    target: str, body: bytes, clients: int, seconds: float, workdir: Path, cpu: str | None
) -> Load:
    """`run` in a child process pinned to `cpu` (None: not pinned)."""
    body_file = workdir / f"grpc-{abs(hash(body))}.bin"
    body_file.write_bytes(body)
    argv = [sys.executable, "-m", "bench.grpc_load", "--target", target, "--body", str(body_file)]
    argv += ["--clients", str(clients), "--seconds", str(seconds)]
    if cpu is not None:
        argv += ["--cpu", cpu]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=seconds + 120
    )
    if done.returncode != 0:
        raise RuntimeError(f"gRPC load generator failed: {done.stderr[-2000:]}")
    return Load(**json.loads(done.stdout.splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_load", description=__doc__)
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--body", type=Path, required=True, help="a serialized ModelInferRequest")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cpu", type=int, help="pin this process to that CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    result = run(args.target, args.body.read_bytes(), args.clients, args.seconds)
    print(json.dumps(result.to_dict()))


if __name__ == "__main__":
    main()
