"""Where manifests are read from: a git revision, the work tree, or either with changes on top.

A source lists the registry's files and reads them; each file has a blob id
(git's own object id), so a parse cache keyed by blob id is always correct,
whatever the source.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

from registry.errors import NotARegistryError, RegistryError, RevisionNotFoundError

if TYPE_CHECKING:
    import git

# Top-level entries that belong to the registry; everything else in the repository is ignored.
REGISTRY_ROOTS = ("registry.yaml", "models", "pointers")


def blob_id(data: bytes) -> str:
    """git's object id of a blob with this content (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Source(Protocol):
    revision: str | None
    """The commit sha read, or None for the work tree."""
    label: str
    """How a person named it: a branch, tag, sha, or 'work tree'."""

    def paths(self) -> list[str]: ...

    def paths_under(self, roots: Sequence[str]) -> list[str]:
        """The files under these folders (or these files): what one model's read lists."""
        ...

    def names_in(self, folder: str) -> list[str]:
        """The sorted names directly inside `folder` (models/, pointers/): where a page starts."""
        ...

    def blob_ids(self, paths: Iterable[str]) -> dict[str, str]: ...

    def read(self, paths: Iterable[str]) -> dict[str, bytes]: ...


class RepoDir(NamedTuple):
    """A repository as git's command line sees it: what reads need, without importing GitPython."""

    working_dir: str
    git_dir: str


def locate_repo(path: str | os.PathLike[str] | None = None) -> RepoDir:
    """The work tree and git directory of the repository enclosing `path` (one `git rev-parse`)."""
    where = Path(path or ".").resolve()
    missing = NotARegistryError(
        f"{where} is not inside a git repository: run 'mreg init' or pass --repo"
    )
    if not where.is_dir():
        raise missing
    out = subprocess.run(
        ["git", "rev-parse", "--absolute-git-dir", "--is-bare-repository", "--show-toplevel"],
        cwd=where,
        capture_output=True,
        check=False,
    )
    lines = out.stdout.decode().splitlines()
    if len(lines) >= 2 and lines[1] == "true":
        raise NotARegistryError(f"{lines[0]} is a bare repository: mreg needs a work tree")
    if out.returncode != 0 or len(lines) != 3:
        raise missing
    return RepoDir(lines[2], lines[0])


def open_repo(path: str | os.PathLike[str] | None = None) -> git.Repo:
    """The git repository enclosing `path` (default: the current directory), as a GitPython Repo."""
    import git  # only writes and history need GitPython; reads run git's plumbing directly

    where = Path(path or ".").resolve()
    try:
        return git.Repo(where, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise NotARegistryError(
            f"{where} is not inside a git repository: run 'mreg init' or pass --repo"
        ) from None


def resolve_revision(repo: git.Repo | RepoDir, rev: str) -> str:
    """The commit sha that `rev` (branch, tag, sha, HEAD~2, ...) names."""
    out = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
        cwd=repo.working_dir,
        capture_output=True,
        check=False,
    )
    sha = out.stdout.decode().strip()
    if out.returncode != 0 or not sha:
        raise RevisionNotFoundError(f"revision {rev!r} not found in {repo.working_dir}")
    return sha


