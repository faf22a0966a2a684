"""mreg tags [--sync] [--push]: the `MODEL@vN` tags of the register commits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from tool.base import cli, echo_json, echo_table, json_option, pass_registry

if TYPE_CHECKING:
    from registry import Registry


@cli.command()
@click.option("--sync", is_flag=True, help="Recreate the missing tags from the commits' trailers.")
@click.option(
    "--push",
    "remote",
    is_flag=False,
    flag_value="origin",
    default=None,
    metavar="[REMOTE]",
    help="With --sync: push every version tag to REMOTE (default: origin).",
)
@click.option(
    "--rev", default=None, help="The commits reachable from this revision (default: HEAD)."
)
@json_option
@pass_registry
def tags(reg: Registry, sync: bool, remote: str | None, rev: str | None, as_json: bool) -> None:
    """List the version tags (`MODEL@vN`) of the register commits; --sync makes the missing ones.

    Tags do not travel with every clone (`git clone` of a mirror, a CI checkout
    without tags): `--sync` recreates each one, annotated, at its register commit.

    \b
    Examples:
        mreg tags
        mreg tags --sync --push
    """
    if remote is not None and not sync:
        raise click.UsageError("--push needs --sync")
    found = reg.sync_tags(rev=rev, push=remote) if sync else reg.version_tags(rev=rev)
    if as_json:
        echo_json([t.to_dict() for t in found])
        return
    echo_table(
        ["tag", "commit", "state"],
        [
            (t.name, t.commit[:12], "made" if t.made else "present" if t.present else "missing")
            for t in found
        ],
    )
    if remote is not None:
        click.echo(f"pushed {len(found)} tags to {remote}")
