"""Validation of a registry (DESIGN.md section 7): findings with a file, a line and a stable code.

Without a base every manifest is checked. With `base`, only the models and
pointers the change touched are read and checked in depth, and the change
itself is checked against the base: immutable fields, deleted or reused
versions, status moves, and protected pointers moving to a version whose
input is not compatible.

The rules live by kind: `schema_rules` (each file), `reference_rules`
(pointers and ids), `change_rules` (the change from a base); `findings` holds
what they report.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from registry.base import RegistryBase
from registry.diff import changed_paths, scoped_snapshot
from registry.errors import InvalidNameError, RegistryError
from registry.ids import IdIndex
from registry.layout import model_path, pointer_path, version_path
from registry.manifests import ModelManifest, PointerManifest, VersionManifest
from registry.names import check_model_name
from registry.snapshot import Snapshot
from registry.source import resolve_revision
from registry.train_stage import is_training_file, stage_problems
from registry.validation.change_rules import ChangeRules, MoveContext, incompatible_input
from registry.validation.findings import FINDING_CODES, WARNING, Finding, ValidationReport
from registry.validation.reference_rules import ReferenceRules
from registry.validation.schema_rules import SchemaRules
from registry.validation.storage import ArtifactStore, DvcFile, served_artifact_problems

__all__ = [
    "FINDING_CODES",
    "Finding",
    "ValidationReport",
    "incompatible_input",
    "validate_registry",
]


def validate_registry(
    registry: RegistryBase,
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
        move = MoveContext(registry, resolve_revision(registry.repo, base), rev)
        checker.check_change(old, touched.models, touched.settings, move)
        if touched.models:
            # Ids are unique across the registry: the base's ids index says who else holds one.
            assert old.revision is not None
            ids = IdIndex.at(registry.where, old.revision, registry.cache)
            checker.check_ids_elsewhere(ids, touched.models)
        report = ValidationReport(snap.label, snap.revision, old.label, old.revision)
    report.findings = sorted(set(checker.findings), key=lambda f: (f.file, f.line or 0, f.code))
    report.models_checked = checker.models_checked
    report.pointers_checked = checker.pointers_checked
    return report


class _Checker(SchemaRules, ReferenceRules, ChangeRules):
    """Every rule, run over the whole registry or over the models a change touched."""

    def check_all(self) -> None:
        self.check_settings()
        for path in self.snap.stray_files:
            self.add(WARNING, "stray-file", path, None, "not part of the registry layout")
        self.prefetch()
        names = set(self.snap.model_dirs()) | set(self.snap.pointer_models())
        for name in sorted(names):
            self.check_model(name)
        self.check_unique_ids(self.snap.model_names())
        self.check_served_artifacts()

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

    def check_change(
        self, old: Snapshot, models: Iterable[str], settings: bool, move: MoveContext
    ) -> None:
        if settings:
            self.check_settings()
        for path in self.snap.stray_files:
            self.add(WARNING, "stray-file", path, None, "not part of the registry layout")
        for name in sorted(models):
            self.check_model(name)
            self.check_model_change(old, name)
            self.check_protected(old, name, move)
        self.check_unique_ids(sorted(models))
        self.check_served_artifacts()

    def check_served_artifacts(self) -> None:
        """What a server would refuse to swap in (with --check-artifacts only)."""
        if self.store is None:
            return
        try:
            problems = served_artifact_problems(self.snap, self.store)
        except RegistryError:
            return  # a manifest that does not parse: the other rules report it
        # One finding per version, naming every ref that reaches it; an artifact missing
        # everywhere is `artifact-unavailable` already.
        unavailable = {f.file for f in self.findings if f.code == "artifact-unavailable"}
        by_version: dict[str, list[str]] = {}
        for problem in problems:
            path = version_path(problem.model, problem.version)
            if path not in unavailable:
                by_version.setdefault(path, []).append(str(problem))
        for path, messages in by_version.items():
            line = self.line(self.snap, path, "artifact", "md5")
            self.error("served-artifact", path, line, "; ".join(messages))

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
