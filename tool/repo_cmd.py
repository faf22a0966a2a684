"""mreg init, register, resolve, log and pull; and what every write command shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from registry import RegistryError, resolve_cached
from tool.base import (
    State,
    cli,
    echo_json,
    echo_table,
    json_option,
    parse_pairs,
    pass_registry,
    rev_option,
    show_progress,
)

if TYPE_CHECKING:
    from registry import Registry, WriteResult

F = TypeVar("F", bound=Callable[..., Any])


def write_options(f: F) -> F:
    """--branch and --no-commit, the options of every write."""
    f = click.option(
        "--no-commit",
        "no_commit",
        is_flag=True,
        help="Write and stage the change, but do not commit it.",
    )(f)
    f = click.option(
        "--branch",
        metavar="NAME",
        help="Commit on a new branch NAME (for a pull request); the current branch is left as it is.",
    )(f)
    return json_option(f)


def write_kwargs(branch: str | None, no_commit: bool) -> dict[str, Any]:
    if branch is not None and no_commit:
        raise RegistryError("--branch and --no-commit cannot be used together")
    return {"branch": branch, "commit": not no_commit}


def echo_write(result: WriteResult[Any], as_json: bool, key: str, done: str) -> None:
    """One line for people (what changed, which commit), or the full result as JSON."""
    if as_json:
        echo_json({**result.to_dict(), key: result.value})
        return
    if not result.paths:
        click.echo(f"{done}: nothing changed")
    elif result.commit is None:
        click.echo(f"{done}: staged {len(result.paths)} file(s), not committed ({result.subject})")
    else:
        where = f" on branch {result.branch}" if result.branch else ""
        tag = f", tag {result.tag}" if result.tag else ""
        click.echo(f"{done}: {result.commit[:10]}{where} {result.subject}{tag}")


def load_info(path: str | None, option: str) -> dict[str, Any] | None:
    """A YAML or JSON file given to --input-info / --output-info: a mapping."""
    if path is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{option}: cannot read {path}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise RegistryError(f"{option}: {path} must hold a YAML or JSON mapping")
    return data


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option(
    "--remote",
    metavar="URL",
    help="Default DVC remote (s3://..., a directory, ...). Default: the local .dvc/storage.",
)
@json_option
@click.pass_obj
def init(state: State, path: str | None, remote: str | None, as_json: bool) -> None:
    """Make PATH (default: the current directory) a registry.

    Runs git init if needed and dvc init, writes registry.yaml, makes models/
    and pointers/, sets the default DVC remote (a local directory when no URL
    is given, so it works offline) and commits. Running it twice is harmless.

    \b
    Example:
        mreg init my-registry
        mreg init . --remote s3://bucket/models
    """
    from registry import Registry

    reg = Registry.init(path or state.repo_path or ".", remote=remote)
    if as_json:
        echo_json({"root": str(reg.root)})
    else:
        click.echo(f"initialized registry in {reg.root}")


@cli.command()
@click.argument("model")
@click.argument("artifact", required=False, type=click.Path())
@click.option(
    "--format", "fmt_", metavar="F", help="Artifact format (default: from the file's suffix)."
)
@click.option(
    "--library", metavar="L", help="Library (default: the model's, else from the format)."
)
@click.option("--description", help="What this version is.")
@click.option("--notes", help="Release notes.")
@click.option("--license", "license_", help="License of this version.")
@click.option(
    "--metric", "metrics", multiple=True, metavar="K=V", help="A training metric (repeatable)."
)
@click.option(
    "--param", "params", multiple=True, metavar="K=V", help="A training parameter (repeatable)."
)
@click.option("--input-info", type=click.Path(dir_okay=False), help="YAML/JSON file: what goes in.")
@click.option(
    "--output-info", type=click.Path(dir_okay=False), help="YAML/JSON file: what comes out."
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="K=V",
    help="Version label, kept in metadata.labels.",
)
@click.option(
    "--point",
    "point",
    multiple=True,
    metavar="TAG",
    help="Also move pointer TAG to the new version.",
)
@click.option("--untrained", is_flag=True, help="Register a version with no artifact yet.")
@click.option("--create", is_flag=True, help="Create the model if it does not exist.")
@write_options
@pass_registry
def register(
    reg: Registry,
    model: str,
    artifact: str | None,
    fmt_: str | None,
    library: str | None,
    description: str | None,
    notes: str | None,
    license_: str | None,
    metrics: tuple[str, ...],
    params: tuple[str, ...],
    input_info: str | None,
    output_info: str | None,
    labels: tuple[str, ...],
    point: tuple[str, ...],
    untrained: bool,
    create: bool,
    branch: str | None,
    no_commit: bool,
    as_json: bool,
) -> None:
    """Register ARTIFACT as the next version of MODEL, in one commit tagged MODEL@v<n>.

    The file is tracked by DVC (its bytes go to the DVC cache and the default
    remote before the commit); the version manifest records its md5 and size.
    An MLflow model directory (with its MLmodel file) is stored as one
    `.mlflow` file, format mlflow.

    \b
    Example:
        mreg register iris model.skops --metric accuracy=0.97 --point prod
        mreg register churn --untrained --create
    """
    show_progress(as_json)
    result = reg.register(
        model,
        artifact,
        format=fmt_,
        library=library,
        description=description,
        notes=notes,
        license=license_,
        metrics=parse_pairs(metrics, "--metric"),
        params=parse_pairs(params, "--param"),
        input_info=load_info(input_info, "--input-info"),
        output_info=load_info(output_info, "--output-info"),
        labels=parse_pairs(labels, "--label"),
        point=point,
        untrained=untrained,
        create=create,
        **write_kwargs(branch, no_commit),
    )
    echo_write(
        result,
        as_json,
        "version",
        f"registered {model}:v{result.value.version} ({result.value.id})",
    )


@cli.command()
@click.argument("ref")
@rev_option
@json_option
@click.pass_obj
def resolve(state: State, ref: str, rev: str | None, as_json: bool) -> None:
    """Print the version REF resolves to, and the links followed.

    A weighted pointer prints its split: each arm's weight, version and
    chain (with --json, the usual keys describe the heaviest arm and `arms`
    lists every arm: target, weight, version, id, status, chain), and its
    shadow if it has one (`shadow`: target, sample, version, id, error).

    \b
    Example:
        mreg resolve iris:prod
        mreg resolve iris:prod --rev iris@v3 --json
    """
    # From the parse cache when it holds everything (no pydantic, no GitPython); else the full reader.
    res = resolve_cached(state.repo_path, ref, rev)
    if res is None:
        res = state.registry().resolve(ref, rev).to_dict()
    if as_json:
        echo_json(res)
        return
    if "arms" in res:
        split = ", ".join(f"{a['target']} {a['weight']}%" for a in res["arms"])
        click.echo(f"{res['ref']}  split: {split}")
        for a in res["arms"]:
            chain = " -> ".join(a["chain"])
            click.echo(f"  {a['weight']:>3}%  {res['model']}:v{a['version']}  {a['id']}  {chain}")
    else:
        click.echo(f"{res['model']}:v{res['version']}  {res['id']}  {res['status']}")
        if len(res["chain"]) > 1:
            click.echo("  " + " -> ".join(res["chain"]))
    shadow = res.get("shadow")
    if shadow:
        end = f"{res['model']}:v{shadow['version']}" if shadow["version"] else shadow["error"]
        click.echo(f"  shadow: {shadow['target']} ({end}), {shadow['sample']:.0%} of calls")


@cli.command()
@click.argument("model", required=False)
@rev_option
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most this many entries.")
@json_option
@pass_registry
def log(
    reg: Registry, model: str | None, rev: str | None, limit: int | None, as_json: bool
) -> None:
    """The registry's history (or MODEL's), newest first, from commit trailers.

    \b
    Example:
        mreg log iris -n 10
    """
    entries = reg.log(model, rev=rev, limit=limit)
    if as_json:
        echo_json([e.to_dict() for e in entries])
        return
    echo_table(
        ["date", "commit", "action", "author", "subject"],
        [(e.date, e.commit[:10], e.action, e.author.split(" <")[0], e.subject) for e in entries],
    )


@cli.command()
@click.argument("refs", nargs=-1)
@rev_option
@json_option
@pass_registry
def pull(reg: Registry, refs: tuple[str, ...], rev: str | None, as_json: bool) -> None:
    """Bring the artifacts of REFs (default: every version) from the DVC remote into the work tree.

    \b
    Example:
        mreg pull iris:prod churn:v1
    """
    show_progress(as_json)
    done = reg.pull(refs, rev=rev)
    if as_json:
        echo_json([{"ref": ref, "path": str(path), "copied": copied} for ref, path, copied in done])
        return
    echo_table(
        ["ref", "path", "state"],
        [
            (ref, path.relative_to(reg.root), "pulled" if copied else "up to date")
            for ref, path, copied in done
        ],
    )
