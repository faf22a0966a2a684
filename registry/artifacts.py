"""Artifacts: model files tracked by DVC, kept in the DVC cache and pushed to the default remote.

mreg writes what ``dvc add`` would write (the ``.dvc`` file and the
``.gitignore`` next to the artifact) and moves the bytes itself into DVC 3's
content-addressed cache (``.dvc/cache/files/md5/ab/cdef...``); DVC's own
transfer code then pushes them to, and fetches them from, the default remote.
So ``dvc status``, ``dvc pull`` and ``dvc checkout`` work on an mreg registry
as on any DVC project, and mreg never needs a checkout to move bytes.

DVC is slow to import, so it is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

import yaml

from registry.errors import ArtifactError, ManifestError, RegistryError
from registry.remotes import (
    corrupt_local_copy,
    dvc_config,
    fetch,
    file_md5,
    missing_reason,
)

if TYPE_CHECKING:
    from registry.manifests import VersionManifest
    from registry.snapshot import Snapshot

DEFAULT_REMOTE_NAME = "storage"
LOCAL_STORAGE = "storage"
"""The default remote when `mreg init` gets no URL: `.dvc/storage` (git-ignored)."""


class HasRoot(Protocol):
    """Whatever knows the registry's work tree (a `Registry`): artifacts need no more of it."""

    @property
    def root(self) -> Path: ...


_CHUNK = 1 << 20
_fetch_lock = threading.Lock()
# (cache file, size, mtime_ns) already checked against their md5: a server checks each once.
_verified: set[tuple[str, int, int]] = set()


def cache_dir(root: str | os.PathLike[str]) -> Path:
    """The DVC cache of the registry at `root` (``cache.dir`` if configured, else .dvc/cache)."""
    base = Path(root) / ".dvc"
    configured = dvc_config(Path(root)).get("cache", "dir", fallback=None)
    if configured:
        # DVC resolves a relative cache.dir against the .dvc directory holding the config.
        return (base / os.path.expanduser(configured)).resolve()
    return base / "cache"


def cache_file(root: str | os.PathLike[str], md5: str) -> Path:
    """Where DVC 3 keeps the object with this md5 in the local cache."""
    return cache_dir(root) / "files" / "md5" / md5[:2] / md5[2:]


# -- writing -------------------------------------------------------------


@dataclass(frozen=True)
class StagedArtifact:
    """A file copied into the DVC cache (and pushed), ready to be named by a version."""

    filename: str
    md5: str
    size: int
    cached: Path


