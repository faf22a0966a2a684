"""`mreg://` storage URIs: resolve a model in a registry and fetch its artifact into a directory.

``mreg://MODEL[:TAG][@REV]`` or ``mreg://mv_<hex>[@REV]``: the ref is resolved
at REV (default: the registry's HEAD) of the registry named by a git URL (a
shallow fetch of that one revision into a temporary clone) or of a local
checkout. The artifact comes from the registry's default DVC remote, as DVC
reads it (credentials from the environment), md5-checked, and lands in the
destination with ``.mreg.json`` beside it naming model, version, id, commit
and format. This is what a KServe storage initializer does for a pod: the
destination is complete or untouched, never half written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import artifacts, remotes
from registry.errors import (
    ArtifactError,
    InvalidRefError,
    NotServableError,
    RegistryError,
    RevisionNotFoundError,
    UntrustedFormatError,
)
from registry.loaders import artifact_format
from registry.manifests import RegistrySettings, Status, VersionManifest
from registry.names import parse_ref

if TYPE_CHECKING:
    from registry.registry import Registry
    from registry.snapshot import Snapshot

SCHEME = "mreg://"
PROVENANCE = ".mreg.json"
"""The file beside a fetched artifact that says what it is and where it came from."""
GIT_TIMEOUT = 120.0
"""Seconds a `git fetch` of the registry may take before it is stopped."""


def trusted_formats(settings: RegistrySettings) -> tuple[str, ...]:
    """The formats the registry trusts to load (registry.yaml `trusted_formats`)."""
    return tuple(settings.trusted_formats)


def check_trusted(fmt: str, trusted: Sequence[str], ref: str) -> None:
    """Refuse a format outside `trusted` (pickle, joblib, torchscript, mlflow run code)."""
    if fmt not in trusted:
        raise UntrustedFormatError(
            f"{ref} is a {fmt} artifact, which runs code when loaded, and the registry does not"
            f" trust {fmt} (trusted formats: {', '.join(trusted) or 'none'};"
            " registry.yaml trusted_formats)",
            ref=ref,
            detail={"format": fmt, "trusted_formats": list(trusted)},
        )


@dataclass(frozen=True)
class StorageURI:
    """A parsed ``mreg://`` URI: a reference, and the revision to read it at (None: HEAD)."""

    ref: str
    rev: str | None = None

    def __str__(self) -> str:
        return f"{SCHEME}{self.ref}" + (f"@{self.rev}" if self.rev else "")


def parse_storage_uri(text: str) -> StorageURI:
    """`mreg://iris:prod`, `mreg://iris:v3@release-2026-11`, `mreg://mv_...`, else InvalidRefError."""
    if not text.startswith(SCHEME):
        raise InvalidRefError(
            f"invalid storage URI {text!r}: expected mreg://MODEL[:TAG][@REV] or mreg://mv_<id>"
        )
    ref, sep, rev = text[len(SCHEME) :].partition("@")
    if sep and (not rev or rev.startswith("-") or any(c.isspace() for c in rev)):
        raise InvalidRefError(f"invalid revision {rev!r} in storage URI {text!r}")
    try:
        parse_ref(ref)
    except InvalidRefError as exc:
        raise InvalidRefError(f"invalid storage URI {text!r}: {exc}", ref=ref) from None
    return StorageURI(ref, rev or None)


@dataclass(frozen=True)
class Fetched:
    """What `.mreg.json` records of a fetched artifact (provenance for a pod)."""

    uri: str
    ref: str
    model: str
    version: int
    id: str
    commit: str
    format: str
    library: str | None
    file: str
    md5: str
    size: int
    labels: Any = None
    feature_names: list[str] = field(default_factory=list)
    trusted_formats: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_provenance(directory: str | os.PathLike[str]) -> Fetched | None:
    """The `.mreg.json` of a fetched directory, or None when there is none (or it is not ours)."""
    try:
        data = json.loads((Path(directory) / PROVENANCE).read_text())
        return Fetched(**data)
    except (OSError, ValueError, TypeError):
        return None


# -- git ---------------------------------------------------------------------


def _git(cwd: Path, *args: str, timeout: float = GIT_TIMEOUT) -> str:
    """Run git without a terminal or credential prompt; its error line as a RegistryError."""
    proc = subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        start_new_session=True,  # no terminal for ssh to prompt on; one group to stop
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RegistryError(f"git {args[0]} gave no answer in {timeout:g}s: stopped") from None
    if proc.returncode:
        lines = [line.strip() for line in err.splitlines() if line.strip()]
        said = [line for line in lines if line.startswith(("fatal:", "error:"))]
        raise RegistryError((said or lines or [f"git {args[0]} failed"])[0])
    return out.strip()