class GitSource:
    """The registry as committed at one revision, read from git objects (no checkout)."""

    def __init__(
        self, repo: git.Repo | RepoDir, rev: str = "HEAD", *, roots: Sequence[str] = REGISTRY_ROOTS
    ) -> None:
        self.repo = repo
        self.revision: str | None = resolve_revision(repo, rev)
        self.label = rev
        # Paths listed (files or directories); fewer roots make a cheaper, partial listing.
        self.roots = tuple(roots)
        self._listing: dict[str, str] | None = None
        # Files listed so far by paths_under (path -> blob id), and the roots they came from.
        self._partial: dict[str, str] = {}
        self._listed: dict[str, list[str]] = {}  # root -> the files under it
        self.trees_listed = 0
        """How many `git ls-tree` walks this source made; tests count these."""

    def _ls_tree(self, roots: Sequence[str], *, recursive: bool = True) -> bytes:
        self.trees_listed += 1
        out = subprocess.run(
            [
                "git",
                "--literal-pathspecs",
                "ls-tree",
                *(["-r"] if recursive else []),
                "-z",
                "--full-tree",
                str(self.revision),
                "--",
                *roots,
            ],
            cwd=self.repo.working_dir,
            capture_output=True,
            check=False,
        )
        if out.returncode != 0:
            raise RegistryError(f"cannot list revision {self.label}: {out.stderr.decode().strip()}")
        return out.stdout

    @staticmethod
    def _entries(raw: bytes) -> dict[str, str]:
        # Each entry is b"<6-digit mode> blob <40-hex id>\t<path>" (slicing it is the
        # fast way through a 230,000-file registry); submodules ("commit") are skipped,
        # and so is what the work tree leaves out (see is_registry_file).
        return {
            entry[53:].decode(): entry[12:52].decode()
            for entry in raw.split(b"\0")
            if entry[7:12] == b"blob " and _is_registry_entry(entry)
        }

    def listing(self) -> dict[str, str]:
        if self._listing is None:
            self._listing = self._entries(self._ls_tree(self.roots))
        return self._listing

    def paths(self) -> list[str]:
        return list(self.listing())

    def paths_under(self, roots: Sequence[str]) -> list[str]:
        wanted = [r for r in dict.fromkeys(roots) if within(r, self.roots)]
        if self._listing is not None:
            return under(self._listing, wanted)
        return list(dict.fromkeys(list_once(wanted, self._listed, self._list_roots)))

    def _list_roots(self, roots: list[str]) -> list[str]:
        found: dict[str, str] = {}
        for start in range(0, len(roots), 500):
            found.update(self._entries(self._ls_tree(roots[start : start + 500])))
        self._partial.update(found)
        return list(found)

    def names_in(self, folder: str) -> list[str]:
        if self._listing is not None or tuple(self.roots) != REGISTRY_ROOTS:
            return names_in_paths(self.paths(), folder)
        raw = self._ls_tree([f"{folder}/"], recursive=False)
        # b"<mode> tree <id>\t<folder>/<name>": only folders hold a model or its pointers.
        cut = len(folder) + 54
        return sorted(e[cut:].decode() for e in raw.split(b"\0") if e[7:12] == b"tree ")

    def blob_ids(self, paths: Iterable[str]) -> dict[str, str]:
        wanted = list(paths)
        if self._listing is not None:
            listing = self._listing
        else:
            listing = self._partial
            unknown = [p for p in wanted if p not in listing]
            if unknown:
                self.paths_under(unknown)
        return {p: listing[p] for p in wanted if p in listing}

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        return read_blobs(self.repo, self.blob_ids(paths))


def read_blobs(repo: git.Repo | RepoDir, ids: Mapping[str, str]) -> dict[str, bytes]:
    """Read many blobs through one `git cat-file --batch` process."""
    if not ids:
        return {}
    unique = list(dict.fromkeys(ids.values()))
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo.working_dir,
        input=b"".join(sha.encode() + b"\n" for sha in unique),
        capture_output=True,
        check=True,
    )
    data = proc.stdout
    contents: dict[str, bytes] = {}
    pos = 0
    for sha in unique:
        nl = data.index(b"\n", pos)
        header = data[pos:nl].split(b" ")
        if len(header) < 3:  # "<sha> missing"
            raise RegistryError(f"git object {sha} is missing from {repo.working_dir}")
        size = int(header[2])
        contents[sha] = data[nl + 1 : nl + 1 + size]
        pos = nl + 1 + size + 1
    return {path: contents[sha] for path, sha in ids.items()}


def is_registry_file(path: str) -> bool:
    """Registry data: not a .gitignore (mreg writes one beside each artifact), not an artifact.

    GitSource and WorkTreeSource list the same files, so validation gives one
    answer for a revision and for the work tree that holds it.
    """
    parts = path.split("/")
    # Artifacts themselves are git-ignored: only their .dvc pointer is registry data.
    is_artifact = (
        len(parts) > 3
        and parts[0] == "models"
        and parts[2] == "artifacts"
        and not path.endswith(".dvc")
    )
    return parts[-1] != ".gitignore" and not is_artifact


