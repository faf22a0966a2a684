"""Entry point of the `mreg` console script: the group plus every command module."""

from __future__ import annotations

from tool import (
    import_cmd,
    models_cmd,
    pointers_cmd,
    repo_cmd,
    serve_cmd,
    train_cmd,
    validate_cmd,
    versions_cmd,
)
from tool.base import cli

__all__ = ["cli", "main"]

# Importing a command module registers its commands on `cli`.
_COMMAND_MODULES = (
    repo_cmd,
    models_cmd,
    versions_cmd,
    pointers_cmd,
    validate_cmd,
    serve_cmd,
    train_cmd,
    import_cmd,
)


def main() -> None:
    cli(prog_name="mreg")