def redact(url: str) -> str:
    """`url` without its user and password (a token in a git URL stays out of logs)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))


def shallow_checkout(url: str, rev: str | None, into: Path) -> str:
    """Fetch one revision of the registry at `url` (depth 1) into `into`, check it out; its sha."""
    into.mkdir(parents=True)
    _git(into, "init", "-q")
    try:
        _git(into, "fetch", "-q", "--depth", "1", "--no-tags", url, rev or "HEAD")
    except RegistryError as exc:
        shown = redact(url)
        where = f"revision {rev!r} of {shown}" if rev else shown
        said = str(exc).replace(url, shown)
        raise RevisionNotFoundError(f"cannot fetch {where}: {said}", ref=rev) from None
    _git(into, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", "FETCH_HEAD")
    return _git(into, "rev-parse", "HEAD")


def commit_of(root: Path, rev: str | None) -> str:
    """The commit sha of `rev` (default HEAD) in the repository at `root`."""
    try:
        return _git(
            root,
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{rev or 'HEAD'}^{{commit}}",
        )
    except RegistryError:
        raise RevisionNotFoundError(
            f"revision {rev or 'HEAD'!r} not found in {root}", ref=rev
        ) from None


def follow_ref(root: Path, rev: str) -> tuple[str, str | None]:
    """The ref to read for `rev`, fetching it first when it is `REMOTE/BRANCH`; and the error text
    of a failed fetch (the last fetched commit is read then)."""
    remote, sep, branch = rev.partition("/")
    if not sep or not branch or remote not in _git(root, "remote").split():
        return rev, None
    ref = f"refs/remotes/{rev}"
    try:
        _git(root, "fetch", "--quiet", remote, f"+refs/heads/{branch}:{ref}")
    except RegistryError as exc:
        return ref, str(exc)
    return ref, None


# -- the destination -----------------------------------------------------------


def _rename_onto(staging: Path, dest: Path) -> None:
    """Rename a directory onto `dest` (absent, or an empty directory: rename(2) replaces it)."""
    os.rename(staging, dest)


@contextlib.contextmanager
def staged_directory(dest: Path) -> Iterator[Path]:
    """A fresh directory that becomes `dest` when the block ends well, and vanishes otherwise.

    It is made beside `dest` and renamed onto it. When `dest` exists and
    cannot be replaced (a volume's mount point, as /mnt/models in a pod), it
    is made inside `dest` and its files are moved up, `.mreg.json` last.
    """
    dest = Path(os.path.abspath(dest))
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise RegistryError(f"{dest} exists and is not an empty directory")
    made = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.mreg-", dir=dest.parent))
        inside = False
    except OSError:
        if not dest.is_dir():
            raise RegistryError(f"cannot write beside {dest}") from None
        staging = Path(tempfile.mkdtemp(prefix=".mreg-", dir=dest))
        inside = True
    try:
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            for folder in made:  # the parents this made, innermost first, if still empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        if not inside:
            try:
                _rename_onto(staging, dest)
                return
            except OSError:
                dest.mkdir(exist_ok=True)  # a mount point: move the files instead
        names = sorted(os.listdir(staging), key=lambda n: n == PROVENANCE)
        for name in names:
            os.replace(staging / name, dest / name)
    except OSError as exc:
        raise RegistryError(f"cannot write {dest}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- fetching ----------------------------------------------------------------------


def _servable(ref: str, model: str, version: VersionManifest) -> None:
    if version.status != Status.trained or version.artifact is None:
        raise NotServableError(
            f"{ref} resolves to {model}:v{version.version}, which is {version.status.value}:"
            " it has no artifact to fetch",
            ref=ref,
        )


def fetch_into(
    registry: Registry,
    snapshot: Snapshot,
    ref: str,
    directory: Path,
    *,
    uri: str | None = None,
) -> Fetched:
    """Resolve `ref` in `snapshot` and write its artifact and `.mreg.json` into `directory`.

    The artifact is fetched from the default DVC remote when the cache lacks it
    and md5-checked; formats outside the registry's trust policy are refused.
    """
    resolution = snapshot.resolve(ref)
    model, version = resolution.model, resolution.version
    _servable(ref, model, version)
    art = version.artifact
    assert art is not None
    filename = Path(art.path).name
    fmt = artifact_format(art.format, Path(filename))
    trusted = trusted_formats(snapshot.settings())
    check_trusted(fmt, trusted, f"{model}:v{version.version}")
    cached = artifacts.ensure_local(registry, snapshot, model, version)
    target = directory / filename
    shutil.copyfile(cached, target)
    if remotes.file_md5(target) != art.md5:
        raise ArtifactError(f"the copy of {model}:v{version.version} does not match md5 {art.md5}")
    features = version.input_info.get("feature_names") or version.input_info.get("features")
    fetched = Fetched(
        uri=uri or f"{SCHEME}{ref}@{snapshot.revision}",
        ref=ref,
        model=model,
        version=version.version,
        id=version.id,
        commit=snapshot.revision or "",
        format=fmt,
        library=art.library,
        file=filename,
        md5=art.md5,
        size=art.size,
        labels=version.output_info.get("labels"),
        feature_names=[str(f) for f in features] if isinstance(features, list) else [],
        trusted_formats=list(trusted),
    )
    (directory / PROVENANCE).write_text(json.dumps(fetched.to_dict(), indent=2) + "\n")
    return fetched


def fetch(
    uri: str,
    dest: str | os.PathLike[str],
    *,
    repo_url: str | None = None,
    repo: str | os.PathLike[str] | None = None,
) -> Fetched:
    """Fetch the artifact an `mreg://` URI names into `dest` (an empty or new directory).

    The registry is `repo_url` (a git URL: one revision is fetched, shallow,
    into a temporary clone) or else the local checkout `repo` (default: the
    enclosing repository). Raises a RegistryError, leaving `dest` untouched,
    when the URI is bad, the ref or revision is missing or the download fails.
    """
    from registry.registry import Registry

    parsed = parse_storage_uri(uri)
    target = Path(dest)
    with staged_directory(target) as out:
        if repo_url:
            with tempfile.TemporaryDirectory(prefix="mreg-registry-") as tmp:
                commit = shallow_checkout(repo_url, parsed.rev, Path(tmp) / "registry")
                registry = Registry(Path(tmp) / "registry")
                return fetch_into(
                    registry, registry.snapshot(commit), parsed.ref, out, uri=str(parsed)
                )
        registry = Registry(repo)
        commit = commit_of(registry.root, parsed.rev)
        return fetch_into(registry, registry.snapshot(commit), parsed.ref, out, uri=str(parsed))
