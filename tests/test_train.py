"""Retraining (#13): a model's DVC stage, run by `mreg train`, makes versions that the server follows.

Every test trains for real: the example wine training script
(`examples/wine/train.py`, scikit-learn) on a CSV of scikit-learn's wine data,
run by `dvc repro` in a real git repository with a local DVC remote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from examples.train import wine_csv
from registry import (
    ConflictError,
    ManifestError,
    ModelManifest,
    Registry,
    RegistryError,
    Status,
    changed_models,
    check_gate,
    init_training,
    parse_manifest,
    train_changed,
    train_model,
    validate_registry,
)
from tests.conftest import RepoBuilder, git, head
from tests.processes import MREG, ROOT, ServeProcess, serving
from tool.cli import cli

EXAMPLE = ROOT / "examples" / "wine"
SAMPLE = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]


def trainable(root: Path, gate: tuple[str, ...] = ("accuracy >= 0.9",)) -> Registry:
    """A registry whose model `wine` trains on half of the wine data."""
    reg = Registry.init(root)
    reg.create_model("wine", library="sklearn", is_public=True)
    init_training(
        reg,
        "wine",
        code=EXAMPLE / "train.py",
        data=[wine_csv(root.parent / "wine.csv", slice(None, None, 2))],
        params=EXAMPLE / "params.yaml",
        gate=gate,
    )
    return reg


def replace_data(reg: Registry, text: str | None = None, message: str = "wine: new data") -> None:
    """What a data engineer does: change the CSV, `dvc add` it, commit the .dvc file."""
    target = reg.root / "models/wine/train/data/wine.csv"
    target.unlink()
    if text is None:
        wine_csv(target)
    else:
        target.write_text(text)
    dvc = [sys.executable, "-m", "dvc", "add", "-q", str(target)]
    subprocess.run(dvc, cwd=reg.root, check=True, capture_output=True)
    git(reg.root, "add", "models/wine/train/data/wine.csv.dvc")
    git(reg.root, "commit", "-q", "-m", message)


def mreg(reg: Registry, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [*MREG, "--repo", str(reg.root), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def findings(reg: Registry, base: str | None = None) -> list[str]:
    """Validation errors, and any finding about the training files (never a stray file)."""
    report = validate_registry(reg, rev="HEAD", base=base)
    return [
        f"{f.file}: {f.code}"
        for f in report.findings
        if f.severity == "error" or "/train/" in f.file
    ]


def subjects(reg: Registry, n: int) -> list[str]:
    return git(reg.root, "log", f"-{n}", "--format=%s").splitlines()[::-1]


# -- setting a model up --------------------------------------------------------------------


def test_train_init_makes_a_dvc_stage_that_validates_clean(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    assert subjects(reg, 1) == ["wine: set up training (train/dvc.yaml:train)"]
    spec = reg.snapshot("HEAD").model("wine").train
    assert spec is not None
    assert (spec.stage, spec.gate) == ("train/dvc.yaml:train", ["accuracy >= 0.9"])
    files = git(reg.root, "ls-files", "models/wine/train").splitlines()
    assert files == [
        "models/wine/train/.gitignore",
        "models/wine/train/data/.gitignore",
        "models/wine/train/data/wine.csv.dvc",
        "models/wine/train/dvc.yaml",
        "models/wine/train/params.yaml",
        "models/wine/train/train.py",
    ]
    # The data is in the work tree (git-ignored) and DVC knows the stage.
    assert (reg.root / "models/wine/train/data/wine.csv").is_file()
    dvc = subprocess.run(
        [sys.executable, "-m", "dvc", "stage", "list", "--all"],
        cwd=reg.root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "models/wine/train/dvc.yaml:train" in dvc.stdout
    assert findings(reg) == []


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("train/dvc.yaml:train", None),
        ("train/dvc.yaml:fit", "train.stage: models/wine/train/dvc.yaml has no stage 'fit'"),
        ("other/dvc.yaml:train", "train.stage: models/wine/other/dvc.yaml does not exist"),
    ],
)
def test_validate_knows_the_training_files_and_checks_the_stage(
    builder: RepoBuilder, stage: str, message: str | None
) -> None:
    builder.model("wine")
    builder.write(
        "models/wine/model.yaml",
        f"name: wine\ncreated_at: 2026-11-24T05:00:00Z\ntrain:\n  stage: {stage}\n",
    )
    builder.write("models/wine/train/dvc.yaml", "stages:\n  train:\n    cmd: python train.py\n")
    builder.write("models/wine/train/train.py", "print('training')\n")
    builder.write("models/wine/train/data/wine.csv.dvc", "outs:\n- md5: 0\n  path: wine.csv\n")
    builder.write("models/wine/notes.txt", "not part of the layout\n")
    builder.commit()
    found = [
        (f.code, f.file, f.line, f.message)
        for f in validate_registry(Registry(builder.root), rev="HEAD").findings
    ]
    stray = ("stray-file", "models/wine/notes.txt", None, "not part of the registry layout")
    if message is None:
        assert found == [stray]
    else:
        assert found == [("train-stage", "models/wine/model.yaml", 4, message), stray]


def test_a_second_train_init_is_refused(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    before = head(reg)
    result = CliRunner().invoke(
        cli, ["--repo", str(reg.root), "train", "init", "wine", "--code", str(EXAMPLE / "train.py")]
    )
    assert result.exit_code == 1
    assert "error: model 'wine' is trainable already" in result.output
    assert head(reg) == before


@pytest.mark.parametrize(
    "gate",
    ["accuracy", "accuracy >= high", "accuracy => 0.9"],
)
def test_a_malformed_gate_is_a_schema_error_with_its_line(gate: str) -> None:
    text = f"name: wine\ncreated_at: 2026-11-24T05:00:00Z\ntrain:\n  stage: train/dvc.yaml:train\n  gate:\n    - {gate}\n"
    with pytest.raises(ManifestError) as err:
        parse_manifest(text, ModelManifest, "models/wine/model.yaml")
    assert "METRIC OP NUMBER" in str(err.value)
    assert err.value.line == 6


@pytest.mark.parametrize(
    ("gate", "metrics", "failed"),
    [
        (["accuracy >= 0.9"], {"accuracy": 0.95}, []),
        (["accuracy >= 0.9"], {"accuracy": 0.85}, ["accuracy >= 0.9 (accuracy=0.85)"]),
        (["rmse < 3", "r2 > 0.5"], {"rmse": 2.0, "r2": 0.4}, ["r2 > 0.5 (r2=0.4)"]),
        (["auc >= 0.8"], {"accuracy": 0.99}, ["auc >= 0.8 (no metric auc)"]),
    ],
)
def test_the_gate_names_each_condition_that_fails(
    gate: list[str], metrics: dict[str, Any], failed: list[str]
) -> None:
    assert check_gate(gate, metrics) == failed


# -- training ----------------------------------------------------------------------------


def test_training_commits_each_step_and_records_what_trained_it(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    result = train_model(reg, "wine", point=["prod"])
    assert result.ok and result.gate == [] and result.pointed == ["prod"]
    assert subjects(reg, 4) == [
        f"wine: register v1 ({result.version.id})",
        "wine: v1 untrained -> training",
        f"wine: v1 training -> trained (accuracy={result.metrics['accuracy']}, rows=89)",
        "wine: point prod -> v1",
    ]
    assert len(result.commits) == 4
    v1 = reg.snapshot("HEAD").version("wine", 1)
    assert v1.status == Status.trained and v1.artifact is not None
    assert v1.train_info["metrics"]["accuracy"] >= 0.9
    assert v1.train_info["params"] == {"C": 1.0, "max_iter": 500, "test_size": 0.3, "seed": 0}
    assert set(v1.train_info["deps"]) == {"train/train.py", "train/data/wine.csv"}
    # The trained commit holds the artifact's .dvc file and the stage's dvc.lock.
    changed = git(reg.root, "show", "--name-only", "--format=", "HEAD~1").splitlines()
    assert changed == [
        "models/wine/artifacts/v1/.gitignore",
        "models/wine/artifacts/v1/model.skops.dvc",
        "models/wine/train/dvc.lock",
        "models/wine/versions/1.yaml",
    ]
    assert git(reg.root, "status", "--porcelain") == ""
    assert reg.resolve("wine:prod").version.id == v1.id
    assert findings(reg) == []
    # The artifact is in the remote: a clone pulls it and serves it.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(reg.root), str(clone))
    copy = Registry(clone)
    pulled = copy.pull(["wine:prod"])
    assert pulled[0][0] == "wine:v1" and pulled[0][1].is_file()
    # And trains there, as CI does: the data comes from the DVC remote.
    (clone / "models/wine/train/params.yaml").write_text(
        "C: 0.1\nmax_iter: 500\ntest_size: 0.3\nseed: 0\n"
    )
    git(clone, "commit", "-q", "-am", "wine: C=0.1")
    [again] = train_changed(copy, "HEAD~1")
    assert again.ok and again.version.version == 2
    assert again.version.train_info["params"]["C"] == 0.1
    assert (clone / "models/wine/train/data/wine.csv").is_file()


def test_data_missing_from_the_remote_is_refused_before_any_commit(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    replace_data(reg)  # `dvc add`ed and committed, but never `dvc push`ed
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(reg.root), str(clone))
    before = head(Registry(clone))
    with pytest.raises(
        RegistryError,
        match=r"cannot pull the training data models/wine/train/data/wine.csv from the DVC remote \('dvc push' it where it was added\)",
    ):
        train_model(Registry(clone), "wine")
    assert head(Registry(clone)) == before


def test_a_gate_that_fails_keeps_the_version_but_moves_no_pointer(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg", gate=("accuracy > 0.999",))
    result = CliRunner().invoke(cli, ["--repo", str(reg.root), "train", "wine", "--point", "prod"])
    assert result.exit_code == 0, result.output
    assert "wine:v1 trained" in result.output
    assert "wine:v1: gate not met (accuracy > 0.999 (accuracy=" in result.output
    assert "no pointer moved" in result.output
    snap = reg.snapshot("HEAD")
    assert snap.version("wine", 1).status == Status.trained
    assert snap.pointer_tags("wine") == []


def test_train_run_json_is_the_results_and_nothing_else(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    result = CliRunner().invoke(
        cli, ["--repo", str(reg.root), "train", "run", "wine", "--point", "prod", "--json"]
    )
    assert result.exit_code == 0, result.output
    (trained,) = json.loads(result.stdout)
    assert (trained["model"], trained["version"], trained["status"]) == ("wine", 1, "trained")
    assert trained["pointed"] == ["prod"] and trained["id"].startswith("mv_")
    assert "accuracy" in trained["metrics"]


def test_uncommitted_data_is_refused_before_any_commit(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    before = head(reg)
    data = reg.root / "models/wine/train/data/wine.csv"
    data.write_text(data.read_text() + "1,2,3\n")
    with pytest.raises(ConflictError, match=r"differs from models/wine/train/data/wine.csv.dvc"):
        train_model(reg, "wine")
    (reg.root / "models/wine/train/params.yaml").write_text("C: 5\n")
    with pytest.raises(ConflictError, match="uncommitted changes"):
        train_model(reg, "wine")
    assert head(reg) == before


def test_a_model_without_training_is_one_error_line(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("plain")
    result = mreg(reg, "train", "plain")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: model 'plain' declares no training (train: in its model.yaml):"
        " set it up with 'mreg train init plain --code FILE --data FILE'"
    ]


def test_a_crash_leaves_a_training_version_that_resume_finishes(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    # What a crash after the `training` commit leaves behind.
    reg.register("wine", untrained=True)
    reg.set_status("wine:v1", "training")
    with pytest.raises(ConflictError, match=r"wine:v1 is still training .*--resume"):
        train_model(reg, "wine")
    result = train_model(reg, "wine", resume=True)
    assert result.ok and result.version.version == 1
    assert subjects(reg, 1) == [
        f"wine: v1 training -> trained (accuracy={result.metrics['accuracy']}, rows=89)"
    ]
    with pytest.raises(
        ConflictError, match="no version of wine is training: there is nothing to resume"
    ):
        train_model(reg, "wine", resume=True)


def test_an_untrained_version_is_trained_in_place(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    made = reg.register("wine", untrained=True, description="waiting for data")
    result = train_model(reg, "wine", version=1)
    assert result.version.id == made.value.id
    assert result.version.description == "waiting for data"
    with pytest.raises(ConflictError, match="wine:v1 is trained: only an untrained version"):
        train_model(reg, "wine", version=1)


def test_changed_models_follow_the_stage_inputs(tmp_path: Path) -> None:
    reg = trainable(tmp_path / "reg")
    reg.create_model("other")
    assert changed_models(reg, "HEAD~1") == []
    assert changed_models(reg, "HEAD~2") == ["wine"]  # the training setup itself
    (reg.root / "models/wine/train/params.yaml").write_text("C: 0.5\nmax_iter: 500\n")
    git(reg.root, "commit", "-q", "-am", "wine: C=0.5")
    assert changed_models(reg, "HEAD~1") == ["wine"]
    with pytest.raises(RegistryError, match="revision 'nope' not found"):
        changed_models(reg, "nope")
    result = CliRunner().invoke(
        cli, ["--repo", str(reg.root), "train", "--changed", "--base", "HEAD"]
    )
    assert (result.exit_code, result.output) == (0, "no trainable model changed since HEAD\n")


# -- the end-to-end: new data, a new version, the server follows -----------------


@pytest.fixture
def served_wine(tmp_path: Path) -> Iterator[tuple[Registry, str, ServeProcess]]:
    """wine v1 trained and pointed `prod`, served by a real `mreg serve --follow main`."""
    reg = trainable(tmp_path / "reg")
    first = mreg(reg, "train", "wine", "--point", "prod")
    assert first.returncode == 0, first.stderr
    with serving(reg.root, "--follow", "main", "--poll", "0.2") as server:
        wait_for(server, head(reg))
        yield reg, server.url, server


def wait_for(server: ServeProcess, sha: str) -> None:
    """Until the server serves commit `sha` (a readiness wait, not a timing assertion)."""

    def serves_sha() -> bool:
        r = server.get("/v1/registry", timeout=2)
        return r.status_code == 200 and r.json()["revision"] == sha

    server.wait_until(serves_sha, f"never served {sha}")


def invoke(url: str, query: str = "") -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/models/wine/invoke{query}", json={"data": SAMPLE}, timeout=30)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.slow
def test_new_data_retrains_and_the_server_serves_it(
    served_wine: tuple[Registry, str, ServeProcess],
) -> None:
    reg, url, server = served_wine
    old = invoke(url)
    assert old["version"] == 1
    assert invoke(url, "?pointer=prod")["version"] == 1
    old_id = old["model_id"]

    replace_data(reg)  # all 178 rows instead of 89
    done = mreg(reg, "train", "--changed", "--point", "prod")
    assert done.returncode == 0, done.stderr
    assert "wine:v2 trained" in done.stdout and "wine:prod -> v2" in done.stdout
    wait_for(server, head(reg))

    latest = invoke(url)
    assert latest["version"] == 2 and latest["model_id"] != old_id
    assert latest["outputs"] == [0]  # the sample is a cultivar-0 wine
    assert invoke(url, "?pointer=prod")["version"] == 2
    pinned = invoke(url, f"?modelId={old_id}")
    assert (pinned["version"], pinned["model_id"]) == (1, old_id)
    v2 = reg.snapshot("HEAD").version("wine", 2)
    assert v2.train_info["metrics"]["rows"] == 178

    # Bad data: the training fails, the version says why, no pointer moves.
    replace_data(reg, "alcohol,malic_acid,cultivar\n13.2,oops,0\n", "wine: broken export")
    bad = mreg(reg, "train", "--changed", "--point", "prod")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: wine:v3 failed: ValueError: could not convert string")
    v3 = reg.snapshot("HEAD").version("wine", 3)
    assert v3.status == Status.failed and v3.artifact is None
    assert v3.notes is not None
    assert "could not convert string 'oops'" in v3.notes and "python train.py" in v3.notes
    assert reg.resolve("wine:prod").version.version == 2
    wait_for(server, head(reg))
    assert invoke(url)["version"] == 2
    assert invoke(url, "?pointer=prod")["version"] == 2
    assert findings(reg, base="HEAD~4") == []


def test_the_example_workflow_retrains_on_a_push_that_touches_training_inputs(
    tmp_path: Path,
) -> None:
    import shlex

    import yaml

    path = ROOT / "examples/github-actions/mreg-retrain.yml"
    checker = Path(sys.executable).parent / "check-jsonschema"
    schema = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    workflow = yaml.safe_load(path.read_text())
    assert workflow[True]["push"]["paths"] == ["models/*/train/**"]  # YAML 1.1 reads `on` as True
    steps = workflow["jobs"]["retrain"]["steps"]
    train = next(s["run"] for s in steps if s.get("run", "").startswith("mreg train"))
    argv = shlex.split(train.replace("${{ github.event.before }}", "HEAD"))
    reg = trainable(tmp_path / "reg")
    result = CliRunner().invoke(cli, ["--repo", str(reg.root), *argv[1:]])
    assert (result.exit_code, result.output) == (0, "no trainable model changed since HEAD\n")
    assert argv[-2:] == ["--point", "prod"]
    assert any("git push --follow-tags" in s.get("run", "") for s in steps)
