"""Manifest schemas (DESIGN.md section 2). Unknown keys are errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from registry.format_policy import DEFAULT_TRUSTED_FORMATS
from registry.formats import FORMAT_ALIASES, FORMATS
from registry.names import MODEL_NAME_RE, VERSION_ID_RE


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def rfc3339(ts: datetime) -> str:
    """RFC 3339 in UTC with a Z suffix, as every manifest stores it."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A timestamp, always in UTC (a naive one is taken as UTC). Validated per field rather
# than by a catch-all validator: manifests are parsed by the hundred thousand.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


MAX_NESTING = 64
"""How deep a free-form map (metadata, *_info) may nest: deeper cannot be written back out."""


def _nesting(value: Any) -> int:
    """How many maps and lists deep `value` goes (iteratively: a deep value is no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children:
            deepest = max(deepest, depth)
            if depth > MAX_NESTING:
                break
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    if value and _nesting(value) > MAX_NESTING:
        raise PydanticCustomError(
            "too_deep",
            "nested deeper than {limit} levels of maps and lists",
            {"limit": MAX_NESTING},
        )
    return value


# A free-form map: any YAML value, at most MAX_NESTING levels deep.
FreeMap = Annotated[dict[str, Any], AfterValidator(_shallow)]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Status(StrEnum):
    untrained = "untrained"
    training = "training"
    trained = "trained"
    failed = "failed"


# Legal moves of a version's status; trained and failed are final.
STATUS_MOVES: dict[Status, frozenset[Status]] = {
    Status.untrained: frozenset({Status.training, Status.trained, Status.failed}),
    Status.training: frozenset({Status.trained, Status.failed}),
    Status.trained: frozenset(),
    Status.failed: frozenset(),
}


class Visibility(StrEnum):
    public = "public"
    private = "private"


class RegistrySettings(Manifest):
    """registry.yaml."""

    schema_version: int = 1
    name: str | None = None
    description: str | None = None
    protected_pointers: list[str] = Field(default_factory=list)
    # The artifact formats this registry serves (registry.format_policy): code-running ones
    # (pickle, joblib, torchscript, mlflow) only when listed here.
    trusted_formats: list[str] = Field(default_factory=lambda: list(DEFAULT_TRUSTED_FORMATS))
    metadata: FreeMap = Field(default_factory=dict)

    @field_validator("trusted_formats")
    @classmethod
    def _known_formats(cls, formats: list[str]) -> list[str]:
        out = []
        for fmt in formats:
            canonical = FORMAT_ALIASES.get(fmt.lower())
            if canonical is None:
                raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
            out.append(canonical)
        return out


# A metric gate condition: `accuracy >= 0.9` (a metric name, a comparison, a number).
GATE_RE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.\-/]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$"
)


def _gate_condition(cond: str) -> str:
    if not GATE_RE.match(cond):
        raise ValueError(f"gate condition {cond!r} is not METRIC OP NUMBER (accuracy >= 0.9)")
    return cond


GateCondition = Annotated[str, AfterValidator(_gate_condition)]


class TrainSpec(Manifest):
    """How a model is trained: a DVC stage (see registry/train.py), its metrics and its gate."""

    stage: str = Field(pattern=r"^[^:/][^:]*dvc\.yaml:[\w.-]+$")
    """The DVC stage, relative to the model directory: `train/dvc.yaml:train`."""
    artifact: str | None = None
    """The stage's out to register (relative to the model directory); default: its only out."""
    format: str | None = None
    metrics: str | None = None
    """The metrics file (relative to the model directory); default: the stage's metrics file."""
    gate: list[GateCondition] = Field(default_factory=list)
    """Conditions on the metrics for `--point`: `accuracy >= 0.9`."""

    @field_validator("gate", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ModelManifest(Manifest):
    """models/<model>/model.yaml."""

    name: str = Field(pattern=f"^{MODEL_NAME_RE.pattern}$")
    description: str | None = None
    project: str | None = None
    task: str | None = None
    owner: str | None = None
    library: str | None = None
    is_public: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    metadata: FreeMap = Field(default_factory=dict)
    license: str | None = None
    created_at: UtcDatetime
    archived_at: UtcDatetime | None = None
    train: TrainSpec | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class Artifact(Manifest):
    path: str
    md5: str = Field(pattern=r"^[0-9a-f]{32}$")
    size: int = Field(ge=0)
    library: str | None = None
    format: str


class VersionManifest(Manifest):
    """models/<model>/versions/<n>.yaml."""

    id: str = Field(pattern=f"^{VERSION_ID_RE.pattern}$")
    version: int = Field(ge=1)
    status: Status = Status.untrained
    artifact: Artifact | None = None
    input_info: FreeMap = Field(default_factory=dict)
    output_info: FreeMap = Field(default_factory=dict)
    train_info: FreeMap = Field(default_factory=dict)
    import_info: FreeMap = Field(default_factory=dict)
    description: str | None = None
    notes: str | None = None
    license: str | None = None
    metadata: FreeMap = Field(default_factory=dict)
    visibility: Visibility | None = None
    created_at: UtcDatetime
    created_by: str | None = None
    deprecated_at: UtcDatetime | None = None

    @property
    def deprecated(self) -> bool:
        return self.deprecated_at is not None

    @property
    def servable(self) -> bool:
        return self.status == Status.trained and self.artifact is not None


class PointerManifest(Manifest):
    """pointers/<model>/<tag>.yaml."""

    target: str
    description: str | None = None

    @field_validator("target", mode="before")
    @classmethod
    def _target_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


# Fields of a version that may never change once merged (artifact: once set).
IMMUTABLE_VERSION_FIELDS = ("id", "version", "created_at", "created_by")
