"""The `mreg` click group and what every command shares: options, output, error mapping."""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from registry import RegistryError
from tool import __version__

if TYPE_CHECKING:
    from registry import Registry

F = TypeVar("F", bound=Callable[..., Any])


REPO_HELP = "The registry repository (default: the enclosing git repository)."


def _repo_after_command(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # `mreg serve --repo X` names the same repository as `mreg --repo X serve`.
    if value is not None:
        ctx.ensure_object(State).repo_path = value


def _usage_error(exc: click.UsageError) -> NoReturn:
    """A usage mistake is a mistake like any other: one `error:` line, exit code 1 (click's own
    `Usage:` block and exit code 2 would be the only exception to the rule)."""
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    click.secho(f"error: {exc.format_message()}{hint}", fg="red", err=True)
    raise click.exceptions.Exit(1)


class MregGroup(click.Group):
    """Maps every RegistryError to one red line on stderr and exit code 1.

    Every command added to it (and to its subgroups, which are MregGroups too)
    also takes `--repo`, so the global option works after the subcommand as well.
    """

    group_class = type

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any("--repo" in getattr(p, "opts", ()) for p in cmd.params):
            cmd.params.append(
                click.Option(
                    ["--repo"],
                    type=click.Path(file_okay=False),
                    expose_value=False,
                    callback=_repo_after_command,
                    help=REPO_HELP,
                )
            )
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RegistryError as exc:
            if ctx.meta.get("mreg.traceback"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(1)
        except click.UsageError as exc:  # a subcommand's own arguments
            _usage_error(exc)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:  # this group's own options
            _usage_error(exc)

    # Command modules are imported when their command runs, not all at start-up:
    # `mreg resolve` pays for tool/repo_cmd.py only. A module adds its commands to
    # the group when imported; `lazy_commands` says which module holds which command.
    lazy_commands: dict[str, str] = {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and self.lazy_commands:
            module = self.lazy_commands.get(cmd_name)
            if module is not None:
                importlib.import_module(module)
            if cmd_name not in self.commands:
                self.load_all_commands()  # a command not in the map yet, or a typo
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        if self.lazy_commands:
            self.load_all_commands()
        return super().list_commands(ctx)

    def load_all_commands(self) -> None:
        """Import every command module (`mreg --help` lists them all)."""
        import tool

        found = {f"tool.{m.name}" for m in pkgutil.iter_modules(tool.__path__)}
        for module in sorted(
            {*self.lazy_commands.values(), *(m for m in found if m.endswith("_cmd"))}
        ):
            importlib.import_module(module)


class State:
    def __init__(self, repo: str | None) -> None:
        self.repo_path = repo
        self._registry: Registry | None = None

    def registry(self) -> Registry:
        if self._registry is None:
            from registry import Registry

            self._registry = Registry(self.repo_path)
        return self._registry


@click.group(cls=MregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    type=click.Path(file_okay=False),
    envvar="MREG_REPO",
    help=REPO_HELP,
)
@click.option("--traceback", is_flag=True, hidden=True, help="Show the full traceback on errors.")
@click.version_option(__version__, prog_name="mreg")
@click.pass_context
def cli(ctx: click.Context, repo: str | None, traceback: bool) -> None:
    """mreg: a GitOps model registry.

    Models, versions and pointers are YAML manifests in Git, artifacts are
    tracked by DVC, every write is a commit.

    \b
    Example:
        mreg --repo ./my-registry model list
    """
    ctx.meta["mreg.traceback"] = traceback
    ctx.obj = State(repo)


def pass_registry(f: F) -> F:
    """Give the command the Registry of --repo as its first argument."""

    @click.pass_obj
    @functools.wraps(f)
    def wrapper(state: State, *args: Any, **kwargs: Any) -> Any:
        return f(state.registry(), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
rev_option = click.option(
    "--rev",
    default=None,
    help="Read at this git revision (branch, tag, sha); default: the work tree.",
)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        from registry import rfc3339

        return rfc3339(value)
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_default, ensure_ascii=False))


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        from registry import rfc3339

        return rfc3339(value)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """An aligned plain-text table."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def parse_pairs(pairs: Iterable[str], what: str) -> dict[str, str]:
    """`k=v` options into a dict; a malformed one is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=what)
        out[key] = value
    return out


def show_progress(as_json: bool) -> None:
    """DVC's transfer progress on a terminal (stderr), never with --json or without a TTY."""
    from registry import transfer_progress

    transfer_progress(not as_json and sys.stderr.isatty())


def fail(message: str) -> None:
    """A user mistake found in the CLI layer itself."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)
