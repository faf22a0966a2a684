"""Manifest schemas and round-trip YAML: every field, comments kept, errors with file and line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import (
    ManifestError,
    ModelManifest,
    PointerManifest,
    RegistrySettings,
    VersionManifest,
    parse_manifest,
    render_new,
    render_update,
)

FULL_MODEL = """\
name: iris
description: Iris species classifier
project: botany
task: classification
owner: ml-team
library: sklearn
is_public: true
labels:
  team: botany
  tier: gold
metadata:
  dataset: iris
  rows: 150
license: MIT
created_at: 2026-11-24T05:00:00Z
archived_at: 2026-11-25T06:00:00Z
train:
  stage: train/dvc.yaml:train
  artifact: train/out/model.skops
  format: skops
  metrics: train/out/metrics.json
  gate: [accuracy >= 0.9, rows > 100]
serving:
  max_batch_size: 32
  max_batch_delay_ms: 2.5
"""

FULL_VERSION = """\
id: mv_3f9c2a1b7d4e5f60
version: 3
status: trained
artifact:
  path: artifacts/v3/model.skops
  md5: 0123456789abcdef0123456789abcdef
  size: 12345
  library: sklearn
  format: skops
input_info:
  feature_names: [sepal_length, sepal_width, petal_length, petal_width]
output_info:
  labels: [setosa, versicolor, virginica]
train_info:
  metrics: {accuracy: 0.97}
  params: {C: 1.0}
import_info:
  source: s3://bucket/iris.skops
description: third try
notes: retrained on full data
license: MIT
metadata: {owner: jane}
visibility: private
created_at: 2026-11-24T05:00:00Z
created_by: Jane Doe <jane@example.com>
deprecated_at: 2026-11-26T07:00:00Z
"""

FULL_REGISTRY = """\
schema_version: 1
name: example
description: the example registry
protected_pointers: [prod]
trusted_formats: [skops, onnx, joblib]
promotion:
  prod:
    from: [staging]
    require:
      metrics: [accuracy >= 0.9]
      labels: {validated: "true"}
      min_time: 24h
    approvers: [lead@example.com]
metadata: {team: ml}
"""

FULL_POINTER = "target: v3\nshadow: v4\nshadow_sample: 0.5\ndescription: production traffic\n"
WEIGHTED_POINTER = """\
targets:
  - target: v3
    weight: 90
  - target: v4
    weight: 10
shadow: v5
shadow_sample: 0.2
description: canary
"""

CASES = [
    (ModelManifest, FULL_MODEL, ()),
    (VersionManifest, FULL_VERSION, ()),
    (RegistrySettings, FULL_REGISTRY, ()),
    # A pointer has exactly one of target and targets: one sample each.
    (PointerManifest, FULL_POINTER, ("targets",)),
    (PointerManifest, WEIGHTED_POINTER, ("target",)),
]


@pytest.mark.parametrize(
    ("kind", "text", "exclusive"), CASES, ids=lambda c: getattr(c, "__name__", "")
)
def test_every_field_round_trips(kind: type, text: str, exclusive: tuple[str, ...]) -> None:
    parsed = parse_manifest(text, kind, "f.yaml")
    # Every field of the schema is set in the sample, so a field the reader drops fails here.
    unset = [f for f in kind.model_fields if f not in parsed.model_fields_set]
    assert unset == list(exclusive)
    again = parse_manifest(render_new(parsed), kind, "f.yaml")
    assert again == parsed


def test_timestamps_are_utc() -> None:
    m = parse_manifest(FULL_MODEL, ModelManifest, "m.yaml")
    assert m.created_at == datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    assert "created_at: 2026-11-24T05:00:00Z" in render_new(m)


def test_comments_order_and_quoting_survive_an_update() -> None:
    text = (
        "# The iris model: owned by the botany team.\n"
        "name: iris\n"
        "description: 'Iris classifier'   # quoted on purpose\n"
        "labels:\n"
        "  tier: gold  # keep\n"
        "project: botany\n"
        "created_at: 2026-11-24T05:00:00Z\n"
    )
    model = parse_manifest(text, ModelManifest, "models/iris/model.yaml")
    changed = model.model_copy(update={"project": "flowers"})
    out = render_update(text, changed, "models/iris/model.yaml")
    assert out == text.replace("project: botany", "project: flowers")


def test_update_adds_and_removes_keys_without_touching_the_rest() -> None:
    text = "name: iris  # hi\nproject: botany\ncreated_at: 2026-11-24T05:00:00Z\n"
    model = parse_manifest(text, ModelManifest, "m.yaml")
    changed = model.model_copy(update={"project": None, "task": "classification"})
    out = render_update(text, changed, "m.yaml")
    assert out == "name: iris  # hi\ncreated_at: 2026-11-24T05:00:00Z\ntask: classification\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "name: iris\ncreated_at: 2026-11-24T05:00:00Z\nlibary: sklearn\n",
            3,
            "unknown key 'libary'",
        ),
        ("name: iris\ncreated_at: 2026-11-24T05:00:00Z\nis_public: maybe\n", 3, "is_public"),
        ("name: iris\ncreated_at: [2026\n", 3, "malformed YAML"),
        ("name: Iris Model\ncreated_at: 2026-11-24T05:00:00Z\n", 1, "name"),
        ("name: iris\n", 1, "missing required key 'created_at'"),
        ("- name: iris\n", 1, "must be a YAML mapping"),
    ],
)
def test_bad_manifests_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, ModelManifest, "models/iris/model.yaml")
    err = info.value
    assert err.file == "models/iris/model.yaml"
    assert err.line == line
    assert message in str(err)
    assert str(err).startswith(f"models/iris/model.yaml:{line}: ")


def test_nested_error_points_at_the_nested_key() -> None:
    text = FULL_VERSION.replace("  size: 12345", "  size: big")
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, VersionManifest, "v.yaml")
    assert info.value.line == 7
    assert "artifact.size" in str(info.value)


# Text that YAML 1.1 readers would take for other types must come back as the same string.
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=40
) | st.sampled_from(
    ["no", "yes", "on", "off", "~", "null", "1.5", "0x1f", "2026-11-24", "1:20", "'", "#x"]
)
_labels = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), _text, max_size=4)


@settings(max_examples=150, deadline=None)
@given(
    description=st.none() | _text,
    project=st.none() | _text,
    labels=_labels,
    is_public=st.booleans(),
    metadata=st.dictionaries(
        st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        st.none() | st.booleans() | st.integers(-(10**9), 10**9) | _text,
        max_size=4,
    ),
)
def test_model_manifest_round_trip_property(
    description: str | None,
    project: str | None,
    labels: dict[str, str],
    is_public: bool,
    metadata: dict[str, object],
) -> None:
    model = ModelManifest(
        name="iris",
        description=description,
        project=project,
        labels=labels,
        is_public=is_public,
        metadata=metadata,
        created_at=datetime(2026, 11, 24, 5, 0, tzinfo=UTC),
    )
    text = render_new(model)
    assert parse_manifest(text, ModelManifest, "m.yaml") == model
    # An update that changes nothing rewrites nothing.
    assert render_update(text, model, "m.yaml") == text
