"""Git plumbing for registry writes: running git, identity, the write lock, trees, refs.

A write never uses the user's index: the commit is built from its base commit
in a temporary index-free tree (``hash-object``, ``mktree``, ``commit-tree``),
and lands with a compare-and-swap ``update-ref``. Unrelated staged or modified
files are left as they were, and a concurrent writer makes the swap fail
instead of being overwritten. The write engine built on these is
`registry.commits`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry.errors import ConflictError, RegistryError

ZERO = "0" * 40
Changes = Mapping[str, bytes | None]
"""A write's change set: path -> new bytes, or None to delete it."""


def git(
    root: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    extra = {**(_IDENTITY.get() or {}), **(env or {})}
    full_env = {**os.environ, **extra} if extra else None
    proc = subprocess.run(
        ["git", *args], cwd=root, input=input, capture_output=True, env=full_env, check=False
    )
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RegistryError(f"git {args[0]} failed: {message[-1] if message else proc.returncode}")
    return proc


def git_out(
    root: Path, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
) -> str:
    return git(root, *args, input=input, env=env).stdout.decode().strip()


def rev_sha(root: Path, rev: str) -> str | None:
    proc = git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def fetch_branch(root: Path, remote: str, branch: str, into: str, timeout: float) -> str | None:
    """Fetch `branch` of `remote` into the ref `into`; the error text if it fails.

    The fetch never prompts (no terminal, no credential prompt) and is stopped,
    with whatever it started (ssh, a helper), after `timeout` seconds.
    """
    proc = subprocess.Popen(
        ["git", "fetch", "--quiet", remote, f"+refs/heads/{branch}:{into}"],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        start_new_session=True,  # no controlling terminal for ssh to prompt on; one group to stop
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"no answer from the remote {remote!r} in {timeout:g}s: git fetch stopped"
    if proc.returncode:
        return err.strip() or "git fetch failed"
    return None


def current_branch(root: Path) -> str | None:
    """The checked-out branch, or None when HEAD is detached."""
    proc = git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def checked_out_ref(root: Path) -> str:
    """The ref a commit on the current branch moves (HEAD itself when detached)."""
    branch = current_branch(root)
    return f"refs/heads/{branch}" if branch else "HEAD"


# -- identity ------------------------------------------------------------

# The author of the writes made in this context (a thread, a task): git's own identity when empty.
_IDENTITY: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "mreg_identity", default=None
)


@contextlib.contextmanager
def identity(name: str, email: str) -> Iterator[None]:
    """Author the commits (and `created_by`) of the writes made in this context as `name <email>`."""
    token = _IDENTITY.set({"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email})
    try:
        yield
    finally:
        _IDENTITY.reset(token)


_IDENT_RE = re.compile(r"^(?P<who>.*>) (?P<ts>\d+) (?P<tz>[+-]\d{4})$")


def author(root: Path) -> tuple[str, datetime]:
    """`Name <email>` and the time of the commit to make (honours GIT_AUTHOR_DATE)."""
    proc = git(root, "var", "GIT_AUTHOR_IDENT", check=False)
    ident = proc.stdout.decode().strip()
    m = _IDENT_RE.match(ident)
    if proc.returncode != 0 or not m:
        raise RegistryError(
            "git has no author identity: set it with"
            " 'git config user.name NAME' and 'git config user.email EMAIL'"
        )
    return m.group("who"), datetime.fromtimestamp(int(m.group("ts")), UTC)


# -- the work tree -------------------------------------------------------


def dirty_paths(root: Path, paths: Iterable[str], *, staged_ok: bool = False) -> list[str]:
    """Paths among `paths` with uncommitted changes (staged_ok: only unstaged ones count)."""
    wanted = sorted(set(paths))
    if not wanted:
        return []
    if staged_ok:
        out = git(root, "diff", "--name-only", "-z", "--", *wanted).stdout
        untracked = b""
    else:
        has_head = rev_sha(root, "HEAD") is not None
        if has_head:
            out = git(root, "diff", "HEAD", "--name-only", "-z", "--", *wanted).stdout
        else:
            out = git(root, "diff", "--cached", "--name-only", "-z", "--", *wanted).stdout
        untracked = git(
            root, "ls-files", "--others", "--exclude-standard", "-z", "--", *wanted
        ).stdout
    found = {p.decode() for p in (out + untracked).split(b"\0") if p}
    return sorted(found)


def refuse_dirty(root: Path, paths: Iterable[str], *, staged_ok: bool = False) -> None:
    dirty = dirty_paths(root, paths, staged_ok=staged_ok)
    if dirty:
        more = f" (and in {len(dirty) - 1} more file(s))" if len(dirty) > 1 else ""
        raise ConflictError(
            f"uncommitted changes{more} that this write would overwrite:"
            " commit or discard them first",
            file=dirty[0],
        )


def _retry_index_lock(root: Path, *args: str) -> None:
    for attempt in range(50):
        proc = git(root, *args, check=False)
        if proc.returncode == 0:
            return
        if b"index.lock" not in proc.stderr or attempt == 49:
            message = proc.stderr.decode(errors="replace").strip()
            raise RegistryError(f"git {args[0]} failed: {message}")
        time.sleep(0.1)


def write_worktree(root: Path, changes: Changes) -> None:
    """Write (or delete) the changed files in the work tree."""
    for path, data in changes.items():
        target = root / path
        if data is None:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            _prune_empty(root, target.parent)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".mreg-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)


def _prune_empty(root: Path, folder: Path) -> None:
    """Remove folders left empty by a deletion, up to (not including) models/ and pointers/."""
    while folder.parent != root and folder != root:
        try:
            folder.rmdir()  # fails unless empty
        except OSError:
            return
        folder = folder.parent


def stage(root: Path, paths: Iterable[str]) -> None:
    """Make the real index hold the work tree's version of these paths (added, changed, removed)."""
    wanted = sorted(set(paths))
    if wanted:
        _retry_index_lock(root, "update-index", "--add", "--remove", "--", *wanted)


# -- commits -------------------------------------------------------------


@dataclass
class CommitMessage:
    subject: str
    trailers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None

    def text(self) -> str:
        parts = [self.subject]
        if self.body:
            parts.append(self.body)
        if self.trailers:
            parts.append("\n".join(f"{k}: {v}" for k, v in self.trailers))
        return "\n\n".join(parts) + "\n"


def build_tree(root: Path, base: str | None, changes: Changes) -> str:
    """Write the tree of `base` with `changes` applied; return its id.

    Only the trees on the paths of the changed files are rewritten (with
    `git mktree`), so the cost follows the change, not the registry's size.
    """
    nested: dict[str, Any] = {}
    for path, data in changes.items():
        *dirs, name = path.split("/")
        node = nested
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = (
            None if data is None else git_out(root, "hash-object", "-w", "--stdin", input=data)
        )
    tree = _rewrite_tree(root, tree_of(root, base), nested)
    return tree if tree is not None else git_out(root, "mktree", input=b"")


def _rewrite_tree(root: Path, tree: str | None, changes: dict[str, Any]) -> str | None:
    """`tree` with `changes` (name -> blob id, None to remove, or a dict for a subtree); None if empty."""
    entries: dict[str, tuple[str, str, str]] = {}
    if tree is not None:
        for line in git(root, "ls-tree", "-z", tree).stdout.split(b"\0"):
            if line:
                meta, _, name = line.decode().partition("\t")
                mode, kind, sha = meta.split(" ")
                entries[name] = (mode, kind, sha)
    for name, change in changes.items():
        if isinstance(change, dict):
            old = entries.get(name)
            sub = _rewrite_tree(root, old[2] if old and old[1] == "tree" else None, change)
            if sub is None:
                entries.pop(name, None)
            else:
                entries[name] = ("040000", "tree", sub)
        elif change is None:
            entries.pop(name, None)
        else:
            entries[name] = ("100644", "blob", change)
    if not entries:
        return None
    listing = "".join(f"{m} {k} {sha}\t{name}\0" for name, (m, k, sha) in entries.items())
    return git_out(root, "mktree", "-z", input=listing.encode())


def tree_of(root: Path, commit: str | None) -> str | None:
    return git_out(root, "rev-parse", f"{commit}^{{tree}}") if commit is not None else None


def commit_tree(root: Path, tree: str, base: str | None, message: CommitMessage) -> str:
    parents = ["-p", base] if base is not None else []
    proc = git(root, "commit-tree", tree, *parents, input=message.text().encode())
    return proc.stdout.decode().strip()


def read_committed(root: Path, commit: str | None, paths: Iterable[str]) -> dict[str, bytes]:
    """The bytes of these paths at `commit` (any path, not only registry files); absent ones left out."""
    out: dict[str, bytes] = {}
    if commit is None:
        return out
    for path in paths:
        proc = git(root, "cat-file", "blob", f"{commit}:{path}", check=False)
        if proc.returncode == 0:
            out[path] = proc.stdout
    return out


_LOCK_EXISTS = re.compile(r"Unable to create '(?P<path>[^']+\.lock)': File exists")


def swap_ref(root: Path, ref: str, new: str, old: str | None) -> bool:
    """Point `ref` at `new` only if it still points at `old` (None: must not exist).

    False when `ref` moved; a git lock file in the way is an error that names
    it, not a concurrent writer.
    """
    proc = git(root, "update-ref", "-m", "mreg", ref, new, old or ZERO, check=False)
    if proc.returncode != 0:
        locked = _LOCK_EXISTS.search(proc.stderr.decode(errors="replace"))
        if locked:
            raise GitLockError(Path(locked["path"]))
    return proc.returncode == 0


class GitLockError(ConflictError):
    """A git lock file stops a ref update: a git command is running, or one was killed."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"git's lock file {path} exists: another git command is running in this repository,"
            " or one was killed and left it; if no git command is running, delete the file"
            " and retry"
        )
        self.path = path


def git_path(root: Path, name: str) -> Path:
    """Where git keeps `name` (a ref, a lock file) for this work tree."""
    return root / git_out(root, "rev-parse", "--git-path", name)


def create_tag(root: Path, name: str, commit: str, message: str) -> None:
    proc = git(root, "tag", "-a", "-m", message, name, commit, check=False)
    if proc.returncode != 0:
        raise ConflictError(
            f"the commit {commit[:12]} landed, but creating tag {name} failed:"
            f" {proc.stderr.decode(errors='replace').strip()}"
        )


def tag_exists(root: Path, name: str) -> bool:
    return (
        git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{name}", check=False).returncode
        == 0
    )
