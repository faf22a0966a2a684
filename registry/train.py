"""Training: a model's DVC stage, run with `dvc repro`, turns a version into `trained` or `failed`.

A trainable model declares `train:` in its model.yaml (a `TrainSpec`): the DVC
stage that trains it, in `models/<model>/train/dvc.yaml`, whose deps are the
data (DVC-tracked files) and the training code, whose params live in
`params.yaml`, and whose outs are the artifact and a metrics file. DVC runs
the stage (`dvc repro`); mreg makes one commit per step of a training:

    untrained  --(commit)-->  training  --dvc repro-->  trained (+ artifact, metrics, dvc.lock)
                                                    \\-> failed (the error in `notes`)

A crash between the steps leaves a `training` version: `train_model(...,
resume=True)` runs the stage again and finishes it, or `set_status(ref,
"failed")` gives it up.
"""

from __future__ import annotations

import operator
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import artifacts, commits, plumbing
from registry.commits import Plan, WriteResult
from registry.errors import ArtifactError, ConflictError, RegistryError, RevisionNotFoundError
from registry.manifests import GATE_RE, ModelManifest, Status, TrainSpec, VersionManifest
from registry.names import check_model_name, check_tag
from registry.plumbing import CommitMessage
from registry.snapshot import Snapshot, model_path, version_path
from registry.writes.fields import revalidate
from registry.writes.staging import artifact_changes
from registry.yamlio import render_update

if TYPE_CHECKING:
    from registry.registry import Registry

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


@dataclass
class TrainResult:
    """What one training did: the version at the end, its metrics, the gate and the commits."""

    model: str
    version: VersionManifest
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    gate: list[str] = field(default_factory=list)
    """The gate's conditions that failed (empty: passed, or no gate)."""
    pointed: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.version.status == Status.trained

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version.version,
            "id": self.version.id,
            "status": self.version.status.value,
            "metrics": self.metrics,
            "error": self.error,
            "gate_failed": self.gate,
            "pointed": self.pointed,
            "commits": self.commits,
        }


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
    dvc = artifacts._open_dvc(root)
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


def _artifact_out(model: str, spec: TrainSpec, stage: Stage) -> str:
    if spec.artifact is not None:
        return f"models/{model}/{spec.artifact}"
    if len(stage.outs) != 1:
        raise RegistryError(
            f"{model}: the stage {stage.target} has {len(stage.outs)} outs:"
            " say which one is the artifact with train.artifact in model.yaml"
        )
    return stage.outs[0]


def _metrics_file(model: str, spec: TrainSpec, stage: Stage) -> str | None:
    if spec.metrics is not None:
        return f"models/{model}/{spec.metrics}"
    return stage.metrics[0] if stage.metrics else None


def _read_metrics(root: Path, path: str | None) -> dict[str, Any]:
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


def _run_dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
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


def _failure_message(proc: subprocess.CompletedProcess[str], target: str) -> str:
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


def _check_data(root: Path, stage: Stage) -> None:
    """Every DVC-tracked dep in the work tree is what its committed .dvc file says (or absent).

    `dvc repro` would otherwise record an uncommitted data change in the .dvc
    file and train on data that no commit names.
    """
    for dep in stage.deps:
        target = root / dep
        if not target.is_file() or not (root / f"{dep}.dvc").is_file():
            continue
        tracked = _dvc_md5(root / f"{dep}.dvc")
        if tracked is not None and artifacts.file_md5(target) != tracked:
            raise ConflictError(
                f"{dep} differs from {dep}.dvc: 'dvc add' and commit it to train on it,"
                f" or 'dvc checkout {dep}.dvc' to drop the change",
                file=f"{dep}.dvc",
            )


def _pull_data(root: Path, stage: Stage) -> None:
    """Fetch DVC-tracked deps missing from the work tree (a fresh clone) before any commit."""
    missing = [
        f"{d}.dvc" for d in stage.deps if (root / f"{d}.dvc").is_file() and not (root / d).exists()
    ]
    if not missing:
        return
    proc = _run_dvc(root, "pull", *missing)
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


def _committed_inputs(reg: Registry, stage: Stage) -> None:
    """Training runs on committed inputs only (its files and its deps), so its version names them."""
    folder = str(Path(stage.dvc_yaml).parent)
    tracked = plumbing.git(reg.root, "ls-files", "-z", "--", folder).stdout.decode().split("\0")
    paths = {p for p in tracked if p} | {p for p in stage.watched() if (reg.root / p).is_file()}
    paths.discard(stage.lock)
    plumbing.refuse_dirty(reg.root, paths)


# -- the steps, one commit each ---------------------------------------------------


def _version_trailers(model: str, v: VersionManifest, status: Status) -> list[tuple[str, str]]:
    return [
        ("Mreg-Action", "train"),
        ("Mreg-Model", model),
        ("Mreg-Version", str(v.version)),
        ("Mreg-Version-Id", v.id),
        ("Mreg-Status", status.value),
    ]


