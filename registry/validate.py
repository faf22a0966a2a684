"""Validation of a registry (DESIGN.md section 7): findings with a file, a line and a stable code.

Without a base every manifest is checked. With `base`, only the models and
pointers the change touched are read and checked in depth, and the change
itself is checked against the base: immutable fields, deleted or reused
versions, status moves, and protected pointers moving to a version whose
input is not compatible.

A protected pointer's move is compatible when every key of the old version's
`input_info` (except the free-text `description`) is present with the same
value in the new version's; the new one may add keys. An old version with no
`input_info` allows any move.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from registry.artifacts import _open_dvc as open_dvc
from registry.artifacts import artifact_path_problem, cache_file, remote_file
from registry.diff import changed_paths, scoped_snapshot
from registry.errors import InvalidNameError, ManifestError, RegistryError
from registry.manifests import (
    IMMUTABLE_VERSION_FIELDS,
    STATUS_MOVES,
    ModelManifest,
    PointerManifest,
    RegistrySettings,
    Status,
    VersionManifest,
)
from registry.names import (
    LATEST,
    TAG_RE,
    VERSION_ID_RE,
    VERSION_TAG_RE,
    check_model_name,
    check_tag,
    is_reserved_tag,
)
from registry.registry import Registry
from registry.snapshot import MAX_CHAIN, VERSION_FILE_RE, Snapshot, model_path, pointer_path
from registry.train import is_training_file, stage_problems
from registry.yamlio import key_line

M = TypeVar("M", bound=BaseModel)

ERROR = "error"
WARNING = "warning"

# Every code a finding can carry; the CLI documents them and tests pin them.
FINDING_CODES = {
    "invalid-yaml": "a manifest that is not a YAML mapping",
    "unknown-key": "a key the manifest's schema does not have",
    "schema": "a missing key or a value of the wrong type or form",
    "invalid-name": "a model or tag name outside the allowed alphabet",
    "name-mismatch": "model.yaml `name` differs from its directory",
    "missing-model": "a model directory without model.yaml",
    "reserved-tag": "a pointer file named `latest` or `v<n>`",
    "version-number": "a version file not named <n>.yaml, or `version` not equal to n",
    "duplicate-id": "two versions with the same id",
    "missing-artifact": "a trained version without an artifact",
    "artifact-path": "an artifact path outside models/<model>/artifacts/ (error) or its v<n>/",
    "dvc-missing": "no .dvc file for a version's artifact",
    "dvc-mismatch": "a .dvc file whose md5, size or path disagrees with the version",
    "dvc-orphan": "a .dvc file no version refers to",
    "artifact-unavailable": "an artifact in neither the DVC cache nor the remote",
    "dangling-pointer": "a pointer whose target or model does not exist",
    "pointer-cycle": "pointers that target each other in a loop",
    "pointer-too-deep": "a pointer chain longer than the resolver follows",
    "pointer-untrained": "a pointer that resolves to a version that is not trained",
    "stray-file": "a file that fits no part of the registry layout",
    "train-stage": "a model's train.stage names a dvc.yaml or stage that does not exist",
    "immutable-field": "a change to id, created_at, created_by or a set artifact",
    "deleted-version": "a version removed while its model remains",
    "version-reused": "a version number used again or not above the base's highest",
    "status-backwards": "a status move the lifecycle does not allow",
    "protected-pointer-schema": "a protected pointer moved to a version with incompatible input",
    "protected-pointer-deleted": "a protected pointer removed",
}


@dataclass(frozen=True)
class Finding:
    """One problem: severity is `error` (fails validation) or `warning`."""

    severity: str
    code: str
    file: str
    line: int | None
    message: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.location}: {self.severity} [{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }


@dataclass
class ValidationReport:
    """The findings of one validation, sorted by file and line, and what was checked."""

    label: str
    revision: str | None
    base: str | None = None
    base_revision: str | None = None
    findings: list[Finding] = field(default_factory=list)
    models_checked: int = 0
    pointers_checked: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "revision": self.revision,
            "base": self.base,
            "base_revision": self.base_revision,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "models_checked": self.models_checked,
            "pointers_checked": self.pointers_checked,
            "findings": [f.to_dict() for f in self.findings],
        }


def validate_registry(
    registry: Registry,
    rev: str | None = None,
    *,
    base: str | None = None,
    check_artifacts: bool = False,
) -> ValidationReport:
    """Validate the registry at `rev` (None: the work tree); with `base`, only the change from it.

    A bad `rev` or `base` raises RevisionNotFoundError; everything else is a finding.
    """
    store = ArtifactStore(registry.root) if check_artifacts else None
    if base is None:
        snap = registry.snapshot(rev)
        checker = _Checker(snap, store)
        checker.check_all()
        report = ValidationReport(snap.label, snap.revision)
    else:
        touched = changed_paths(registry, base, rev)
        snap = scoped_snapshot(registry, rev, touched.models)
        old = scoped_snapshot(registry, base, touched.models)
        checker = _Checker(snap, store)
        checker.check_change(old, touched.models, touched.settings)
        report = ValidationReport(snap.label, snap.revision, old.label, old.revision)
    report.findings = sorted(set(checker.findings), key=lambda f: (f.file, f.line or 0, f.code))
    report.models_checked = checker.models_checked
    report.pointers_checked = checker.pointers_checked
    return report


def incompatible_input(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys of the old `input_info` the new one drops or changes (the compatibility rule above)."""
    return sorted(k for k, v in old.items() if k != "description" and new.get(k) != v)


