"""The CLI's hottest reads, answered from the parse cache without pydantic, GitPython or YAML.

Each `mreg resolve` or `mreg model list` is a fresh process, and most of its
time went to importing what parsing needs. Every entry of the parse cache
(`.git/mreg/cache.sqlite`) is a manifest that was validated when it was
stored, keyed by the blob id of its content, so it can never be stale. When
every manifest a read needs is there, the functions below answer from the
cached JSON. When anything is missing (a cold cache, a file never parsed) or
is not plainly fine (an archived model, a broken or cyclic pointer, a version
id, a name that does not match its directory), they return None and the
caller takes the full reader (`Registry`, `Snapshot`), which gives the same
answer or the precise error. Both read through the same `Source` classes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.cache import ManifestCache, summary_key
from registry.errors import RegistryError
from registry.names import LATEST, VERSION_ID_RE, VERSION_TAG_RE, parse_ref
from registry.source import REGISTRY_ROOTS, GitSource, Source, locate_repo, page_of
from registry.views import model_view
from registry.worktree import WorkTreeSource

Row = tuple[dict[str, Any], list[str]]
"""A model as `GET /v1/models` lists it (`model_view`), and its pointer tags."""

# Same values as registry.layout and registry.journal (importing them would import
# pydantic and the write path; tests/test_cli_speed.py checks that they agree).
MAX_CHAIN = 16
VERSION_FILE_RE = re.compile(r"([1-9][0-9]*)\.yaml")
JOURNAL = "pending-write.json"


class _Miss(Exception):
    """Something the fast path does not answer: the full reader will."""


@dataclass
class _Model:
    model_yaml: str | None = None
    versions: dict[str, str] = field(default_factory=dict)  # file name -> path
    pointers: dict[str, str] = field(default_factory=dict)  # tag -> path


class _Reader:
    """The registry at one revision (or the work tree), read from cached manifests only."""

    def __init__(self, source: Source, cache: ManifestCache, *, lazy: bool = False) -> None:
        self.source = source
        self.cache = cache
        self.models: dict[str, _Model] = {}
        if not lazy:
            self._index(source.paths())

    def scope(self, names: Iterable[str]) -> None:
        """List these models' files and pointers only (a page of a listing)."""
        self._index(
            self.source.paths_under([f"{top}/{n}" for n in names for top in ("models", "pointers")])
        )

    def _index(self, paths: Iterable[str]) -> None:
        for path in paths:
            parts = path.split("/")
            if parts[0] == "models" and len(parts) in (3, 4):
                files = self.models.setdefault(parts[1], _Model())
                if len(parts) == 3 and parts[2] == "model.yaml":
                    files.model_yaml = path
                elif len(parts) == 4 and parts[2] == "versions":
                    files.versions[parts[3]] = path
            elif parts[0] == "pointers" and len(parts) == 3 and parts[2].endswith(".yaml"):
                self.models.setdefault(parts[1], _Model()).pointers[parts[2][:-5]] = path

    @classmethod
    def open(
        cls,
        repo: str | os.PathLike[str] | None,
        rev: str | None,
        roots: Iterable[str],
        *,
        lazy: bool = False,
    ) -> _Reader:
        where = locate_repo(repo)
        root = Path(where.working_dir)
        state = Path(where.git_dir) / "mreg"
        cache_file = state / "cache.sqlite"
        # No registry, a write to finish first, or nothing cached yet: the full reader's job.
        if not (root / "registry.yaml").is_file() or (state / JOURNAL).exists():
            raise _Miss
        if not cache_file.is_file():
            raise _Miss
        roots = tuple(roots)
        source: Source = (
            WorkTreeSource(root, roots=roots) if rev is None else GitSource(where, rev, roots=roots)
        )
        return cls(source, ManifestCache(cache_file), lazy=lazy)

    def load(self, kind: str, paths: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cached manifests by path; any one not cached is a miss."""
        wanted = list(paths)
        ids = self.source.blob_ids(wanted)
        found = self.cache.get_json(kind, ids.values())
        try:
            return {p: found[ids[p]] for p in wanted}
        except KeyError:
            raise _Miss from None

    def model(self, name: str) -> dict[str, Any]:
        files = self.models.get(name)
        if files is None or files.model_yaml is None:
            raise _Miss
        m = self.load("ModelManifest", [files.model_yaml])[files.model_yaml]
        if m["name"] != name:
            raise _Miss
        return m

    def versions(self, name: str, fnames: Iterable[str] | None = None) -> dict[int, dict[str, Any]]:
        """Versions of a model (all, or those files) by number; a misnamed or mismatched file is a miss."""
        files = self.models[name].versions
        wanted = list(files) if fnames is None else list(fnames)
        if any(f not in files or not VERSION_FILE_RE.fullmatch(f) for f in wanted):
            raise _Miss
        loaded = self.load("VersionManifest", [files[f] for f in wanted])
        out: dict[int, dict[str, Any]] = {}
        for fname in wanted:
            v = loaded[files[fname]]
            if v["version"] != int(fname[: -len(".yaml")]):
                raise _Miss
            out[v["version"]] = v
        return out

    def resolve(self, ref: str) -> dict[str, Any]:
        """`Resolution.to_dict()` of a `model[:tag]` ref that resolves without any problem."""
        parsed = parse_ref(ref)
        if parsed.model is None:
            raise _Miss  # a version id: the full reader indexes every model's versions
        text = str(parsed)
        model = parsed.model
        if self.model(model).get("archived_at") is not None:
            raise _Miss
        files = self.models[model].versions
        pointers = self.models[model].pointers
        tag = parsed.tag or LATEST
        chain = [text] if parsed.tag else [text, f"{model}:{LATEST}"]
        for _ in range(MAX_CHAIN + 1):
            if tag == LATEST:
                versions = self.versions(model)
                servable = [
                    n
                    for n, v in versions.items()
                    if v["status"] == "trained" and v.get("deprecated_at") is None
                ]
                if not servable:
                    raise _Miss
                found = versions[max(servable)]
                chain.append(f"{model}:v{found['version']}")
                return _resolution(text, model, found, chain)
            m = VERSION_TAG_RE.fullmatch(tag)
            if m:
                n = int(m.group(1))
                found = self.versions(model, [f"{n}.yaml"])[n]
                return _resolution(text, model, found, chain)
            path = pointers.get(tag)
            if path is None:
                raise _Miss
            pointer = self.load("PointerManifest", [path])[path]
            if pointer.get("targets") is not None or pointer.get("shadow") is not None:
                raise _Miss  # a split or a shadow: the full reader lists the arms
            target = str(pointer["target"])
            if VERSION_ID_RE.fullmatch(target):
                raise _Miss
            if VERSION_TAG_RE.fullmatch(target) and f"{target[1:]}.yaml" not in files:
                raise _Miss
            link = f"{model}:{target}"
            if link in chain:
                raise _Miss
            chain.append(link)
            tag = target
        raise _Miss

    def list_models(
        self,
        archived: bool | None,
        library: str | None,
        project: str | None,
        labels: Mapping[str, str],
    ) -> list[Row]:
        """The models of `mreg model list` (as `model_view` shows them) and their pointer tags,
        sorted by name."""
        names = sorted(n for n, f in self.models.items() if f.model_yaml is not None)
        return self.rows(names, archived, library, project, labels)

    def page(
        self,
        limit: int,
        after: str | None,
        archived: bool | None,
        library: str | None,
        project: str | None,
        labels: Mapping[str, str],
    ) -> tuple[list[Row], str | None]:
        """Up to `limit` rows named after `after`, and the name the next page starts after."""

        def take(batch: list[str]) -> list[Row]:
            self.scope(batch)
            known = [n for n in batch if n in self.models and self.models[n].model_yaml]
            return self.rows(known, archived, library, project, labels)

        found = page_of(self.source.names_in("models"), after, limit, take)
        more = len(found) > limit
        return found[:limit], found[limit - 1][0]["name"] if more and limit else None

    def rows(
        self,
        names: list[str],
        archived: bool | None,
        library: str | None,
        project: str | None,
        labels: Mapping[str, str],
    ) -> list[Row]:
        paths = {n: self.models[n].model_yaml for n in names}
        loaded = self.load("ModelManifest", [p for p in paths.values() if p is not None])
        chosen: list[dict[str, Any]] = []
        for name in names:
            m = loaded[str(paths[name])]
            if m["name"] != name:
                raise _Miss
            is_archived = m.get("archived_at") is not None
            if archived is not None and is_archived != archived:
                continue
            if library is not None and m.get("library") != library:
                continue
            if project is not None and m.get("project") != project:
                continue
            if labels and any((m.get("labels") or {}).get(k) != v for k, v in labels.items()):
                continue
            chosen.append(m)
        summaries = self.summaries([m["name"] for m in chosen])
        return [
            (
                model_view(
                    m,
                    summaries[m["name"]]["count"],
                    _latest(summaries[m["name"]]),
                ),
                sorted(self.models[m["name"]].pointers),
            )
            for m in chosen
        ]

    def summaries(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Cached version summaries, keyed as `Snapshot.version_summaries` keys them."""
        files = {name: self.models[name].versions for name in names}
        ids = self.source.blob_ids([p for vs in files.values() for p in vs.values()])
        keys = {name: summary_key(versions, ids) for name, versions in files.items()}
        found = self.cache.get_json("VersionsSummary", keys.values())
        try:
            return {name: found[key] for name, key in keys.items()}
        except KeyError:
            raise _Miss from None


def _resolution(text: str, model: str, version: dict[str, Any], chain: list[str]) -> dict[str, Any]:
    return {
        "ref": text,
        "model": model,
        "version": version["version"],
        "id": version["id"],
        "status": version["status"],
        "chain": chain,
    }


def resolve_cached(
    repo: str | os.PathLike[str] | None, ref: str, rev: str | None = None
) -> dict[str, Any] | None:
    """What `Registry(repo).resolve(ref, rev).to_dict()` returns, or None: ask the full reader."""
    try:
        parsed = parse_ref(ref)
        if parsed.model is None:
            return None
        roots = ("registry.yaml", f"models/{parsed.model}", f"pointers/{parsed.model}")
        return _Reader.open(repo, rev, roots).resolve(ref)
    except (_Miss, RegistryError, KeyError, TypeError, ValueError):
        return None


def _latest(summary: Mapping[str, Any]) -> tuple[int, str] | None:
    latest, latest_id = summary["latest"], summary.get("latest_id")
    if latest is None:
        return None
    if latest_id is None:
        raise _Miss  # a summary cached before it held the id
    return latest, latest_id


def list_models_cached(
    repo: str | os.PathLike[str] | None,
    rev: str | None = None,
    *,
    archived: bool | None = False,
    library: str | None = None,
    project: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Row] | None:
    """The models and pointer tags `mreg model list` prints (same filters as `Snapshot.models`), or None: ask the full reader."""
    try:
        reader = _Reader.open(repo, rev, REGISTRY_ROOTS)
        return reader.list_models(archived, library, project, labels or {})
    except (_Miss, RegistryError, KeyError, TypeError, ValueError):
        return None


def list_page_cached(
    repo: str | os.PathLike[str] | None,
    rev: str | None = None,
    *,
    limit: int,
    after: str | None = None,
    archived: bool | None = False,
    library: str | None = None,
    project: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[list[Row], str | None] | None:
    """One page of `mreg model list` (as `Snapshot.models_page` pages it), and the name the
    next page starts after; None: ask the full reader. Lists only the models it looks at."""
    try:
        reader = _Reader.open(repo, rev, REGISTRY_ROOTS, lazy=True)
        return reader.page(limit, after, archived, library, project, labels or {})
    except (_Miss, RegistryError, KeyError, TypeError, ValueError):
        return None
