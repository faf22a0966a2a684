"""mreg model create|update|show|list|archive|restore|delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from registry import (
    RegistryError,
    decode_cursor,
    encode_cursor,
    list_models_cached,
    list_page_cached,
    model_view,
    pointer_view,
    version_rows,
)
from tool.base import (
    State,
    cli,
    echo_json,
    echo_table,
    fmt,
    json_option,
    parse_pairs,
    pass_registry,
    rev_option,
)
from tool.repo_cmd import echo_write, write_kwargs, write_options

if TYPE_CHECKING:
    from registry import Pointer, Registry, Snapshot
    from registry.quick import Row


@cli.group()
def model() -> None:
    """Create, change, list and remove models.

    \b
    Example:
        mreg model create iris --library sklearn --public
    """


def parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--set field=value`: the value is read as YAML (numbers, true/false, null, text)."""
    import yaml

    out: dict[str, Any] = {}
    for key, text in parse_pairs(pairs, "--set").items():
        try:
            out[key] = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            out[key] = text
    return out


@model.command("create")
@click.argument("name")
@click.option(
    "--library", metavar="L", help="Default library of its versions (sklearn, pytorch, onnx, ...)."
)
@click.option("--description", help="What the model does.")
@click.option("--project", help="Project it belongs to.")
@click.option("--task", help="Asset type, e.g. classification.")
@click.option("--owner", help="Who owns it.")
@click.option("--license", "license_", help="SPDX id or text.")
@click.option(
    "--public/--private", "is_public", default=False, help="Readable and invocable without a token."
)
@click.option(
    "--label", "labels", multiple=True, metavar="K=V", help="Label for filtering (repeatable)."
)
@write_options
@pass_registry
def create(
    reg: Registry,
    name: str,
    library: str | None,
    description: str | None,
    project: str | None,
    task: str | None,
    owner: str | None,
    license_: str | None,
    is_public: bool,
    labels: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Create model NAME (models/NAME/model.yaml) in one commit.

    \b
    Example:
        mreg model create iris --library sklearn --task classification --label team=ml
    """
    result = reg.create_model(
        name,
        library=library,
        description=description,
        project=project,
        task=task,
        owner=owner,
        license=license_,
        is_public=is_public,
        labels=parse_pairs(labels, "--label"),
        **write_kwargs(branch, no_commit),
    )
    echo_write(result, as_json, "model", f"created model {name}")


@model.command("update")
@click.argument("name")
@click.option("--library", metavar="L", help="Default library of its versions.")
@click.option("--description", help="What the model does.")
@click.option("--project", help="Project it belongs to.")
@click.option("--task", help="Asset type, e.g. classification.")
@click.option("--owner", help="Who owns it.")
@click.option("--license", "license_", help="SPDX id or text.")
@click.option(
    "--public/--private", "is_public", default=None, help="Readable without a token, or not."
)
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Add or change a label.")
@click.option("--remove-label", "remove_labels", multiple=True, metavar="K", help="Remove a label.")
@click.option(
    "--metadata", "metadata", multiple=True, metavar="K=V", help="Add or change a metadata entry."
)
@click.option(
    "--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Set any model-level field."
)
@write_options
@pass_registry
def update(
    reg: Registry,
    name: str,
    library: str | None,
    description: str | None,
    project: str | None,
    task: str | None,
    owner: str | None,
    license_: str | None,
    is_public: bool | None,
    labels: tuple[str, ...],
    remove_labels: tuple[str, ...],
    metadata: tuple[str, ...],
    sets: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Patch model-level fields of NAME; its versions are never touched.

    \b
    Example:
        mreg model update iris --description "Iris classifier" --label stage=beta
    """
    fields: dict[str, Any] = parse_sets(sets)
    given = {
        "library": library,
        "description": description,
        "project": project,
        "task": task,
        "owner": owner,
        "license": license_,
        "is_public": is_public,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    if labels:
        fields["labels"] = parse_pairs(labels, "--label")
    if metadata:
        fields["metadata"] = parse_pairs(metadata, "--metadata")
    result = reg.update_model(
        name, remove_labels=remove_labels, **fields, **write_kwargs(branch, no_commit)
    )
    echo_write(result, as_json, "model", f"updated model {name}")


@model.command("show")
@click.argument("name")
@rev_option
@json_option
@pass_registry
def show(reg: Registry, name: str, rev: str | None, as_json: bool) -> None:
    """Show model NAME: its fields, versions and pointers.

    \b
    Example:
        mreg model show iris --json
    """
    snap = reg.snapshot(rev, models=[name])
    m = snap.model(name)
    versions = snap.versions(name)
    pointers = snap.pointers(name)
    latest = snap.latest(name)
    if as_json:  # as GET /v1/models/{m} shows it (without the server's last_used_at)
        view = model_view(
            m.model_dump(mode="json"),
            len(versions),
            None if latest is None else (latest.version, latest.id),
        )
        view["versions"] = version_rows(versions)
        view["pointers"] = [_pointer_view(snap, p) for p in pointers]
        echo_json(view)
        return
    for key, value in m.model_dump(exclude_none=True).items():
        if value not in ({}, []):
            click.echo(f"{key + ':':14} {fmt(value)}")
    click.echo(f"{'latest:':14} {f'v{latest.version}' if latest else '-'}")
    click.echo("")
    echo_table(
        ["version", "id", "status", "format", "created", "deprecated"],
        [
            (
                f"v{v.version}",
                v.id,
                v.status,
                v.artifact.format if v.artifact else None,
                v.created_at,
                v.deprecated_at,
            )
            for v in versions
        ],
    )
    if pointers:
        click.echo("")
        echo_table(["pointer", "target"], [(p.tag, p.target) for p in pointers])


def _pointer_view(snap: Snapshot, pointer: Pointer) -> dict[str, Any]:
    try:
        resolution = snap.resolve(f"{pointer.model}:{pointer.tag}")
    except RegistryError as exc:
        return pointer_view(pointer, None, str(exc))
    return pointer_view(pointer, resolution.version)


@model.command("list")
@click.option("--archived", is_flag=True, help="List archived models too.")
@click.option("--library", metavar="L", help="Only models of this library.")
@click.option("--project", help="Only models of this project.")
@click.option(
    "--label", "labels", multiple=True, metavar="K=V", help="Only models with this label."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    help="At most this many models: one page (the next page's --cursor is printed on stderr).",
)
@click.option("--cursor", metavar="C", help="Start after the page that printed this cursor.")
@rev_option
@json_option
@click.pass_obj
def list_models(
    state: State,
    archived: bool,
    library: str | None,
    project: str | None,
    labels: tuple[str, ...],
    limit: int | None,
    cursor: str | None,
    rev: str | None,
    as_json: bool,
) -> None:
    """List models, with their newest version and pointers.

    With --limit or --cursor, one page (10 models unless --limit says otherwise);
    --json then prints {"models": [...], "next_cursor": ...}, as GET /v1/models.

    \b
    Example:
        mreg model list --library sklearn --label team=ml
        mreg model list --limit 10 --cursor 6972697332
    """
    filters: dict[str, Any] = {
        "archived": None if archived else False,
        "library": library,
        "project": project,
        "labels": parse_pairs(labels, "--label"),
    }
    next_cursor: str | None = None
    if limit is not None or cursor is not None:
        rows, next_cursor = _page(state, rev, limit or 10, cursor, filters)
    else:
        # From the parse cache when it holds everything (no pydantic, no GitPython); else the full reader.
        found = list_models_cached(state.repo_path, rev, **filters)
        rows = found if found is not None else _rows(state, rev, None, filters)[0]
    if as_json:  # each model as GET /v1/models lists it (a page: its envelope too)
        views = [view for view, _ in rows]
        echo_json(
            views
            if limit is None and cursor is None
            else {"models": views, "next_cursor": next_cursor}
        )
        return
    echo_table(
        ["name", "library", "project", "versions", "latest", "pointers", "public", "archived"],
        [
            (
                v["name"],
                v["library"],
                v["project"],
                v["versions_count"],
                f"v{v['latest']['version']}" if v["latest"] else None,
                ",".join(tags) or None,
                "yes" if v["is_public"] else "no",
                "yes" if v.get("archived_at") else "no",
            )
            for v, tags in rows
        ],
    )
    if next_cursor is not None:
        click.echo(f"next page: --cursor {next_cursor}", err=True)


def _page(
    state: State, rev: str | None, limit: int, cursor: str | None, filters: dict[str, Any]
) -> tuple[list[Row], str | None]:
    """One page of rows and the next page's cursor: from the parse cache, else the full reader."""
    after = decode_cursor(cursor) if cursor is not None else None
    found = list_page_cached(state.repo_path, rev, limit=limit, after=after, **filters)
    rows, next_after = found if found is not None else _rows(state, rev, (limit, after), filters)
    return rows, encode_cursor(next_after) if next_after is not None else None


def _rows(
    state: State, rev: str | None, page: tuple[int, str | None] | None, filters: dict[str, Any]
) -> tuple[list[Row], str | None]:
    """Rows from the full reader (each model as the API lists it, and its pointer tags): every
    model, or one page (limit, after) of them."""
    snap = state.registry().snapshot(rev)
    next_after = None
    if page is None:
        models = snap.models(**filters)
    else:
        got = snap.models_page(limit=page[0], after=page[1], **filters)
        models, next_after = got.models, got.next_after
    summaries = snap.version_summaries(m.name for m in models)
    rows: list[Row] = []
    for m in models:
        summary = summaries[m.name]
        latest = None
        if summary.latest is not None and summary.latest_id is not None:
            latest = (summary.latest, summary.latest_id)
        view = model_view(m.model_dump(mode="json"), summary.count, latest)
        rows.append((view, snap.pointer_tags(m.name)))
    return rows, next_after


@model.command("archive")
@click.argument("name")
@write_options
@pass_registry
def archive(reg: Registry, name: str, branch: str | None, no_commit: bool, as_json: bool) -> None:
    """Archive model NAME: hidden from lists and not served (reversible with restore).

    \b
    Example:
        mreg model archive legacy
    """
    result = reg.archive_model(name, **write_kwargs(branch, no_commit))
    echo_write(result, as_json, "model", f"archived model {name}")


@model.command("restore")
@click.argument("name")
@write_options
@pass_registry
def restore(reg: Registry, name: str, branch: str | None, no_commit: bool, as_json: bool) -> None:
    """Restore archived model NAME.

    \b
    Example:
        mreg model restore legacy
    """
    result = reg.restore_model(name, **write_kwargs(branch, no_commit))
    echo_write(result, as_json, "model", f"restored model {name}")


@model.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Really delete (required).")
@write_options
@pass_registry
def delete(
    reg: Registry, name: str, yes: bool, branch: str | None, no_commit: bool, as_json: bool
) -> None:
    """Delete model NAME: its manifests, pointers and .dvc files, in one commit.

    Git history (and the DVC remote) keep everything; 'git revert' undoes it.

    \b
    Example:
        mreg model delete legacy --yes
    """
    if not yes:
        raise RegistryError(f"deleting model {name!r} needs --yes")
    result = reg.delete_model(name, **write_kwargs(branch, no_commit))
    echo_write(result, as_json, "files", f"deleted model {name}")
