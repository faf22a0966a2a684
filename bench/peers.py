"""The peers mreg is measured against: MLflow (its own virtual environment) and GTO.

MLflow lives in `~/.cache/mreg-bench/mlflow-venv` (or $MREG_BENCH_CACHE),
created on first use with `python -m venv` + `pip install`, and reused while
its requirements stay the same. scikit-learn is pinned to mreg's version so
both sides load the very same pickled model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import sklearn

from bench.common import log

CACHE = Path(os.environ.get("MREG_BENCH_CACHE", "~/.cache/mreg-bench")).expanduser()
MLFLOW_SPEC = ("mlflow>=3,<4", f"scikit-learn=={sklearn.__version__}")


def _base_python() -> str:
    """The interpreter .venv was made from: a venv made from a venv would share nothing useful."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    return str(base) if base.exists() else sys.executable


def mlflow_venv() -> tuple[Path, dict[str, object]]:
    """The MLflow venv's python, and how it was obtained (install time on first use)."""
    venv = CACHE / "mlflow-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".mreg-bench-ready"
    wanted = json.dumps(MLFLOW_SPEC)
    if stamp.is_file() and stamp.read_text() == wanted and python.exists():
        return python, {"created": False, "install_s": None, "mlflow": _mlflow_version(python)}
    log(f"creating the MLflow virtual environment in {venv} (once; reused later)")
    shutil.rmtree(venv, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True, cwd=CACHE, env=env)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *MLFLOW_SPEC], cwd=CACHE, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(MLFLOW_SPEC)} failed:\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - start
    stamp.write_text(wanted)
    log(f"MLflow venv ready in {seconds:.0f} s")
    return python, {"created": True, "install_s": seconds, "mlflow": _mlflow_version(python)}


def _mlflow_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


def gto_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("gto")


def mlflow_ops_script() -> Path:
    return Path(__file__).with_name("mlflow_ops.py")
