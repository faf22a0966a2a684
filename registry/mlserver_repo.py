"""An MLServer multi-model repository written from a registry, and kept in step with a branch.

Layout (MLServer's, and Triton's): one directory per version,

    DIR/<model>/<n>/model-settings.json   name <model>, parameters.version "<n>", uri "."
    DIR/<model>/<n>/<artifact file>       fetched from the DVC remote, md5-checked
    DIR/<model>/<n>/.mreg.json            what it is and where it came from

`model-settings.json` names mreg's runtime (server/mlserver/runtime.py), so
`mlserver start DIR` serves every format mreg loads. MLServer's default
version of a model is the highest number; a request can pin `/versions/<n>`.
`MLServerSync` keeps DIR in step with a branch and tells a running MLServer
through its repository API (`/v2/repository/models/{name}/load|unload`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import ModelNotFoundError, NotFoundError, RegistryError
from registry.layout import newest_servable
from registry.loaders import artifact_format
from registry.storage import (
    fetch_into,
    follow_ref,
    read_provenance,
    staged_directory,
    trusted_formats,
)

if TYPE_CHECKING:
    from registry.registry import Registry
    from registry.snapshot import Snapshot

MLSERVER_RUNTIME = "server.mlserver.runtime.MregModel"
"""The `implementation` of every model-settings.json mreg writes (the mreg[mlserver] extra)."""
SETTINGS_FILE = "model-settings.json"


@dataclass(frozen=True)
class ExportedVersion:
    """One version in the repository: where it is and whether this run wrote it."""

    ref: str
    model: str
    version: int
    id: str
    path: Path
    written: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "model": self.model,
            "version": self.version,
            "id": self.id,
            "path": str(self.path),
            "written": self.written,
        }


def model_settings(model: str, version: int) -> dict[str, object]:
    """MLServer's model-settings.json for one version, its files in the same directory."""
    return {
        "name": model,
        "implementation": MLSERVER_RUNTIME,
        "parameters": {"uri": ".", "version": str(version)},
    }


def default_refs(snapshot: Snapshot) -> list[str]:
    """What a repository holds when no refs are named: `latest` of every model that has one,
    except archived models and formats the registry does not trust."""
    trusted = trusted_formats(snapshot.settings())
    refs = []
    for model in snapshot.models():
        latest = newest_servable(snapshot.versions(model.name))
        if latest is None or latest.artifact is None:
            continue
        fmt = artifact_format(latest.artifact.format, Path(latest.artifact.path))
        if fmt in trusted:
            refs.append(model.name)
    return refs


def _installed(directory: Path) -> dict[str, dict[int, str]]:
    """model -> version -> id of what DIR holds now (directories with a `.mreg.json`)."""
    found: dict[str, dict[int, str]] = {}
    if not directory.is_dir():
        return found
    for settings in directory.glob(f"*/*/{SETTINGS_FILE}"):
        fetched = read_provenance(settings.parent)
        if fetched is not None and settings.parent.name == str(fetched.version):
            found.setdefault(settings.parent.parent.name, {})[fetched.version] = fetched.id
    return found


def export_version(
    registry: Registry, snapshot: Snapshot, ref: str, directory: Path
) -> ExportedVersion:
    """Write the version `ref` resolves to under `directory` (kept when already there)."""
    resolution = snapshot.resolve(ref)
    model, version = resolution.model, resolution.version
    target = directory / model / str(version.version)
    have = read_provenance(target)
    if have is not None and have.id == version.id and (target / SETTINGS_FILE).is_file():
        return ExportedVersion(ref, model, version.version, version.id, target, False)
    if target.exists():
        shutil.rmtree(target)  # a half-written or foreign directory: replaced whole
    with staged_directory(target) as out:
        fetch_into(registry, snapshot, ref, out)
        text = json.dumps(model_settings(model, version.version), indent=2) + "\n"
        (out / SETTINGS_FILE).write_text(text)
    return ExportedVersion(ref, model, version.version, version.id, target, True)


def export_mlserver(
    registry: Registry,
    directory: str | os.PathLike[str],
    refs: Sequence[str] = (),
    rev: str | None = None,
) -> list[ExportedVersion]:
    """Write an MLServer repository of `refs` (default: every model's latest) at `rev` (HEAD)."""
    snapshot = registry.snapshot(rev or "HEAD")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    return [
        export_version(registry, snapshot, ref, out) for ref in (refs or default_refs(snapshot))
    ]