def _finish(
    reg: Registry,
    model: str,
    n: int,
    *,
    status: Status,
    notes: str | None = None,
    train_info: dict[str, Any] | None = None,
    staged: artifacts.StagedArtifact | None = None,
    fmt: str | None = None,
    extra: dict[str, bytes | None] | None = None,
    summary: str = "",
) -> WriteResult[VersionManifest]:
    """Commit a `training` version as trained (with its artifact) or failed (with the error)."""

    def build(base: Snapshot) -> Plan[VersionManifest]:
        old = base.version(model, n)
        if old.status != Status.training:
            raise ConflictError(
                f"{model}:v{n} is {old.status.value}, no longer training: someone else finished it"
            )
        data = old.model_dump(exclude_unset=True)
        data["status"] = status
        changes: dict[str, bytes | None] = dict(extra or {})
        worktree: dict[str, Path] = {}
        if notes is not None:
            data["notes"] = notes
        if train_info:
            data["train_info"] = {**old.train_info, **train_info}
        if staged is not None:
            art, art_changes, worktree = artifact_changes(
                model, n, staged, fmt, base.model(model).library
            )
            data["artifact"] = art
            changes.update(art_changes)
        path = version_path(model, n)
        new = revalidate(VersionManifest, data, path)
        changes[path] = render_update(base.read_text(path), new, path).encode()
        subject = f"{model}: v{n} training -> {status.value}{summary}"
        return Plan(
            changes,
            CommitMessage(subject, _version_trailers(model, old, status)),
            new,
            worktree_files=worktree,
        )

    return commits.write(reg, build, models=[model])


def _pick_version(
    reg: Registry, model: str, version: int | None, resume: bool, commits_made: list[str]
) -> VersionManifest:
    """The version to train, moved to `training` (a commit) unless it is resumed."""
    snap = reg.snapshot("HEAD", models=[model])
    versions = snap.versions(model)
    running = [v for v in versions if v.status == Status.training]
    if resume:
        pick = [v for v in running if version is None or v.version == version]
        if not pick:
            which = (
                f"{model}:v{version} is not" if version is not None else f"no version of {model} is"
            )
            raise ConflictError(f"{which} training: there is nothing to resume")
        return pick[-1]
    if version is not None:
        v = snap.version(model, version)
        if v.status == Status.training:
            raise ConflictError(
                f"{model}:v{version} is training already (a crashed run?): finish it with"
                f" 'mreg train {model} --resume' or give up with"
                f" 'mreg version status {model}:v{version} failed'"
            )
        if v.status != Status.untrained:
            raise ConflictError(
                f"{model}:v{version} is {v.status.value}: only an untrained version is trained"
                f" (train the next one with 'mreg train {model}')"
            )
    elif running:
        n = running[-1].version
        raise ConflictError(
            f"{model}:v{n} is still training (a crashed run?): finish it with"
            f" 'mreg train {model} --resume' or give up with"
            f" 'mreg version status {model}:v{n} failed'"
        )
    else:
        untrained = [v for v in versions if v.status == Status.untrained]
        if untrained:
            v = untrained[-1]
        else:
            made = reg.register(model, untrained=True, description="trained by mreg train")
            assert made.commit is not None
            commits_made.append(made.commit)
            v = made.value
    moved = reg.set_status(f"{model}:v{v.version}", Status.training)
    if moved.commit is not None:
        commits_made.append(moved.commit)
    return moved.value


def _take_lock_file(root: Path, lock: str) -> bytes | None:
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


