"""The README's "Serving with KServe and MLServer" commands, verbatim, in a fresh clone of the project.

The clone is the example registry; `mreg` and `mlserver` come from the MLServer
venv (tests/mlserver_venv.py: this checkout with the mlserver extra), which
stands for the README's `pip install`. `mlserver start DIR &` is started (and
stopped) by the test on a free loopback port, which replaces localhost:8080.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from tests.mlserver_process import MLServerProcess, mlserver_bin
from tests.processes import ROOT

SECTION = "## Serving with KServe and MLServer"


def blocks(readme: str) -> list[list[str]]:
    """The command lines of each sh block in the section."""
    section = readme.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [
        [
            line.strip()
            for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        for block in found
    ]


def test_the_readme_commands_run(tmp_path: Path) -> None:
    clone = tmp_path / "mreg"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    bin_dir = mlserver_bin()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    prod = yaml.safe_load((clone / "models" / "iris" / "versions" / "2.yaml").read_text())["id"]
    first, pin = blocks((clone / "README.md").read_text())
    assert first[0] == "pip install 'mreg[mlserver]'"  # what the venv is made of

    server: MLServerProcess | None = None
    out: list[str] = []
    try:
        for command in first[1:]:
            if command.startswith("mlserver start "):
                directory = command.removeprefix("mlserver start ").removesuffix("&").strip()
                server = MLServerProcess(clone / directory)
                server.wait_ready()
                out.append("")
                continue
            assert server is None or "localhost:8080" in command or "mreg " in command
            if server is not None:
                command = command.replace("localhost:8080", f"127.0.0.1:{server.port}")
            done = subprocess.run(
                ["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
            out.append(done.stdout.strip())
        fetched, meta, _, _, answer, synced = out
        assert fetched.startswith("fetched iris:v2")
        assert meta == f"iris v2 {prod} skops"
        reply = json.loads(answer)
        assert reply["model_version"] == "2"
        assert reply["outputs"][0]["data"] == ["setosa"]
        assert "loaded iris:v2" in synced
        assert [p.name for p in (clone / "mlserver-models" / "iris").iterdir()] == ["2"]
        assert server is not None
        body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64",
                            "data": [[5.1, 3.5, 1.4, 0.2]]}]}  # fmt: skip
        default = server.post("/v2/models/iris/infer", json=body).json()
        assert default["model_version"] == "2"  # v3 is gone: the default is prod's version
    finally:
        if server is not None:
            server.stop()

    done = subprocess.run(
        ["bash", "-ec", "\n".join(pin)], cwd=clone, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"storageUri: mreg://{prod}"
    pinned = yaml.safe_load((clone / "iris-pinned.yaml").read_text())
    assert pinned["spec"]["predictor"]["model"]["storageUri"] == f"mreg://{prod}"