# -- sync ------------------------------------------------------------------------


@dataclass
class SyncPass:
    """What one pass of `MLServerSync` did."""

    commit: str
    loaded: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "loaded": self.loaded,
            "unloaded": self.unloaded,
            "errors": self.errors,
        }


class MLServer:
    """The repository API of a running MLServer (V2 model repository extension)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str) -> int:
        request = urllib.request.Request(f"{self.url}{path}", method=method, data=None)
        if method == "POST":
            request.data = b""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            if method == "GET":
                return int(exc.code)
            body = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                body = json.loads(body).get("error", body)
            raise RegistryError(f"MLServer at {self.url} answered {exc.code}: {body}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"MLServer at {self.url} is not reachable: {reason}") from None

    def ready(self, model: str, version: int) -> bool:
        return self._call("GET", f"/v2/models/{model}/versions/{version}/ready") == 200

    def load(self, model: str) -> None:
        self._call("POST", f"/v2/repository/models/{model}/load")

    def unload(self, model: str) -> None:
        self._call("POST", f"/v2/repository/models/{model}/unload")


class MLServerSync:
    """Keeps an MLServer repository in step with a branch: new versions in, old ones out.

    Each pass reads the branch (fetched first when it is `REMOTE/BRANCH`),
    resolves the refs (default: every model's latest), writes what is new,
    removes what no ref names any more (archived or deleted models too) and
    asks MLServer to load, or unload, each model that changed. A model whose
    load failed is tried again on the next pass.
    """

    def __init__(
        self,
        registry: Registry,
        directory: str | os.PathLike[str],
        server: MLServer,
        refs: Iterable[str] = (),
        follow: str = "HEAD",
    ) -> None:
        self.registry = registry
        self.directory = Path(directory)
        self.server = server
        self.refs = list(refs)
        self.follow = follow
        self._retry: set[str] = set()
        self._first = True

    def _wanted(self, snapshot: Snapshot) -> tuple[dict[str, dict[int, str]], list[str]]:
        """model -> version -> ref to serve, and the refs that no longer resolve."""
        wanted: dict[str, dict[int, str]] = {}
        gone = []
        for ref in self.refs or default_refs(snapshot):
            try:
                resolution = snapshot.resolve(ref)
                if snapshot.model(resolution.model).archived:
                    raise ModelNotFoundError(f"model {resolution.model!r} is archived")
            except NotFoundError as exc:
                gone.append(f"{ref}: {exc}")
                continue
            wanted.setdefault(resolution.model, {})[resolution.version.version] = ref
        return wanted, gone

    def run_once(self) -> SyncPass:
        """One pass; errors of single models are in the result, the pass goes on without them."""
        rev, failed = follow_ref(self.registry.root, self.follow)
        snapshot = self.registry.snapshot(rev)
        done = SyncPass(snapshot.revision or "")
        if failed:
            done.errors.append(f"{self.follow}: {failed} (serving the last fetched commit)")
        wanted, gone = self._wanted(snapshot)
        done.errors.extend(gone)
        have = _installed(self.directory)
        for model, versions in sorted(wanted.items()):
            try:
                changed = self._write(snapshot, model, versions, have.get(model, {}))
                if (
                    changed
                    or model in self._retry
                    or (self._first and not self._ready(model, versions))
                ):
                    self._retry.add(model)
                    self.server.load(model)
                    self._retry.discard(model)
                    done.loaded.append(f"{model}:" + ",".join(f"v{n}" for n in sorted(versions)))
            except (RegistryError, OSError) as exc:
                done.errors.append(f"{model}: {exc}")
        for model in sorted(set(have) - set(wanted)):
            try:
                shutil.rmtree(self.directory / model)
                self.server.unload(model)
                done.unloaded.append(model)
            except (RegistryError, OSError) as exc:
                done.errors.append(f"{model}: {exc}")
        self._first = False
        return done

    def _write(
        self, snapshot: Snapshot, model: str, versions: dict[int, str], have: dict[int, str]
    ) -> bool:
        changed = False
        for ref in versions.values():
            changed |= export_version(self.registry, snapshot, ref, self.directory).written
        for n in set(have) - set(versions):
            shutil.rmtree(self.directory / model / str(n))
            changed = True
        return changed

    def _ready(self, model: str, versions: dict[int, str]) -> bool:
        return all(self.server.ready(model, n) for n in versions)
