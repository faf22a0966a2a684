"""The registry: a git repository of manifests, read at any revision."""

from __future__ import annotations

import os
from pathlib import Path

import git

from registry.cache import ManifestCache
from registry.errors import NotARegistryError
from registry.snapshot import Snapshot
from registry.source import GitSource, Source, WorkTreeSource, open_repo


class Registry:
    """A registry repository. Reads go through snapshots; writes are commits."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, require: bool = True) -> None:
        self.repo: git.Repo = open_repo(path)
        if self.repo.working_tree_dir is None:
            raise NotARegistryError(
                f"{self.repo.git_dir} is a bare repository: mreg needs a work tree"
            )
        self.root = Path(self.repo.working_tree_dir)
        if require and not (self.root / "registry.yaml").is_file():
            raise NotARegistryError(
                f"{self.root} is not an mreg registry (no registry.yaml): run 'mreg init'"
            )
        self.cache = ManifestCache(self.state_dir / "cache.sqlite")

    @property
    def state_dir(self) -> Path:
        """Runtime state that is not history (caches, usage, locks): inside .git, never committed."""
        return Path(self.repo.git_dir) / "mreg"

    def source(self, rev: str | None = None) -> Source:
        return WorkTreeSource(self.root) if rev is None else GitSource(self.repo, rev)

    def snapshot(self, rev: str | None = None) -> Snapshot:
        """The registry at `rev` (branch, tag, sha), or the work tree when rev is None."""
        return Snapshot(self.source(rev), self.cache)
