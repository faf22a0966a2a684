"""A write killed with SIGKILL at any step loses nothing: the next mreg call finishes it.

`mreg register` runs as a real process. MREG_TEST_KILL_AT=<step> makes it
SIGKILL itself at a named step of the write; other trials kill it from
outside after a random delay. After each kill the next mreg command must
find every landed version with its tag and artifact, and a clean work tree
(`git commit -a` would commit nothing).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry import Registry, file_md5
from registry.journal import JOURNAL, KILL_ENV, STEPS
from tests.conftest import git

MREG = [sys.executable, "-c", "from tool.cli import main; main()"]
PROJECT = Path(__file__).parent.parent
TRIALS = 2
"""Kills at each step, one after another in the same registry."""
RANDOM_TRIALS = 8


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    r = Registry.init(tmp_path / "reg")
    r.register("iris", artifact_file(tmp_path, 0), create=True)
    return r


def artifact_file(tmp_path: Path, i: int) -> Path:
    path = tmp_path / "src" / f"m{i}" / "model.skops"
    path.parent.mkdir(parents=True)
    path.write_bytes(f"model bytes {i}".encode())
    return path


def register(root: Path, artifact: Path, kill_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    if kill_at is not None:
        env[KILL_ENV] = kill_at
    return subprocess.Popen(
        [*MREG, "--repo", str(root), "register", "iris", str(artifact)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def head_versions(root: Path) -> list[int]:
    return [v.version for v in Registry(root).snapshot("HEAD").versions("iris")]


def assert_nothing_lost(root: Path) -> list[int]:
    """Run the next mreg command, then check versions, tags, artifacts and git status."""
    listed = subprocess.run(
        [*MREG, "--repo", str(root), "version", "list", "iris", "--json"],
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    numbers = [v["version"] for v in json.loads(listed.stdout)]
    assert numbers == list(range(1, len(numbers) + 1))
    assert numbers == head_versions(root)
    assert sorted(git(root, "tag").split()) == sorted(f"iris@v{n}" for n in numbers)
    for n in numbers:
        assert git(root, "rev-list", "-n1", f"iris@v{n}") == git(
            root, "log", "-n1", "--format=%H", "--grep", f"register v{n} ", "HEAD"
        )
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""
    dry = subprocess.run(
        ["git", "commit", "-a", "--dry-run"], cwd=root, capture_output=True, text=True, check=False
    )
    assert dry.returncode == 1 and "nothing to commit" in dry.stdout, dry.stdout
    snap = Registry(root).snapshot("HEAD")
    for v in snap.versions("iris"):
        assert v.artifact is not None
        assert file_md5(root / "models" / "iris" / v.artifact.path) == v.artifact.md5
    assert not (root / ".git" / "mreg" / JOURNAL).exists()
    return numbers


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_each_step_of_register_loses_nothing(
    reg: Registry, tmp_path: Path, step: str
) -> None:
    landed_before_kill = STEPS.index(step) >= STEPS.index("ref")
    expected = [1]
    for trial in range(1, TRIALS + 1):
        proc = register(reg.root, artifact_file(tmp_path, trial), kill_at=step)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        if landed_before_kill:
            expected.append(len(expected) + 1)
        assert assert_nothing_lost(reg.root) == expected
    proc = register(reg.root, artifact_file(tmp_path, 99))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert assert_nothing_lost(reg.root) == [*expected, len(expected) + 1]


@pytest.mark.slow
def test_kills_after_random_delays_lose_nothing(reg: Registry, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = register(reg.root, artifact_file(tmp_path, 1))
    assert proc.wait(timeout=120) == 0
    span = time.monotonic() - started  # how long a whole register takes here
    rng = random.Random(14)
    killed, scale, trial = 0, 1.0, 1
    # Until some trials interrupted a running register: a register that finished before its
    # kill (the machine got faster than `span` said) halves the delays, so no speed fails this.
    while trial <= RANDOM_TRIALS or (killed == 0 and trial <= 4 * RANDOM_TRIALS):
        trial += 1
        proc = register(reg.root, artifact_file(tmp_path, trial))
        time.sleep(rng.uniform(0.2, 1.0) * span * scale)
        proc.send_signal(signal.SIGKILL)
        interrupted = proc.wait(timeout=120) == -signal.SIGKILL
        killed += interrupted
        scale = scale if interrupted else scale / 2
        assert_nothing_lost(reg.root)
    assert killed > 0


def test_the_kill_hook_does_nothing_unless_asked(reg: Registry, tmp_path: Path) -> None:
    proc = register(reg.root, artifact_file(tmp_path, 1), kill_at="no-such-step")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert assert_nothing_lost(reg.root) == [1, 2]


def test_an_interrupted_write_is_finished_by_the_next_api_call(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or any error) after the branch moved: the Python API recovers as the CLI does."""
    from registry import commits

    def interrupted(root: Path, paths: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(commits, "stage", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reg.register("iris", artifact_file(tmp_path, 1))
    assert (reg.state_dir / JOURNAL).exists()
    monkeypatch.undo()
    Registry(reg.root)
    assert assert_nothing_lost(reg.root) == [1, 2]


def test_an_edit_made_after_the_kill_is_left_alone(reg: Registry, tmp_path: Path) -> None:
    proc = register(reg.root, artifact_file(tmp_path, 1), kill_at="ref")
    assert proc.wait(timeout=120) == -signal.SIGKILL
    mine = reg.root / "models" / "iris" / "versions" / "2.yaml"
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("# my own notes\n")
    Registry(reg.root)
    assert mine.read_text() == "# my own notes\n"
    assert git(reg.root, "tag").split() == ["iris@v1", "iris@v2"]
    assert not (reg.state_dir / JOURNAL).exists()


KILL_IN_UPDATE_REF = """#!/bin/sh
# git holds the ref's lock files while the transaction is "prepared": kill the whole write there.
[ "$1" = prepared ] && kill -KILL 0
exit 0
"""


@pytest.mark.parametrize("detached", [False, True], ids=["branch", "detached-head"])
def test_a_write_killed_inside_update_ref_leaves_locks_the_next_write_removes(
    reg: Registry, tmp_path: Path, detached: bool
) -> None:
    """A kill of the write's process group while git holds HEAD.lock / refs/heads/<b>.lock."""
    if detached:
        git(reg.root, "checkout", "-q", "--detach")
    hook = reg.root / git(reg.root, "rev-parse", "--git-path", "hooks/reference-transaction")
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(KILL_IN_UPDATE_REF)
    hook.chmod(0o755)
    proc = subprocess.Popen(
        [*MREG, "--repo", str(reg.root), "register", "iris", str(artifact_file(tmp_path, 1))],
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # the hook's `kill 0` ends mreg, git and itself, as a ^C would
    )
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    hook.unlink()
    locks = [p for p in (reg.root / ".git").glob("**/*.lock") if p.parent != reg.state_dir]
    assert locks, "the kill left no lock file: the test no longer makes the fault happen"
    proc = register(reg.root, artifact_file(tmp_path, 2))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert not [lock for lock in locks if lock.exists()]
    assert assert_nothing_lost(reg.root) == [1, 2]


def test_a_git_lock_held_by_someone_else_is_named_not_taken_for_a_concurrent_writer(
    reg: Registry, tmp_path: Path
) -> None:
    lock = reg.root / ".git" / "refs" / "heads" / git(reg.root, "branch", "--show-current")
    lock = lock.with_name(lock.name + ".lock")
    lock.write_text("")  # as a running `git commit` holds it: no mreg journal claims it
    proc = register(reg.root, artifact_file(tmp_path, 1))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    message = err.decode()
    assert message.startswith("error: git's lock file ") and str(lock) in message, message
    assert "changed while this write" not in message
    assert lock.exists()
    lock.unlink()
    assert assert_nothing_lost(reg.root) == [1]
