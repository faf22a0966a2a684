"""The ready-made integrations run real mreg commands: the pre-commit hooks and the example workflow."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import RepoBuilder
from tool.cli import cli

ROOT = Path(__file__).resolve().parent.parent
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
WORKFLOW = yaml.safe_load((ROOT / "examples/github-actions/mreg-pr.yml").read_text())


@pytest.mark.parametrize("hook", HOOKS, ids=[h["id"] for h in HOOKS])
def test_pre_commit_hook_entry_passes_a_good_registry_and_fails_a_bad_one(
    hook: dict[str, str], builder: RepoBuilder
) -> None:
    argv = shlex.split(hook["entry"])
    assert argv[0] == "mreg"
    assert hook["pass_filenames"] is False
    builder.model("iris")
    builder.commit("base")
    runner = CliRunner()
    assert runner.invoke(cli, ["--repo", str(builder.root), *argv[1:]]).exit_code == 0
    builder.pointer("iris", "latest", "v1")
    result = runner.invoke(cli, ["--repo", str(builder.root), *argv[1:]])
    assert result.exit_code == 1
    assert "[reserved-tag]" in result.stdout


def test_example_workflow_validates_with_annotations_and_comments_the_diff() -> None:
    steps = WORKFLOW["jobs"]["validate"]["steps"]
    commands = [step.get("run", "") for step in steps]
    validate = next(c for c in commands if c.startswith("mreg validate"))
    diff = next(c for c in commands if c.startswith("mreg diff"))
    assert "--base" in validate and "--format github" in validate
    assert "--format markdown" in diff
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
