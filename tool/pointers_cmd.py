"""mreg point, and mreg pointer list|show|delete|history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from registry import Registry, RegistryError
from registry import codeowners as codeowners_lines
from tool.base import cli, echo_json, echo_table, json_option, pass_registry, rev_option
from tool.repo_cmd import echo_write, write_kwargs, write_options

F = TypeVar("F", bound=Callable[..., Any])


def split_text(arms: tuple[tuple[str, int], ...]) -> str:
    """`v3`, or `v3 90%, v4 10%` for a weighted pointer."""
    if len(arms) == 1 and arms[0][1] == 100:
        return arms[0][0]
    return ", ".join(f"{t} {w}%" for t, w in arms)


def approved_by_option(f: F) -> F:
    """--approved-by, for the approvers of a protected pointer (registry.yaml promotion rules)."""
    return click.option(
        "--approved-by",
        "approved_by",
        multiple=True,
        metavar="WHO",
        help="Add an Approved-by: trailer (Name <email>, an email or an @handle); repeatable.",
    )(f)


@cli.command()
@click.argument("ref", metavar="MODEL:TAG")
@click.argument("target")
@click.option(
    "--weight",
    type=int,
    metavar="PERCENT",
    help="Canary: TARGET gets this share (1-99); the pointer's other targets share the rest.",
)
@click.option("--description", help="What the pointer is for (e.g. production traffic).")
@approved_by_option
@write_options
@pass_registry
def point(
    reg: Registry,
    ref: str,
    target: str,
    weight: int | None,
    description: str | None,
    approved_by: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Create or move pointer MODEL:TAG to TARGET: v<n>, another tag of the model, or a version id.

    With --weight, a canary: TARGET gets that percentage of the traffic and
    the pointer's current target(s) are scaled to the rest, e.g. prod -> v3
    becomes 90% v3, 10% v4. `mreg promote` finishes it, `mreg rollback` undoes it.

    \b
    Example:
        mreg point iris:prod v3
        mreg point iris:prod v4 --weight 10
        mreg point iris:champion prod --branch promote-champion
    """
    result = reg.point(
        ref,
        target,
        weight=weight,
        description=description,
        approved_by=approved_by,
        **write_kwargs(branch, no_commit),
    )
    echo_write(result, as_json, "pointer", f"{ref} -> {split_text(result.value.arms)}")


@cli.command()
@click.argument("ref", metavar="MODEL:TAG")
@click.argument("target", required=False)
@approved_by_option
@write_options
@pass_registry
def promote(
    reg: Registry,
    ref: str,
    target: str | None,
    approved_by: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Give one arm of the weighted pointer MODEL:TAG all the traffic (default: the newest arm).

    The newest arm is the one that resolves to the highest version; name
    TARGET to promote another. The pointer becomes a single `target:`.

    \b
    Example:
        mreg promote iris:prod
        mreg promote iris:prod v4
    """
    result = reg.promote(ref, target, approved_by=approved_by, **write_kwargs(branch, no_commit))
    echo_write(result, as_json, "pointer", f"{ref} -> {result.value.target}")


@cli.command()
@click.argument("ref", metavar="MODEL:TAG")
@approved_by_option
@write_options
@pass_registry
def rollback(
    reg: Registry,
    ref: str,
    approved_by: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Put pointer MODEL:TAG back as it was before its last change, as one new commit.

    Like `git revert` of that change for the pointer's file only: a canary
    rolled back is the pointer it split; rolling back twice undoes the rollback.

    \b
    Example:
        mreg rollback iris:prod
    """
    result = reg.rollback(ref, approved_by=approved_by, **write_kwargs(branch, no_commit))
    echo_write(result, as_json, "pointer", f"{ref} -> {split_text(result.value.arms)}")


@cli.command()
@rev_option
@pass_registry
def codeowners(reg: Registry, rev: str | None) -> None:
    """Print CODEOWNERS lines that make protected pointers' approvers their required reviewers.

    From the `approvers:` of the promotion rules in registry.yaml: one line
    per protected tag (every model's pointers/*/<tag>.yaml), and registry.yaml
    owned by all of them. Append it to .github/CODEOWNERS.

    \b
    Example:
        mreg codeowners >> .github/CODEOWNERS
    """
    lines = codeowners_lines(reg.snapshot(rev, models=[]).settings())
    if len(lines) == 1:
        raise RegistryError("registry.yaml has no promotion rule with approvers")
    click.echo("\n".join(lines))


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
                split_text(tuple((a["target"], a["weight"]) for a in r["targets"]))
                if "targets" in r
                else r["target"],
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
    click.echo(f"{'target:':13} {split_text(p.arms)}")
    for arm in res.arms:
        click.echo(f"{'':13} {arm.weight:>3}% -> v{arm.version.version} ({arm.version.id})")
    click.echo(f"{'version:':13} v{res.version.version} ({res.version.id})")
    click.echo(f"{'chain:':13} {' -> '.join(res.chain)}")
    if res.shadow is not None:
        end = f"v{res.shadow.version.version}" if res.shadow.version else res.shadow.error
        click.echo(f"{'shadow:':13} {res.shadow.target} ({end}), {res.shadow.sample:.0%} of calls")
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

    def label(
        target: str | None, version: int | None, targets: tuple[tuple[str, int], ...] = ()
    ) -> str:
        if target is None:
            return "-"
        if targets:
            return split_text(targets)
        return target if version is None or target == f"v{version}" else f"{target} (v{version})"

    echo_table(
        ["date", "commit", "author", "from", "to", "subject"],
        [
            (
                s.date,
                s.commit[:10],
                s.author.split(" <")[0],
                label(s.previous_target, s.previous_version, s.previous_targets),
                label(s.target, s.version, s.targets) if s.target else "(deleted)",
                s.subject,
            )
            for s in states
        ],
    )
