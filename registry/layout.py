"""Where each manifest lives in a registry (DESIGN.md section 1), and the values a read returns."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from registry.manifests import ModelManifest, PointerManifest, Status, VersionManifest
from registry.names import encode_cursor
from registry.split import Arm, Shadow, choose, primary

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
    """A pointer file: its target or, for a weighted pointer, its arms (`targets`).

    `target` is the single target, or the heaviest arm's (first on ties) for a
    weighted pointer, so that a reader that needs one target gets the main one.
    """

    model: str
    tag: str
    target: str
    description: str | None
    file: str
    targets: tuple[tuple[str, int], ...] = ()
    """(target, weight) of each arm of a weighted pointer; empty for a single target."""
    shadow: str | None = None
    shadow_sample: float | None = None

    @classmethod
    def from_manifest(cls, model: str, tag: str, p: PointerManifest, file: str) -> Pointer:
        targets = tuple(p.arms) if p.targets is not None else ()
        target = primary([_W(t, w) for t, w in targets]).target if targets else p.target
        assert target is not None
        return cls(model, tag, target, p.description, file, targets, p.shadow, p.shadow_sample)

    @property
    def weighted(self) -> bool:
        return bool(self.targets)

    @property
    def arms(self) -> tuple[tuple[str, int], ...]:
        """(target, weight) of every arm; a single target is one arm of weight 100."""
        return self.targets or ((self.target, 100),)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "tag": self.tag,
            "ref": f"{self.model}:{self.tag}",
            "target": self.target,
            "description": self.description,
        }
        if self.targets:
            out["targets"] = [{"target": t, "weight": w} for t, w in self.targets]
        if self.shadow is not None:
            out["shadow"] = self.shadow
            out["shadow_sample"] = self.shadow_sample
        return out


@dataclass(frozen=True)
class _W:
    target: str
    weight: int


@dataclass(frozen=True)
class Resolution:
    """Where a ref ends: one version of one model, and the links followed to get there.

    For a weighted pointer, `arms` holds every arm (each ending at one version)
    and `version`/`chain` are the primary arm's (the heaviest, first on ties);
    `choose(key)` gives the resolution of the arm a call goes to. `shadow` is
    the shadow of the first pointer on the chain that has one.
    """

    ref: str
    model: str
    version: VersionManifest
    chain: tuple[str, ...]
    arms: tuple[Arm, ...] = ()
    shadow: Shadow | None = None

    @property
    def weighted(self) -> bool:
        return bool(self.arms)

    def choose(
        self,
        key: str | None = None,
        rand: random.Random | Callable[[], float] | None = None,
    ) -> Resolution:
        """The resolution of the arm a call goes to (itself when the ref is not weighted).

        With a routing key the choice is sticky per key (see `registry.split.choose`).
        """
        if not self.arms:
            return self
        arm = choose(self.arms, key, rand)
        return Resolution(self.ref, self.model, arm.version, arm.chain, self.arms, self.shadow)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ref": self.ref,
            "model": self.model,
            "version": self.version.version,
            "id": self.version.id,
            "status": self.version.status.value,
            "chain": list(self.chain),
        }
        if self.arms:
            out["arms"] = [arm.to_dict() for arm in self.arms]
        if self.shadow is not None:
            out["shadow"] = self.shadow.to_dict()
        return out


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
