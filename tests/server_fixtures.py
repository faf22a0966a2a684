"""Fixtures shared by the server and loader tests: tiny real models and a real registry.

The models are trained on iris (from scikit-learn, no download) and saved in
every format mreg serves. The `served` registry is built once per session
through the public write API (real git commits, real DVC cache and remote);
tests that change a registry build their own.

PYTEST_DONT_REWRITE (test modules import constants from here before pytest loads it as a plugin)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry import Registry
from tests.conftest import ALL_FORMATS, apply_isolation

LABELS = ["setosa", "versicolor", "virginica"]
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.9, 3.1, 5.4, 2.1]

# name -> (format, file name); every format the loaders support.
FORMATS = {
    "skops": "iris.skops",
    "joblib": "iris.joblib",
    "pickle": "iris.pkl",
    "onnx": "iris.onnx",
    "torchscript": "iris.pt",
    "keras": "iris.keras",
    "h5": "iris.h5",
}

TOKENS = {"reader": ["read"], "invoker": ["invoke"], "admin": ["admin"]}


def token_secret(name: str) -> str:
    return f"secret-{name}-token"


def token_entries(tokens: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Tokens-file entries (name, sha256 of `token_secret(name)`, scopes); default TOKENS."""
    return [
        {
            "name": name,
            "sha256": hashlib.sha256(token_secret(name).encode()).hexdigest(),
            "scopes": scopes,
        }
        for name, scopes in (tokens or TOKENS).items()
    ]


def write_tokens(path: Path, tokens: dict[str, list[str]] | None = None) -> Path:
    """A tokens file for `mreg serve --tokens` (`bearer(name)` is each one's header)."""
    path.write_text(json.dumps(token_entries(tokens)))
    return path


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_secret(name)}"}


@pytest.fixture(scope="session")
def session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The isolation of conftest's `isolate`, for session fixtures (which run before it)."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("session-home")
        apply_isolation(mp, home)
        mp.setenv("KERAS_BACKEND", "torch")
        yield


def train_iris(c: float = 1.0) -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(x, y)


def save_model(model: Any, fmt: str, path: Path) -> Path:
    """Save a scikit-learn iris model in `fmt` (torch and keras get a tiny net of the same shape)."""
    if fmt == "skops":
        import skops.io

        skops.io.dump(model, path)
    elif fmt == "joblib":
        import joblib

        joblib.dump(model, path)
    elif fmt == "pickle":
        import pickle

        path.write_bytes(pickle.dumps(model))
    elif fmt == "onnx":
        from skl2onnx import to_onnx

        onx = to_onnx(model, np.zeros((1, 4), dtype=np.float32), options={"zipmap": False})
        path.write_bytes(onx.SerializeToString())
    elif fmt == "torchscript":
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 3))
        with torch.no_grad():
            # The logistic regression's own weights: the net predicts like it (on scaled input).
            lr = model[-1]
            scaler = model[0]
            net[0].weight.copy_(torch.tensor(lr.coef_ / scaler.scale_, dtype=torch.float32))
            bias = lr.intercept_ - (lr.coef_ * scaler.mean_ / scaler.scale_).sum(axis=1)
            net[0].bias.copy_(torch.tensor(bias, dtype=torch.float32))
        torch.jit.script(net).save(str(path))
    elif fmt in ("keras", "h5"):
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras

        lr, scaler = model[-1], model[0]
        net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        bias = lr.intercept_ - (lr.coef_ * scaler.mean_ / scaler.scale_).sum(axis=1)
        net.layers[0].set_weights([(lr.coef_ / scaler.scale_).T, bias])
        net.save(path)
    else:
        raise ValueError(fmt)
    return path


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory, session_env: None) -> dict[str, Path]:
    """format -> an iris classifier saved in that format."""
    out = tmp_path_factory.mktemp("models")
    model = train_iris()
    return {fmt: save_model(model, fmt, out / name) for fmt, name in FORMATS.items()}


@pytest.fixture(scope="session")
def other_model_file(tmp_path_factory: pytest.TempPathFactory, session_env: None) -> Path:
    """A second skops model with other bytes (its own md5) for a second version."""
    return save_model(train_iris(c=0.05), "skops", tmp_path_factory.mktemp("other") / "v2.skops")


def build_served(root: Path, model_files: dict[str, Path], other: Path) -> Registry:
    """The registry most server tests read (see the module docstring of test_server.py)."""
    reg = Registry.init(root, trusted_formats=ALL_FORMATS)
    out = {"labels": LABELS}
    reg.create_model("iris", library="sklearn", project="flowers", description="Iris species")
    reg.register("iris", model_files["skops"], output_info=out, point=["prod"])
    reg.register("iris", other, output_info=out)
    reg.register("iris", untrained=True)
    reg.point("iris:next", "v3")
    reg.point("iris:champion", "prod")
    reg.create_model("public-iris", library="sklearn", project="demo", is_public=True)
    reg.register("public-iris", model_files["skops"], output_info=out)
    reg.create_model("raw-iris", library="sklearn", project="demo", description="no labels")
    reg.register("raw-iris", model_files["joblib"])
    for fmt in FORMATS:
        if fmt == "skops":
            continue
        name = f"fmt-{fmt}"
        reg.create_model(name, project="formats", library=fmt)
        reg.register(name, model_files[fmt], format=fmt, output_info=out)
    reg.create_model("empty", project="demo", description="no versions yet")
    reg.create_model("draft", project="demo")
    reg.register("draft", untrained=True)
    reg.create_model("old", project="demo")
    reg.register("old", model_files["joblib"], output_info=out)
    reg.archive_model("old")
    return reg


@pytest.fixture(scope="session")
def served_registry(
    tmp_path_factory: pytest.TempPathFactory,
    model_files: dict[str, Path],
    other_model_file: Path,
    session_env: None,
) -> Registry:
    return build_served(tmp_path_factory.mktemp("served") / "reg", model_files, other_model_file)


def dvc_objects(root: Path, md5: str) -> list[Path]:
    """The cache and (local) remote files that hold an artifact."""
    name = Path("files") / "md5" / md5[:2] / md5[2:]
    return [root / ".dvc" / "cache" / name, root / ".dvc" / "storage" / name]


def remove_artifact(root: Path, md5: str, *, remote: bool = True) -> None:
    for path in dvc_objects(root, md5)[: 2 if remote else 1]:
        if path.exists():
            path.chmod(0o644)
            path.unlink()


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A /metrics exposition parsed by prometheus_client: (sample name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
