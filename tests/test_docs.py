"""Meta-tests: every CLI command has help with an example, and the README's CLI section lists it."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tool.cli import cli

README = Path(__file__).parent.parent / "README.md"


def all_commands(group: click.Group = cli, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    # list_commands/get_command, not group.commands: mreg's group imports command modules lazily.
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        full = f"{prefix} {name}".strip()
        found.append((full, command))
        if isinstance(command, click.Group):
            found += all_commands(command, full)
    return found


COMMANDS = all_commands()


def cli_section() -> str:
    text = README.read_text()
    start = text.index("\n## CLI\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert command.help and command.help.strip(), f"mreg {name} has no help text"
    example = re.search(r"Examples?:\n\s+mreg " + re.escape(name.split()[0]), result.output)
    assert example, f"mreg {name} --help shows no example"


@pytest.mark.parametrize(
    "name", [n for n, c in COMMANDS if not isinstance(c, click.Group)], ids=str
)
def test_readme_cli_section_lists_every_command(name: str) -> None:
    assert f"`mreg {name}" in cli_section() or f"/ `mreg {name}" in cli_section(), (
        f"README.md's CLI section does not list mreg {name}"
    )


def test_the_meta_tests_see_the_commands() -> None:
    names = {n for n, _ in COMMANDS}
    assert {"init", "register", "model create", "pointer history", "pull"} <= names
