"""Build (or bring up to date) the project's own example registry through mreg itself.

    python examples/build_registry.py [REPO]

Every model is trained by `examples/train.py` on data that ships with
scikit-learn and registered with mreg's Python API, so the history is real
commits and tags. Running it again on a registry that already holds the
examples changes nothing: a version is registered only if no version of that
model was trained with the same parameters.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import train

from registry import Registry, Status, init_training, train_model

ROOT = Path(__file__).resolve().parent.parent
# The example artifacts live in a DVC remote committed inside the repository (tiny
# files), so that a fresh clone can `dvc pull` offline. Real registries point the
# default remote at S3, GCS, Azure or SSH instead.
STORAGE = "examples/storage"
# The wine model's training stage: its script and params, copied into models/wine/train/.
WINE = Path(__file__).resolve().parent / "wine"
WINE_DESCRIPTION = "Wine cultivar from chemical analysis, trained by its DVC stage (mreg train)"

IRIS_VERSIONS = [
    {"estimator": "logistic_regression", "C": 0.01, "max_iter": 500},
    {"estimator": "logistic_regression", "C": 1.0, "max_iter": 500},
    {"estimator": "random_forest", "n_estimators": 50, "max_depth": 4},
]


def ensure_model(reg: Registry, name: str, **fields: Any) -> None:
    if not reg.snapshot("HEAD").has_model(name):
        reg.create_model(name, **fields)


def ensure_version(
    reg: Registry,
    model: str,
    trainer: Callable[[Path, dict[str, Any]], dict[str, Any]],
    params: dict[str, Any],
    description: str,
) -> int:
    """The number of the version trained with `params`, registering it if it is not there yet."""
    for v in reg.snapshot("HEAD").versions(model):
        if v.train_info.get("params") == params:
            return v.version
    with tempfile.TemporaryDirectory(prefix="mreg-example-") as tmp:
        out = trainer(Path(tmp), params)
        result = reg.register(
            model,
            out["path"],
            description=description,
            train_info={
                "params": params,
                "metrics": out["metrics"],
                "data": f"sklearn {model} data",
            },
            input_info=out["input_info"],
            output_info=out["output_info"],
        )
    print(result.subject)
    return result.value.version


def ensure_pointer(reg: Registry, ref: str, target: str, description: str) -> None:
    model, tag = ref.split(":")
    snap = reg.snapshot("HEAD")
    if tag in snap.pointer_tags(model) and snap.pointer(model, tag).target == target:
        return
    print(reg.point(ref, target, description=description).subject)


def main(root: Path = ROOT) -> None:
    reg = Registry.init(root, remote=str(root / STORAGE))
    ensure_model(
        reg,
        "iris",
        description="Iris species from sepal and petal sizes",
        project="examples",
        task="classification",
        library="sklearn",
        is_public=True,
        labels={"data": "iris"},
    )
    for params, what in zip(
        IRIS_VERSIONS,
        ["weakly regularised baseline", "logistic regression", "random forest"],
        strict=True,
    ):
        ensure_version(reg, "iris", train.iris, params, what)
    ensure_pointer(reg, "iris:prod", "v2", "production traffic")
    ensure_pointer(reg, "iris:staging", "v3", "candidate under evaluation")
    ensure_pointer(reg, "iris:stable", "prod", "whatever production runs")

    ensure_model(
        reg,
        "diabetes",
        description="Disease progression from ten baseline measurements (regression)",
        project="examples",
        task="regression",
        library="sklearn",
        is_public=True,
    )
    ensure_version(reg, "diabetes", train.diabetes, {"alpha": 0.5}, "ridge regression, joblib")

    ensure_model(
        reg,
        "digits-onnx",
        description="Handwritten digits, logistic regression converted to ONNX",
        project="examples",
        task="classification",
        library="onnx",
        is_public=True,
    )
    ensure_version(reg, "digits-onnx", train.digits_onnx, {"C": 0.1, "max_iter": 2000}, "skl2onnx")

    ensure_model(
        reg,
        "digits-torch",
        description="Handwritten digits, a small PyTorch MLP saved as TorchScript",
        project="examples",
        task="classification",
        library="pytorch",
        is_public=True,
    )
    ensure_version(
        reg,
        "digits-torch",
        train.digits_torch,
        {"hidden": 32, "lr": 0.01, "epochs": 200},
        "MLP 64-32-10",
    )

    # One archived model, so that `--archived` shows something.
    ensure_model(
        reg,
        "iris-legacy",
        description="The first iris model, kept for its history",
        project="examples",
        task="classification",
        library="sklearn",
        is_public=True,
    )
    ensure_version(reg, "iris-legacy", train.iris, IRIS_VERSIONS[0], "legacy baseline")
    if not reg.snapshot("HEAD").model("iris-legacy").archived:
        print(reg.archive_model("iris-legacy").subject)

    # Trained by its own DVC stage (models/wine/train/): v1 was registered untrained,
    # before its training job ran; `mreg train wine` trained it.
    ensure_model(
        reg,
        "wine",
        description=WINE_DESCRIPTION,
        project="examples",
        task="classification",
        library="sklearn",
        is_public=True,
    )
    if not reg.snapshot("HEAD").versions("wine"):
        print(
            reg.register("wine", untrained=True, description="waiting for the training job").subject
        )
    if reg.snapshot("HEAD").model("wine").train is None:
        with tempfile.TemporaryDirectory(prefix="mreg-example-") as tmp:
            setup = init_training(
                reg,
                "wine",
                code=WINE / "train.py",
                data=[train.wine_csv(Path(tmp) / "wine.csv")],
                params=WINE / "params.yaml",
                gate=["accuracy >= 0.9"],
            )
        print(setup.subject)
    if reg.snapshot("HEAD").version("wine", 1).status == Status.untrained:
        print(f"wine:v1 {train_model(reg, 'wine', version=1).version.status.value}")
    if reg.snapshot("HEAD").version("wine", 1).description == "waiting for the training job":
        trained = "registered untrained, then trained by its DVC stage (mreg train)"
        print(reg.update_version("wine:v1", description=trained).subject)
    if reg.snapshot("HEAD").model("wine").description != WINE_DESCRIPTION:
        print(reg.update_model("wine", description=WINE_DESCRIPTION).subject)
    assert reg.snapshot("HEAD").version("wine", 1).status == Status.trained


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT)
