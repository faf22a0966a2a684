"""Making a model trainable: its DVC stage and inputs under `models/<model>/train/`, in one commit."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from registry import artifacts, commits, remotes
from registry.commits import Plan, WriteResult
from registry.errors import ArtifactError, ConflictError, RegistryError
from registry.layout import model_path
from registry.manifests import ModelManifest, TrainSpec
from registry.names import check_model_name
from registry.plumbing import CommitMessage
from registry.snapshot import Snapshot
from registry.train_stage import OUT_DIR, STAGE_NAME, TRAIN_DIR, dvc_yaml, training_dir
from registry.yamlio import render_update

if TYPE_CHECKING:
    from registry.base import RegistryBase


def init_training(
    reg: RegistryBase,
    model: str,
    *,
    code: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]] = (),
    params: str | os.PathLike[str] | None = None,
    out: str = "model.skops",
    metrics: str = "metrics.json",
    gate: Sequence[str] = (),
    format: str | None = None,
) -> WriteResult[ModelManifest]:
    """Make `model` trainable, in one commit: its DVC stage and inputs under `models/<model>/train/`.

    The training script `code` is copied there, each `data` file is tracked
    by DVC under `train/data/` (cached and pushed to the default remote
    first), `params` becomes `train/params.yaml`, and `train/dvc.yaml`
    declares the stage `python <code>`, run in `train/`, which must write
    `out/<out>` and `out/<metrics>`. `model.yaml` gets `train:` with the
    `gate`. Then `train_model` trains it.
    """
    import yaml

    check_model_name(model)
    code_path = Path(code)
    if not code_path.is_file():
        raise RegistryError(f"training code {code_path} is not a file")
    if not remotes.has_default_remote(reg.root):
        raise ArtifactError("the registry has no default DVC remote: run 'mreg init --remote URL'")
    keys: list[str] = []
    params_text: bytes | None = None
    if params is not None:
        try:
            params_text = Path(params).read_bytes()
            loaded = yaml.safe_load(params_text)
        except (OSError, yaml.YAMLError) as exc:
            raise RegistryError(f"cannot read params {params}: {exc}".splitlines()[0]) from None
        if not isinstance(loaded, dict):
            raise RegistryError(f"params {params} must hold a YAML mapping")
        keys = [str(k) for k in loaded]
    names = [Path(d).name for d in data]
    if len(set(names)) != len(names) or code_path.name in names:
        raise RegistryError("data files and the code need distinct file names")
    staged = [artifacts.add_to_cache(reg.root, d) for d in data]
    if staged:
        remotes.push(reg.root, [s.md5 for s in staged])
    folder = training_dir(model)
    spec = TrainSpec(stage=f"{TRAIN_DIR}/dvc.yaml:{STAGE_NAME}", format=format, gate=list(gate))

    def build(base: Snapshot) -> Plan[ModelManifest]:
        old = base.model(model)
        if old.train is not None:
            raise ConflictError(
                f"model {model!r} is trainable already ({old.train.stage}):"
                f" edit {folder}/ and commit to change how it is trained"
            )
        fields = old.model_dump(exclude_unset=True)
        fields["train"] = spec.model_dump(exclude_defaults=True)
        new = ModelManifest.model_validate(fields)
        path = model_path(model)
        changes: dict[str, bytes | None] = {
            path: render_update(base.read_text(path), new, path).encode(),
            f"{folder}/{code_path.name}": code_path.read_bytes(),
            f"{folder}/dvc.yaml": dvc_yaml(
                code_path.name, [f"data/{n}" for n in names], keys, out, metrics
            ).encode(),
            f"{folder}/.gitignore": f"/{OUT_DIR}\n".encode(),
        }
        if params_text is not None:
            changes[f"{folder}/params.yaml"] = params_text
        worktree: dict[str, Path] = {}
        for s in staged:
            changes[f"{folder}/data/{s.filename}.dvc"] = artifacts.dvc_file_text(
                s.filename, s.md5, s.size
            )
            worktree[f"{folder}/data/{s.filename}"] = s.cached
        if staged:
            changes[f"{folder}/data/.gitignore"] = "".join(
                f"/{s.filename}\n" for s in staged
            ).encode()
        trailers = [("Mreg-Action", "train-init"), ("Mreg-Model", model)]
        return Plan(
            changes,
            CommitMessage(f"{model}: set up training ({spec.stage})", trailers),
            new,
            worktree_files=worktree,
        )

    return commits.write(reg, build, models=[model])
