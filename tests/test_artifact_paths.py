"""Artifact paths from manifests stay under models/<model>/artifacts/: pull and validate refuse others."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.conftest import git
from tests.showcase import Showcase
from tool.cli import cli


def mreg(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--repo", str(root), *args])


def set_path(root: Path, model: str, n: int, path: str) -> None:
    manifest = root / "models" / model / "versions" / f"{n}.yaml"
    text = manifest.read_text()
    manifest.write_text(re.sub(r"(?m)^  path: .*$", f"  path: {json.dumps(path)}", text))


def work_tree_artifacts(root: Path) -> list[Path]:
    return sorted(p for p in (root / "models").rglob("*") if p.is_file() and p.suffix == ".skops")


ESCAPES = {
    "parent": "../../../escaped.skops",
    "nested-parent": "artifacts/v1/../../../../escaped.skops",
    "absolute": "{outside}/escaped.skops",
    "model-dir": "escaped.skops",
    "versions-dir": "versions/escaped.skops",
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_pull_refuses_a_path_outside_the_artifacts_directory(
    showcase: Showcase, tmp_path: Path, case: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = ESCAPES[case].format(outside=outside)
    root = showcase.root
    for existing in work_tree_artifacts(root):
        existing.unlink()
    set_path(root, "iris", 1, path)
    before = git(root, "status", "--porcelain")

    for args in (["pull", "iris:v1"], ["pull"]):
        result = mreg(root, *args)
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1
        assert result.output.startswith("error: models/iris/versions/1.yaml: artifact.path")
        assert "must stay under models/iris/artifacts/" in result.output

    assert not (tmp_path / "escaped.skops").exists()
    assert not (outside / "escaped.skops").exists()
    assert not (root / "models" / "iris" / "escaped.skops").exists()
    assert work_tree_artifacts(root) == []  # nothing written, not even the good versions
    assert git(root, "status", "--porcelain") == before


def test_pull_refuses_an_artifacts_directory_that_is_a_symlink(
    showcase: Showcase, tmp_path: Path
) -> None:
    root = showcase.root
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(root / "models" / "churn" / "artifacts")
    (root / "models" / "churn" / "artifacts").symlink_to(outside)
    result = mreg(root, "pull", "churn:v1")
    assert result.exit_code == 1
    assert "symbolic link" in result.output
    assert list(outside.iterdir()) == []


def test_pull_still_writes_good_paths(showcase: Showcase) -> None:
    root = showcase.root
    for existing in work_tree_artifacts(root):
        existing.unlink()
    result = mreg(root, "pull", "iris:v2")
    assert result.exit_code == 0, result.output
    assert work_tree_artifacts(root) == [root / "models/iris/artifacts/v2/model.skops"]


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_validate_reports_artifact_path(showcase: Showcase, tmp_path: Path, case: str) -> None:
    root = showcase.root
    set_path(root, "iris", 1, ESCAPES[case].format(outside=tmp_path))
    result = mreg(root, "validate", "--format", "json")
    assert result.exit_code == 1
    findings = json.loads(result.output)
    bad = [f for f in findings if f["code"] == "artifact-path"]
    assert [(f["severity"], f["file"], f["line"]) for f in bad] == [
        ("error", "models/iris/versions/1.yaml", 5)
    ], findings
    assert "must stay under models/iris/artifacts/" in bad[0]["message"]
