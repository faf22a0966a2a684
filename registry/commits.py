"""Making one commit per registry write, with git plumbing.

A write never uses the user's index: the commit is built from its base commit
in a temporary index (``read-tree``, ``update-index --cacheinfo``,
``write-tree``, ``commit-tree``), and lands with a compare-and-swap
``update-ref``. Unrelated staged or modified files are left as they were, and
a concurrent writer makes the swap fail instead of being overwritten.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from registry import artifacts, journal
from registry.errors import (
    ConflictError,
    InvalidNameError,
    ManifestError,
    NotARegistryError,
    RegistryError,
)
from registry.snapshot import Snapshot
from registry.source import OverlaySource, WorkTreeSource

if TYPE_CHECKING:
    from registry.registry import Registry

T = TypeVar("T")
ATTEMPTS = 4
"""How often a write is redone from the new HEAD when another writer landed first."""

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


def current_branch(root: Path) -> str | None:
    """The checked-out branch, or None when HEAD is detached."""
    proc = git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def checked_out_ref(root: Path) -> str:
    """The ref a commit on the current branch moves (HEAD itself when detached)."""
    branch = current_branch(root)
    return f"refs/heads/{branch}" if branch else "HEAD"


_BRANCH_BAD = re.compile(r"[\s~^:?*\[\\]|\.\.|@\{|^-|/$|\.lock$|^$")


def check_new_branch(root: Path, name: str) -> None:
    """A valid branch name that does not exist yet, or a clear error."""
    proc = git(root, "check-ref-format", "--branch", name, check=False)
    if proc.returncode != 0 or _BRANCH_BAD.search(name):
        raise InvalidNameError(f"invalid branch name {name!r}")
    if rev_sha(root, f"refs/heads/{name}") is not None:
        raise ConflictError(f"branch {name} exists already: choose another name")


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


# -- locking -------------------------------------------------------------


@contextlib.contextmanager
def write_lock(state_dir: Path, timeout: float = 60.0) -> Iterator[None]:
    """Serialise writers of one repository (processes and threads) with flock."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConflictError(
                        "another mreg write is still running on this registry: retry later"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


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


def swap_ref(root: Path, ref: str, new: str, old: str | None) -> bool:
    """Point `ref` at `new` only if it still points at `old` (None: must not exist)."""
    proc = git(root, "update-ref", "-m", "mreg", ref, new, old or ZERO, check=False)
    return proc.returncode == 0


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


# -- the write engine ------------------------------------------------------


