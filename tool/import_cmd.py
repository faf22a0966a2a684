"""mreg import mlflow: bring models from another registry, one commit per version."""

from __future__ import annotations

import click

from registry import Registry, import_mlflow
from tool.base import cli, echo_json, echo_table, json_option, pass_registry


@cli.group("import")
def import_group() -> None:
    """Import models from another model registry.

    \b
    Example:
        mreg import mlflow --tracking-uri sqlite:///mlflow.db
    """


@import_group.command("mlflow")
@click.option(
    "--tracking-uri",
    required=True,
    envvar="MLFLOW_TRACKING_URI",
    help="The MLflow tracking server or store (default: the MLFLOW_TRACKING_URI variable).",
)
@click.option(
    "--registry-uri", default=None, help="The MLflow model registry, if not the tracking URI."
)
@click.argument("models", nargs=-1)
@json_option
@pass_registry
def mlflow_cmd(
    reg: Registry,
    tracking_uri: str,
    registry_uri: str | None,
    models: tuple[str, ...],
    as_json: bool,
) -> None:
    """Import MODELS (default: all) from an MLflow model registry.

    Each version, oldest first, becomes one commit: its artifact (scikit-learn
    as skops when mreg trusts its types, else the MLflow model directory as
    one `.mlflow` file), its run's params and metrics, description and tags;
    aliases become pointers. Versions imported before are skipped.

    \b
    Example:
        mreg import mlflow --tracking-uri http://mlflow:5000 "Iris Classifier"
    """
    imported = import_mlflow(reg, tracking_uri, models, registry_uri=registry_uri)
    if as_json:
        echo_json([v.to_dict() for v in imported])
        return
    echo_table(
        ["model", "version", "from", "format", "pointers", "commit"],
        [
            (
                v.model,
                f"v{v.version}",
                v.source,
                v.format,
                ",".join(v.pointers) or None,
                "imported before" if v.skipped else (v.commit or "")[:10],
            )
            for v in imported
        ],
    )
