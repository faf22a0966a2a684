"""The registry as it is in the work tree, uncommitted edits included.

It lists the same files as a `GitSource` of the same content (see
`is_registry_file`), so validation gives one answer for a revision and for
the work tree that holds it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from registry.errors import RegistryError
from registry.source import (
    REGISTRY_ROOTS,
    blob_id,
    fits_layout,
    is_registry_file,
    list_once,
    names_in_paths,
    under,
    within,
)


class WorkTreeSource:
    """The registry as it is on disk, uncommitted edits included."""

    revision: str | None = None
    label = "work tree"

    def __init__(
        self, root: str | os.PathLike[str], *, roots: Sequence[str] = REGISTRY_ROOTS
    ) -> None:
        self.root = Path(root)
        # Paths listed (files or directories); fewer roots make a cheaper, partial listing.
        self.roots = tuple(roots)
        self._read_cache: dict[str, bytes] = {}
        self._listing: list[str] | None = None
        self._known_ids: dict[str, str] = {}
        # Files listed so far by paths_under, and the roots they came from.
        self._partial: set[str] = set()
        self._listed: dict[str, list[str]] = {}  # root -> the files under it

    def _git(
        self, *commands: tuple[str, ...], roots: Sequence[str] | None = None
    ) -> list[list[str]]:
        """Run git commands side by side (each scans the tree; together they take the longest one)."""
        procs = [
            subprocess.Popen(
                ["git", "--literal-pathspecs", *args, "-z", "--", *(roots or self.roots)],
                cwd=self.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for args in commands
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode != 0:
                raise RegistryError(f"cannot list the work tree: {err.decode().strip()}")
            results.append([p.decode() for p in out.split(b"\0") if p])
        return results

    def _scan(self, roots: Sequence[str] | None = None) -> list[str]:
        """Ask git what is on disk: its index knows the blob id of every unchanged file.

        Only files that differ from the index (modified, or untracked and not
        ignored) are read and hashed, so a large registry is listed without
        reading it. Ignored files (the artifacts themselves) are not registry data.
        """
        staged, modified, untracked = self._git(
            ("ls-files", "--stage"),
            ("diff-files", "--name-only"),
            ("ls-files", "--others", "--exclude-standard"),
            roots=roots,
        )
        indexed: dict[str, str] = {}
        for entry in staged:
            meta, _, path = entry.partition("\t")
            indexed[path] = meta.split(" ")[1]
        changed = set(modified)
        known: dict[str, str] = {}
        listed: list[str] = []
        for path, sha in indexed.items():
            if path in changed:
                if (self.root / path).is_file():
                    listed.append(path)
            else:
                known[path] = sha
                listed.append(path)
        listed.extend(untracked)
        self._known_ids.update(known)
        return [p for p in listed if is_registry_file(p)]

    def paths(self) -> list[str]:
        if self._listing is None:
            if tuple(self.roots) != REGISTRY_ROOTS:
                # A few models' folders: read from disk, not through git's scan of every file.
                return self.paths_under(self.roots)
            self._listing = self._scan()
        return list(self._listing)

    def paths_under(self, roots: Sequence[str]) -> list[str]:
        wanted = [r for r in dict.fromkeys(roots) if within(r, self.roots)]
        if self._listing is not None:
            return under(self._listing, wanted)
        return sorted(set(list_once(wanted, self._listed, self._list_roots)))

    def _list_roots(self, roots: list[str]) -> list[str]:
        found = self._walk(roots)
        if found is None:  # something off the layout: git's own listing decides what counts
            found = [
                p
                for start in range(0, len(roots), 500)
                for p in self._scan(roots[start : start + 500])
            ]
        self._partial.update(found)
        return found

    def _walk(self, roots: Sequence[str]) -> list[str] | None:
        """The registry files under these roots, read from disk without git; None when any file
        fits no part of the layout (it may be ignored: then git's own listing decides)."""
        found: list[str] = []
        for r in roots:
            top = self.root / r
            if top.is_file():
                found.append(r)
                continue
            for folder, _, names in os.walk(top):
                rel = os.path.relpath(folder, self.root)
                found += [f"{rel}/{n}" for n in names]
        kept = [p for p in found if is_registry_file(p)]
        if not all(fits_layout(p) for p in kept):
            return None
        return kept

    def names_in(self, folder: str) -> list[str]:
        if self._listing is not None or tuple(self.roots) != REGISTRY_ROOTS:
            return names_in_paths(self.paths(), folder)
        # Folders on disk: one that holds only ignored files is listed here and
        # then found empty by paths_under, as the full listing would leave it out.
        try:
            return sorted(e.name for e in os.scandir(self.root / folder) if e.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for path in paths:
            if path not in self._read_cache:
                try:
                    self._read_cache[path] = (self.root / path).read_bytes()
                except FileNotFoundError:
                    continue
            out[path] = self._read_cache[path]
        return out

    def blob_ids(self, paths: Iterable[str]) -> dict[str, str]:
        paths = list(paths)
        if self._listing is None:
            unlisted = [p for p in paths if p not in self._partial]
            if unlisted:
                self.paths_under(unlisted)
            paths = [p for p in paths if p in self._partial]
        out: dict[str, str] = {}
        unknown: list[str] = []
        for path in paths:
            sha = self._known_ids.get(path)
            if sha is None:
                unknown.append(path)
            else:
                out[path] = sha
        out.update((p, blob_id(data)) for p, data in self.read(unknown).items())
        return out
