"""An artifact on its way into a version: checked, staged in the DVC cache and pushed, then named by a .dvc file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from registry import artifacts, remotes
from registry.errors import ArtifactError
from registry.formats import infer_format, infer_library, is_mlflow_dir, pack_mlflow_dir
from registry.layout import artifact_dir
from registry.manifests import Artifact
from registry.writes.fields import given


def stage_artifact(
    root: Path, artifact: str | os.PathLike[str], fmt: str | None
) -> artifacts.StagedArtifact:
    """Check the file, copy it into the DVC cache and push it: all before any commit.

    An MLflow model directory is packed into one `<name>.mlflow` file first.
    """
    if is_mlflow_dir(artifact):
        if fmt not in (None, "mlflow"):
            raise ArtifactError(f"{artifact} is an MLflow model directory: its format is mlflow")
        with tempfile.TemporaryDirectory(prefix="mreg-mlflow-") as tmp:
            name = Path(artifact).resolve().name
            packed = pack_mlflow_dir(Path(artifact), Path(tmp) / f"{name}.mlflow")
            return stage_artifact(root, packed, fmt)
    artifacts.check_artifact_file(artifact)
    format_of(Path(artifact).name, fmt)
    if not remotes.has_default_remote(root):
        raise ArtifactError("the registry has no default DVC remote: run 'mreg init --remote URL'")
    staged = artifacts.add_to_cache(root, artifact)
    remotes.push(root, [staged.md5])
    return staged


def infer_lib(staged: artifacts.StagedArtifact, fmt: str | None) -> str | None:
    fmt = fmt or infer_format(staged.filename)
    return infer_library(fmt) if fmt else None


def format_of(filename: str, fmt: str | None) -> str:
    fmt = fmt or infer_format(filename)
    if fmt is None:
        raise ArtifactError(
            f"cannot tell the format of {filename} from its name: give --format"
            " (skops, joblib, pickle, onnx, torchscript, keras, h5)"
        )
    return fmt


def artifact_changes(
    model: str,
    n: int,
    staged: artifacts.StagedArtifact,
    fmt: str | None,
    library: str | None,
) -> tuple[Artifact, dict[str, bytes | None], dict[str, Path]]:
    fmt = format_of(staged.filename, fmt)
    library = library or infer_library(fmt)
    folder = artifact_dir(model, n)
    art = Artifact(
        path=f"artifacts/v{n}/{staged.filename}",
        md5=staged.md5,
        size=staged.size,
        format=fmt,
        **given(library=library),
    )
    changes: dict[str, bytes | None] = {
        f"{folder}/{staged.filename}.dvc": artifacts.dvc_file_text(
            staged.filename, staged.md5, staged.size
        ),
        f"{folder}/.gitignore": artifacts.gitignore_text(staged.filename),
    }
    return art, changes, {f"{folder}/{staged.filename}": staged.cached}
