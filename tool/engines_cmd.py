"""mreg export mlserver and mreg sync mlserver: feed a serving engine from the registry."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from tool.base import cli, echo_json, echo_table, json_option, pass_registry

if TYPE_CHECKING:
    from registry import Registry


@cli.group()
def export() -> None:
    """Write the registry's models for another serving engine.

    \b
    Example:
        mreg export mlserver ./mlserver-models iris:prod
    """


@export.command("mlserver")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("refs", nargs=-1)
@click.option("--rev", default=None, help="Read at this git revision (default: HEAD).")
@json_option
@pass_registry
def export_mlserver(
    reg: Registry, directory: str, refs: tuple[str, ...], rev: str | None, as_json: bool
) -> None:
    """Write an MLServer model repository into DIRECTORY: one versioned model per REF.

    Each version goes to DIRECTORY/<model>/<n>/ (model-settings.json naming
    mreg's runtime, the artifact, .mreg.json). Default REFs: every model's
    latest. Serve it with `mlserver start DIRECTORY` (pip install 'mreg[mlserver]').

    \b
    Example:
        mreg export mlserver ./mlserver-models iris:prod wine:prod
    """
    from registry import export_mlserver as export_repo

    done = export_repo(reg, directory, refs, rev)
    if as_json:
        echo_json([v.to_dict() for v in done])
        return
    echo_table(
        ["ref", "model", "version", "id", "path", "written"],
        [(v.ref, v.model, v.version, v.id, v.path, "yes" if v.written else "kept") for v in done],
    )


@cli.group()
def sync() -> None:
    """Keep a serving engine in step with a branch of the registry.

    \b
    Example:
        mreg sync mlserver iris:prod --url http://mlserver:8080 --dir /mnt/models --once
    """


@sync.command("mlserver")
@click.argument("refs", nargs=-1)
@click.option("--url", required=True, help="The MLServer to tell (http://mlserver:8080).")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False),
    help="Its model repository (what `mlserver start DIR` serves).",
)
@click.option(
    "--follow",
    default="HEAD",
    metavar="BRANCH",
    help="The branch to follow; REMOTE/BRANCH is fetched first (default: HEAD).",
)
@click.option("--poll", default=10.0, show_default=True, help="Seconds between passes.")
@click.option("--once", is_flag=True, help="One pass, then exit (1 if anything failed).")
@json_option
@pass_registry
def sync_mlserver(
    reg: Registry,
    refs: tuple[str, ...],
    url: str,
    directory: str,
    follow: str,
    poll: float,
    once: bool,
    as_json: bool,
) -> None:
    """Keep an MLServer repository in step with a branch: pointer moves and new versions.

    Each pass resolves REFs (default: every model's latest) on the branch,
    writes new versions into DIR, removes versions no REF names (and models
    archived or deleted), and calls MLServer's /v2/repository/models/{name}/load
    or /unload for each model that changed, so MLServer serves a pointer move
    without a restart.

    \b
    Example:
        mreg sync mlserver iris:prod --follow origin/main --poll 30 \\
            --url http://mlserver:8080 --dir /mnt/models
    """
    from registry import MLServer, MLServerSync

    syncer = MLServerSync(reg, directory, MLServer(url), refs, follow)
    while True:
        done = syncer.run_once()
        if as_json:
            echo_json(done.to_dict())
        else:
            for line in done.loaded:
                click.echo(f"{done.commit[:12]}: loaded {line}")
            for line in done.unloaded:
                click.echo(f"{done.commit[:12]}: unloaded {line}")
        for line in done.errors:
            click.secho(f"error: {line}", fg="red", err=True)
        if once:
            raise SystemExit(1 if done.errors else 0)
        time.sleep(poll)
