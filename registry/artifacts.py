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

import configparser
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from registry import progress
from registry.errors import ArtifactError, ManifestError, RegistryError

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


def file_md5(path: str | os.PathLike[str]) -> str:
    """The md5 of a file's bytes, as DVC records it."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _dvc_config(root: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    for name in ("config", "config.local"):
        try:
            parser.read(root / ".dvc" / name, encoding="utf-8")
        except configparser.Error:
            continue
    return parser


def cache_dir(root: str | os.PathLike[str]) -> Path:
    """The DVC cache of the registry at `root` (``cache.dir`` if configured, else .dvc/cache)."""
    base = Path(root) / ".dvc"
    configured = _dvc_config(Path(root)).get("cache", "dir", fallback=None)
    if configured:
        # DVC resolves a relative cache.dir against the .dvc directory holding the config.
        return (base / os.path.expanduser(configured)).resolve()
    return base / "cache"


def cache_file(root: str | os.PathLike[str], md5: str) -> Path:
    """Where DVC 3 keeps the object with this md5 in the local cache."""
    return cache_dir(root) / "files" / "md5" / md5[:2] / md5[2:]


def has_default_remote(root: str | os.PathLike[str]) -> bool:
    return bool(_dvc_config(Path(root)).get("core", "remote", fallback=None))


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


def quiet_dvc() -> None:
    """DVC logs progress to stdout; mreg's core never prints, so only DVC warnings get through."""
    logging.getLogger("dvc").setLevel(logging.WARNING)
    progress.apply()  # DVC's bars only where the CLI asked for them


def _relative_remotes_at(root: Path, rev: str) -> dict[str, Any]:
    """The local remotes that `.dvc/config` at `rev` records relative to `.dvc/`, made absolute.

    DVC reading its config from a git revision resolves a relative path against
    the tree's virtual root (`../examples/storage` becomes `/examples/storage`),
    not against the repository on disk, and then finds nothing there.
    """
    shown = subprocess.run(
        ["git", "show", f"{rev}:.dvc/config"], cwd=root, capture_output=True, text=True
    )
    if shown.returncode != 0:
        return {}
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(shown.stdout)
    except configparser.Error:
        return {}
    remotes: dict[str, Any] = {}
    for section in parser.sections():
        # DVC writes ['remote "name"'] (configobj quoting); configparser keeps the quotes.
        name = section.strip("'").removeprefix('remote "').removesuffix('"')
        url = parser.get(section, "url", fallback=None)
        if (
            name == section.strip("'")
            or not url
            or "://" in url
            or os.path.isabs(os.path.expanduser(url))
        ):
            continue
        remotes[name] = {"url": str((root / ".dvc" / url).resolve())}
    return {"remote": remotes} if remotes else {}


def _open_dvc(root: Path, rev: str | None = None) -> Any:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    quiet_dvc()
    try:
        if not rev:
            return Repo(str(root))
        return Repo(str(root), rev=rev, config=_relative_remotes_at(root, rev) or None)
    except DvcException as exc:
        raise ArtifactError(f"cannot open the DVC project at {root}: {exc}") from None


def _hash_infos(md5s: Iterable[str]) -> list[Any]:
    from dvc_data.hashfile.hash_info import HashInfo

    return [HashInfo("md5", m) for m in dict.fromkeys(md5s)]


def push(root: str | os.PathLike[str], md5s: Iterable[str]) -> None:
    """Upload these cache objects to the default DVC remote; every failure is an ArtifactError."""
    from dvc.exceptions import DvcException

    objs = _hash_infos(md5s)
    if not objs:
        return
    repo = _open_dvc(Path(root))
    try:
        result = repo.cloud.push(objs)
    except DvcException as exc:
        raise ArtifactError(f"cannot push to the default DVC remote: {exc}") from None
    except OSError as exc:
        raise ArtifactError(f"cannot push to the default DVC remote: {exc}") from None
    finally:
        repo.close()
    if result.failed:
        names = ", ".join(sorted(h.value for h in result.failed))
        raise ArtifactError(f"pushing to the default DVC remote failed for {names}")


def fetch(root: str | os.PathLike[str], md5s: Iterable[str], rev: str | None = None) -> None:
    """Download these objects from the default DVC remote (as configured at `rev`) into the cache."""
    from dvc.exceptions import DvcException

    objs = _hash_infos(md5s)
    if not objs:
        return
    repo = _open_dvc(Path(root), rev)
    try:
        repo.cloud.pull(objs)
    except DvcException as exc:
        raise ArtifactError(f"cannot fetch from the default DVC remote: {exc}") from None
    except OSError as exc:
        raise ArtifactError(f"cannot fetch from the default DVC remote: {exc}") from None
    finally:
        repo.close()


def remote_file(root: str | os.PathLike[str], md5: str) -> str | None:
    """Where the object lives in the default remote (a local path or URL), or None without one."""
    parser = _dvc_config(Path(root))
    name = parser.get("core", "remote", fallback=None)
    if not name:
        return None
    url = parser.get(f'remote "{name}"', "url", fallback=None)
    if not url:
        return None
    if "://" not in url:
        url = str((Path(root) / ".dvc" / url).resolve())
    return f"{url.rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"


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
        try:
            fetch(registry.root, [art.md5], snapshot.revision)
        except ArtifactError as exc:
            raise ArtifactError(f"artifact of {ref} is not available: {exc}", ref=ref) from None
        if not path.is_file():
            raise ArtifactError(
                f"artifact of {ref} (md5 {art.md5}) is neither in the DVC cache"
                " nor in the default remote",
                ref=ref,
            )
        if not _verified_md5(path, art.md5):
            raise ArtifactError(f"artifact of {ref} does not match its md5 {art.md5}", ref=ref)
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
