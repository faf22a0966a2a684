"""`mreg tags --sync`: the version tags a clone without tags lacks, made again from the trailers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import git
from tests.showcase import Showcase
from tool.cli import cli


def mreg(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--repo", str(root), *args], prog_name="mreg")
    assert result.exit_code == 0, result.output
    return result.stdout


def version_tags(root: Path) -> dict[str, str]:
    out = git(
        root, "tag", "--list", "*@v*", "--format=%(refname:short) %(objecttype) %(*objectname)"
    )
    return {
        name: f"{kind} {commit}"
        for name, kind, commit in (line.split() for line in out.splitlines())
    }


def test_sync_recreates_the_missing_version_tags_at_their_register_commits(
    showcase: Showcase, tmp_path: Path
) -> None:
    root = showcase.root
    before = version_tags(root)
    assert {"iris@v1", "iris@v2", "iris@v3"} <= set(before)
    assert all(kind.startswith("tag ") for kind in before.values())  # annotated
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-tags", str(root), str(clone)], check=True)
    assert version_tags(clone) == {}

    listed = json.loads(mreg(clone, "tags", "--json"))
    assert {t["tag"] for t in listed} == set(before)
    assert not any(t["present"] for t in listed)

    made = json.loads(mreg(clone, "tags", "--sync", "--json"))
    assert all(t["made"] for t in made) and len(made) == len(before)
    assert version_tags(clone) == before  # annotated, each at the commit register tagged
    message = git(clone, "tag", "--list", "iris@v1", "--format=%(contents:subject)")
    assert message.strip().startswith("iris: register v1 (mv_")

    again = mreg(clone, "tags", "--sync")
    assert "made" not in again and again.count("present") == len(before)


def test_sync_push_publishes_the_tags(showcase: Showcase, tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-tags", str(showcase.root), str(clone)], check=True)
    git(clone, "remote", "add", "published", str(bare))
    out = mreg(clone, "tags", "--sync", "--push", "published")
    assert out.rstrip().endswith(f"pushed {len(version_tags(showcase.root))} tags to published")
    assert set(version_tags(bare)) == set(version_tags(showcase.root))


def test_push_without_sync_is_a_usage_error(showcase: Showcase) -> None:
    result = CliRunner().invoke(cli, ["--repo", str(showcase.root), "tags", "--push"])
    assert result.exit_code == 1
    assert result.output.startswith("error: --push needs --sync")
