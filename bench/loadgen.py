"""HTTP load: `wrk` (Debian package) with a Lua script for the POST body, or an asyncio fallback.

Both hold `connections` keep-alive connections, each sending its next request
as soon as the last answer arrived (closed loop), for a fixed duration, and
report requests/s, p50 and p99 latency and the error count (connection
errors, timeouts and non-2xx answers).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import log

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, " ..
    "\\"mean_us\\": %.1f, \\"errors\\": %d, \\"non2xx\\": %d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass
class Load:
    tool: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def have_wrk() -> bool:
    """wrk on PATH, installed from Debian packages when missing and we may (root)."""
    if shutil.which("wrk"):
        return True
    # MREG_BENCH_NO_INSTALL: never apt-get (the smoke test); the Python client runs instead.
    may_install = not os.environ.get("MREG_BENCH_NO_INSTALL")
    if may_install and shutil.which("apt-get") and os.geteuid() == 0:
        log("installing wrk with apt-get (once)")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, check=False)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, check=False
            )
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, body: bytes, connections: int, seconds: float, workdir: Path, cpu: str | None
) -> Load:
    body_file = workdir / f"body-{abs(hash(body))}.json"
    body_file.write_bytes(body)
    script = workdir / f"post-{abs(hash(body))}.lua"
    script.write_text(LUA.format(body=body_file))
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    if cpu is not None:
        argv = ["taskset", "-c", cpu, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    r = json.loads(line[len("WRKJSON ") :])
    duration = r["duration_us"] / 1e6
    return Load(
        "wrk",
        connections,
        round(duration, 2),
        r["requests"],
        round(r["requests"] / duration, 1),
        round(r["p50_us"] / 1000, 3),
        round(r["p99_us"] / 1000, 3),
        r["errors"] + r["non2xx"],
    )


async def _client(
    host: str, port: int, request: bytes, deadline: float, lat: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while True:
                header = await reader.readline()
                if header in (b"\r\n", b""):
                    break
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t)
            if not status.split(b" ")[1].startswith(b"2"):
                errors[0] += 1
    except (OSError, asyncio.IncompleteReadError, IndexError):
        errors[0] += 1
    finally:
        writer.close()


def run_python(url: str, body: bytes, connections: int, seconds: float) -> Load:
    """Fallback: keep-alive HTTP/1.1 clients on asyncio (slower than wrk: it can be the bottleneck)."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    request = (
        f"POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    lat: list[float] = []
    errors = [0]

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(
            *(_client(host, int(port), request, deadline, lat, errors) for _ in range(connections))
        )
        return time.perf_counter() - start

    duration = asyncio.run(main())
    return summary("python-asyncio", connections, duration, lat, errors[0])


def summary(
    tool: str, connections: int, duration: float, latencies: list[float], errors: int
) -> Load:
    """A run's Load from its latencies (seconds, one per answer) and its error count."""
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else 0.0

    return Load(
        tool,
        connections,
        round(duration, 2),
        len(lat),
        round(len(lat) / duration, 1),
        pct(0.50),
        pct(0.99),
        errors,
    )


def load(
    url: str,
    body: bytes,
    connections: int,
    seconds: float,
    workdir: Path,
    cpu: str | None = "1",
    use_wrk: bool = True,
) -> Load:
    if use_wrk:
        return run_wrk(url, body, connections, seconds, workdir, cpu)
    return run_python(url, body, connections, seconds)