# -- .dvc files and artifact storage ---------------------------------------


class DvcOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    path: str
    md5: str | None = None
    size: int | None = None


class DvcFile(BaseModel):
    """The part of a `.dvc` file mreg checks (DVC writes more keys; they are ignored)."""

    model_config = ConfigDict(extra="ignore")

    outs: list[DvcOut]


class ArtifactStore:
    """Where DVC keeps artifacts for this repository: the local cache and the default remote.

    A local-directory remote is checked on disk; any other remote through DVC's API.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problem: str | None = None
        self._odb: Any = None

    def has(self, md5: str) -> bool:
        """The object is in the local cache or the default remote."""
        if cache_file(self.root, md5).is_file():
            return True
        where = remote_file(self.root, md5)
        if where is None:
            self.problem = "no default DVC remote"
            return False
        if "://" not in where:
            return Path(where).is_file()
        try:
            if self._odb is None:
                self._odb = open_dvc(self.root).cloud.get_remote_odb(None)
            return bool(self._odb.exists(md5))
        except Exception as exc:  # DVC and its filesystems raise many types: all mean "unknown"
            self.problem = f"cannot query the DVC remote: {exc}"
            return False


# -- the checks ------------------------------------------------------------


def _manifest_code(exc: ManifestError) -> str:
    if exc.message.startswith(("malformed YAML", "YAML aliases", "a YAML alias")) or (
        exc.message.endswith("a YAML mapping")
    ):
        return "invalid-yaml"
    if exc.message.startswith("unknown key"):
        return "unknown-key"
    return "schema"


class _Checker:
    def __init__(self, snap: Snapshot, store: ArtifactStore | None) -> None:
        self.snap = snap
        self.store = store
        self.findings: list[Finding] = []
        self.models_checked = 0
        self.pointers_checked = 0
        self.versions: dict[str, dict[int, VersionManifest]] = {}
        self.model_dirs = set(snap.model_dirs())

    # -- recording ---------------------------------------------------------

    def add(self, severity: str, code: str, file: str, line: int | None, message: str) -> None:
        self.findings.append(Finding(severity, code, file, line, message))

    def error(self, code: str, file: str, line: int | None, message: str) -> None:
        self.add(ERROR, code, file, line, message)

    def line(self, snap: Snapshot, path: str, *keys: str | int) -> int | None:
        try:
            return key_line(snap.read_text(path), keys)
        except (RegistryError, KeyError):
            return None

    def parse_each(self, kind: type[M], paths: list[str]) -> dict[str, M]:
        """Parse many manifests; each bad one is one finding and the others still count."""
        try:
            return self.snap.parse(kind, paths)
        except RegistryError:
            pass
        out: dict[str, M] = {}
        for path in paths:
            try:
                out.update(self.snap.parse(kind, [path]))
            except ManifestError as exc:
                self.error(_manifest_code(exc), exc.file or path, exc.line, exc.message)
            except RegistryError as exc:
                self.error("schema", path, None, str(exc))
        return out

    # -- entry points --------------------------------------------------------

    def check_all(self) -> None:
        self.check_settings()
        for path in self.snap.stray_files:
            self.add(WARNING, "stray-file", path, None, "not part of the registry layout")
        self.prefetch()
        names = set(self.snap.model_dirs()) | set(self.snap.pointer_models())
        for name in sorted(names):
            self.check_model(name)
        self.check_unique_ids(self.snap.model_names())

    def prefetch(self, chunk: int = 1000) -> None:
        """Parse every manifest in large batches first: one cache write per batch, not per model.

        A batch with a bad file is skipped here; the per-model checks report it.
        """
        snap = self.snap
        kinds: list[tuple[type[BaseModel], list[str]]] = [
            (ModelManifest, [model_path(n) for n in snap.model_names()]),
            (
                VersionManifest,
                [p for n in snap.model_names() for p in snap.version_files(n).values()],
            ),
            (DvcFile, [p for n in snap.model_names() for p in snap.dvc_files(n)]),
            (
                PointerManifest,
                [pointer_path(m, t) for m in snap.pointer_models() for t in snap.pointer_tags(m)],
            ),
        ]
        for kind, paths in kinds:
            for start in range(0, len(paths), chunk):
                try:
                    snap.parse(kind, paths[start : start + chunk])
                except RegistryError:
                    continue

    def check_change(self, old: Snapshot, models: Iterable[str], settings: bool) -> None:
        if settings:
            self.check_settings()
        for path in self.snap.stray_files:
            self.add(WARNING, "stray-file", path, None, "not part of the registry layout")
        for name in sorted(models):
            self.check_model(name)
            self.check_model_change(old, name)
            self.check_protected(old, name)
        self.check_unique_ids(sorted(models))

    # -- registry.yaml ---------------------------------------------------------

    def settings(self, snap: Snapshot) -> RegistrySettings | None:
        try:
            return snap.settings()
        except RegistryError:
            return None

    def check_settings(self) -> None:
        path = "registry.yaml"
        if not self.snap.source.blob_ids([path]):
            self.error("schema", path, None, "registry.yaml is missing: run 'mreg init'")
            return
        settings = self.parse_each(RegistrySettings, [path]).get(path)
        if settings is None:
            return
        for i, tag in enumerate(settings.protected_pointers):
            try:
                check_tag(tag)
            except InvalidNameError as exc:
                line = self.line(self.snap, path, "protected_pointers", i)
                self.error("schema", path, line, f"protected_pointers: {exc}")

    # -- one model: manifests, versions, artifacts, pointers --------------------

    def check_model(self, name: str) -> None:
        snap = self.snap
        path = model_path(name)
        self.models_checked += 1
        if name in self.model_dirs:
            try:
                check_model_name(name)
            except InvalidNameError as exc:
                self.error("invalid-name", path, None, str(exc))
            if not snap.has_model(name):
                self.error("missing-model", path, None, f"models/{name}/ has no model.yaml")
            else:
                model = self.parse_each(ModelManifest, [path]).get(path)
                if model is not None and model.name != name:
                    self.error(
                        "name-mismatch",
                        path,
                        self.line(snap, path, "name"),
                        f"name {model.name!r} does not match its directory {name!r}",
                    )
                if model is not None and model.train is not None:
                    line = self.line(snap, path, "train", "stage")
                    for problem in stage_problems(snap, name, model.train):
                        self.error("train-stage", path, line, problem)
                self.check_versions(name)
            for other in snap.other_files(name):
                if is_training_file(other):  # models/<model>/train/: its DVC training stage
                    continue
                self.add(WARNING, "stray-file", other, None, "not part of the registry layout")
        self.check_pointers(name)

    def check_versions(self, name: str) -> None:
        snap = self.snap
        files = snap.version_files(name)
        good = {}
        for fname, path in sorted(files.items()):
            if VERSION_FILE_RE.fullmatch(fname):
                good[int(fname[: -len(".yaml")])] = path
            else:
                self.error(
                    "version-number",
                    path,
                    None,
                    f"version file {fname!r} is not named <n>.yaml with n a positive integer",
                )
        parsed = self.parse_each(VersionManifest, list(good.values()))
        versions: dict[int, VersionManifest] = {}
        ids: dict[str, int] = {}
        for n, path in sorted(good.items()):
            v = parsed.get(path)
            if v is None:
                continue
            versions[n] = v
            if v.version != n:
                line = self.line(snap, path, "version")
                self.error(
                    "version-number", path, line, f"version {v.version} does not match file {n}"
                )
            if v.id in ids:
                self.error(
                    "duplicate-id",
                    path,
                    self.line(snap, path, "id"),
                    f"id {v.id} is already the id of v{ids[v.id]}",
                )
            ids.setdefault(v.id, n)
        self.versions[name] = versions
        self.check_artifacts(name, versions, good)

    def check_artifacts(
        self, name: str, versions: dict[int, VersionManifest], files: dict[int, str]
    ) -> None:
        snap = self.snap
        present = set(snap.dvc_files(name)) | set(snap.other_files(name))
        wanted: dict[str, tuple[int, VersionManifest]] = {}
        for n, v in versions.items():
            path = files[n]
            if v.artifact is None:
                if v.status == Status.trained:
                    line = self.line(snap, path, "status")
                    self.error(
                        "missing-artifact", path, line, "a trained version needs an artifact"
                    )
                continue
            rel = PurePosixPath(v.artifact.path)
            problem = artifact_path_problem(v.artifact.path)
            if problem is not None:
                self.error(
                    "artifact-path",
                    path,
                    self.line(snap, path, "artifact", "path"),
                    f"artifact.path {v.artifact.path!r} {problem}:"
                    f" it must stay under models/{name}/artifacts/",
                )
                continue
            if rel.parts[:2] != ("artifacts", f"v{n}") or len(rel.parts) < 3:
                self.add(
                    WARNING,
                    "artifact-path",
                    path,
                    self.line(snap, path, "artifact", "path"),
                    f"artifact.path {v.artifact.path!r} is not under artifacts/v{n}/",
                )
            dvc = f"models/{name}/{rel.as_posix()}.dvc"
            if dvc not in present:
                line = self.line(snap, path, "artifact", "path")
                self.error("dvc-missing", path, line, f"{dvc} does not exist")
                continue
            wanted[dvc] = (n, v)
        dvc_files = self.parse_each(DvcFile, sorted(wanted))
        for dvc, (n, v) in sorted(wanted.items()):
            parsed = dvc_files.get(dvc)
            if parsed is not None:
                self.check_dvc(dvc, parsed, files[n], v)
        for orphan in sorted(set(snap.dvc_files(name)) - set(wanted)):
            owner = orphan.split("/")[3][1:]  # models/M/artifacts/v<n>/...
            if f"{owner}.yaml" not in snap.version_files(name):
                self.add(WARNING, "dvc-orphan", orphan, None, "no version refers to this .dvc file")

    def check_dvc(self, dvc: str, parsed: DvcFile, vpath: str, v: VersionManifest) -> None:
        assert v.artifact is not None
        if len(parsed.outs) != 1:
            line = self.line(self.snap, dvc, "outs")
            self.error("dvc-mismatch", dvc, line, "a version's .dvc file must have exactly one out")
            return
        out = parsed.outs[0]
        expected = {
            "md5": v.artifact.md5,
            "size": v.artifact.size,
            "path": PurePosixPath(v.artifact.path).name,
        }
        for key, want in expected.items():
            have = getattr(out, key)
            if have != want:
                self.error(
                    "dvc-mismatch",
                    dvc,
                    self.line(self.snap, dvc, "outs", 0, key),
                    f"{key} {have} does not match artifact.{key} {want} of {vpath}",
                )
        store = self.store
        if store is not None and v.status == Status.trained and not store.has(v.artifact.md5):
            where = f" ({store.problem})" if store.problem else ""
            self.error(
                "artifact-unavailable",
                vpath,
                self.line(self.snap, vpath, "artifact", "md5"),
                f"artifact {v.artifact.md5} is in neither the DVC cache nor the"
                f" default remote{where}",
            )

    # -- pointers ---------------------------------------------------------------

    def check_pointers(self, name: str) -> None:
        snap = self.snap
        tags = snap.pointer_tags(name)
        if not tags:
            return
        paths = {tag: pointer_path(name, tag) for tag in tags}
        for tag, path in paths.items():
            self.pointers_checked += 1
            try:
                check_tag(tag)
            except InvalidNameError as exc:
                code = "reserved-tag" if is_reserved_tag(tag) else "invalid-name"
                self.error(code, path, None, str(exc))
        if not snap.has_model(name):
            for path in paths.values():
                self.error("dangling-pointer", path, None, f"model {name!r} does not exist")
            return
        parsed = self.parse_each(PointerManifest, list(paths.values()))
        targets = {tag: parsed[p].target for tag, p in paths.items() if p in parsed}
        versions = self.versions.get(name, {})
        numbers = {
            int(f[: -len(".yaml")])
            for f in snap.version_files(name)
            if VERSION_FILE_RE.fullmatch(f)
        }
        walk = _PointerWalk(name, targets, set(tags), versions, numbers)
        for tag in sorted(targets):
            problem = walk.follow(tag)
            if problem is not None:
                code, at, message = problem
                path = paths[at]
                self.error(code, path, self.line(snap, path, "target"), message)

    # -- the change from the base -------------------------------------------------

    def check_model_change(self, old: Snapshot, name: str) -> None:
        new = self.snap
        if not old.has_model(name) or not new.has_model(name):
            return  # a new model, or a deleted one: nothing to compare
        mpath = model_path(name)
        old_model = self._quiet(old, ModelManifest, mpath)
        new_model = self._quiet(new, ModelManifest, mpath)
        if old_model and new_model and old_model.created_at != new_model.created_at:
            self.error(
                "immutable-field",
                mpath,
                self.line(new, mpath, "created_at"),
                "created_at is set once and never changes",
            )
        old_files = {
            f: p for f, p in old.version_files(name).items() if VERSION_FILE_RE.fullmatch(f)
        }
        new_files = new.version_files(name)
        highest = max((int(f[: -len(".yaml")]) for f in old_files), default=0)
        for fname, path in sorted(old_files.items()):
            if fname not in new_files:
                was = self._quiet(old, VersionManifest, path)
                ident = f" ({was.id})" if was else ""
                self.error(
                    "deleted-version",
                    path,
                    None,
                    f"v{fname[: -len('.yaml')]}{ident} was deleted: versions are never deleted;"
                    " deprecate it, or archive the model",
                )
        for fname, path in sorted(new_files.items()):
            if not VERSION_FILE_RE.fullmatch(fname):
                continue
            n = int(fname[: -len(".yaml")])
            if fname not in old_files:
                if n <= highest:
                    self.error(
                        "version-reused",
                        path,
                        self.line(new, path, "version"),
                        f"new version {n} is not above the base's highest version ({highest})",
                    )
                continue
            a = self._quiet(old, VersionManifest, path)
            b = self.versions.get(name, {}).get(n)
            if a is not None and b is not None:
                self.check_version_change(path, a, b)

    def check_version_change(self, path: str, a: VersionManifest, b: VersionManifest) -> None:
        new = self.snap
        if a.id != b.id:
            self.error(
                "version-reused",
                path,
                self.line(new, path, "id"),
                f"v{a.version} was {a.id} at the base and is now {b.id}:"
                " a version number is never reused; register a new version",
            )
        for key in IMMUTABLE_VERSION_FIELDS:
            if key != "id" and getattr(a, key) != getattr(b, key):
                self.error(
                    "immutable-field",
                    path,
                    self.line(new, path, key),
                    f"{key} is immutable once registered",
                )
        if a.artifact is not None and a.artifact != b.artifact:
            old_art = a.artifact.model_dump()
            new_art = b.artifact.model_dump() if b.artifact is not None else {}
            changed = [k for k in old_art if old_art[k] != new_art.get(k)]
            keys = ("artifact", changed[0]) if changed and b.artifact else ("artifact",)
            detail = ", ".join(f"artifact.{k}" for k in changed) or "artifact"
            self.error(
                "immutable-field",
                path,
                self.line(new, path, *keys),
                f"{detail} changed: a registered artifact is immutable; register a new version",
            )
        if a.status != b.status and b.status not in STATUS_MOVES[a.status]:
            self.error(
                "status-backwards",
                path,
                self.line(new, path, "status"),
                f"status cannot move from {a.status.value} to {b.status.value}"
                " (untrained -> training -> trained | failed)",
            )

    def check_protected(self, old: Snapshot, name: str) -> None:
        new = self.snap
        protected: set[str] = set()
        for snap in (old, new):
            settings = self.settings(snap)
            if settings is not None:
                protected.update(settings.protected_pointers)
        old_tags, new_tags = set(old.pointer_tags(name)), set(new.pointer_tags(name))
        for tag in sorted(protected & old_tags):
            path = pointer_path(name, tag)
            if tag not in new_tags:
                if new.has_model(name):
                    self.add(
                        WARNING,
                        "protected-pointer-deleted",
                        path,
                        None,
                        f"protected pointer {name}:{tag} was deleted",
                    )
                continue
            was, now = _resolve(old, name, tag), _resolve(new, name, tag)
            if was is None or now is None or was.id == now.id:
                continue
            bad = incompatible_input(was.input_info, now.input_info)
            if bad:
                self.error(
                    "protected-pointer-schema",
                    path,
                    self.line(new, path, "target"),
                    f"protected pointer {name}:{tag} moves from v{was.version} to v{now.version},"
                    f" whose input_info differs in {', '.join(bad)}",
                )

    def check_unique_ids(self, names: Iterable[str]) -> None:
        """Ids are unique across the checked models (within a model, check_versions says so)."""
        seen: dict[str, str] = {}
        for name in names:
            for n, v in sorted(self.versions.get(name, {}).items()):
                first = seen.setdefault(v.id, f"{name}:v{n}")
                if first != f"{name}:v{n}" and not first.startswith(f"{name}:"):
                    path = f"models/{name}/versions/{n}.yaml"
                    self.error(
                        "duplicate-id",
                        path,
                        self.line(self.snap, path, "id"),
                        f"id {v.id} is already the id of {first}",
                    )

    @staticmethod
    def _quiet(snap: Snapshot, kind: type[M], path: str) -> M | None:
        try:
            return snap.parse(kind, [path]).get(path)
        except RegistryError:
            return None


def _resolve(snap: Snapshot, name: str, tag: str) -> VersionManifest | None:
    try:
        return snap.resolve(f"{name}:{tag}").version
    except RegistryError:
        return None


class _PointerWalk:
    """Follows one model's pointers without raising: each problem once, at the link that fails."""

    def __init__(
        self,
        model: str,
        targets: dict[str, str],
        tags: set[str],
        versions: dict[int, VersionManifest],
        numbers: set[int],
    ) -> None:
        self.model = model
        self.targets = targets
        self.tags = tags
        self.versions = versions
        self.numbers = numbers
        self.by_id = {v.id: v for v in versions.values()}
        self.reported: set[str] = set()

    def _once(self, at: str, code: str, message: str) -> tuple[str, str, str] | None:
        if at in self.reported:
            return None
        self.reported.add(at)
        return code, at, message

    def follow(self, start: str) -> tuple[str, str, str] | None:
        """(code, tag of the failing link, message), or None when the pointer resolves well."""
        chain = [start]
        tag = start
        for _ in range(MAX_CHAIN):
            target = self.targets[tag]
            ref = f"{self.model}:{tag}"
            end: VersionManifest | None = None
            if VERSION_ID_RE.fullmatch(target):
                end = self.by_id.get(target)
                if end is None:
                    return self._once(
                        tag,
                        "dangling-pointer",
                        f"{ref} targets {target}, which is not a version of {self.model}",
                    )
            elif (m := VERSION_TAG_RE.fullmatch(target)) is not None:
                n = int(m.group(1))
                if n not in self.numbers:
                    return self._once(
                        tag, "dangling-pointer", f"{ref} targets {target}, which does not exist"
                    )
                end = self.versions.get(n)
            elif target == LATEST:
                trained = [v for v in self.versions.values() if v.servable and not v.deprecated]
                if not trained and self.versions:
                    return self._once(
                        tag,
                        "pointer-untrained",
                        f"{ref} targets latest, but {self.model} has no trained version",
                    )
                return None
            elif not TAG_RE.fullmatch(target):
                return self._once(
                    tag,
                    "schema",
                    f"{ref}: target {target!r} is not v<n>, a tag of {self.model} or a version id",
                )
            elif target not in self.tags:
                return self._once(
                    tag,
                    "dangling-pointer",
                    f"{ref} targets pointer {self.model}:{target}, which does not exist",
                )
            elif target in chain:
                cycle = [*chain[chain.index(target) :], target]
                at = min(cycle)
                if any(t in self.reported for t in cycle):
                    return None
                return self._once(
                    at,
                    "pointer-cycle",
                    "pointer cycle: " + " -> ".join(f"{self.model}:{t}" for t in cycle),
                )
            elif target not in self.targets:
                return None  # that pointer file is unreadable: reported on its own
            else:
                chain.append(target)
                tag = target
                continue
            if end is not None and end.status != Status.trained:
                return self._once(
                    tag,
                    "pointer-untrained",
                    f"{ref} targets v{end.version}, which is {end.status.value}, not trained",
                )
            return None
        return self._once(
            start,
            "pointer-too-deep",
            f"pointer chain deeper than {MAX_CHAIN}: "
            + " -> ".join(f"{self.model}:{t}" for t in chain),
        )
