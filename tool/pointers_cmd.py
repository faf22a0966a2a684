"""mreg point, and mreg pointer list|show|delete|history."""

from __future__ import annotations

import click

from registry import Registry, RegistryError
from tool.base import cli, echo_json, echo_table, json_option, pass_registry, rev_option
from tool.repo_cmd import echo_write, write_kwargs, write_options


@cli.command()
@click.argument("ref", metavar="MODEL:TAG")
@click.argument("target")
@click.option("--description", help="What the pointer is for (e.g. production traffic).")
@write_options
@pass_registry
def point(
    reg: Registry,
    ref: str,
    target: str,
    description: str | None,
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Create or move pointer MODEL:TAG to TARGET: v<n>, another tag of the model, or a version id.

    \b
    Example:
        mreg point iris:prod v3
        mreg point iris:champion prod --branch promote-champion
    """
    result = reg.point(ref, target, description=description, **write_kwargs(branch, no_commit))
    echo_write(result, as_json, "pointer", f"{ref} -> {target}")


@cli.group()
def pointer() -> None:
    """List, show, delete pointers and see where they pointed over time.

    \b
    Example:
        mreg pointer list iris
    """


@pointer.command("list")
@click.argument("model", required=False)
@rev_option
@json_option
@pass_registry
def list_pointers(reg: Registry, model: str | None, rev: str | None, as_json: bool) -> None:
    """List pointers (of MODEL, or all) and the version each resolves to.

    \b
    Example:
        mreg pointer list iris --rev iris@v3
    """
    snap = reg.snapshot(rev, models=[model] if model is not None else None)
    if model is not None:
        snap.model(model)  # a clear error for an unknown model
    rows = []
    for p in snap.pointers(model):
        try:
            res = snap.resolve(f"{p.model}:{p.tag}")
            version, vid, problem = res.version.version, res.version.id, None
        except RegistryError as exc:
            version, vid, problem = None, None, str(exc)
        rows.append({**p.to_dict(), "version": version, "id": vid, "error": problem})
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ["pointer", "target", "version", "id", "description"],
        [
            (
                r["ref"],
                r["target"],
                f"v{r['version']}" if r["version"] else f"broken: {r['error']}",
                r["id"],
                r["description"],
            )
            for r in rows
        ],
    )


@pointer.command("show")
@click.argument("ref", metavar="MODEL:TAG")
@rev_option
@json_option
@pass_registry
def show(reg: Registry, ref: str, rev: str | None, as_json: bool) -> None:
    """Show pointer MODEL:TAG: its target and the version it resolves to.

    \b
    Example:
        mreg pointer show iris:prod
    """
    model, _, tag = ref.partition(":")
    if not tag:
        raise RegistryError(f"expected MODEL:TAG, got {ref!r}")
    snap = reg.snapshot(rev, models=[model])
    p = snap.pointer(model, tag)
    res = snap.resolve(ref)
    if as_json:
        echo_json({**p.to_dict(), "resolution": res.to_dict()})
        return
    click.echo(f"{'pointer:':13} {p.model}:{p.tag}")
    click.echo(f"{'target:':13} {p.target}")
    click.echo(f"{'version:':13} v{res.version.version} ({res.version.id})")
    click.echo(f"{'chain:':13} {' -> '.join(res.chain)}")
    if p.description:
        click.echo(f"{'description:':13} {p.description}")


@pointer.command("delete")
@click.argument("ref", metavar="MODEL:TAG")
@write_options
@pass_registry
def delete(reg: Registry, ref: str, branch: str | None, no_commit: bool, as_json: bool) -> None:
    """Delete pointer MODEL:TAG (refused while another pointer targets it).

    \b
    Example:
        mreg pointer delete iris:staging
    """
    result = reg.delete_pointer(ref, **write_kwargs(branch, no_commit))
    echo_write(result, as_json, "pointer", f"deleted {ref}")


@pointer.command("history")
@click.argument("ref", metavar="MODEL:TAG")
@rev_option
@json_option
@pass_registry
def history(reg: Registry, ref: str, rev: str | None, as_json: bool) -> None:
    """Where MODEL:TAG pointed over time: when, who, from which version to which.

    \b
    Example:
        mreg pointer history iris:prod
    """
    states = reg.pointer_history(ref, rev=rev)
    if as_json:
        echo_json([s.to_dict() for s in states])
        return

    def label(target: str | None, version: int | None) -> str:
        if target is None:
            return "-"
        return target if version is None or target == f"v{version}" else f"{target} (v{version})"

    echo_table(
        ["date", "commit", "author", "from", "to", "subject"],
        [
            (
                s.date,
                s.commit[:10],
                s.author.split(" <")[0],
                label(s.previous_target, s.previous_version),
                label(s.target, s.version) if s.target else "(deleted)",
                s.subject,
            )
            for s in states
        ],
    )
