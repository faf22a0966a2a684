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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import artifacts, commits, plumbing, remotes
from registry.commits import Plan, WriteResult
from registry.errors import ArtifactError, ConflictError, RegistryError, RevisionNotFoundError
from registry.layout import version_path
from registry.manifests import Status, VersionManifest
from registry.names import check_model_name, check_tag
from registry.plumbing import CommitMessage
from registry.snapshot import Snapshot
from registry.train_stage import (
    Stage,
    artifact_out,
    check_data,
    check_gate,
    failure_message,
    load_stage,
    metrics_out,
    pull_data,
    read_metrics,
    run_dvc,
    take_lock_file,
)
from registry.writes.fields import revalidate
from registry.writes.staging import artifact_changes
from registry.yamlio import render_update

if TYPE_CHECKING:
    from registry.registry import Registry


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
    artifact = artifact_out(model, spec, stage)
    metrics_file = metrics_out(model, spec, stage)
    _committed_inputs(reg, stage)
    check_data(reg.root, stage)
    pull_data(reg.root, stage)

    made: list[str] = []
    v = _pick_version(reg, model, version, resume, made)
    n = v.version
    proc = run_dvc(reg.root, "repro", "--pull", stage.target)
    error: str | None = None
    metrics: dict[str, Any] = {}
    if proc.returncode != 0:
        error = failure_message(proc, stage.target)
    elif not (reg.root / artifact).is_file():
        error = f"the stage {stage.target} ran but did not write {artifact}"
    else:
        try:
            metrics = read_metrics(reg.root, metrics_file)
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
    if not remotes.has_default_remote(reg.root):
        raise ArtifactError("the registry has no default DVC remote: run 'mreg init --remote URL'")
    remotes.push(reg.root, [staged.md5])
    prefix = f"models/{model}/"
    info: dict[str, Any] = {
        "stage": spec.stage,
        "deps": {d.removeprefix(prefix): m for d, m in fresh.dep_md5s.items()},
        "metrics": metrics,
    }
    if fresh.params:
        info["params"] = fresh.params
    lock = take_lock_file(reg.root, stage.lock)
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
