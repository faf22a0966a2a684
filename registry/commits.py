"""The write engine: one registry write, computed, validated, then landed as exactly one commit.

Each write is a `build` function from the base state (a `Snapshot`) to a
`Plan` (the change set, the commit message, the value to return). `write`
takes the lock, builds the plan against HEAD, validates the state to be,
commits it with the plumbing of `registry.plumbing`, and moves the checked-out
branch, the work tree and the index (journaled, see `registry.journal`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from registry import artifacts, journal
from registry.base import RegistryBase
from registry.errors import ConflictError, ManifestError, NotARegistryError
from registry.plumbing import (
    CommitMessage,
    GitLockError,
    build_tree,
    checked_out_ref,
    commit_tree,
    create_tag,
    current_branch,
    refuse_dirty,
    rev_sha,
    stage,
    swap_ref,
    tag_exists,
    tree_of,
    write_worktree,
)
from registry.refnames import check_new_branch
from registry.snapshot import Snapshot
from registry.source import OverlaySource
from registry.worktree import WorkTreeSource
from registry.writelock import write_lock

T = TypeVar("T")
ATTEMPTS = 4
"""How often a write is redone from the new HEAD when another writer landed first."""

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
    registry: RegistryBase,
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


def land(registry: RegistryBase, plan: Plan[Any], base: str | None, new: str) -> bool:
    """Move the checked-out branch from `base` to `new`, then the work tree, index and tag.

    False (and nothing changed) when the branch no longer points at `base`.
    The rest is journaled before the branch moves, so that a process killed
    at any step is finished by the next mreg call (see registry.journal).
    """
    root, state_dir = registry.root, registry.state_dir
    ref = checked_out_ref(root)
    pid, started = journal.this_process()
    record = journal.Journal(
        ref=ref,
        old=base,
        new=new,
        paths=sorted(plan.changes),
        files={path: str(cached) for path, cached in plan.worktree_files.items()},
        removals=list(plan.worktree_removals),
        tag=plan.tag,
        tag_message=plan.message.subject,
        pid=pid,
        started=started,
    )
    journal.save(state_dir, record)
    journal.checkpoint("journal")
    try:
        swapped = swap_ref(root, ref, new, base)
    except GitLockError:
        journal.clear(state_dir)
        raise
    if not swapped:
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


def validate(registry: RegistryBase, base: Snapshot, plan: Plan[Any]) -> None:
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


def refuse_broken_edits(registry: RegistryBase, paths: Iterable[str]) -> None:
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