@dataclass(frozen=True)
class WriteResult(Generic[T]):
    """What a write did: the new manifest (or other value), and the commit that holds it."""

    value: T
    subject: str
    commit: str | None
    """The new commit's sha; None when the change was only staged, or changed nothing."""
    branch: str | None
    tag: str | None
    paths: tuple[str, ...]
    """The files changed; empty when the write changed nothing (and made no commit)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "commit": self.commit,
            "branch": self.branch,
            "tag": self.tag,
            "paths": list(self.paths),
        }


@dataclass
class Plan(Generic[T]):
    """One write, computed against a base state: the change set, the message, what to return."""

    changes: dict[str, bytes | None]
    message: CommitMessage
    value: T
    tag: str | None = None
    worktree_files: dict[str, Path] = field(default_factory=dict)
    """Artifact bytes to put in the work tree next to their .dvc file (path -> cache file)."""
    worktree_removals: list[str] = field(default_factory=list)
    """Git-ignored files to remove from the work tree (artifacts of a deleted model)."""


def write(
    registry: Registry,
    build: Callable[[Snapshot], Plan[T]],
    *,
    branch: str | None = None,
    commit: bool = True,
    models: Sequence[str] | None = None,
) -> WriteResult[T]:
    """Compute `build`'s change from the current state, validate it, then make exactly one commit.

    commit=False writes and stages the change in the work tree instead;
    `branch` commits on that new branch and leaves the work tree alone.
    `models` limits what is read to the models the write is about (a write
    never reaches into another model), which keeps writes fast on large registries.
    """
    root = registry.root
    if branch is not None:
        check_new_branch(root, branch)
    with write_lock(registry.state_dir):
        journal.recover_locked(root, registry.state_dir)
        for _ in range(ATTEMPTS):
            if not commit:
                base_sha = None
                base = registry.snapshot(models=models)
            else:
                base_sha = rev_sha(root, "HEAD")
                if base_sha is None:
                    raise NotARegistryError(f"{root} has no commits yet: run 'mreg init' first")
                source = registry.source(base_sha, models=models)
                source.label = current_branch(root) or "HEAD"
                base = Snapshot(source, registry.cache)
            plan = build(base)
            validate(registry, base, plan)
            paths = sorted(plan.changes)
            if branch is None:
                refuse_dirty(root, [*paths, *plan.worktree_removals], staged_ok=not commit)
                refuse_broken_edits(registry, paths)
            if not commit:
                apply_worktree(root, plan)
                stage(root, paths)
                return WriteResult(plan.value, plan.message.subject, None, None, None, tuple(paths))
            if branch is not None:
                # The number is settled when the pull request merges: tag it then, not now.
                plan.tag = None
            if plan.tag is not None and tag_exists(root, plan.tag):
                raise ConflictError(
                    f"tag {plan.tag} exists already (from an earlier model of that name?):"
                    f" delete it with 'git tag -d {plan.tag}' and retry"
                )
            tree = build_tree(root, base_sha, plan.changes)
            if tree == tree_of(root, base_sha):
                # Nothing to change (e.g. a pointer moved where it is): no empty commit.
                return WriteResult(plan.value, plan.message.subject, None, branch, None, ())
            new = commit_tree(root, tree, base_sha, plan.message)
            journal.checkpoint("commit")
            if branch is not None:
                if not swap_ref(root, f"refs/heads/{branch}", new, None):
                    raise ConflictError(f"branch {branch} exists already: choose another name")
            elif not land(registry, plan, base_sha, new):
                continue  # another writer landed first: redo from the new HEAD
            return WriteResult(
                plan.value, plan.message.subject, new, branch, plan.tag, tuple(paths)
            )
    raise ConflictError(
        "the registry changed while this write was being made, several times: retry"
    )


def land(registry: Registry, plan: Plan[Any], base: str | None, new: str) -> bool:
    """Move the checked-out branch from `base` to `new`, then the work tree, index and tag.

    False (and nothing changed) when the branch no longer points at `base`.
    The rest is journaled before the branch moves, so that a process killed
    at any step is finished by the next mreg call (see registry.journal).
    """
    root, state_dir = registry.root, registry.state_dir
    ref = checked_out_ref(root)
    record = journal.Journal(
        ref=ref,
        old=base,
        new=new,
        paths=sorted(plan.changes),
        files={path: str(cached) for path, cached in plan.worktree_files.items()},
        removals=list(plan.worktree_removals),
        tag=plan.tag,
        tag_message=plan.message.subject,
    )
    journal.save(state_dir, record)
    journal.checkpoint("journal")
    if not swap_ref(root, ref, new, base):
        journal.clear(state_dir)
        return False
    journal.checkpoint("ref")
    # An error or Ctrl-C from here on leaves the journal: the next mreg call finishes the work.
    apply_worktree(root, plan)
    journal.checkpoint("worktree")
    stage(root, record.paths)
    journal.checkpoint("index")
    if plan.tag is not None:
        create_tag(root, plan.tag, new, plan.message.subject)
    journal.checkpoint("tag")
    journal.clear(state_dir)
    return True


def validate(registry: Registry, base: Snapshot, plan: Plan[Any]) -> None:
    """Parse every touched manifest and resolve every touched pointer in the state to be."""
    after = Snapshot(OverlaySource(base.source, plan.changes), registry.cache)
    for path, data in plan.changes.items():
        if data is None:
            continue
        parts = path.split("/")
        if path == "registry.yaml":
            after.settings()
        elif parts[0] == "models" and parts[-1] == "model.yaml" and len(parts) == 3:
            after.model(parts[1])
        elif parts[0] == "models" and len(parts) == 4 and parts[2] == "versions":
            after.versions(parts[1])
        elif parts[0] == "pointers" and len(parts) == 3:
            tag = parts[2].removesuffix(".yaml")
            after.pointer(parts[1], tag)
            if not after.model(parts[1]).archived:
                after.resolve(f"{parts[1]}:{tag}")


def refuse_broken_edits(registry: Registry, paths: Iterable[str]) -> None:
    """Stop a write to a model whose manifests, as edited by hand in the work tree, don't parse.

    The write itself is built from HEAD, but landing it beside a broken hand
    edit would leave the user a commit on top of a registry that no longer
    validates.
    """
    models = sorted({p.split("/")[1] for p in paths if p.startswith(("models/", "pointers/"))})
    if not models:
        return
    roots = [f"{top}/{m}" for m in models for top in ("models", "pointers")]
    work = Snapshot(WorkTreeSource(registry.root, roots=roots), registry.cache)
    for model in models:
        if not work.has_model(model):
            continue
        try:
            work.model(model)
            work.versions(model)
            work.pointers(model)
        except ManifestError as exc:
            raise ManifestError(
                f"{exc.message} (an uncommitted edit: fix or revert it, then retry)",
                file=exc.file,
                line=exc.line,
            ) from None


def apply_worktree(root: Path, plan: Plan[Any]) -> None:
    write_worktree(root, plan.changes)
    journal.checkpoint("manifests")
    for path, cached in plan.worktree_files.items():
        artifacts.checkout(cached, root / path)
    write_worktree(root, dict.fromkeys(plan.worktree_removals))
