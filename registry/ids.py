"""The ids index: which version file holds each version id, at one revision, without reading them all.

Version ids are unique across the whole registry, so checking a change for a
reused id would mean reading every version. Instead the index (version file
path -> id) is kept in the parse cache under the id of the revision's
`models/` tree: a tree id names content, so an entry is never stale. A
revision whose index is not cached starts from the most recent cached one and
applies `git diff-tree` between the two (reading only the version files that
changed); only a registry never indexed before is read in full, once.
"""

from __future__ import annotations

import subprocess
import zlib
from collections.abc import Iterable, Mapping, Sequence

from registry.cache import ManifestCache
from registry.errors import RegistryError
from registry.layout import VERSION_FILE_RE
from registry.manifests import VersionManifest
from registry.source import GitSource, RepoDir, read_blobs

# Past this many changed version files, reading the revision in full is as cheap.
MAX_DIFF = 20_000
KEEP = 8  # indexes kept in the cache (the most recent ones)


def _is_version_file(path: str) -> bool:
    parts = path.split("/")
    return (
        "\t" not in path  # the stored lines are "<path>\t<id>\n"
        and "\n" not in path
        and len(parts) == 4
        and parts[0] == "models"
        and parts[2] == "versions"
        and VERSION_FILE_RE.fullmatch(parts[3]) is not None
    )


def _git(repo: RepoDir, *args: str) -> bytes:
    out = subprocess.run(["git", *args], cwd=repo.working_dir, capture_output=True, check=False)
    if out.returncode != 0:
        raise RegistryError(f"git {args[0]} failed: {out.stderr.decode().strip()}")
    return out.stdout


def models_tree(repo: RepoDir, commit: str) -> str:
    """The id of the commit's `models/` tree ('' when it has none)."""
    out = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{commit}:models"],
        cwd=repo.working_dir,
        capture_output=True,
        check=False,
    )
    return out.stdout.decode().strip() if out.returncode == 0 else ""


class IdIndex:
    """Version file path -> version id at one commit; `owner(id)` says which file holds an id."""

    def __init__(self, paths: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        self._paths = paths
        self._raw = raw  # b"<path>\t<id>\n" lines, as stored: searched, not loaded, for a few ids
        self._owners: dict[str, str] | None = None
        self.read_in_full = False
        """Whether building it read every version file (no cached index to start from)."""
        self.files_read = 0
        """How many version files were read to build it (the change, when updated from a diff)."""

    @property
    def paths(self) -> dict[str, str]:
        if self._paths is None:
            lines = (self._raw or b"").decode().splitlines()
            self._paths = {p: v for p, _, v in (line.partition("\t") for line in lines)}
        return self._paths

    def to_bytes(self) -> bytes:
        return "".join(f"{p}\t{v}\n" for p, v in self.paths.items()).encode()

    def owner(self, version_id: str) -> str | None:
        """The version file that holds `version_id`, or None."""
        if self._paths is None and self._raw is not None:
            at = self._raw.find(b"\t" + version_id.encode() + b"\n")
            if at < 0:
                return None
            return self._raw[self._raw.rfind(b"\n", 0, at) + 1 : at].decode()
        if self._owners is None:
            self._owners = {v: p for p, v in self.paths.items()}
        return self._owners.get(version_id)

    @classmethod
    def at(cls, repo: RepoDir, commit: str, cache: ManifestCache) -> IdIndex:
        """The index of `commit` (a full sha): cached, updated from a cached one, or read in full."""
        tree = models_tree(repo, commit)
        if not tree:
            return cls({})
        stored = cache.get_index(tree)
        if stored is not None:
            return cls(raw=zlib.decompress(stored))
        index: IdIndex | None = None
        for old_tree, old_commit in cache.recent_indexes():
            data = cache.get_index(old_tree)
            if data is not None:
                old = cls(raw=zlib.decompress(data)).paths
                index = _updated(repo, old_commit, commit, old, cache)
                break
        if index is None:
            index = _full(repo, commit, cache)
        cache.put_index(tree, commit, zlib.compress(index.to_bytes()), KEEP)
        return index


def _parse(
    repo: RepoDir, blobs: Mapping[str, str], cache: ManifestCache
) -> tuple[dict[str, str], int]:
    """path -> id of these version files (path -> blob id), through the parse cache; a file
    that does not parse is left out (validation reports it on its own)."""
    from registry.snapshot import Snapshot  # the parse path: cache by blob id, one cat-file

    snap = Snapshot(_Blobs(repo, blobs), cache)
    before = cache.parses
    out: dict[str, str] = {}
    paths = list(blobs)
    for start in range(0, len(paths), 2000):
        chunk = paths[start : start + 2000]
        try:
            parsed = snap.parse(VersionManifest, chunk)
        except RegistryError:
            parsed = {}
            for path in chunk:
                try:
                    parsed.update(snap.parse(VersionManifest, [path]))
                except RegistryError:
                    continue
        out.update((p, v.id) for p, v in parsed.items())
    return out, cache.parses - before


def _full(repo: RepoDir, commit: str, cache: ManifestCache) -> IdIndex:
    source = GitSource(repo, commit, roots=("models",))
    blobs = {p: b for p, b in source.listing().items() if _is_version_file(p)}
    paths, _ = _parse(repo, blobs, cache)
    index = IdIndex(paths)
    index.read_in_full = True
    index.files_read = len(blobs)
    return index


def _updated(
    repo: RepoDir, old: str, new: str, paths: dict[str, str], cache: ManifestCache
) -> IdIndex | None:
    """The index of `new` from the index of `old` and the version files that differ."""
    raw = _git(repo, "diff-tree", "-r", "-z", "--no-renames", old, new, "--", "models")
    fields = raw.split(b"\0")
    changed: dict[str, str] = {}
    gone: list[str] = []
    # Each change is b":<old mode> <new mode> <old id> <new id> <status>" then b"<path>".
    for meta, path_b in zip(fields[0::2], fields[1::2], strict=False):
        if not meta.startswith(b":"):
            continue
        path = path_b.decode()
        if not _is_version_file(path):
            continue
        status = meta.split(b" ")[4][:1]
        if status == b"D":
            gone.append(path)
        else:
            changed[path] = meta.split(b" ")[3].decode()
    if len(changed) + len(gone) > MAX_DIFF:
        return None
    out = dict(paths)
    for path in [*gone, *changed]:
        out.pop(path, None)
    found, _ = _parse(repo, changed, cache)
    out.update(found)
    index = IdIndex(out)
    index.files_read = len(changed)
    return index


class _Blobs:
    """A source of exactly these files (path -> blob id), for parsing them through a Snapshot."""

    revision: str | None = None
    label = "ids index"

    def __init__(self, repo: RepoDir, blobs: Mapping[str, str]) -> None:
        self.repo = repo
        self.blobs = dict(blobs)

    def paths(self) -> list[str]:
        return list(self.blobs)

    def paths_under(self, roots: Sequence[str]) -> list[str]:
        return []

    def names_in(self, folder: str) -> list[str]:
        return []

    def blob_ids(self, paths: Iterable[str]) -> dict[str, str]:
        return {p: self.blobs[p] for p in paths if p in self.blobs}

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        return read_blobs(self.repo, self.blob_ids(paths))
