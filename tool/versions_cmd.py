"""mreg version list|show|update|status."""

from __future__ import annotations

from typing import Any

import click

from registry import Registry, RegistryError
from tool.base import (
    cli,
    echo_json,
    echo_table,
    fmt,
    json_option,
    parse_pairs,
    pass_registry,
    rev_option,
)
from tool.models_cmd import parse_sets
from tool.repo_cmd import echo_write, write_kwargs, write_options


@cli.group()
def version() -> None:
    """List, show and change versions.

    \b
    Example:
        mreg version list iris
    """


@version.command("list")
@click.argument("model")
@rev_option
@json_option
@pass_registry
def list_versions(reg: Registry, model: str, rev: str | None, as_json: bool) -> None:
    """List the versions of MODEL, oldest first, with the pointers that target them.

    \b
    Example:
        mreg version list iris --rev main
    """
    snap = reg.snapshot(rev, models=[model])
    versions = snap.versions(model)
    latest = snap.latest(model)
    tags: dict[int, list[str]] = {}
    for p in snap.pointers(model):
        try:
            tags.setdefault(snap.resolve(f"{model}:{p.tag}").version.version, []).append(p.tag)
        except RegistryError:  # a broken pointer is shown by `pointer list`, not here
            continue
    if latest is not None:
        tags.setdefault(latest.version, []).insert(0, "latest")
    if as_json:
        echo_json(
            [
                {
                    **v.model_dump(mode="json", exclude_none=True),
                    "pointers": tags.get(v.version, []),
                }
                for v in versions
            ]
        )
        return
    echo_table(
        ["version", "id", "status", "format", "size", "created", "created by", "pointers"],
        [
            (
                f"v{v.version}",
                v.id,
                v.status,
                v.artifact.format if v.artifact else None,
                v.artifact.size if v.artifact else None,
                v.created_at,
                (v.created_by or "").split(" <")[0] or None,
                ",".join(tags.get(v.version, [])) or None,
            )
            for v in versions
        ],
    )


@version.command("show")
@click.argument("ref")
@rev_option
@json_option
@pass_registry
def show(reg: Registry, ref: str, rev: str | None, as_json: bool) -> None:
    """Show the version REF resolves to (MODEL:v<n>, MODEL:TAG, MODEL or a version id).

    \b
    Example:
        mreg version show iris:prod
    """
    res = reg.resolve(ref, rev)
    v = res.version
    if as_json:
        echo_json(
            {
                "model": res.model,
                "chain": list(res.chain),
                **v.model_dump(mode="json", exclude_none=True),
            }
        )
        return
    click.echo(f"{'model:':14} {res.model}")
    for key, value in v.model_dump(exclude_none=True).items():
        if value in ({}, []):
            continue
        if isinstance(value, dict) and any(isinstance(x, dict) for x in value.values()):
            click.echo(f"{key + ':':14}")
            for sub, inner in value.items():
                click.echo(f"  {sub + ':':12} {fmt(inner)}")
        else:
            click.echo(f"{key + ':':14} {fmt(value)}")


@version.command("update")
@click.argument("ref")
@click.option("--description", help="What this version is.")
@click.option("--notes", help="Release notes.")
@click.option("--license", "license_", help="License of this version.")
@click.option(
    "--visibility", type=click.Choice(["public", "private"]), help="Visibility of this version."
)
@click.option(
    "--metadata", "metadata", multiple=True, metavar="K=V", help="Add or change a metadata entry."
)
@click.option(
    "--deprecate/--undeprecate", default=None, help="Deprecated versions are skipped by latest."
)
@click.option(
    "--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Set any version-level field."
)
@write_options
@pass_registry
def update(
    reg: Registry,
    ref: str,
    description: str | None,
    notes: str | None,
    license_: str | None,
    visibility: str | None,
    metadata: tuple[str, ...],
    deprecate: bool | None,
    sets: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Patch version-level fields of REF; immutable fields (id, version, created_*, artifact) are refused.

    \b
    Example:
        mreg version update iris:v2 --notes "retrained on May data" --deprecate
    """
    fields: dict[str, Any] = parse_sets(sets)
    given = {
        "description": description,
        "notes": notes,
        "license": license_,
        "visibility": visibility,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    if metadata:
        fields["metadata"] = parse_pairs(metadata, "--metadata")
    result = reg.update_version(
        ref, deprecate=deprecate, **fields, **write_kwargs(branch, no_commit)
    )
    echo_write(result, as_json, "version", f"updated {ref}")


@version.command("status")
@click.argument("ref")
@click.argument("status", type=click.Choice(["training", "trained", "failed"]))
@click.option(
    "--artifact",
    type=click.Path(dir_okay=False),
    help="The trained model file (to become trained).",
)
@click.option(
    "--format", "fmt_", metavar="F", help="Artifact format (default: from the file's suffix)."
)
@click.option(
    "--library", metavar="L", help="Library (default: the model's, else from the format)."
)
@write_options
@pass_registry
def status(
    reg: Registry,
    ref: str,
    status: str,
    artifact: str | None,
    fmt_: str | None,
    library: str | None,
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Move version REF forward: untrained -> training -> trained (with --artifact) or failed.

    \b
    Example:
        mreg version status churn:v2 training
        mreg version status churn:v2 trained --artifact churn.joblib
    """
    result = reg.set_status(
        ref,
        status,
        artifact=artifact,
        format=fmt_,
        library=library,
        **write_kwargs(branch, no_commit),
    )
    echo_write(result, as_json, "version", f"{ref} is {status}")
