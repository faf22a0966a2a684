"""Registry events: what changed between two revisions, as webhook-sized facts.

Every change is a commit, so every event is derived from the revision diff
(`registry.diff`) between the revision served before and the one served now,
however it got there: a write of the server's own, or commits pushed to a
branch it follows. Event types are named as MLflow 3's webhook events are
(`entity.action`, e.g. `model_version.created`), with mreg's entities: a
model (MLflow's `registered_model`), a version, and a pointer (a movable tag,
MLflow's `model_version_alias`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from registry.base import RegistryBase
from registry.diff import PointerChange, RegistryDiff, SplitArm, VersionChange, diff_registry

EVENT_TYPES = (
    "model.created",
    "model.updated",
    "model.archived",
    "model.restored",
    "model.deleted",
    "model_version.created",
    "model_version.status_changed",
    "model_version.deprecated",
    "model_version.undeprecated",
    "model_version.updated",
    "model_version.deleted",
    "pointer.created",
    "pointer.moved",
    "pointer.deleted",
    "registry.updated",
)
"""Every event type, in the order a diff's events come in (per model)."""

_MODEL_ACTIONS = {
    "added": "created",
    "updated": "updated",
    "archived": "archived",
    "restored": "restored",
    "deleted": "deleted",
}
_VERSION_ACTIONS = {
    "registered": "created",
    "status": "status_changed",
    "deprecated": "deprecated",
    "undeprecated": "undeprecated",
    "updated": "updated",
    "deleted": "deleted",
}


@dataclass(frozen=True)
class Event:
    """One change of the registry from `base` to `revision` (commit ids): `type` and its `data`."""

    type: str
    data: dict[str, Any]
    revision: str
    base: str

    @property
    def entity(self) -> str:
        return self.type.partition(".")[0]

    @property
    def action(self) -> str:
        return self.type.partition(".")[2]

    @property
    def id(self) -> str:
        """The same for the same change between the same revisions (a receiver may dedupe on it)."""
        key = json.dumps([self.base, self.revision, self.type, self.data], sort_keys=True)
        return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:20]

    def payload(self, timestamp: str) -> dict[str, Any]:
        """What a webhook receives (MLflow's shape: entity, action, timestamp, data; and more)."""
        return {
            "id": self.id,
            "type": self.type,
            "entity": self.entity,
            "action": self.action,
            "timestamp": timestamp,
            "revision": self.revision,
            "base_revision": self.base,
            "data": self.data,
        }


def _arms(split: tuple[SplitArm, ...]) -> list[dict[str, Any]]:
    return [{"target": t, "weight": w, "version": v} for t, w, v in split]


def _side(target: str | None, version: int | None, split: tuple[SplitArm, ...]) -> dict[str, Any]:
    return {"target": target, "version": version, "targets": _arms(split)}


def _pointer_data(change: PointerChange) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": change.model,
        "tag": change.tag,
        "ref": f"{change.model}:{change.tag}",
    }
    if change.change != "created":
        data["from"] = _side(change.old_target, change.old_version, change.old_targets)
    if change.change != "deleted":
        data["to"] = _side(change.new_target, change.new_version, change.new_targets)
    return data


def _unresolved_only(change: PointerChange) -> bool:
    """The same targets and weights, one side not resolvable (an archived model): not a move."""
    same = [(t, w) for t, w, _ in change.old_targets] == [(t, w) for t, w, _ in change.new_targets]
    arms = (*change.old_targets, *change.new_targets)
    return same and any(version is None for _, _, version in arms)


def _version_data(change: VersionChange) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": change.model,
        "version": change.version,
        "model_id": change.id,
        "ref": f"{change.model}:v{change.version}",
        "status": change.status,
    }
    if change.change == "registered":
        data["replaces"] = change.replaces
        data["metrics"] = [m.to_dict() for m in change.metrics]
    elif change.change == "status":
        data["from_status"] = change.old_status
        data["to_status"] = change.status
    if change.fields:
        data["fields"] = list(change.fields)
    return data


def events_of(diff: RegistryDiff) -> list[Event]:
    """The events of a diff between two commits: models, then versions, then pointers."""
    base, head = diff.base_revision or diff.base, diff.head_revision or diff.head
    out: list[Event] = []
    if diff.settings:
        out.append(Event("registry.updated", {"fields": list(diff.settings)}, head, base))
    for m in diff.models:
        data: dict[str, Any] = {"model": m.model}
        if m.fields:
            data["fields"] = list(m.fields)
        out.append(Event(f"model.{_MODEL_ACTIONS[m.change]}", data, head, base))
    for v in diff.versions:
        action = _VERSION_ACTIONS[v.change]
        out.append(Event(f"model_version.{action}", _version_data(v), head, base))
    for p in diff.pointers:
        if p.change == "moved" and _unresolved_only(p):
            continue
        out.append(Event(f"pointer.{p.change}", _pointer_data(p), head, base))
    return out


def events_between(registry: RegistryBase, base: str, head: str) -> list[Event]:
    """The events of the change from revision `base` to revision `head` (both commits)."""
    return events_of(diff_registry(registry, base, head))
