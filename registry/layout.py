"""Where each manifest lives in a registry (DESIGN.md section 1), and the values a read returns."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from registry.manifests import ModelManifest, Status, VersionManifest
from registry.names import encode_cursor

MAX_CHAIN = 16
VERSION_FILE_RE = re.compile(r"([1-9][0-9]*)\.yaml")


# Where each manifest lives (DESIGN.md section 1).
def model_path(model: str) -> str:
    return f"models/{model}/model.yaml"


def version_path(model: str, n: int) -> str:
    return f"models/{model}/versions/{n}.yaml"


def pointer_path(model: str, tag: str) -> str:
    return f"pointers/{model}/{tag}.yaml"


def artifact_dir(model: str, n: int) -> str:
    return f"models/{model}/artifacts/v{n}"


class VersionsSummary(BaseModel):
    """What a listing shows of a model's versions; cached by the blob ids of its version files."""

    count: int
    latest: int | None = None
    latest_id: str | None = None


def newest_servable(versions: Iterable[VersionManifest]) -> VersionManifest | None:
    """What `latest` means: the newest trained, not deprecated version, or None."""
    best: VersionManifest | None = None
    for v in versions:
        if (
            v.status == Status.trained
            and not v.deprecated
            and (best is None or v.version > best.version)
        ):
            best = v
    return best


@dataclass(frozen=True)
class Pointer:
    model: str
    tag: str
    target: str
    description: str | None
    file: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tag": self.tag,
            "ref": f"{self.model}:{self.tag}",
            "target": self.target,
            "description": self.description,
        }


@dataclass(frozen=True)
class Resolution:
    """Where a ref ends: one version of one model, and the links followed to get there."""

    ref: str
    model: str
    version: VersionManifest
    chain: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "model": self.model,
            "version": self.version.version,
            "id": self.version.id,
            "status": self.version.status.value,
            "chain": list(self.chain),
        }


@dataclass(frozen=True)
class ModelFilter:
    """Which models a listing keeps (the filters of `mreg model list` and GET /v1/models)."""

    archived: bool | None = False  # False hides archived models, True keeps only them, None all
    library: str | None = None
    project: str | None = None
    labels: Mapping[str, str] | None = None
    q: str | None = None
    keep: Callable[[ModelManifest], bool] | None = None  # the caller's own test (a server's viewer)

    def keeps(self, m: ModelManifest) -> bool:
        if self.keep is not None and not self.keep(m):
            return False
        if self.archived is not None and m.archived != self.archived:
            return False
        if self.library is not None and m.library != self.library:
            return False
        if self.project is not None and m.project != self.project:
            return False
        if self.labels and any(m.labels.get(k) != v for k, v in self.labels.items()):
            return False
        needle = self.q.lower() if self.q else None
        return not needle or any(
            needle in (text or "").lower() for text in (m.name, m.description, m.project, m.task)
        )


@dataclass(frozen=True)
class Page:
    """One page of a listing, and where the next one starts (None: this was the last)."""

    models: list[ModelManifest]
    next_after: str | None

    @property
    def next_cursor(self) -> str | None:
        return encode_cursor(self.next_after) if self.next_after is not None else None
