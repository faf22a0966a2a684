"""What validation reports: findings with a file, a line and a stable code, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from pydantic import BaseModel

from registry.errors import ManifestError, RegistryError
from registry.format_policy import DEFAULT_TRUSTED_FORMATS
from registry.manifests import VersionManifest
from registry.snapshot import Snapshot
from registry.validation.storage import ArtifactStore
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
    "served-artifact": "latest or a pointer resolves to an artifact that is corrupt or unavailable",
    "dangling-pointer": "a pointer whose target or model does not exist",
    "pointer-cycle": "pointers that target each other in a loop",
    "pointer-too-deep": "a pointer chain longer than the resolver follows",
    "pointer-untrained": "a pointer that resolves to a version that is not trained",
    "untrusted-format": "a version whose artifact format is not in registry.yaml trusted_formats",
    "pointer-split": "an arm or a shadow of a pointer that leads to another weighted pointer",
    "stray-file": "a file that fits no part of the registry layout",
    "train-stage": "a model's train.stage names a dvc.yaml or stage that does not exist",
    "immutable-field": "a change to id, created_at, created_by or a set artifact",
    "deleted-version": "a version removed while its model remains",
    "version-reused": "a version number used again or not above the base's highest",
    "status-backwards": "a status move the lifecycle does not allow",
    "protected-pointer-schema": "a protected pointer moved to a version with incompatible input",
    "protected-pointer-deleted": "a protected pointer removed",
    "promotion-rule": "a protected pointer move that breaks a promotion rule of registry.yaml",
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


def _manifest_code(exc: ManifestError) -> str:
    if exc.message.startswith(("malformed YAML", "YAML aliases", "a YAML alias")) or (
        exc.message.endswith("a YAML mapping")
    ):
        return "invalid-yaml"
    if exc.message.startswith("unknown key"):
        return "unknown-key"
    return "schema"


class Findings:
    """What every rule shares: the snapshot checked, the findings so far, the versions parsed."""

    def __init__(self, snap: Snapshot, store: ArtifactStore | None) -> None:
        self.snap = snap
        self.store = store
        self.findings: list[Finding] = []
        self.models_checked = 0
        self.pointers_checked = 0
        self.versions: dict[str, dict[int, VersionManifest]] = {}
        self.model_dirs = set(snap.model_dirs())

    @cached_property
    def trusted_formats(self) -> list[str]:
        """registry.yaml `trusted_formats` (the default when registry.yaml is broken: reported)."""
        try:
            return self.snap.settings().trusted_formats
        except RegistryError:
            return list(DEFAULT_TRUSTED_FORMATS)

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
