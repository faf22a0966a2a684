"""A model's DVC training stage: where its files live, how DVC reads it, its metrics and gate, running DVC."""

from __future__ import annotations

import operator
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry import plumbing, remotes
from registry.errors import ArtifactError, ConflictError, RegistryError
from registry.manifests import GATE_RE, TrainSpec
from registry.snapshot import Snapshot

TRAIN_DIR = "train"
"""Each model's training files live in `models/<model>/train/` (dvc.yaml, dvc.lock, params, code, data)."""
STAGE_NAME = "train"
OUT_DIR = "out"
"""Where a stage made by `init_training` writes its outs (git-ignored)."""
NOTES_LIMIT = 500

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def is_training_file(path: str) -> bool:
    """A file of a model's training setup (`models/<model>/train/...`): part of the layout."""
    parts = path.split("/")
    return len(parts) >= 4 and parts[0] == "models" and parts[2] == TRAIN_DIR


def training_dir(model: str) -> str:
    return f"models/{model}/{TRAIN_DIR}"


@dataclass(frozen=True)
class Stage:
    """A model's DVC training stage, as DVC reads it (paths relative to the repository root)."""

    target: str
    """`models/<model>/train/dvc.yaml:train`, what `dvc repro` is given."""
    dvc_yaml: str
    lock: str
    deps: tuple[str, ...]
    params_files: tuple[str, ...]
    outs: tuple[str, ...]
    metrics: tuple[str, ...]
    dep_md5s: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def watched(self) -> tuple[str, ...]:
        """Paths in git whose change means the stage must run again (data: its .dvc file)."""
        return (
            self.dvc_yaml,
            *self.deps,
            *(f"{d}.dvc" for d in self.deps),
            *self.params_files,
        )


# -- reading the stage --------------------------------------------------------


def _rel(root: Path, path: str) -> str:
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def load_stage(root: Path, model: str, spec: TrainSpec) -> Stage:
    """The model's DVC stage as DVC reads it, with the hashes and params of its dvc.lock."""
    from dvc.dependency.param import ParamsDependency
    from dvc.exceptions import DvcException

    file, _, name = spec.stage.rpartition(":")
    dvc_yaml = f"models/{model}/{file}"
    if not (root / dvc_yaml).is_file():
        raise RegistryError(f"{model}: training stage file {dvc_yaml} does not exist")
    dvc = remotes.open_dvc(root)
    try:
        stage = dvc.stage.load_one(str(root / dvc_yaml), name)
        deps = [d for d in stage.deps if not isinstance(d, ParamsDependency)]
        params = [d for d in stage.deps if isinstance(d, ParamsDependency)]
        values: dict[str, Any] = {}
        for p in params:
            values.update(p.hash_info.value or {} if p.hash_info else {})
        return Stage(
            target=f"{dvc_yaml}:{name}",
            dvc_yaml=dvc_yaml,
            lock=str(Path(dvc_yaml).with_name("dvc.lock").as_posix()),
            deps=tuple(_rel(root, d.fs_path) for d in deps),
            params_files=tuple(_rel(root, p.fs_path) for p in params),
            outs=tuple(_rel(root, o.fs_path) for o in stage.outs if not o.metric),
            metrics=tuple(_rel(root, o.fs_path) for o in stage.outs if o.metric),
            dep_md5s={_rel(root, d.fs_path): str(d.hash_info.value) for d in deps if d.hash_info},
            params=values,
        )
    except DvcException as exc:
        raise RegistryError(f"{model}: cannot read the stage {spec.stage}: {exc}") from None
    finally:
        dvc.close()


def artifact_out(model: str, spec: TrainSpec, stage: Stage) -> str:
    if spec.artifact is not None:
        return f"models/{model}/{spec.artifact}"
    if len(stage.outs) != 1:
        raise RegistryError(
            f"{model}: the stage {stage.target} has {len(stage.outs)} outs:"
            " say which one is the artifact with train.artifact in model.yaml"
        )
    return stage.outs[0]


def metrics_out(model: str, spec: TrainSpec, stage: Stage) -> str | None:
    if spec.metrics is not None:
        return f"models/{model}/{spec.metrics}"
    return stage.metrics[0] if stage.metrics else None


