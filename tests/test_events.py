"""Registry events: each change between two commits becomes the events a webhook receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry import EVENT_TYPES, Event, Registry, events_between
from tests.conftest import head
from tests.server_fixtures import LABELS

pytest_plugins = ["tests.server_fixtures"]


def changes(reg: Registry, write: Any) -> list[Event]:
    """The events of the one commit `write(reg)` makes."""
    before = head(reg.root)
    write(reg)
    return events_between(reg, before, head(reg.root))


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


@pytest.fixture
def reg(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, create=True)
    reg.point("iris:prod", "v1")
    return reg


def test_a_new_model_with_a_version_and_a_pointer(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    reg = Registry.init(tmp_path / "reg")
    events = changes(
        reg,
        lambda r: r.register("iris", model_files["skops"], create=True, point=["prod"]),
    )
    assert types(events) == ["model.created", "model_version.created", "pointer.created"]
    model, version, pointer = events
    assert model.data == {"model": "iris"}
    assert version.data["ref"] == "iris:v1" and version.data["status"] == "trained"
    assert version.data["model_id"].startswith("mv_")
    assert pointer.data["to"] == {
        "target": "v1",
        "version": 1,
        "targets": [{"target": "v1", "weight": 100, "version": 1}],
    }
    assert "from" not in pointer.data
    assert {e.revision for e in events} == {head(reg.root)}


def test_a_canary_moves_the_pointer_with_its_weights(reg: Registry, other_model_file: Path) -> None:
    reg.register("iris", other_model_file, output_info={"labels": LABELS})
    (moved,) = changes(reg, lambda r: r.point("iris:prod", "v2", weight=10))
    assert moved.type == "pointer.moved"
    assert (moved.entity, moved.action) == ("pointer", "moved")
    assert moved.data["from"]["targets"] == [{"target": "v1", "weight": 100, "version": 1}]
    assert moved.data["to"]["targets"] == [
        {"target": "v1", "weight": 90, "version": 1},
        {"target": "v2", "weight": 10, "version": 2},
    ]
    assert (moved.data["from"]["version"], moved.data["to"]["version"]) == (1, 1)


def test_status_changes_of_a_version(reg: Registry, other_model_file: Path) -> None:
    (created,) = changes(reg, lambda r: r.register("iris", untrained=True))
    assert created.type == "model_version.created" and created.data["status"] == "untrained"
    (moved,) = changes(reg, lambda r: r.set_status("iris:v2", "training"))
    assert moved.type == "model_version.status_changed"
    assert (moved.data["from_status"], moved.data["to_status"]) == ("untrained", "training")
    assert types(changes(reg, lambda r: r.update_version("iris:v1", deprecate=True))) == [
        "model_version.deprecated"
    ]


def test_archive_restore_delete(reg: Registry) -> None:
    assert types(changes(reg, lambda r: r.archive_model("iris"))) == ["model.archived"]
    assert types(changes(reg, lambda r: r.restore_model("iris"))) == ["model.restored"]
    deleted = changes(reg, lambda r: r.delete_model("iris"))
    assert types(deleted) == ["model.deleted", "pointer.deleted"]
    assert deleted[1].data["from"]["target"] == "v1" and "to" not in deleted[1].data


def test_event_ids_name_the_change_and_payloads_follow_mlflow(reg: Registry) -> None:
    before = head(reg.root)
    reg.update_model("iris", description="flowers")
    after = head(reg.root)
    (first,) = events_between(reg, before, after)
    (again,) = events_between(reg, before, after)
    assert first.type == "model.updated" and first.data["fields"] == ["description"]
    assert first.id == again.id and first.id.startswith("evt_")
    payload = first.payload("2026-12-01T00:00:00Z")
    assert payload["entity"] == "model" and payload["action"] == "updated"
    assert (payload["revision"], payload["base_revision"]) == (after, before)
    assert set(types([first])) <= set(EVENT_TYPES)


def test_no_change_no_events(reg: Registry) -> None:
    sha = head(reg.root)
    assert events_between(reg, sha, sha) == []
