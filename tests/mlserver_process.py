"""`mlserver start DIR` as a real process on loopback ports, from the MLServer venv.

PYTEST_DONT_REWRITE (a helper module, imported by test modules)
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mlserver_venv
from tests.processes import ROOT, free_port


@functools.cache
def _bin() -> Path | str:
    try:
        return mlserver_venv.ensure()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        return f"{exc}"


def mlserver_bin() -> Path:
    """The MLServer venv's bin/ (built once, reused); the test fails when it cannot be built."""
    found = _bin()
    if isinstance(found, str):
        pytest.fail(f"the MLServer venv cannot be built: {found}")
    return found


class MLServerProcess:
    """`mlserver start DIR` on free loopback ports; `stop()` ends it (SIGINT, then SIGKILL)."""

    def __init__(self, directory: Path, **env: str) -> None:
        bin_dir = mlserver_bin()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._output = ""
        self.proc = subprocess.Popen(
            [str(bin_dir / "mlserver"), "start", str(directory)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "VIRTUAL_ENV": str(bin_dir.parent),
                "MLSERVER_HOST": "127.0.0.1",
                "MLSERVER_HTTP_PORT": str(self.port),
                "MLSERVER_GRPC_PORT": str(free_port()),
                "MLSERVER_METRICS_PORT": str(free_port()),
                **env,
            },
        )

    def output(self) -> str:
        if self._log.closed:
            return self._output
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.get("/v2/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mlserver did not become ready:\n{self.output()[-5000:]}")
            time.sleep(0.25)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", **{"timeout": 30, **kwargs})

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", **{"timeout": 30, **kwargs})

    def stop(self) -> None:
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
