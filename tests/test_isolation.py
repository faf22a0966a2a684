"""Tests never depend on the machine: git identity, repository and token variables are cleared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import MACHINE_VARS

ROOT = Path(__file__).resolve().parent.parent

# What a CI machine commonly sets; each would leak into the commits or reads of a test.
MACHINE = {
    "GIT_AUTHOR_NAME": "Someone",
    "GIT_AUTHOR_EMAIL": "someone@ci.example",
    "GIT_COMMITTER_NAME": "Someone",
    "GIT_COMMITTER_EMAIL": "someone@ci.example",
    "EMAIL": "someone@ci.example",
    "MREG_TOKEN": "machine-token",
    "MREG_REPO": "/nonexistent",
    "GIT_INDEX_FILE": "/nonexistent/index",
}


def test_the_autouse_isolation_clears_what_the_machine_sets() -> None:
    assert set(MACHINE) <= set(MACHINE_VARS)
    for name in MACHINE_VARS:
        assert name not in os.environ, name


def test_a_write_test_passes_with_a_ci_identity_in_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, **MACHINE, "PYTHONPATH": str(ROOT)}
    test = "tests/test_writes.py::test_register_commits_manifest_dvc_file_and_tag"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-n", "0", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "1 passed" in run.stdout
