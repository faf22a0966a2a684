"""A write's journal: what an interrupted write still had to do, finished by the next mreg call.

A registry write moves the branch first (a compare-and-swap ``update-ref``)
and then brings the work tree, the index and the version tag in line with
it. A kill in between would leave the index behind HEAD: ``git status`` would
show the new files as staged deletions, and the user's next ``git commit -a``
would undo the write. So before the ref moves, the write records the rest of
its work in ``.git/mreg/pending-write.json``, and its last step removes that
file. Whoever opens the registry next (CLI, Python API, server) and finds the
file finishes the work under the write lock. Every step is idempotent, so a
kill during recovery is recovered the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from registry import artifacts, plumbing, writelock

JOURNAL = "pending-write.json"
KILL_ENV = "MREG_TEST_KILL_AT"
"""Test hook: a write SIGKILLs its own process at the step of this name (see STEPS)."""
STEPS = ("commit", "journal", "ref", "manifests", "worktree", "index", "tag")
"""The named steps of a write, in order; a kill after any of them loses nothing."""


@dataclass
class Journal:
    """The end state a write is bringing the work tree, the index and the tags to."""

    ref: str
    """The ref the write moves (refs/heads/<branch>, or HEAD when detached)."""
    old: str | None
    new: str
    paths: list[str]
    """Files of the commit's change set (written or deleted)."""
    files: dict[str, str] = field(default_factory=dict)
    """Git-ignored artifact files to put in the work tree: path -> DVC cache file."""
    removals: list[str] = field(default_factory=list)
    """Git-ignored files to remove from the work tree."""
    tag: str | None = None
    tag_message: str = ""
    pid: int | None = None
    """The writing process, to tell a lock file it left from one a live git holds."""
    started: str | None = None
    """When that process started (so a reused pid is not taken for it)."""


def this_process() -> tuple[int, str | None]:
    """The pid and start time to record in a journal."""
    return os.getpid(), _start_time(os.getpid())


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, starttime, after "pid (comm)"


def writer_gone(journal: Journal) -> bool:
    """True when the process that wrote `journal` can no longer be running git for it.

    Its own process counts as gone: the caller holds the write lock, so that
    write ended (and `subprocess.run` reaped its git before raising).
    """
    if journal.pid is None:
        return False
    if journal.pid == os.getpid():
        return True
    if journal.started is not None:
        return _start_time(journal.pid) != journal.started
    try:
        os.kill(journal.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def checkpoint(step: str) -> None:
    """SIGKILL this process here when MREG_TEST_KILL_AT names `step` (for crash tests)."""
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def save(state_dir: Path, journal: Journal) -> None:
    """Write the journal durably (a synced temporary file renamed into place)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".journal-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(journal), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, state_dir / JOURNAL)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def clear(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_dir / JOURNAL).unlink()


def load(state_dir: Path) -> Journal | None:
    try:
        data = json.loads((state_dir / JOURNAL).read_text())
        return Journal(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        # Not one of ours (it is always written whole): nothing to replay.
        clear(state_dir)
        return None


def recover(root: Path, state_dir: Path) -> bool:
    """Finish an interrupted write, if there is one; True if there was."""
    if not (state_dir / JOURNAL).exists():
        return False
    with writelock.write_lock(state_dir):
        return recover_locked(root, state_dir)


def recover_locked(root: Path, state_dir: Path) -> bool:
    """`recover` for a caller that holds the write lock already."""
    saved = _mtime(state_dir / JOURNAL)
    journal = load(state_dir)
    if journal is None:
        return False
    if saved is not None and writer_gone(journal):
        remove_stale_locks(root, journal, saved)
    now = plumbing.rev_sha(root, journal.ref)
    if now == journal.new and plumbing.checked_out_ref(root) == journal.ref:
        finish_worktree(root, journal)
    # The commit landed (maybe with commits on top of it): its version keeps its tag.
    landed = now is not None and now != journal.old and _is_ancestor(root, journal.new, now)
    if landed and journal.tag and not plumbing.tag_exists(root, journal.tag):
        plumbing.create_tag(root, journal.tag, journal.new, journal.tag_message)
    clear(state_dir)
    return True


def remove_stale_locks(root: Path, journal: Journal, saved: float) -> list[Path]:
    """Remove the git lock files a write killed during its ref update or tag left behind.

    A lock is proven ours when the journal's writer is gone (see `writer_gone`),
    no mreg write runs (the caller holds the write lock), the lock is no
    older than the journal, and it holds nothing or what this write was
    writing. Any other lock stays, and the write that meets it names it.
    """
    names = {journal.ref: journal.new, "HEAD": journal.new}
    if journal.tag:
        names[f"refs/tags/{journal.tag}"] = ""
    removed = []
    for name, value in names.items():
        lock = plumbing.git_path(root, f"{name}.lock")
        mtime = _mtime(lock)
        if mtime is None or mtime < saved - 1:  # coarse file-system clocks: a second's slack
            continue
        content = lock.read_text(errors="replace").strip()
        if content in ("", value, f"ref: {journal.ref}") or (not value and _is_sha(content)):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            removed.append(lock)
    return removed


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _is_sha(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


def finish_worktree(root: Path, journal: Journal) -> None:
    """Bring the work tree and the index to `journal.new` for the write's own files.

    A file is written only while it still holds the old commit's content (or
    is missing): an edit the user made since the kill is left alone.
    """
    before = plumbing.read_committed(root, journal.old, journal.paths)
    after = plumbing.read_committed(root, journal.new, journal.paths)
    changes: dict[str, bytes | None] = {}
    ours: list[str] = []
    for path in journal.paths:
        target = root / path
        current = target.read_bytes() if target.is_file() else None
        wanted = after.get(path)
        if current == wanted:
            ours.append(path)
        elif current is None or current == before.get(path):
            changes[path] = wanted
            ours.append(path)
    plumbing.write_worktree(root, changes)
    for path, cached in journal.files.items():
        if Path(cached).is_file():
            artifacts.checkout(Path(cached), root / path)
    plumbing.write_worktree(root, dict.fromkeys(journal.removals))
    _remove_temp_files(root, [*journal.paths, *journal.files, *journal.removals])
    plumbing.stage(root, ours)


def _remove_temp_files(root: Path, paths: Iterable[str]) -> None:
    """Temporary files that a killed atomic write left beside its target."""
    for folder in {(root / p).parent for p in paths}:
        if folder.is_dir():
            for tmp in folder.glob(".mreg-*"):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()


def _is_ancestor(root: Path, commit: str, of: str) -> bool:
    return (
        plumbing.git(root, "merge-base", "--is-ancestor", commit, of, check=False).returncode == 0
    )
