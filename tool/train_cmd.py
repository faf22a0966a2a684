"""mreg train [run] MODEL | --changed, and mreg train init."""

from __future__ import annotations

from typing import Any

import click

from registry import Registry, RegistryError, TrainResult, init_training, train_changed, train_model
from tool.base import MregGroup, cli, echo_json, pass_registry
from tool.repo_cmd import echo_write


class TrainGroup(MregGroup):
    """`mreg train MODEL ...` is `mreg train run MODEL ...`; `mreg train init` sets a model up."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=TrainGroup)
def train() -> None:
    """Train models with their DVC stage: each step is a commit.

    \b
    Examples:
        mreg train wine                        # the same as: mreg train run wine
        mreg train --changed --point prod      # CI: retrain what new data touched
        mreg train init wine --code train.py --data wine.csv --params params.yaml
    """


def _echo(result: TrainResult) -> None:
    label = f"{result.model}:v{result.version.version}"
    if not result.ok:
        click.secho(f"error: {label} failed: {result.error}", fg="red", err=True)
        return
    metrics = ", ".join(f"{k}={v}" for k, v in result.metrics.items())
    click.echo(f"{label} trained ({result.version.id}){f': {metrics}' if metrics else ''}")
    if result.gate:
        click.echo(f"{label}: gate not met ({'; '.join(result.gate)}): no pointer moved")
    for tag in result.pointed:
        click.echo(f"{result.model}:{tag} -> v{result.version.version}")


@train.command("run")
@click.argument("model", required=False)
@click.option("--version", "number", type=int, help="Train this untrained version N.")
@click.option("--resume", is_flag=True, help="Finish a version left 'training' by a crash.")
@click.option("--changed", is_flag=True, help="Train every model whose data or code changed.")
@click.option(
    "--base",
    default="HEAD~1",
    show_default=True,
    help="With --changed: the revision to compare HEAD with.",
)
@click.option(
    "--point",
    multiple=True,
    metavar="TAG",
    help="Move this pointer to the new version when it trains and passes its gate.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
@pass_registry
def run(
    reg: Registry,
    model: str | None,
    number: int | None,
    resume: bool,
    changed: bool,
    base: str,
    point: tuple[str, ...],
    as_json: bool,
) -> None:
    """Train MODEL (or, with --changed, every model whose inputs changed since --base).

    Takes the untrained version (or makes the next one), commits it as
    training, runs its DVC stage with `dvc repro`, then commits it as trained
    (artifact, metrics, dvc.lock) or failed (the error in its notes). Exit
    code 1 when a training failed.

    \b
    Examples:
        mreg train run wine --point prod
        mreg train wine --resume
        mreg train --changed --base origin/main~1 --point prod
    """
    if changed == (model is not None):
        raise RegistryError("give a MODEL or --changed (not both)")
    if changed and (number is not None or resume):
        raise RegistryError("--version and --resume train one MODEL, not --changed")
    results: list[TrainResult]
    if changed:
        results = train_changed(reg, base, point=point)
    else:
        assert model is not None
        results = [train_model(reg, model, version=number, resume=resume, point=point)]
    if as_json:
        echo_json([r.to_dict() for r in results])
    else:
        if changed and not results:
            click.echo(f"no trainable model changed since {base}")
        for r in results:
            _echo(r)
    if any(not r.ok for r in results):
        raise SystemExit(1)


@train.command("init")
@click.argument("model")
@click.option("--code", required=True, type=click.Path(dir_okay=False), help="The training script.")
@click.option(
    "--data",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A data file, tracked by DVC (repeatable).",
)
@click.option("--params", type=click.Path(dir_okay=False), help="A YAML file of parameters.")
@click.option(
    "--out", default="model.skops", show_default=True, help="The artifact the script writes."
)
@click.option(
    "--metrics", default="metrics.json", show_default=True, help="The metrics file it writes."
)
@click.option("--gate", multiple=True, help="A condition for --point, e.g. 'accuracy >= 0.9'.")
@click.option("--format", "fmt", help="The artifact's format (default: from its name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
@pass_registry
def init(
    reg: Registry,
    model: str,
    code: str,
    data: tuple[str, ...],
    params: str | None,
    out: str,
    metrics: str,
    gate: tuple[str, ...],
    fmt: str | None,
    as_json: bool,
) -> None:
    """Make MODEL trainable: a DVC stage in models/MODEL/train/, one commit.

    The script runs in that directory (`python SCRIPT`), reads params.yaml
    and data/, and writes out/OUT and out/METRICS (JSON).

    \b
    Example:
        mreg train init wine --code train.py --data wine.csv --params params.yaml --gate 'accuracy >= 0.9'
    """
    kwargs: dict[str, Any] = {"data": data, "params": params, "out": out, "metrics": metrics}
    result = init_training(reg, model, code=code, gate=gate, format=fmt, **kwargs)
    echo_write(result, as_json, "model", "set up training")
