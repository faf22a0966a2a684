"""What every part of the registry shares: its repository, state, sources, snapshots and author."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import journal, plumbing
from registry.cache import ManifestCache
from registry.errors import NotARegistryError
from registry.ids import IdIndex
from registry.layout import Resolution
from registry.names import parse_ref
from registry.snapshot import Snapshot
from registry.source import (
    REGISTRY_ROOTS,
    GitSource,
    Source,
    locate_repo,
    open_repo,
)
from registry.worktree import WorkTreeSource

if TYPE_CHECKING:
    import git


class RegistryBase:
    """A registry's repository and how it is read: sources and snapshots at any revision.

    The writes (`registry.writes`) and history (`registry.history`) build on it;
    `registry.Registry` puts them together.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, require: bool = True) -> None:
        # git's plumbing finds the repository; GitPython is loaded only if `repo` is used.
        self.where = locate_repo(path)
        self.root = Path(self.where.working_dir)
        if require and not (self.root / "registry.yaml").is_file():
            raise NotARegistryError(
                f"{self.root} is not an mreg registry (no registry.yaml): run 'mreg init'"
            )
        self.cache = ManifestCache(self.state_dir / "cache.sqlite")
        # A write killed half-way is finished before anything reads the work tree.
        journal.recover(self.root, self.state_dir)

    @cached_property
    def repo(self) -> git.Repo:
        """The repository as a GitPython Repo."""
        return open_repo(self.root)

    @property
    def state_dir(self) -> Path:
        """Runtime state that is not history (caches, usage, locks): inside .git, never committed."""
        return Path(self.where.git_dir) / "mreg"

    def source(self, rev: str | None = None, *, models: Sequence[str] | None = None) -> Source:
        roots: tuple[str, ...] = REGISTRY_ROOTS
        if models is not None:
            # A partial listing: what a read about these models needs, and nothing else.
            roots = (
                "registry.yaml",
                *(f"{top}/{m}" for m in models for top in ("models", "pointers")),
            )
        if rev is None:
            return WorkTreeSource(self.root, roots=roots)
        return GitSource(self.where, rev, roots=roots)

    def snapshot(self, rev: str | None = None, *, models: Sequence[str] | None = None) -> Snapshot:
        """The registry at `rev` (branch, tag, sha), or the work tree when rev is None.

        With `models`, the snapshot holds only those models and their pointers:
        much cheaper on a large registry, for reads about one model.
        """
        source = self.source(rev, models=models)
        return Snapshot(source, self.cache, id_owner=self._id_owner(source))

    def _id_owner(self, source: Source) -> Callable[[str], str | None] | None:
        """A revision's ids index, built or updated when first asked (registry.ids)."""
        if not isinstance(source, GitSource) or source.revision is None:
            return None
        revision = source.revision
        return lambda version_id: IdIndex.at(self.where, revision, self.cache).owner(version_id)

    def resolve(self, ref: str, rev: str | None = None) -> Resolution:
        """The version `ref` resolves to at `rev` (the work tree when None)."""
        parsed = parse_ref(ref)
        only = [parsed.model] if parsed.model is not None else None
        return self.snapshot(rev, models=only).resolve(parsed)

    def _author(self) -> tuple[str, Any]:
        return plumbing.author(self.root)

    def authored_as(self, name: str, email: str) -> contextlib.AbstractContextManager[None]:
        """Writes made inside `with registry.authored_as(name, email):` are authored as that person.

        The committer stays git's own identity; the override holds for the
        current thread (or task) only, so concurrent writers keep their own.
        """
        return plumbing.identity(name, email)

    @property
    def branch(self) -> str | None:
        """The checked-out branch, where writes commit (None when HEAD is detached)."""
        return plumbing.current_branch(self.root)
