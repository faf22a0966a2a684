"""The bodies of the writes, and their answers: the commit a write made."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from registry import FORMATS, MODEL_PATTERN, TARGET_PATTERN

Format = Literal["skops", "joblib", "pickle", "onnx", "torchscript", "keras", "h5", "mlflow"]


class ModelCreate(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/models`: the model-level fields of a new model."""

    name: Annotated[str, msgspec.Meta(pattern=MODEL_PATTERN, max_length=64)]
    description: str | None = None
    project: str | None = None
    task: str | None = None
    owner: str | None = None
    library: str | None = None
    is_public: bool = False
    labels: dict[str, str] | None = None
    metadata: dict[str, Any] | None = None
    license: str | None = None


class ServingPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A model's `serving:` block: adaptive batching (given fields change; null clears one)."""

    max_batch_size: Annotated[int, msgspec.Meta(ge=1, le=4096)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    max_batch_delay_ms: Annotated[float, msgspec.Meta(ge=0, le=1000)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )


class ModelPatch(msgspec.Struct, forbid_unknown_fields=True):
    """`PATCH /v1/models/{model}`: only the fields given change; null clears one."""

    description: str | msgspec.UnsetType | None = msgspec.UNSET
    project: str | msgspec.UnsetType | None = msgspec.UNSET
    task: str | msgspec.UnsetType | None = msgspec.UNSET
    owner: str | msgspec.UnsetType | None = msgspec.UNSET
    library: str | msgspec.UnsetType | None = msgspec.UNSET
    is_public: bool | msgspec.UnsetType = msgspec.UNSET
    labels: dict[str, str] | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    license: str | msgspec.UnsetType | None = msgspec.UNSET
    serving: ServingPatch | msgspec.UnsetType | None = msgspec.UNSET
    remove_labels: list[str] = msgspec.field(default_factory=list)


class VersionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/models/{model}/versions`: an untrained version; its artifact comes with PUT."""

    description: str | None = None
    notes: str | None = None
    license: str | None = None
    input_info: dict[str, Any] | None = None
    output_info: dict[str, Any] | None = None
    train_info: dict[str, Any] | None = None
    import_info: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    labels: dict[str, str] | None = None
    create: bool = False


class VersionPatch(msgspec.Struct, forbid_unknown_fields=True):
    """`PATCH .../versions/{n}`: version-level fields, or a status move (not both)."""

    description: str | msgspec.UnsetType | None = msgspec.UNSET
    notes: str | msgspec.UnsetType | None = msgspec.UNSET
    license: str | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    visibility: Literal["public", "private"] | msgspec.UnsetType | None = msgspec.UNSET
    deprecated: bool | msgspec.UnsetType = msgspec.UNSET
    status: Literal["training", "trained", "failed"] | msgspec.UnsetType = msgspec.UNSET


class PointerSet(msgspec.Struct, forbid_unknown_fields=True):
    """`PUT .../pointers/{tag}`: where the pointer goes (v<n>, another tag or a version id)."""

    target: Annotated[str, msgspec.Meta(pattern=TARGET_PATTERN, max_length=128)]
    description: str | None = None
    weight: Annotated[int, msgspec.Meta(ge=1, le=99)] | None = None
    """A canary: `target` gets this share (percent), the pointer's other arms the rest."""


class PointerPromote(msgspec.Struct, forbid_unknown_fields=True):
    """`POST .../pointers/{tag}/promote`: the arm to give all traffic (default: the newest)."""

    target: Annotated[str, msgspec.Meta(pattern=TARGET_PATTERN, max_length=128)] | None = None


class WriteInfo(msgspec.Struct):
    """The commit a write made (null when it changed nothing), and the revision served after it."""

    subject: str
    commit: str | None
    branch: str | None
    tag: str | None
    paths: list[str]
    revision: str


class ModelWritten(msgspec.Struct):
    model: dict[str, Any]
    write: WriteInfo


class ModelDeleted(msgspec.Struct):
    model: str
    deleted: list[str]
    write: WriteInfo


class VersionWritten(msgspec.Struct):
    model: str
    version: dict[str, Any]
    write: WriteInfo


class PointerWritten(msgspec.Struct):
    pointer: dict[str, Any]
    write: WriteInfo


assert set(Format.__args__) == set(FORMATS)  # type: ignore[attr-defined]
