"""The README quickstart, verbatim, against `make serve` in a fresh clone of the project."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port


def quickstart_commands(readme: str) -> list[str]:
    """Every command line of the sh blocks in the README's Quickstart (not its subsections)."""
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line)
    return commands


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"make serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"server not ready after {timeout}s:\n{log.read_text()}")


def wait_for_line(
    log: Path, prefix: str, proc: subprocess.Popen[bytes], timeout: float = 120
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith(prefix):
                return line
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    pytest.fail(f"make serve printed no {prefix!r}:\n{log.read_text()}")


@pytest.mark.slow
def test_readme_quickstart_runs_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = tmp_path / "mreg"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    venv = Path(sys.prefix)
    port = free_port()
    log = tmp_path / "serve.log"
    # Reuse this test run's environment: `-o` tells make the venv stamp is up to date.
    serve = subprocess.Popen(
        [
            "make",
            "-o",
            f"{venv}/.installed-serve",
            "serve",
            f"VENV={venv}",
            f"PORT={port}",
            "POLL=1",
        ],
        cwd=clone,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's code, not the venv's install
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", serve, log)
        # `make serve` times one prediction from its start (here without the venv install,
        # which bench/first_prediction.sh includes) and prints it.
        first = wait_for_line(log, "mreg: first prediction ", serve)
        with capsys.disabled():
            print(f"\n{first}")
        assert re.fullmatch(r"mreg: first prediction \d+\.\d s after make serve started", first)
        # The clone has its version tags back (`mreg tags --sync`), as the README says.
        tags = subprocess.run(["git", "tag"], cwd=clone, capture_output=True, text=True).stdout
        assert {"iris@v1", "iris@v2", "iris@v3"} <= set(tags.split())
        commands = quickstart_commands((clone / "README.md").read_text())
        script = ["set -e"]
        for i, command in enumerate(commands):
            command = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            command = command.replace(".venv/bin/", f"{venv}/bin/")
            script += [f"echo '@@@ {i}'", command, "echo"]
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PATH": f"{venv}/bin:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        parts = re.split(r"^@@@ (\d+)\n", done.stdout, flags=re.M)[1:]
        out = {int(parts[i]): parts[i + 1].strip() for i in range(0, len(parts), 2)}
        assert len(out) == len(commands)
        # Steps in README order: 0 list, 1 latest, 2 MODEL_ID=, 3 pinned, 4 run by pointer,
        # 5 train, 6 register, 7 validate, 8 git log, 9 sleep, 10 run again, 11 jobs.
        models = json.loads(out[0])
        names = [m["name"] for m in models["models"]]
        assert names == ["diabetes", "digits-onnx", "digits-torch", "iris", "wine"]

        latest = json.loads(out[1])
        assert (latest["model"], latest["version"]) == ("iris", 3)
        assert latest["outputs"][0]["label"] in {"versicolor", "virginica"}

        pinned = json.loads(out[3])
        assert pinned["version"] == 1
        assert pinned["model_id"].startswith("mv_")

        run = json.loads(out[4])
        assert run["version"] == 2
        assert [o["label"] for o in run["outputs"]][1] == "setosa"

        assert "register v4" in out[6]
        assert "ok" in out[7]
        assert out[8].startswith("iris: register v4")
        assert "Mreg-Action: register" in out[8]

        moved = json.loads(out[10])
        assert moved["version"] == 4
        assert moved["pipeline"] == "iris:prod"

        jobs = json.loads(out[11])
        listed = jobs["jobs"] if isinstance(jobs, dict) else jobs
        assert {j["version"] for j in listed} >= {1, 2, 3, 4}

        # The new artifact went to the example remote inside the work tree: git status is clean.
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True
        ).stdout
        assert status == ""
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=30)
