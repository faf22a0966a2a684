"""The MLServer virtual environment: the real `mlserver` from PyPI, with this checkout installed.

MLServer and its dependencies (FastAPI, gRPC, OpenTelemetry) stay out of the
shared development venv: `.venv-mlserver/` (or $MREG_MLSERVER_VENV) holds
`mlserver`, `mlserver-sklearn` (the benchmark's peer) and `pip install -e '.[mlserver,onnx]'` of this checkout, with
scikit-learn pinned to the running interpreter's version so that both sides
load the very same artifacts. It is built once and reused while pyproject.toml
(the spec) stays the same: `make mlserver-venv`, or the tests' `mlserver_venv`
fixture, which fails (never skips) when it cannot be built.

    python -m tests.mlserver_venv     # build if needed; print the venv's bin/ directory
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import sklearn

ROOT = Path(__file__).resolve().parent.parent
STAMP = ".mreg-ready"
EXTRAS = "mlserver,onnx"
"""The extras installed: the runtime, and ONNX (a format every registry trusts) to serve with it."""
PEERS = ("mlserver-sklearn>=1.6,<2",)
"""MLServer's own scikit-learn runtime (what KServe runs): the peer bench/batching.py measures."""


def venv_dir() -> Path:
    return Path(os.environ.get("MREG_MLSERVER_VENV") or ROOT / ".venv-mlserver").resolve()


def _spec() -> str:
    """What the venv was built from: a change rebuilds it."""
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    digest = hashlib.sha256(pyproject).hexdigest()
    return f"{ROOT}\n{EXTRAS}\n{' '.join(PEERS)}\nscikit-learn=={sklearn.__version__}\n{digest}\n"


def _base_python() -> str:
    """The interpreter the running venv was made from (a venv made from a venv shares nothing)."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    return str(base) if base.exists() else sys.executable


@contextlib.contextmanager
def _locked(venv: Path) -> Iterator[None]:
    """One builder at a time (two test workers, or make and a test)."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure() -> Path:
    """The venv's bin/ directory, building the venv first when it is missing or stale.

    Raises RuntimeError with pip's last lines when the build fails.
    """
    venv = venv_dir()
    bin_dir = venv / "bin"
    wanted = _spec()
    with _locked(venv):
        stamp = venv / STAMP
        if stamp.is_file() and stamp.read_text() == wanted and (bin_dir / "mlserver").exists():
            return bin_dir
        shutil.rmtree(venv, ignore_errors=True)
        start = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True, env=env)
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
        pip += ["--disable-pip-version-check"]
        done = subprocess.run(
            [*pip, "-e", f"{ROOT}[{EXTRAS}]", *PEERS, f"scikit-learn=={sklearn.__version__}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"building the MLServer venv in {venv} failed (pip install -e '.[{EXTRAS}]'):\n"
                f"{done.stderr[-3000:]}"
            )
        stamp.write_text(wanted)
        print(
            f"mreg: MLServer venv ready in {venv} ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
        )
    return bin_dir


if __name__ == "__main__":
    print(ensure())