def _is_registry_entry(entry: bytes) -> bool:
    """is_registry_file on a raw `git ls-tree` entry; most entries need no decoding."""
    if entry.endswith(b"/.gitignore"):
        return False
    if entry.endswith(b".dvc") or b"/artifacts/" not in entry:
        return True
    return is_registry_file(entry[53:].decode())


def within(path: str, roots: Iterable[str]) -> bool:
    """Whether `path` is one of `roots` or inside one of them."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _prefixes(path: str) -> Iterator[str]:
    """The path and each folder that holds it, innermost first."""
    yield path
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


def under(paths: Iterable[str], roots: Iterable[str]) -> list[str]:
    """The paths that are one of `roots` or inside one (a set lookup per folder, not per root)."""
    wanted = {r.rstrip("/") for r in roots}
    return [p for p in paths if any(q in wanted for q in _prefixes(p))]


T = TypeVar("T")


def page_of(
    names: Sequence[str], after: str | None, limit: int, take: Callable[[list[str]], list[T]]
) -> list[T]:
    """What `take` makes of the sorted `names` after `after`, a chunk at a time, until more
    than `limit` are found; each chunk is twice the last (a selective filter skips many)."""
    start = bisect.bisect_right(names, after) if after is not None else 0
    found: list[T] = []
    chunk = limit + 1
    while start < len(names) and len(found) <= limit:
        batch = list(names[start : start + chunk])
        start += chunk
        chunk = min(chunk * 2, 2000)
        found += take(batch)
    return found


def list_once(
    wanted: Sequence[str],
    listed: dict[str, list[str]],
    fetch: Callable[[list[str]], Iterable[str]],
) -> list[str]:
    """The paths under the `wanted` roots; `listed` keeps each root's files, and only roots not
    in it yet are read, by `fetch` (roots -> the paths under them), all in one call."""
    todo = [r.rstrip("/") for r in wanted if r.rstrip("/") not in listed]
    fresh = set(todo)
    for r in todo:
        listed[r] = []
    for p in fetch(todo) if todo else ():
        for q in _prefixes(p):
            if q in fresh:
                listed[q].append(p)
    return [p for r in wanted for p in listed[r.rstrip("/")]]


_LAYOUT = re.compile(
    r"registry\.yaml|models/[^/]+/(model\.yaml|versions/[^/]+\.yaml|artifacts/.+\.dvc)|pointers/[^/]+/[^/]+\.yaml"
)


def fits_layout(path: str) -> bool:
    return _LAYOUT.fullmatch(path) is not None


def names_in_paths(paths: Iterable[str], folder: str) -> list[str]:
    """The folder names directly inside `folder` among these file paths."""
    prefix = folder.rstrip("/") + "/"
    return sorted(
        {
            p[len(prefix) :].split("/", 1)[0]
            for p in paths
            if p.startswith(prefix) and p.count("/") > 1
        }
    )


class OverlaySource:
    """Another source with some files changed, added (bytes) or removed (None): a write's result."""

    def __init__(self, base: Source, changes: Mapping[str, bytes | None]) -> None:
        self.base = base
        self.changes = dict(changes)
        self.revision: str | None = None
        self.label = f"{base.label} + {len(self.changes)} change(s)"

    def paths(self) -> list[str]:
        present = {p for p in self.base.paths() if p not in self.changes}
        present.update(p for p, data in self.changes.items() if data is not None)
        return sorted(present)

    def paths_under(self, roots: Sequence[str]) -> list[str]:
        present = {p for p in self.base.paths_under(roots) if p not in self.changes}
        present.update(
            p for p, data in self.changes.items() if data is not None and within(p, roots)
        )
        return sorted(present)

    def names_in(self, folder: str) -> list[str]:
        names = set(self.base.names_in(folder))
        names.update(names_in_paths((p for p, d in self.changes.items() if d is not None), folder))
        return sorted(names)

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        wanted = list(paths)
        out = self.base.read([p for p in wanted if p not in self.changes])
        for p in wanted:
            data = self.changes.get(p)
            if data is not None:
                out[p] = data
        return out

    def blob_ids(self, paths: Iterable[str]) -> dict[str, str]:
        wanted = list(paths)
        out = self.base.blob_ids([p for p in wanted if p not in self.changes])
        for p in wanted:
            data = self.changes.get(p)
            if data is not None:
                out[p] = blob_id(data)
        return out
