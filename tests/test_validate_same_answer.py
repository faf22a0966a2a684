"""validate gives the same answer for a revision and for the work tree holding it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import git
from tests.showcase import Showcase
from tool.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def findings(root: Path, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["--repo", str(root), "validate", "--format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    out: list[dict[str, object]] = json.loads(result.output)
    return out


def test_the_gitignore_beside_each_artifact_is_no_stray_file(showcase: Showcase) -> None:
    tracked = git(showcase.root, "ls-files", "models/*/.gitignore", "models/*/*/*/.gitignore")
    assert len(tracked.splitlines()) == 5  # mreg wrote and committed one per artifact
    assert findings(showcase.root, "--rev", "HEAD") == []
    assert findings(showcase.root) == []


def test_a_real_stray_file_is_reported_at_both(showcase: Showcase) -> None:
    (showcase.root / "models" / "iris" / "notes.txt").write_text("hello\n")
    git(showcase.root, "add", "models/iris/notes.txt")
    git(showcase.root, "commit", "-q", "-m", "notes")
    at_head = findings(showcase.root, "--rev", "HEAD")
    assert [(f["code"], f["file"]) for f in at_head] == [("stray-file", "models/iris/notes.txt")]
    assert findings(showcase.root) == at_head


def test_the_example_registry_has_no_warnings_at_head() -> None:
    assert findings(ROOT, "--rev", "HEAD") == []


def test_a_model_named_artifacts_is_read_at_both(showcase: Showcase) -> None:
    reg = showcase.registry()
    reg.create_model("artifacts", description="a model like any other")
    assert reg.snapshot("HEAD").model("artifacts").description == "a model like any other"
    assert reg.snapshot().model("artifacts").description == "a model like any other"
    assert findings(showcase.root, "--rev", "HEAD") == findings(showcase.root) == []
