"""`mreg` as real processes: the command line, a free loopback port and `mreg serve` started for a test.

One place for what the end-to-end tests share: `serving(repo, ...)` starts
`mreg serve` on a port the OS picked, waits for /readyz, fails the test with
the server's output if it never gets there, and stops it with SIGINT (then
SIGKILL) at the end. The server writes its output to a temporary file, not a
pipe, so a chatty server never blocks on a full pipe.

PYTEST_DONT_REWRITE (a helper module, imported by test modules and fixtures)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
MREG = [sys.executable, "-c", "from tool.cli import main; main()"]


def free_port() -> int:
    """A loopback port that was free a moment ago (the OS picked it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """A server as a real process on a loopback port (started, not yet waited for); its output
    goes to a temporary file, and `stop()` ends it (SIGINT, then SIGKILL)."""

    name = "server"

    def __init__(
        self, command: list[str], *, port: int, env: dict[str, str], cwd: Path | None = None
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._output = ""
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )

    def output(self) -> str:
        """What the server printed so far (all of it once stopped)."""
        if self._log.closed:
            return self._output
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def wait_until(self, ready: Callable[[], object], what: str, timeout: float = 90.0) -> None:
        """Poll `ready` (an HTTP call to this server) until it is true; fail the test with the
        server's output, saying it `what`, if the server exits first or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if ready():
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{self.name} {what}:\n{self.output()}")
            time.sleep(0.1)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", **{"timeout": 30, **kwargs})

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", **{"timeout": 30, **kwargs})

    def stop(self) -> None:
        """SIGINT (a clean shutdown), SIGKILL after 20 seconds; keeps the output readable."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._output = self.output()
            self._log.close()


class ServeProcess(ServerProcess):
    """`mreg serve` as a real process on a loopback port (started, not yet waited for)."""

    name = "mreg serve"

    def __init__(
        self,
        repo: Path,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        port = free_port()
        super().__init__(
            [*MREG, "--repo", str(repo), "serve", "--port", str(port), *args],
            port=port,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            cwd=cwd,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until /readyz answers 200."""

        def ready() -> bool:
            return self.get("/readyz", timeout=1).status_code == 200

        self.wait_until(ready, "did not become ready", timeout)


@contextmanager
def serving(
    repo: Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 90.0,
) -> Iterator[ServeProcess]:
    """`mreg serve` of `repo` (with `args`), ready; stopped when the block ends."""
    process = ServeProcess(repo, *args, env=env, cwd=cwd)
    try:
        process.wait_ready(timeout)
        yield process
    finally:
        process.stop()


def run_bench(*args: str, results: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`python -m ARGS` (a bench module and its options) from the checkout, results in `results`.

    It never apt-gets (MREG_BENCH_NO_INSTALL: without wrk, the Python client runs).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MREG_BENCH_RESULTS": str(results)}
    env["MREG_BENCH_NO_INSTALL"] = "1"
    argv = [sys.executable, "-m", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
