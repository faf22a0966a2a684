"""The `/v1` read answers as typed schemas, for the OpenAPI document (and generated clients).

The handlers still encode the views' dicts (server.runtime.views) with msgspec:
these Structs only declare the shape (`-> Response[ModelPage]`), so the bytes
a client gets are the same as before they were typed. A field that some
answers leave out (a weighted pointer's `targets`, a resolution's `arms`) is
`UNSET` (not required); a field always present but possibly null is `X | None`.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType


class Schema(Struct, kw_only=True):
    """A response schema (never built: the views' dicts are encoded as they are)."""


class VersionRef(Schema):
    version: int
    id: str


class ModelSummary(Schema):
    """A model as listed: its manifest's fields, `latest` and `versions_count`."""

    name: str
    description: str | None
    project: str | None
    task: str | None
    owner: str | None
    library: str | None
    is_public: bool
    labels: dict[str, str]
    metadata: dict[str, Any]
    license: str | None
    created_at: str
    archived_at: str | None
    train: dict[str, Any] | None
    latest: VersionRef | None
    versions_count: int
    last_used_at: str | None


class VersionRow(Schema):
    version: int
    id: str
    status: str
    deprecated: bool
    format: str | None


class WeightedTarget(Schema):
    target: str
    weight: int


class PointerView(Schema):
    """A pointer and the version it resolves to (`resolves_to` null, with `error`, when not)."""

    model: str
    tag: str
    ref: str
    target: str | None
    description: str | None
    resolves_to: VersionRef | None
    targets: list[WeightedTarget] | UnsetType = UNSET
    shadow: str | UnsetType | None = UNSET
    shadow_sample: float | UnsetType | None = UNSET
    error: str | UnsetType | None = UNSET


class ModelDetail(ModelSummary):
    """One model: its fields, every version it may show, its pointers."""

    versions: list[VersionRow]
    pointers: list[PointerView]


class ModelPage(Schema):
    models: list[ModelSummary]
    next_cursor: str | None
    revision: str


class Artifact(Schema):
    path: str
    md5: str
    size: int
    library: str | None
    format: str


class Version(Schema):
    """A version manifest's fields (as JSON)."""

    id: str
    version: int
    status: str
    artifact: Artifact | None
    input_info: dict[str, Any]
    output_info: dict[str, Any]
    train_info: dict[str, Any]
    import_info: dict[str, Any]
    description: str | None
    notes: str | None
    license: str | None
    metadata: dict[str, Any]
    visibility: str | None
    created_at: str
    created_by: str | None
    deprecated_at: str | None


class ModelVersion(Version):
    """One version, with the model it belongs to."""

    model: str


class VersionList(Schema):
    model: str
    versions: list[Version]


class PointerList(Schema):
    pointers: list[PointerView]


class Arm(Schema):
    target: str
    weight: int
    version: int
    id: str
    status: str
    chain: list[str]


class Resolved(Schema):
    """The version a reference resolves to, the links followed, at the served revision."""

    ref: str
    model: str
    version: int
    id: str
    status: str
    chain: list[str]
    revision: str
    arms: list[Arm] | UnsetType = UNSET
    shadow: dict[str, Any] | UnsetType = UNSET


class Counts(Schema):
    models: int
    archived_models: int
    versions: int
    pointers: int


class RevisionError(Schema):
    revision: str | None
    message: str
    at: str


class RegistryInfo(Schema):
    """The revision served, what it holds, and how following its branch goes."""

    revision: str
    ref: str
    loaded_at: str
    counts: Counts
    follow: str | None
    ready: bool
    loaded_models: int | None
    last_reload_error: RevisionError | None
    last_fetch_at: str | None
    last_fetch_error: RevisionError | None
    fetching_since: str | None


class Reloaded(RegistryInfo):
    reloaded: bool


class Ready(Schema):
    status: str
    revision: str


class Job(Schema):
    """One recorded invocation or run."""

    id: str
    kind: str
    ref: str | None
    model: str
    version: int | None
    model_id: str | None
    revision: str | None
    who: str | None
    status: str
    http_status: int
    error: str | None
    latency_ms: float
    inputs: int
    created_at: str | None


class RunRecord(Job):
    """A recorded run, with what it answered (null for an invocation)."""

    outputs: list[Any] | None


class JobList(Schema):
    jobs: list[Job]
    stale: bool
    warning: str | None


class RunAnswer(Schema):
    """A run's answer: its record's id, and the invoke answer."""

    id: str
    pipeline: str
    status: str
    created_at: str
    model: str
    version: int
    model_id: str
    revision: str
    outputs: list[Any]
