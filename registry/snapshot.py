"""A read-only view of a registry at one revision (or the work tree), and reference resolution."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from registry.cache import ManifestCache, bulk_allocation, summary_key
from registry.errors import (
    ManifestError,
    ModelNotFoundError,
    PointerNotFoundError,
    VersionNotFoundError,
)
from registry.layout import (
    VERSION_FILE_RE,
    ModelFilter,
    Page,
    Pointer,
    Resolution,
    VersionsSummary,
    newest_servable,
)
from registry.manifests import ModelManifest, PointerManifest, RegistrySettings, VersionManifest
from registry.names import Ref
from registry.refs import resolve_ref
from registry.source import Source, page_of
from registry.yamlio import key_line, parse_manifest

M = TypeVar("M", bound=BaseModel)


@dataclass
class _ModelFiles:
    model_yaml: str | None = None
    versions: dict[str, str] = field(default_factory=dict)  # file name -> path
    dvc_files: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


class Snapshot:
    """The registry at one revision. Reads are lazy and cached by blob id: a read about one
    model lists only its files and pointers (by path in the tree), a page only the models on
    it; only what needs every model (`models`, validating everything) lists the whole tree."""

    def __init__(
        self,
        source: Source,
        cache: ManifestCache | None = None,
        *,
        id_owner: Callable[[str], str | None] | None = None,
    ) -> None:
        self.source = source
        self.id_owner = id_owner  # the version file of an id (a revision's ids index), if known
        self.cache = cache if cache is not None else ManifestCache()
        self.revision = source.revision
        self.label = source.label
        self._models: dict[str, _ModelFiles] = {}
        self._pointers: dict[str, dict[str, str]] = {}
        self._stray: list[str] = []
        self._settings_path: str | None = None
        self._settings_listed = False
        self._id_index: dict[str, tuple[str, int]] | None = None
        # Parsed manifests by path: a snapshot never changes, so each is looked up once.
        self._memo: dict[str, Any] = {}
        self._full = False  # the whole tree is listed
        self._lock = threading.RLock()
        self._scoped: set[str] = set()  # models whose files (and pointers) are listed

    # -- listing, as far as a read needs it --------------------------------

    def _all(self) -> None:
        with self._lock:  # threads share a served snapshot: each file is indexed once
            if not self._full:
                done = self._scoped
                self._index(
                    p
                    for p in self.source.paths()
                    if not p.startswith(("models/", "pointers/")) or p.split("/")[1] not in done
                )
                self._full = self._settings_listed = True

    def _scope(self, names: Iterable[str]) -> None:
        """List the files and pointers of these models only (one listing for all of them)."""
        with self._lock:
            todo = [n for n in dict.fromkeys(names) if n not in self._scoped]
            if todo and not self._full:
                roots = [f"{top}/{n}" for n in todo for top in ("models", "pointers")]
                self._index(self.source.paths_under(roots))
                self._scoped.update(todo)

    @property
    def stray_files(self) -> list[str]:
        """Files outside the layout (lists the whole tree)."""
        self._all()
        return self._stray

    def _index(self, paths: Iterable[str]) -> None:
        for path in paths:
            parts = path.split("/")
            if path == "registry.yaml":
                self._settings_path = path
            elif parts[0] == "models" and len(parts) >= 3:
                files = self._models.setdefault(parts[1], _ModelFiles())
                if len(parts) == 3 and parts[2] == "model.yaml":
                    files.model_yaml = path
                elif len(parts) == 4 and parts[2] == "versions":
                    files.versions[parts[3]] = path
                elif parts[2] == "artifacts" and path.endswith(".dvc"):
                    files.dvc_files.append(path)
                else:
                    files.other.append(path)
            elif parts[0] == "pointers" and len(parts) == 3 and parts[2].endswith(".yaml"):
                self._pointers.setdefault(parts[1], {})[parts[2][: -len(".yaml")]] = path
            else:
                self._stray.append(path)

    # -- parsing ---------------------------------------------------------

    def parse(self, kind: type[M], paths: list[str]) -> dict[str, M]:
        """Parse manifests (cached by blob id); raises ManifestError on the first bad one."""
        memo: dict[str, Any] = self._memo
        todo = [p for p in paths if p not in memo]
        if todo:
            ids = self.source.blob_ids(todo)
            cached = self.cache.get_many(kind, ids.values())
            missing = [p for p in todo if p in ids and ids[p] not in cached]
            parsed: dict[str, M] = {}
            if missing:
                texts = self.source.read(missing)
                with bulk_allocation():
                    for path in missing:
                        self.cache.parses += 1
                        parsed[ids[path]] = parse_manifest(texts[path], kind, path)
                self.cache.put_many(kind, parsed)
            for path in todo:
                if path in ids:
                    memo[path] = cached.get(ids[path]) or parsed[ids[path]]
        return {path: memo[path] for path in paths if path in memo}

    def read_text(self, path: str) -> bytes:
        return self.source.read([path])[path]

    def line_of(self, path: str, *keys: str) -> int | None:
        return key_line(self.read_text(path), keys)

    # -- settings and models ---------------------------------------------

    def settings(self) -> RegistrySettings:
        if not self._settings_listed:
            self._index(self.source.paths_under(["registry.yaml"]))
            self._settings_listed = True
        if self._settings_path is None:
            return RegistrySettings()
        return self.parse(RegistrySettings, [self._settings_path])[self._settings_path]

    def model_names(self) -> list[str]:
        self._all()
        return sorted(name for name, files in self._models.items() if files.model_yaml)

    def has_model(self, name: str) -> bool:
        self._scope([name])
        files = self._models.get(name)
        return files is not None and files.model_yaml is not None

    def _model_files(self, name: str) -> _ModelFiles:
        self._scope([name])
        files = self._models.get(name)
        if files is None or files.model_yaml is None:
            raise ModelNotFoundError(f"model {name!r} not found at {self.label}", ref=name)
        return files

    def _check_model(self, name: str, path: str, model: ModelManifest) -> ModelManifest:
        if model.name != name:
            raise ManifestError(
                f"name {model.name!r} does not match its directory {name!r}",
                file=path,
                line=self.line_of(path, "name"),
            )
        return model

    def model(self, name: str) -> ModelManifest:
        path = self._model_files(name).model_yaml
        assert path is not None
        return self._check_model(name, path, self.parse(ModelManifest, [path])[path])

    def models(
        self,
        *,
        archived: bool | None = False,
        library: str | None = None,
        project: str | None = None,
        labels: Mapping[str, str] | None = None,
        q: str | None = None,
    ) -> list[ModelManifest]:
        """Models sorted by name. archived: False hides archived ones, True lists only them, None all."""
        return self._filtered(
            self.model_names(), ModelFilter(archived, library, project, labels, q)
        )

    def models_page(
        self,
        *,
        limit: int,
        after: str | None = None,
        archived: bool | None = False,
        library: str | None = None,
        project: str | None = None,
        labels: Mapping[str, str] | None = None,
        q: str | None = None,
        keep: Callable[[ModelManifest], bool] | None = None,
    ) -> Page:
        """Up to `limit` models named after `after`, sorted by name, as `models` filters them
        (and `keep`). Only the models a page looks at are listed and parsed."""
        where = ModelFilter(archived, library, project, labels, q, keep)
        names = self.model_names() if self._full else self.source.names_in("models")

        def take(batch: list[str]) -> list[ModelManifest]:
            self._scope(batch)
            return self._filtered([n for n in batch if self.has_model(n)], where)

        found = page_of(names, after, limit, take)
        page = found[:limit]
        return Page(page, page[-1].name if len(found) > limit and page else None)

    def _filtered(self, names: list[str], where: ModelFilter) -> list[ModelManifest]:
        paths = {n: self._models[n].model_yaml for n in names}
        parsed = self.parse(ModelManifest, [p for p in paths.values() if p])
        out: list[ModelManifest] = []
        for name, path in paths.items():
            assert path is not None
            m = self._check_model(name, path, parsed[path])
            if where.keeps(m):
                out.append(m)
        return out

    def model_dirs(self) -> list[str]:
        """Every directory under models/, with or without a model.yaml (validation needs both)."""
        self._all()
        return sorted(self._models)

    def other_files(self, name: str) -> list[str]:
        """Files in a model's directory that fit no part of the layout."""
        self._scope([name])
        files = self._models.get(name)
        return list(files.other) if files is not None else []

    # -- versions --------------------------------------------------------

    def version_files(self, name: str) -> dict[str, str]:
        return dict(self._model_files(name).versions)

    def dvc_files(self, name: str) -> list[str]:
        return list(self._model_files(name).dvc_files)

    def versions(self, name: str) -> list[VersionManifest]:
        """Every version of a model, oldest first."""
        return self.versions_of([name])[name]

    def versions_of(self, names: Iterable[str]) -> dict[str, list[VersionManifest]]:
        """Every version of each model, oldest first, parsed in one batch (for large registries)."""
        names = list(names)
        self._scope(names)
        files = {name: self._model_files(name).versions for name in names}
        for versions in files.values():
            for fname, path in versions.items():
                if not VERSION_FILE_RE.fullmatch(fname):
                    raise ManifestError(
                        f"version file {fname!r} is not named <n>.yaml with n a positive integer",
                        file=path,
                    )
        parsed = self.parse(VersionManifest, [p for vs in files.values() for p in vs.values()])
        out: dict[str, list[VersionManifest]] = {}
        for name, versions in files.items():
            found = [self._numbered(p, int(f[:-5]), parsed[p]) for f, p in versions.items()]
            out[name] = sorted(found, key=lambda v: v.version)
        return out

    def version_summaries(self, names: Iterable[str]) -> dict[str, VersionsSummary]:
        """How many versions each model has and which is latest, without reading them when cached.

        The key is a hash of the model's version files and their blob ids, so a
        summary is reused exactly as long as none of those files changes: a
        listing of 10,000 models reads 10,000 summaries, not 100,000 versions.
        """
        names = list(names)
        self._scope(names)
        files = {name: self._model_files(name).versions for name in names}
        ids = self.source.blob_ids([p for vs in files.values() for p in vs.values()])
        keys = {name: summary_key(versions, ids) for name, versions in files.items()}
        found = self.cache.get_many(VersionsSummary, keys.values())
        missing = [name for name, key in keys.items() if key not in found]
        if missing:
            made: dict[str, VersionsSummary] = {}
            for name, parsed in self.versions_of(missing).items():
                latest = newest_servable(parsed)
                made[keys[name]] = VersionsSummary(
                    count=len(parsed),
                    latest=latest.version if latest else None,
                    latest_id=latest.id if latest else None,
                )
            self.cache.put_many(VersionsSummary, made)
            found.update(made)
        return {name: found[key] for name, key in keys.items()}

    def version(self, name: str, n: int) -> VersionManifest:
        path = self._model_files(name).versions.get(f"{n}.yaml")
        if path is None:
            raise VersionNotFoundError(
                f"version {name}:v{n} not found at {self.label}", ref=f"{name}:v{n}"
            )
        return self._numbered(path, n, self.parse(VersionManifest, [path])[path])

    def _numbered(self, path: str, n: int, v: VersionManifest) -> VersionManifest:
        """`v`, read from `path` (`n`.yaml), once it says it is version `n`."""
        if v.version != n:
            raise ManifestError(
                f"version {v.version} does not match its file name '{n}.yaml'",
                file=path,
                line=self.line_of(path, "version"),
            )
        return v

    def latest(self, name: str) -> VersionManifest | None:
        """The newest trained, not deprecated version, or None."""
        return newest_servable(self.versions(name))

    def next_version_number(self, name: str) -> int:
        numbers = [
            int(f[: -len(".yaml")])
            for f in self._model_files(name).versions
            if VERSION_FILE_RE.fullmatch(f)
        ]
        return max(numbers, default=0) + 1

    def version_by_id(self, version_id: str) -> tuple[str, VersionManifest]:
        hit = self._id_owner(version_id)
        version = self.version(*hit) if hit else None
        if hit is None or version is None or version.id != version_id:
            raise VersionNotFoundError(
                f"version id {version_id} not found at {self.label}", ref=version_id
            )
        return hit[0], version

    def _id_owner(self, version_id: str) -> tuple[str, int] | None:
        """The model and number of the version file holding `version_id`: from the revision's
        ids index when there is one (one file read), else from reading every version once."""
        if self.id_owner is not None:
            path = self.id_owner(version_id)
            return (path.split("/")[1], int(path.split("/")[3][:-5])) if path else None
        if self._id_index is None:
            paths = [p for n in self.model_names() for p in self._models[n].versions.values()]
            parsed = self.parse(VersionManifest, paths).items()
            self._id_index = {v.id: (path.split("/")[1], v.version) for path, v in parsed}
        return self._id_index.get(version_id)

    # -- pointers --------------------------------------------------------

    def pointer_tags(self, name: str) -> list[str]:
        self._scope([name])
        return sorted(self._pointers.get(name, {}))

    def pointer_models(self) -> list[str]:
        self._all()
        return sorted(self._pointers)

    def pointer(self, name: str, tag: str) -> Pointer:
        self._scope([name])
        path = self._pointers.get(name, {}).get(tag)
        if path is None:
            raise PointerNotFoundError(
                f"pointer {name}:{tag} not found at {self.label}", ref=f"{name}:{tag}"
            )
        p = self.parse(PointerManifest, [path])[path]
        return Pointer.from_manifest(name, tag, p, path)

    def pointers(self, name: str | None = None) -> list[Pointer]:
        models = [name] if name is not None else self.pointer_models()
        self._scope(models)
        paths = {
            (m, t): path for m in models for t, path in sorted(self._pointers.get(m, {}).items())
        }
        parsed = self.parse(PointerManifest, list(paths.values()))
        return [Pointer.from_manifest(m, t, parsed[path], path) for (m, t), path in paths.items()]

    # -- references --------------------------------------------------------

    def resolve(self, ref: str | Ref) -> Resolution:
        """Follow `ref` to exactly one version, or raise an error naming the link that failed."""
        return resolve_ref(self, ref)