def read_metrics(root: Path, path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml  # JSON is YAML: one reader for both

    try:
        data = yaml.safe_load((root / path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"cannot read the metrics file {path}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise RegistryError(f"the metrics file {path} must hold a mapping of metric: value")
    return {str(k): v for k, v in data.items() if isinstance(v, int | float | str | bool)}


def check_gate(gate: Sequence[str], metrics: dict[str, Any]) -> list[str]:
    """The conditions of `gate` that `metrics` fail, each with the value it saw."""
    failed = []
    for cond in gate:
        m = GATE_RE.match(cond)
        assert m is not None  # the schema checked it
        value = metrics.get(m.group("metric"))
        if not isinstance(value, int | float) or isinstance(value, bool):
            failed.append(f"{cond.strip()} (no metric {m.group('metric')})")
        elif not _OPS[m.group("op")](float(value), float(m.group("value"))):
            failed.append(f"{cond.strip()} ({m.group('metric')}={value})")
    return failed


def stage_problems(snap: Snapshot, model: str, spec: TrainSpec) -> list[str]:
    """What is wrong with a model's `train.stage` at this snapshot: its dvc.yaml or stage missing."""
    from registry.yamlio import load_fast

    file, _, name = spec.stage.rpartition(":")
    path = f"models/{model}/{file}"
    if not snap.source.blob_ids([path]):
        return [f"train.stage: {path} does not exist"]
    try:
        doc = load_fast(snap.read_text(path), path)
    except RegistryError as exc:
        return [f"train.stage: {exc}"]
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict) or name not in stages:
        return [f"train.stage: {path} has no stage {name!r}"]
    return []


# -- running DVC ----------------------------------------------------------------


def run_dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """DVC's own CLI from this Python; the stage's `python` is this environment's."""
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def failure_message(proc: subprocess.CompletedProcess[str], target: str) -> str:
    """The training code's last error line and DVC's summary, in one line for `notes`."""
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    dvc = next((ln for ln in lines if ln.startswith("ERROR:")), None)
    own: list[str] = []
    if f"Running stage '{target}'" in proc.stdout:  # else DVC failed before the code ran
        own = [
            ln
            for ln in proc.stderr.splitlines()
            if ln.strip() and not ln.startswith(("ERROR:", "WARNING:"))
        ]
    parts = [own[-1].strip()] if own else []
    if dvc:
        parts.append(f"(dvc: {dvc.removeprefix('ERROR:').strip()})")
    message = " ".join(parts) or f"dvc repro exited with {proc.returncode}"
    return message if len(message) <= NOTES_LIMIT else message[: NOTES_LIMIT - 3] + "..."


def check_data(root: Path, stage: Stage) -> None:
    """Every DVC-tracked dep in the work tree is what its committed .dvc file says (or absent).

    `dvc repro` would otherwise record an uncommitted data change in the .dvc
    file and train on data that no commit names.
    """
    for dep in stage.deps:
        target = root / dep
        if not target.is_file() or not (root / f"{dep}.dvc").is_file():
            continue
        tracked = _dvc_md5(root / f"{dep}.dvc")
        if tracked is not None and remotes.file_md5(target) != tracked:
            raise ConflictError(
                f"{dep} differs from {dep}.dvc: 'dvc add' and commit it to train on it,"
                f" or 'dvc checkout {dep}.dvc' to drop the change",
                file=f"{dep}.dvc",
            )


def pull_data(root: Path, stage: Stage) -> None:
    """Fetch DVC-tracked deps missing from the work tree (a fresh clone) before any commit."""
    missing = [
        f"{d}.dvc" for d in stage.deps if (root / f"{d}.dvc").is_file() and not (root / d).exists()
    ]
    if not missing:
        return
    proc = run_dvc(root, "pull", *missing)
    if proc.returncode != 0:
        text = proc.stderr.strip()
        why = " ".join(text[text.find("ERROR:") :].removeprefix("ERROR:").split())
        raise ArtifactError(
            f"cannot pull the training data {missing[0].removesuffix('.dvc')} from the DVC"
            f" remote ('dvc push' it where it was added): {why}"
        )


def _dvc_md5(path: Path) -> str | None:
    import yaml

    try:
        outs = yaml.safe_load(path.read_text()).get("outs") or []
        return str(outs[0]["md5"]) if len(outs) == 1 else None
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        return None


def take_lock_file(root: Path, lock: str) -> bytes | None:
    """The dvc.lock `dvc repro` wrote, with the work tree put back as HEAD has it.

    The new bytes land with the `trained` commit; if that write fails, the
    work tree keeps HEAD's dvc.lock, as a failed write leaves things.
    """
    target = root / lock
    new = target.read_bytes() if target.is_file() else None
    old = plumbing.read_committed(root, plumbing.rev_sha(root, "HEAD"), [lock]).get(lock)
    if new == old:
        return None
    if old is None:
        target.unlink()
    else:
        target.write_bytes(old)
    return new


def dvc_yaml(code: str, data: Sequence[str], params: Sequence[str], out: str, metrics: str) -> str:
    import yaml

    stage: dict[str, Any] = {"cmd": f"python {code}", "deps": [code, *data]}
    if params:
        stage["params"] = list(params)
    stage["outs"] = [f"{OUT_DIR}/{out}"]
    stage["metrics"] = [{f"{OUT_DIR}/{metrics}": {"cache": False}}]
    text = yaml.safe_dump({"stages": {STAGE_NAME: stage}}, sort_keys=False)
    return "# The training stage of this model: mreg train runs it with dvc repro.\n" + text
