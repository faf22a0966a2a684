"""YAML aliases that expand beyond a small budget are refused: by the reader, validate and the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from litestar.testing import TestClient

from registry import ManifestError, ModelManifest, VersionManifest, parse_manifest
from server import create_app
from tests.conftest import FIXED_DATE, RepoBuilder
from tool.cli import cli


def bomb(levels: int, width: int = 10) -> str:
    """Metadata whose aliases expand to width**levels strings (a "billion laughs")."""
    lines = ["  l0: &l0 lol"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*l{i - 1}"] * width)
        lines.append(f"  l{i}: &l{i} [{refs}]")
    return "metadata:\n" + "\n".join(lines) + "\n"


def model_text(name: str, extra: str = "") -> str:
    return f"name: {name}\ncreated_at: {FIXED_DATE}\n{extra}"


def mreg(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--repo", str(root), *args])


def test_a_600_byte_bomb_is_refused_with_file_and_line() -> None:
    text = model_text("iris", bomb(9, 9))
    assert len(text) < 700  # 9**9 = 387,420,489 strings once expanded
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, ModelManifest, "models/iris/model.yaml")
    assert info.value.file == "models/iris/model.yaml"
    assert info.value.line is not None and 3 <= info.value.line <= 12
    assert "YAML aliases expand to" in info.value.message
    assert info.value.code == "invalid_manifest"


def test_a_million_node_expansion_is_refused() -> None:
    # l<i> stands for 1 + 10 * l<i-1> nodes: 1, 11, ..., 1,111,111; with their keys, the
    # metadata mapping and the other four scalars and the root, 1,234,581 in all.
    with pytest.raises(ManifestError, match="YAML aliases expand to 1,234,581 nodes"):
        parse_manifest(model_text("iris", bomb(6)), ModelManifest, "models/iris/model.yaml")


def test_a_recursive_alias_is_refused() -> None:
    text = model_text("iris", "metadata:\n  loop: &loop [*loop]\n")
    with pytest.raises(ManifestError, match="refers to itself"):
        parse_manifest(text, ModelManifest, "models/iris/model.yaml")


def test_a_few_aliases_and_ampersands_in_text_still_read() -> None:
    text = (
        "id: mv_0123456789abcdef\nversion: 1\nstatus: trained\n"
        f"created_at: {FIXED_DATE}\ndescription: R&D model, 5 * 3\n"
        "input_info:\n  features: &f [a, b, c]\n"
        "train_info:\n  features: *f\n  base: &base {lr: 0.1}\n  tuned:\n    <<: *base\n    epochs: 3\n"
    )
    v = parse_manifest(text, VersionManifest, "models/iris/versions/1.yaml")
    assert v.description == "R&D model, 5 * 3"
    assert v.train_info == {
        "features": ["a", "b", "c"],
        "base": {"lr": 0.1},
        "tuned": {"lr": 0.1, "epochs": 3},
    }


@pytest.fixture
def bombed(builder: RepoBuilder) -> RepoBuilder:
    builder.model("iris")
    builder.version("iris", 1, status="untrained")
    builder.write("models/evil/model.yaml", model_text("evil", bomb(6)))
    builder.commit("an alias bomb")
    return builder


@pytest.mark.parametrize("rev", [[], ["--rev", "HEAD"]], ids=["work-tree", "HEAD"])
def test_validate_reports_invalid_yaml_with_file_and_line(
    bombed: RepoBuilder, rev: list[str]
) -> None:
    result = mreg(bombed.root, "validate", *rev, "--format", "json")
    assert result.exit_code == 1
    findings = [f for f in json.loads(result.output) if f["code"] == "invalid-yaml"]
    assert len(findings) == 1, result.output
    assert findings[0]["file"] == "models/evil/model.yaml"
    assert findings[0]["line"] == 4
    assert "YAML aliases expand to 1,234,581 nodes" in findings[0]["message"]


def test_the_server_refuses_the_bomb_where_it_is_read(bombed: RepoBuilder) -> None:
    """The server reads a model's manifests when a request needs them (issue 24): the bombed
    model answers 422 naming file and line, never expanded; the other models keep serving."""
    with TestClient(create_app(bombed.root, "HEAD")) as client:
        evil = client.get("/v1/models/evil")
        assert evil.status_code == 422
        assert evil.json()["error"]["code"] == "invalid_manifest"
        assert evil.json()["error"]["message"].startswith(
            "models/evil/model.yaml:4: YAML aliases expand"
        )
        assert client.get("/v1/models/iris").status_code == 200
    result = mreg(bombed.root, "serve", "--get", "/v1/models/evil")
    assert result.exit_code == 1
    assert "models/evil/model.yaml:4: YAML aliases expand" in result.output
