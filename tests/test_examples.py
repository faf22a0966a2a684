"""The project's own example registry: rebuilding it changes nothing, training is deterministic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from registry import Registry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import train  # noqa: E402


def test_rebuilding_the_examples_changes_nothing(tmp_path: Path) -> None:
    clone = tmp_path / "mreg"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout
    done = subprocess.run(
        [sys.executable, "examples/build_registry.py", str(clone)],
        cwd=clone,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # nothing registered, moved or archived
    after = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout
    assert after == head
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout
    assert status == ""


def test_registering_into_the_example_remote_leaves_git_status_clean(tmp_path: Path) -> None:
    """The example DVC remote is in the work tree: what a user pushes to it is ignored, while a
    fresh clone still has (and pulls offline) the example registry's own objects."""
    clone = tmp_path / "mreg"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    mreg = [sys.executable, "-c", "from tool.cli import main; main()"]
    pulled = subprocess.run([*mreg, "pull"], cwd=clone, capture_output=True, text=True, env=env)
    assert pulled.returncode == 0, pulled.stderr
    artifact = tmp_path / "model.skops"
    x, y = load_iris(return_X_y=True)
    skops.io.dump(LogisticRegression(C=3.0, max_iter=500).fit(x, y), artifact)
    done = subprocess.run(
        [*mreg, "register", "iris", str(artifact)],
        cwd=clone,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "register v4" in done.stdout
    objects = list((clone / "examples" / "storage" / "files").rglob("*"))
    assert len([p for p in objects if p.is_file()]) > 9  # the new object is in the remote
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout
    assert status == ""


def test_example_registry_holds_what_the_readme_promises() -> None:
    snap = Registry(ROOT).snapshot("HEAD")
    assert [m.name for m in snap.models()] == [
        "diabetes",
        "digits-onnx",
        "digits-torch",
        "iris",
        "wine",
    ]
    assert [m.name for m in snap.models(archived=True)] == ["iris-legacy"]
    assert {p.tag: p.target for p in snap.pointers("iris")} == {
        "prod": "v2",
        "stable": "prod",
        "staging": "v3",
    }
    formats = {
        name: snap.versions(name)[0].artifact.format  # type: ignore[union-attr]
        for name in ("iris", "diabetes", "digits-onnx", "digits-torch")
    }
    assert formats == {
        "iris": "skops",
        "diabetes": "joblib",
        "digits-onnx": "onnx",
        "digits-torch": "torchscript",
    }
    wine = snap.version("wine", 1)
    assert wine.status == "trained" and wine.train_info["metrics"]["accuracy"] >= 0.9
    train_spec = snap.model("wine").train
    assert train_spec is not None and train_spec.stage == "train/dvc.yaml:train"
    assert snap.version("iris", 2).output_info["labels"] == ["setosa", "versicolor", "virginica"]
    assert "accuracy" in snap.version("iris", 2).train_info["metrics"]


@pytest.mark.parametrize(
    ("trainer", "params"),
    [
        (train.iris, {"estimator": "random_forest", "n_estimators": 10, "max_depth": 3}),
        (train.diabetes, {"alpha": 0.5}),
        (train.digits_torch, {"hidden": 8, "lr": 0.01, "epochs": 20}),
    ],
    ids=["iris", "diabetes", "digits-torch"],
)
def test_training_is_deterministic(trainer, params, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = trainer(tmp_path / "a", params)
    second = trainer(tmp_path / "b", params)
    assert first["metrics"] == second["metrics"]
    assert first["input_info"] == second["input_info"]