def train_model(
    reg: Registry,
    model: str,
    *,
    version: int | None = None,
    resume: bool = False,
    point: Sequence[str] = (),
) -> TrainResult:
    """Train `model` with its DVC stage: untrained -> training -> trained or failed, one commit each.

    Takes the untrained version `version` (default: the newest untrained one,
    or a new version), commits it as training, runs `dvc repro` on the stage,
    then commits it as trained with the stage's artifact, metrics and
    dvc.lock, or as failed with the error in `notes`. `resume` finishes a
    version left `training` by a crash. `point` moves those pointers to the
    new version (one more commit) when it is trained and its gate passes.
    """
    check_model_name(model)
    for tag in point:
        check_tag(tag)
    head = reg.snapshot("HEAD", models=[model])
    manifest = head.model(model)
    if manifest.archived:
        raise ConflictError(f"model {model!r} is archived: restore it first")
    spec = manifest.train
    if spec is None:
        raise RegistryError(
            f"model {model!r} declares no training (train: in its model.yaml):"
            f" set it up with 'mreg train init {model} --code FILE --data FILE'"
        )
    stage = load_stage(reg.root, model, spec)
    artifact = _artifact_out(model, spec, stage)
    metrics_file = _metrics_file(model, spec, stage)
    _committed_inputs(reg, stage)
    _check_data(reg.root, stage)
    _pull_data(reg.root, stage)

    made: list[str] = []
    v = _pick_version(reg, model, version, resume, made)
    n = v.version
    proc = _run_dvc(reg.root, "repro", "--pull", stage.target)
    error: str | None = None
    metrics: dict[str, Any] = {}
    if proc.returncode != 0:
        error = _failure_message(proc, stage.target)
    elif not (reg.root / artifact).is_file():
        error = f"the stage {stage.target} ran but did not write {artifact}"
    else:
        try:
            metrics = _read_metrics(reg.root, metrics_file)
        except RegistryError as exc:
            error = str(exc)
    # `dvc repro` may rewrite a data source's .dvc file; a trained version names committed data only.
    changed_dvc = plumbing.dirty_paths(reg.root, [f"{d}.dvc" for d in stage.deps])
    if error is None and changed_dvc:
        error = f"dvc repro changed {changed_dvc[0]}: commit the data first"

    if error is not None:
        done = _finish(reg, model, n, status=Status.failed, notes=f"training failed: {error}")
        if done.commit is not None:
            made.append(done.commit)
        return TrainResult(model, done.value, error=error, commits=made)

    fresh = load_stage(reg.root, model, spec)  # the hashes and params dvc.lock now records
    staged = artifacts.add_to_cache(reg.root, reg.root / artifact)
    if not artifacts.has_default_remote(reg.root):
        raise ArtifactError("the registry has no default DVC remote: run 'mreg init --remote URL'")
    artifacts.push(reg.root, [staged.md5])
    prefix = f"models/{model}/"
    info: dict[str, Any] = {
        "stage": spec.stage,
        "deps": {d.removeprefix(prefix): m for d, m in fresh.dep_md5s.items()},
        "metrics": metrics,
    }
    if fresh.params:
        info["params"] = fresh.params
    lock = _take_lock_file(reg.root, stage.lock)
    summary = ", ".join(f"{k}={val}" for k, val in metrics.items())
    done = _finish(
        reg,
        model,
        n,
        status=Status.trained,
        train_info=info,
        staged=staged,
        fmt=spec.format,
        extra={stage.lock: lock} if lock is not None else None,
        summary=f" ({summary})" if summary else "",
    )
    if done.commit is not None:
        made.append(done.commit)
    result = TrainResult(model, done.value, metrics=metrics, commits=made)
    result.gate = check_gate(spec.gate, metrics)
    if not result.gate:
        for tag in point:
            moved = reg.point(f"{model}:{tag}", f"v{n}")
            if moved.commit is not None:
                made.append(moved.commit)
            result.pointed.append(tag)
    return result


# -- what changed ----------------------------------------------------------------


def changed_models(reg: Registry, base: str) -> list[str]:
    """Trainable models whose stage, code, params or data changed between `base` and HEAD."""
    base_sha = plumbing.rev_sha(reg.root, base)
    if base_sha is None:
        raise RevisionNotFoundError(f"revision {base!r} not found")
    diff = plumbing.git(reg.root, "diff", "--name-only", "-z", base_sha, "HEAD").stdout.decode()
    touched = {p for p in diff.split("\0") if p}
    out = []
    for m in reg.snapshot("HEAD").models():
        if m.train is None:
            continue
        stage = load_stage(reg.root, m.name, m.train)
        watched = stage.watched()
        if any(p == w or p.startswith(w + "/") for p in touched for w in watched):
            out.append(m.name)
    return out


def train_changed(
    reg: Registry, base: str = "HEAD~1", *, point: Sequence[str] = ()
) -> list[TrainResult]:
    """Train every model whose training inputs changed since `base` (a CI job on a push)."""
    return [train_model(reg, name, point=point) for name in changed_models(reg, base)]


# -- setting a model up ------------------------------------------------------------


def _dvc_yaml(code: str, data: Sequence[str], params: Sequence[str], out: str, metrics: str) -> str:
    import yaml

    stage: dict[str, Any] = {"cmd": f"python {code}", "deps": [code, *data]}
    if params:
        stage["params"] = list(params)
    stage["outs"] = [f"{OUT_DIR}/{out}"]
    stage["metrics"] = [{f"{OUT_DIR}/{metrics}": {"cache": False}}]
    text = yaml.safe_dump({"stages": {STAGE_NAME: stage}}, sort_keys=False)
    return "# The training stage of this model: mreg train runs it with dvc repro.\n" + text


def init_training(
    reg: Registry,
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
    if not artifacts.has_default_remote(reg.root):
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
        artifacts.push(reg.root, [s.md5 for s in staged])
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
            f"{folder}/dvc.yaml": _dvc_yaml(
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
