"""Manifest schemas (DESIGN.md section 2). Unknown keys are errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)
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
    promotion: dict[str, PromotionRule] = Field(default_factory=dict)
    """Promotion rules by protected pointer tag (PromotionRule: below)."""
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

    @model_validator(mode="after")
    def _rules_are_protected(self) -> RegistrySettings:
        for tag in self.promotion:
            if tag not in self.protected_pointers:
                raise ValueError(f"promotion rule for {tag!r}, which is not in protected_pointers")
        return self


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

# A duration such as `30m`, `24h`, `7d` (seconds, minutes, hours, days, weeks).
DURATION_RE = re.compile(r"^(?P<n>[0-9]+)(?P<unit>[smhdw])$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(value: str) -> str:
    if not DURATION_RE.match(value):
        raise ValueError(f"duration {value!r} is not <n>s|m|h|d|w (24h, 7d)")
    return value


def duration_seconds(value: str) -> int:
    m = DURATION_RE.match(value)
    assert m is not None  # the schema checked it
    return int(m.group("n")) * DURATION_UNITS[m.group("unit")]


class PromotionRequire(Manifest):
    """What a version needs before a protected pointer may take it (see registry/promotion.py)."""

    metrics: list[GateCondition] = Field(default_factory=list)
    """Conditions on the version's train_info.metrics, as a training gate: `accuracy >= 0.9`."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Entries the version's `metadata` must hold, as strings: `validated: "true"`."""
    min_time: Annotated[str, AfterValidator(_duration)] | None = None
    """How long the version must have been the target of the `from` pointer(s): `24h`."""

    @field_validator("metrics", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class PromotionRule(Manifest):
    """registry.yaml `promotion.<tag>`: how a protected pointer may move."""

    from_: list[str] = Field(default_factory=list, alias="from")
    """Pointers of the same model that must have targeted the version first (history)."""
    require: PromotionRequire = Field(default_factory=PromotionRequire)
    approvers: list[str] = Field(default_factory=list)
    """Emails or @handles: a move needs a commit author or an `Approved-by:` trailer among them."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, populate_by_name=True, serialize_by_alias=True
    )

    @field_validator("from_", "approvers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _time_needs_from(self) -> PromotionRule:
        if self.require.min_time is not None and not self.from_:
            raise ValueError("require.min_time is the time on the `from` pointer: give from")
        return self


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


class ServingSpec(Manifest):
    """How the server predicts a model: adaptive batching (server/runtime/batcher.py).

    Unset fields take the server's defaults (`mreg serve --max-batch-size/--max-batch-delay-ms`).
    """

    max_batch_size: int | None = Field(default=None, ge=1, le=4096)
    """Most rows predicted as one batch; 1 turns batching off for this model."""
    max_batch_delay_ms: float | None = Field(default=None, ge=0, le=1000)
    """Longest a request waits for a batch to fill, in milliseconds."""


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
    serving: ServingSpec | None = None

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


def _target_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class PointerArm(Manifest):
    """One arm of a weighted pointer: a target and its share of traffic, in percent."""

    target: str
    weight: StrictInt = Field(gt=0, le=100)

    _text = field_validator("target", mode="before")(_target_text)


class PointerManifest(Manifest):
    """pointers/<model>/<tag>.yaml: one `target`, or weighted `targets` (a traffic split)."""

    target: str | None = None
    targets: list[PointerArm] | None = None
    """Weighted arms: positive integer weights that sum to 100, distinct targets."""
    shadow: str | None = None
    """A target that also gets a sample of the calls, off the request path (server side)."""
    shadow_sample: float | None = Field(default=None, gt=0, le=1)
    """The share of calls the shadow gets (0 < s <= 1); default 1."""
    description: str | None = None

    _text = field_validator("target", "shadow", mode="before")(_target_text)

    @field_validator("targets")
    @classmethod
    def _split(cls, arms: list[PointerArm] | None) -> list[PointerArm] | None:
        if arms is None:
            return arms
        if not arms:
            raise ValueError("give at least one arm")
        total = sum(arm.weight for arm in arms)
        if total != 100:
            raise ValueError(f"the weights sum to {total}, not 100")
        names = [arm.target for arm in arms]
        if len(set(names)) != len(names):
            raise ValueError("the same target is named twice")
        return arms

    @model_validator(mode="after")
    def _one_form(self) -> PointerManifest:
        if (self.target is None) == (self.targets is None):
            raise ValueError("a pointer has exactly one of target or targets")
        if self.shadow_sample is not None and self.shadow is None:
            raise ValueError("shadow_sample without shadow")
        return self

    @property
    def arms(self) -> list[tuple[str, int]]:
        """(target, weight) of every arm; a single target is one arm of weight 100."""
        if self.targets is not None:
            return [(arm.target, arm.weight) for arm in self.targets]
        assert self.target is not None
        return [(self.target, 100)]


# Fields of a version that may never change once merged (artifact: once set).
IMMUTABLE_VERSION_FIELDS = ("id", "version", "created_at", "created_by")
