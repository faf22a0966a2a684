"""`mlserver start DIR` as a real process on loopback ports, from the MLServer venv.

PYTEST_DONT_REWRITE (a helper module, imported by test modules)
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

from tests import mlserver_venv
from tests.processes import ROOT, ServerProcess, free_port


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


class MLServerProcess(ServerProcess):
    """`mlserver start DIR` on free loopback ports; `stop()` ends it (SIGINT, then SIGKILL)."""

    name = "mlserver"

    def __init__(self, directory: Path, **env: str) -> None:
        bin_dir = mlserver_bin()
        port = free_port()
        super().__init__(
            [str(bin_dir / "mlserver"), "start", str(directory)],
            port=port,
            cwd=directory,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "VIRTUAL_ENV": str(bin_dir.parent),
                "MLSERVER_HOST": "127.0.0.1",
                "MLSERVER_HTTP_PORT": str(port),
                "MLSERVER_GRPC_PORT": str(free_port()),
                "MLSERVER_METRICS_PORT": str(free_port()),
                **env,
            },
        )

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until /v2/health/ready answers 200 (MLServer starts slowly here)."""

        def ready() -> bool:
            return self.get("/v2/health/ready", timeout=2).status_code == 200

        self.wait_until(ready, "did not become ready", timeout)
