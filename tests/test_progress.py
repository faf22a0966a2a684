"""DVC's transfer progress: shown on a terminal (register, pull), never without one or with --json."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import termios
from pathlib import Path

import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from registry import Registry
from tests.processes import MREG, ROOT

PROGRESS = re.compile(r"(Pushing to|Fetching|Pulling|Checking out)", re.I)


def in_pty(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run `args` with stdin, stdout and stderr on a pseudo-terminal; what it wrote there."""
    master, slave = os.openpty()
    # 24 x 120: a new pty is 0 x 0, where tqdm draws bars of width 0 (nothing).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = b"".join(chunks).decode(errors="replace")
    # colorama's reset at exit (registered when DVC is imported) draws nothing: not output.
    return proc.wait(timeout=120), out.removesuffix("\x1b[0m")


def piped(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris")
    artifact = tmp_path / "model.skops"
    x, y = load_iris(return_X_y=True)
    skops.io.dump(LogisticRegression(max_iter=500).fit(x, y), artifact)
    return reg.root, artifact


def forget_local_copies(root: Path) -> None:
    """The artifacts only in the remote: what a fresh clone has before `mreg pull`."""
    for cached in (root / ".dvc" / "cache").rglob("*"):
        if cached.is_file():
            cached.unlink()
    for pulled in (root / "models").rglob("*.skops"):
        pulled.unlink()


def test_register_and_pull_show_progress_on_a_terminal(repo: tuple[Path, Path]) -> None:
    root, artifact = repo
    code, out = in_pty([*MREG, "register", "iris", str(artifact)], root)
    assert code == 0, out
    assert "register v1" in out
    assert PROGRESS.search(out), out
    forget_local_copies(root)
    code, out = in_pty([*MREG, "pull"], root)
    assert code == 0, out
    assert PROGRESS.search(out), out


def test_without_a_terminal_or_with_json_nothing_extra_is_printed(repo: tuple[Path, Path]) -> None:
    root, artifact = repo
    done = piped([*MREG, "register", "iris", str(artifact)], root)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("registered iris:v1") and len(done.stdout.splitlines()) == 1

    code, out = in_pty([*MREG, "register", "iris", str(artifact), "--json"], root)
    assert code == 0, out
    assert json.loads(out)["version"]["version"] == 2, out  # the JSON, and nothing else

    forget_local_copies(root)
    code, out = in_pty([*MREG, "pull", "--json"], root)
    assert code == 0, out
    assert len(json.loads(out)) == 2, out
    forget_local_copies(root)
    pulled = piped([*MREG, "pull"], root)
    assert pulled.returncode == 0 and pulled.stderr == "", pulled.stderr
    assert not PROGRESS.search(pulled.stdout)
