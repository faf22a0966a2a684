"""The default DVC remote: its configuration, pushes and fetches, and what a failure means.

DVC and the filesystems under it (boto for S3, aiohttp, ...) raise their own
errors, or only log a warning and report an object as missing: a stopped
endpoint, missing credentials and a corrupt copy would all read "not found".
Here each becomes one ArtifactError that says which it was.

DVC is slow to import, so it is imported inside the functions that need it.
"""

from __future__ import annotations

import configparser
import hashlib
import logging
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from registry import progress
from registry.errors import ArtifactError

_CHUNK = 1 << 20

NO_CREDENTIALS = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
        "DefaultCredentialsError",
    }
)
UNREACHABLE = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ServerTimeoutError",
        "ProxyConnectionError",
        "ConnectionError",
        "TimeoutError",
        "gaierror",
    }
)
"""Error class names (anywhere in an exception's class tree) meaning the remote cannot be reached."""
REJECTED = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "Forbidden"}
)


def file_md5(path: str | os.PathLike[str]) -> str:
    """The md5 hex digest of a file, as DVC records it (read in 1 MiB chunks)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dvc_config(root: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    for name in ("config", "config.local"):
        try:
            parser.read(root / ".dvc" / name, encoding="utf-8")
        except configparser.Error:
            continue
    return parser


def has_default_remote(root: str | os.PathLike[str]) -> bool:
    return bool(dvc_config(Path(root)).get("core", "remote", fallback=None))


def remote_url(root: str | os.PathLike[str]) -> str | None:
    """The default remote's URL (a local remote as an absolute path), or None without one."""
    parser = dvc_config(Path(root))
    name = parser.get("core", "remote", fallback=None)
    if not name:
        return None
    # DVC writes the section as ['remote "name"'] (configparser keeps the quotes), git-style
    # tools as [remote "name"]: either may be there.
    url = parser.get(f'remote "{name}"', "url", fallback=None) or parser.get(
        f"'remote \"{name}\"'", "url", fallback=None
    )
    if not url:
        return None
    if "://" not in url:
        url = str((Path(root) / ".dvc" / os.path.expanduser(url)).resolve())
    return url


def remote_file(root: str | os.PathLike[str], md5: str) -> str | None:
    """Where the object lives in the default remote (a local path or URL), or None without one."""
    url = remote_url(root)
    if url is None:
        return None
    return f"{url.rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"


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


def open_dvc(root: Path, rev: str | None = None) -> Any:
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
    objs = _hash_infos(md5s)
    if not objs:
        return
    repo = open_dvc(Path(root))
    try:
        result = repo.cloud.push(objs)
    except Exception as exc:
        raise remote_failure("push to", root, exc) from None
    finally:
        repo.close()
    if result.failed:
        names = ", ".join(sorted(h.value for h in result.failed))
        raise ArtifactError(f"pushing to the default DVC remote failed for {names}")


def fetch(root: str | os.PathLike[str], md5s: Iterable[str], rev: str | None = None) -> None:
    """Download these objects from the default DVC remote (as configured at `rev`) into the cache.

    An object the remote lacks (or holds corrupt: DVC drops a copy whose md5
    is wrong) is not an error here; the caller finds it missing and asks
    `missing_reason` why.
    """
    objs = _hash_infos(md5s)
    if not objs:
        return
    repo = open_dvc(Path(root), rev)
    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    # DVC warns of missing objects on stderr; the caller says why they are missing instead.
    dvc_log.setLevel(logging.ERROR)
    try:
        result = repo.cloud.pull(objs)
    except Exception as exc:
        raise remote_failure("fetch from", root, exc) from None
    finally:
        dvc_log.setLevel(level)
        repo.close()
    if result.failed:
        names = ", ".join(sorted(h.value for h in result.failed))
        raise ArtifactError(f"fetching from the default DVC remote failed for {names}")


def remote_problem(exc: BaseException) -> str | None:
    """What a remote's error means for the user (no credentials, unreachable, refused), or None."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        names = {cls.__name__ for cls in type(error).__mro__}
        if names & NO_CREDENTIALS:
            return (
                "no credentials for it (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,"
                " AWS_PROFILE, or the remote's credentialpath in .dvc/config.local)"
            )
        if names & UNREACHABLE:
            return f"it is unreachable ({error})"
        if "ClientError" in names:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code in REJECTED:
                return f"it refused the credentials ({code}: {error})"
            return f"it answered an error ({error})"
        error = error.__cause__ or error.__context__
    return None


def remote_failure(verb: str, root: str | os.PathLike[str], exc: Exception) -> Exception:
    """The ArtifactError for `exc` raised while `verb` ("push to") the remote; `exc` if unknown."""
    from dvc.exceptions import DvcException

    reason = remote_problem(exc)
    if reason is None and not isinstance(exc, DvcException | OSError):
        return exc  # not a remote's failure: a bug, keep its traceback
    where = remote_url(root) or "(none configured)"
    return ArtifactError(f"cannot {verb} the default DVC remote {where}: {reason or exc}")


def corrupt_local_copy(root: str | os.PathLike[str], md5: str) -> str | None:
    """Why the copy in a local-directory remote is unusable (md5 mismatch), or None.

    Checked before DVC fetches: DVC deletes a corrupt object from a local
    remote while fetching it, and then reports it as missing.
    """
    url = remote_url(root)
    where = remote_file(root, md5)
    if url is None or where is None or "://" in url or not Path(where).is_file():
        return None
    actual = file_md5(where)
    if actual == md5:
        return None
    return f"the copy in the default remote is corrupt: md5 mismatch ({where} has md5 {actual})"


def missing_reason(root: str | os.PathLike[str], md5: str, rev: str | None = None) -> str:
    """Why an object DVC could not fetch is missing: not in the remote, corrupt, or unreachable."""
    url = remote_url(root)
    if url is None:
        return "it is not in the DVC cache, and there is no default DVC remote"
    where = remote_file(root, md5) or url
    if "://" not in url:
        if not Path(url).is_dir():
            return f"the default DVC remote {url} is unreachable: the directory does not exist"
        if not Path(where).is_file():
            return f"it is neither in the DVC cache nor in the default remote ({where})"
        actual = file_md5(where)
        if actual == md5:
            return f"the default remote has it ({where}) but DVC could not fetch it"
        return f"the copy in the default remote is corrupt: md5 mismatch ({where} has md5 {actual})"
    repo = open_dvc(Path(root), rev)
    try:
        present = bool(repo.cloud.get_remote_odb(None).exists(md5))
    except Exception as exc:
        raise remote_failure("query", root, exc) from None
    finally:
        repo.close()
    if present:
        return f"the copy in the default remote is corrupt: md5 mismatch ({where})"
    return f"it is neither in the DVC cache nor in the default remote ({where})"
