"""Entry point of the `mreg` console script: the group, and where each command is defined."""

from __future__ import annotations

from tool.base import cli

__all__ = ["cli", "main"]

# Each command's module, imported only when that command runs (see MregGroup.get_command).
cli.lazy_commands = {
    **dict.fromkeys(("init", "register", "resolve", "log", "pull"), "tool.repo_cmd"),
    "model": "tool.models_cmd",
    "version": "tool.versions_cmd",
    **dict.fromkeys(("point", "pointer", "promote", "rollback", "codeowners"), "tool.pointers_cmd"),
    **dict.fromkeys(("validate", "diff"), "tool.validate_cmd"),
    "serve": "tool.serve_cmd",
    "invoke": "tool.invoke_cmd",
    "train": "tool.train_cmd",
    "import": "tool.import_cmd",
    "fetch": "tool.fetch_cmd",
    **dict.fromkeys(("export", "sync"), "tool.engines_cmd"),
    "tags": "tool.tags_cmd",
}


def main() -> None:
    cli(prog_name="mreg")
