"""Every sh and python block of the README, run as written in a fresh clone of the project.

tests/test_quickstart.py runs the Quickstart's blocks against `make serve`. Here every other
block runs: the server blocks against `mreg serve` of a fresh clone (its tags synced, as
`make serve` does), the blocks that start a registry of their own in a scratch directory with
the files they name. The only edits are the port (`127.0.0.1:8000` becomes a free one) and a
long-running `mreg serve` line, which is started, asked /readyz and stopped. A block that needs
a service no test can have (S3, an MLflow server, a production host) is listed in NOT_RUN with
the test that covers its commands; a block in neither list fails the test.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.processes import ROOT, free_port, serving

sys.path.insert(0, str(ROOT / "examples"))
import train as example_train

NOT_RUN = {
    "import base64, hashlib, hmac, time": "tests/test_webhooks.py's receiver verifies with it",
    "make serve": "tests/test_quickstart.py runs `make serve`; `make test` is what CI runs",
    "cd my-project": "an S3 remote and a git remote to push to: the CLI block runs its commands",
    "mreg import mlflow": "an MLflow tracking server: tests/test_import_mlflow.py",
    "export MREG_USAGE_URL": "a production host (PostgreSQL, S3, GitHub): tests/test_usage_postgres.py",
    "make bench": "the benchmarks: tests/test_bench_smoke.py",
    "pip install 'mreg[mlserver]'": "MLServer in its own venv: tests/test_readme_engines.py",
    "mreg model update digits --set 'serving=": "a digits model: tests/test_serving_e2e.py"
    " patches the serving block from the CLI and over HTTP",
}

SERVE_BRIEFLY = r"""
serve_briefly() {  # a long-running `mreg serve ...`: started, asked /readyz, stopped
  local port log pid
  port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log=$(mktemp)
  mreg "$@" --port "$port" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 360); do
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then
      kill "$pid"; wait "$pid" || true; echo "served: mreg $*"; return 0
    fi
    sleep 0.5
  done
  kill "$pid" || true; cat "$log"; return 1
}
"""


def readme_blocks() -> list[tuple[str, str, str]]:
    """(section, language, text) of every sh and python block, in README order."""
    readme = (ROOT / "README.md").read_text()
    out = []
    section = ""
    for part in re.split(r"(^#{2,3} .*$)", readme, flags=re.M):
        if part.startswith("#"):
            section = part.lstrip("# ").strip()
            continue
        for lang, text in re.findall(r"^```(sh|python)\n(.*?)^```", part, flags=re.M | re.S):
            out.append((section, lang, text))
    return out


def first_command(text: str) -> str:
    return next(line for line in text.splitlines() if line.strip() and not line.startswith("#"))


def find_block(start: str) -> tuple[str, str]:
    found = [
        (lang, text) for _, lang, text in readme_blocks() if first_command(text).startswith(start)
    ]
    assert len(found) == 1, f"one README block starts with {start!r}: {len(found)}"
    return found[0]


def run_block(
    start: str,
    cwd: Path,
    env: dict[str, str],
    port: int | None = None,
    grpc_port: int | None = None,
) -> subprocess.CompletedProcess[str]:
    lang, text = find_block(start)
    if port is not None:
        text = re.sub(r"(127\.0\.0\.1|localhost):8000", f"127.0.0.1:{port}", text)
    if grpc_port is not None:
        text = re.sub(r"(127\.0\.0\.1|localhost):8001", f"127.0.0.1:{grpc_port}", text)
    if lang == "python":
        cmd = [sys.executable, "-c", text]
    else:
        text = re.sub(
            r"^mreg serve (--rev|--follow) ", r"serve_briefly serve \1 ", text, flags=re.M
        )
        text = "\n".join(line[2:] if line.startswith("$ ") else line for line in text.splitlines())
        text = "\n".join(line for line in text.splitlines() if not line.startswith("{"))
        cmd = ["bash", "-c", f"set -euo pipefail\n{SERVE_BRIEFLY}\n{text}"]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README block {start!r}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }


def fresh_clone(tmp_path: Path, env: dict[str, str]) -> Path:
    """A clone of the project as CI has one: on main, no tags, artifacts pulled."""
    clone = tmp_path / "mreg"
    subprocess.run(["git", "clone", "-q", "--no-tags", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", "-B", "main"], cwd=clone, check=True)
    assert subprocess.run(["git", "tag"], cwd=clone, capture_output=True, text=True).stdout == ""
    for step in (["pull"], ["tags", "--sync"]):  # what `make serve` runs first
        subprocess.run(["mreg", *step], cwd=clone, env=env, check=True, capture_output=True)
    return clone


def iris_model(path: Path, c: float = 1.0, binary: bool = False) -> Path:
    x, y = load_iris(return_X_y=True)
    skops.io.dump(LogisticRegression(C=c, max_iter=500).fit(x, (y == 2) if binary else y), path)
    return path


def test_every_block_is_run_or_says_why_not() -> None:
    for section, _, text in readme_blocks():
        start = first_command(text)
        if section == "Quickstart":  # tests/test_quickstart.py
            continue
        assert any(start.startswith(s) for s in (*RUN, *NOT_RUN)), (
            f"README block not run: {start!r}"
        )


RUN = [
    "mreg validate",
    "mreg serve --rev",
    "$ curl -s -X POST localhost:8000",
    "import numpy as np",
    "import tritonclient.grpc",
    'H="Authorization',
    "mreg init my-registry",
    "from registry import Registry",
    "mreg model create wine",
    "mreg point iris:prod v4 --weight 10",
]


@pytest.mark.slow
def test_the_server_blocks_run_in_a_fresh_clone(tmp_path: Path, env: dict[str, str]) -> None:
    clone = fresh_clone(tmp_path, env)
    token = "readme-token"
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        f"- name: writer\n  sha256: {hashlib.sha256(token.encode()).hexdigest()}\n"
        "  scopes: [read, invoke, write]\n"
    )
    validated = run_block("mreg validate", clone, env)
    assert validated.stdout.count(": ok: 0 error(s)") == 3, validated.stdout
    assert "\n[]\n" in validated.stdout  # --rev iris@v2 --format json: no finding
    grpc_port = free_port()
    grpc = ("--grpc-port", str(grpc_port))
    with serving(clone, "--tokens", str(tokens), *grpc, cwd=clone) as server:
        env = {**env, "MREG_URL": server.url}
        served = run_block("mreg serve --rev", clone, env, server.port)
        assert "served: mreg serve --rev iris@v3" in served.stdout
        assert '"version": 3' in served.stdout  # mreg invoke iris: latest

        transcript = run_block("$ curl -s -X POST localhost:8000", clone, env, server.port)
        assert '"model":"iris","version":3' in transcript.stdout

        triton = run_block("import numpy as np", clone, env, server.port)
        _, text = find_block("import numpy as np")
        promised = [line[2:] for line in text.splitlines() if line.startswith("# ")]
        assert triton.stdout.splitlines() == promised

        over_grpc = run_block("import tritonclient.grpc", clone, env, grpc_port=grpc_port)
        _, text = find_block("import tritonclient.grpc")
        promised = [line[2:] for line in text.splitlines() if line.startswith("# ")]
        assert over_grpc.stdout.splitlines() == promised

        iris_model(clone / "model.skops", binary=True)
        flow = run_block('H="Authorization', clone, {**env, "T": token}, server.port)
        assert '"error"' not in flow.stdout, flow.stdout
        assert "writer: fraud: delete model" in flow.stdout
        assert flow.stdout.count("writer: fraud: ") == 7, flow.stdout  # one commit per write


@pytest.mark.slow
def test_the_blocks_that_start_a_registry_run(tmp_path: Path, env: dict[str, str]) -> None:
    work = tmp_path / "cli"
    work.mkdir()
    iris_model(work / "model-v1.skops", c=0.5)
    iris_model(work / "model-v2.skops", c=2.0)
    cli = run_block("mreg init my-registry", work, env)
    assert '"version": 1' in cli.stdout and '"ref": "iris:prod"' in cli.stdout
    branches = subprocess.run(
        ["git", "branch", "--list", "promote-v2"],
        cwd=work / "my-registry",
        capture_output=True,
        text=True,
    )
    assert "promote-v2" in branches.stdout

    deploy = tmp_path / "deploy"
    subprocess.run(["mreg", "init", str(deploy)], env=env, check=True, capture_output=True)
    _, text = find_block("from registry import Registry")
    prelude = (
        "from sklearn.datasets import load_iris\nfrom sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "fitted_pipeline = make_pipeline(StandardScaler(), LogisticRegression())"
        ".fit(*load_iris(return_X_y=True))\n"
    )
    subprocess.run([sys.executable, "-c", prelude + text], cwd=deploy, env=env, check=True)
    resolved = subprocess.run(
        ["mreg", "resolve", "iris:staging"], cwd=deploy, env=env, capture_output=True, text=True
    )
    assert resolved.stdout.startswith("iris:v1 "), resolved.stdout + resolved.stderr

    wine = tmp_path / "wine"
    subprocess.run(["mreg", "init", str(wine)], env=env, check=True, capture_output=True)
    for name in ("train.py", "params.yaml"):
        (wine / name).write_bytes((ROOT / "examples" / "wine" / name).read_bytes())
    example_train.wine_csv(wine / "wine.csv", slice(None, None, 2))
    example_train.wine_csv(wine / "new-export.csv")
    trained = run_block("mreg model create wine", wine, env)
    assert "wine:v1 trained" in trained.stdout and "wine:v2 trained" in trained.stdout


@pytest.mark.slow
def test_the_progressive_delivery_block_runs(tmp_path: Path, env: dict[str, str]) -> None:
    """The canary, promote and rollback block, on a registry whose iris has v1..v4, prod -> v3."""
    root = tmp_path / "rollout"
    subprocess.run(["mreg", "init", str(root)], env=env, check=True, capture_output=True)
    for n in range(1, 5):
        iris_model(root / f"m{n}.skops", c=float(n))
        first = ["--create"] if n == 1 else []
        mreg = ["mreg", "register", "iris", f"m{n}.skops", *first]
        subprocess.run(mreg, cwd=root, env=env, check=True, capture_output=True)
    subprocess.run(["mreg", "point", "iris:prod", "v3"], cwd=root, env=env, check=True)
    done = run_block("mreg point iris:prod v4 --weight 10", root, env)
    lines = done.stdout.splitlines()
    assert lines[0] == "iris:prod -> v3 90%, v4 10%" or lines[0].startswith(
        "iris:prod -> v3 90%, v4 10%:"
    ), done.stdout
    assert "iris:prod  split: v3 50%, v4 50%" in done.stdout  # rolled back to before promote
    subjects = subprocess.run(
        ["git", "log", "-4", "--format=%s"], cwd=root, capture_output=True, text=True
    ).stdout.splitlines()
    assert [s.split(" (")[0] for s in subjects] == [
        "iris: roll back prod",
        "iris: promote prod v4",
        "iris: canary prod v4 50%",
        "iris: canary prod v4 10%",
    ]
    validated = subprocess.run(
        ["mreg", "validate", "--base", "HEAD~4"], cwd=root, env=env, capture_output=True, text=True
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