def check_artifact_name(name: str) -> str:
    """A file name mreg can record in a .dvc file and a .gitignore pattern, or a clear error.

    Characters those formats treat specially (``:``, ``[``, ``#``, ``*``, ...) are
    quoted and escaped when written; only names that would not survive a line
    of text are refused.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ArtifactError(f"artifact file name {name!r} holds a control character: rename it")
    if name != name.strip():
        raise ArtifactError(
            f"artifact file name {name!r} starts or ends with white space: rename it"
        )
    if "\\" in name:
        raise ArtifactError(f"artifact file name {name!r} holds a backslash: rename it")
    return name


def check_artifact_file(path: str | os.PathLike[str]) -> Path:
    """The file to register, or a clear error when it is missing, a directory or empty."""
    src = Path(path)
    check_artifact_name(src.name)
    if not src.exists():
        raise ArtifactError(f"artifact file {src} does not exist")
    if not src.is_file():
        raise ArtifactError(f"artifact {src} is not a file")
    if src.stat().st_size == 0:
        raise ArtifactError(f"artifact file {src} is empty")
    return src


def add_to_cache(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> StagedArtifact:
    """Copy a file into the DVC cache (atomically, read-only, as DVC does) and return its md5."""
    src = check_artifact_file(path)
    md5 = file_md5(src)
    target = cache_file(root, md5)
    if not target.is_file() or file_md5(target) != md5:
        _copy_into_place(src, target, 0o444)
    return StagedArtifact(src.name, md5, target.stat().st_size, target)


def dvc_file_text(filename: str, md5: str, size: int) -> bytes:
    """The .dvc file `dvc add` writes for one file (DVC 3 format); values quoted where YAML needs."""
    out = {"md5": md5, "size": size, "hash": "md5", "path": filename}
    text = yaml.safe_dump({"outs": [out]}, sort_keys=False, allow_unicode=True, width=1 << 20)
    return text.encode()


def gitignore_text(filename: str) -> bytes:
    """The .gitignore `dvc add` writes next to the file (escaped as DVC does), so it stays out of git."""
    from pathspec.patterns.gitwildmatch import GitWildMatchPattern

    return f"/{GitWildMatchPattern.escape(filename)}\n".encode()


# -- reading -------------------------------------------------------------


def _verified_md5(path: Path, md5: str) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return True
    if file_md5(path) != md5:
        return False
    _verified.add(key)
    return True


def verified_in_cache(root: str | os.PathLike[str], md5: str) -> bool:
    """The DVC cache holds the object `md5` with bytes that match it (checked once per file)."""
    return _verified_md5(cache_file(root, md5), md5)


def ensure_local(
    registry: HasRoot, snapshot: Snapshot, model: str, version: VersionManifest
) -> Path:
    """A local file holding the version's artifact bytes (in the DVC cache), md5-checked.

    Fetches from the default DVC remote, as configured at the snapshot's
    revision, when the cache does not have it. Raises ArtifactError when the
    version has no artifact, or the bytes are missing everywhere or corrupt.
    """
    art = version.artifact
    ref = f"{model}:v{version.version}"
    if art is None:
        raise ArtifactError(f"{ref} has no artifact (status {version.status.value})", ref=ref)
    path = cache_file(registry.root, art.md5)
    if _verified_md5(path, art.md5):
        return path
    with _fetch_lock:
        if _verified_md5(path, art.md5):
            return path
        if path.is_file():
            # Corrupt bytes in the cache: fetch a fresh copy over them.
            path.unlink()
        corrupt = corrupt_local_copy(registry.root, art.md5)
        if corrupt is not None:
            raise ArtifactError(f"artifact of {ref} is not available: {corrupt}", ref=ref)
        try:
            fetch(registry.root, [art.md5], snapshot.revision)
        except ArtifactError as exc:
            raise ArtifactError(f"artifact of {ref} is not available: {exc}", ref=ref) from None
        if not path.is_file():
            why = missing_reason(registry.root, art.md5, snapshot.revision)
            raise ArtifactError(
                f"artifact of {ref} (md5 {art.md5}) is not available: {why}", ref=ref
            )
        if not _verified_md5(path, art.md5):
            path.unlink()
            raise ArtifactError(
                f"artifact of {ref}: the copy fetched from the default remote is corrupt"
                f" (md5 mismatch: not {art.md5})",
                ref=ref,
            )
    return path


def artifact_path_problem(path: str) -> str | None:
    """Why a manifest's `artifact.path` (relative to the model directory) is unsafe, or None.

    It must name a file under the model's `artifacts/` directory: never an
    absolute path, never a `..` that climbs out.
    """
    rel = PurePosixPath(path)
    if rel.is_absolute():
        return "is absolute"
    if "\\" in path:
        return "holds a backslash"
    if ".." in rel.parts:
        return "climbs out with '..'"
    if any(ord(c) < 32 for c in path):
        return "holds a control character"
    if rel.parts[:1] != ("artifacts",) or len(rel.parts) < 2:
        return "is not under artifacts/"
    return None


def artifact_target(root: str | os.PathLike[str], model: str, version: VersionManifest) -> Path:
    """Where a version's artifact goes in the work tree: always under models/<model>/artifacts/.

    Raises ManifestError (naming the version file) for a path that would leave
    that directory, directly or through a symbolic link.
    """
    assert version.artifact is not None
    path = version.artifact.path
    file = f"models/{model}/versions/{version.version}.yaml"
    problem = artifact_path_problem(path)
    if problem is not None:
        raise ManifestError(
            f"artifact.path {path!r} {problem}: it must stay under models/{model}/artifacts/",
            file=file,
        )
    base = Path(root).resolve() / "models" / model / "artifacts"
    target = base.joinpath(*PurePosixPath(path).parts[1:])
    if os.path.realpath(target.parent) != str(target.parent):
        raise ManifestError(
            f"artifact.path {path!r} goes through a symbolic link: it must stay under"
            f" models/{model}/artifacts/",
            file=file,
        )
    return target


def checkout(cached: Path, target: Path) -> bool:
    """Copy cache bytes into the work tree (as DVC's copy link would). False if already there."""
    same_size = target.is_file() and target.stat().st_size == cached.stat().st_size
    if same_size and file_md5(target) == file_md5(cached):
        return False
    try:
        _copy_into_place(cached, target, 0o644)
    except OSError as exc:
        raise RegistryError(f"cannot write {target}: {exc}") from None
    return True


def _copy_into_place(src: Path, target: Path, mode: int) -> None:
    """Copy `src` to `target` atomically (a temporary file beside it, then a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".mreg-")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
