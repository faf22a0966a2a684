"""`--repo PATH` works everywhere: before the subcommand and after it, for every command."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from tests.showcase import Showcase
from tool.cli import cli


def run(*args: str, cwd: Path) -> Result:
    """mreg from a directory that is not a registry, so only --repo can find it."""
    with contextlib.chdir(cwd):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--repo", "{repo}", "--get", "/v1/registry"],
        ["serve", "--get", "/v1/registry", "--repo", "{repo}"],
        ["--repo", "{repo}", "serve", "--get", "/v1/registry"],
    ],
    ids=["serve-after", "serve-last", "serve-before"],
)
def test_serve_accepts_repo_anywhere(showcase: Showcase, tmp_path: Path, args: list[str]) -> None:
    result = run(*(a.format(repo=showcase.root) for a in args), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"]["models"] == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["resolve", "iris:prod", "--json", "--repo", "{repo}"], '"version": 2'),
        (["model", "list", "--repo", "{repo}"], "churn"),
        (["model", "--repo", "{repo}", "list"], "churn"),
        (["version", "show", "--repo", "{repo}", "iris:v3"], "trained"),
        (["pointer", "list", "iris", "--repo", "{repo}"], "champion"),
        (["validate", "--repo", "{repo}"], ""),
        (["log", "--repo", "{repo}", "-n", "1"], "legacy"),
    ],
)
def test_reads_accept_repo_after_the_subcommand(
    showcase: Showcase, tmp_path: Path, args: list[str], expected: str
) -> None:
    result = run(*(a.format(repo=showcase.root) for a in args), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_a_write_with_repo_after_the_subcommand_commits_there(
    showcase: Showcase, tmp_path: Path
) -> None:
    result = run("point", "iris:prod", "v3", "--repo", str(showcase.root), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert showcase.registry().snapshot("HEAD").resolve("iris:prod").version.version == 3


def test_repo_after_the_subcommand_wins_over_the_one_before(
    showcase: Showcase, tmp_path: Path
) -> None:
    result = run(
        "--repo", str(tmp_path), "resolve", "iris:prod", "--repo", str(showcase.root), cwd=tmp_path
    )
    assert result.exit_code == 0, result.output


def test_a_repo_that_is_not_a_registry_is_one_error_line(tmp_path: Path) -> None:
    result = run("model", "list", "--repo", str(tmp_path), cwd=tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "is not inside a git repository" in result.output


def _leaves(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += _leaves(command, f"{prefix}{name} ")
        out.append((f"{prefix}{name}", command))
    return out


cli.load_all_commands()  # commands load lazily; every one must be checked
COMMANDS = _leaves(cli)
assert {"serve", "train run", "import mlflow", "model list"} <= {n for n, _ in COMMANDS}


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_takes_repo(name: str, command: click.Command) -> None:
    assert "--repo" in [opt for p in command.params for opt in getattr(p, "opts", [])], name
