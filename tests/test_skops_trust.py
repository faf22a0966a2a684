"""skops files load only with exact scikit-learn, NumPy and SciPy types: never functions or builtins."""

from __future__ import annotations

import builtins
import functools
import importlib
import operator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import TestClient

from registry import LoaderError, Registry, load_model, predict
from registry.skops_trust import SKOPS_TRUSTED_TYPES
from server import create_app
from tests.showcase import Showcase

ROOT = Path(__file__).resolve().parent.parent
IRIS_ROW = [6.3, 2.8, 5.1, 1.5]


def exploit(marker: Path) -> Any:
    """A real Pipeline whose FunctionTransformers call `partial(builtins.eval, CODE)` on predict.

    The first step turns the input rows into a dict, which eval takes as its globals;
    CODE writes `marker` and hands the last step something to predict on.
    """
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned') and [[0.0]]"
    clf = DummyClassifier(strategy="most_frequent").fit([[0.0], [1.0]], [0, 1])
    return Pipeline(
        [
            ("rows", FunctionTransformer(builtins.dict, validate=False)),
            ("run", FunctionTransformer(functools.partial(builtins.eval, code), validate=False)),
            ("clf", clf),
        ]
    )


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Path, Path]:
    import skops.io

    marker = tmp_path / "pwned"
    path = tmp_path / "model.skops"
    skops.io.dump(exploit(marker), path)
    return path, marker


def test_the_payload_is_real_when_everything_is_trusted(payload: tuple[Path, Path]) -> None:
    """What the refusal prevents: with its types trusted, predict runs the code."""
    import skops.io

    path, marker = payload
    model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    model.predict([[1.0, 2.0]])
    assert marker.read_text() == "pwned"


def test_the_eval_payload_is_refused_at_load(payload: tuple[Path, Path]) -> None:
    path, marker = payload
    with pytest.raises(LoaderError) as info:
        load_model(path, "skops")
    message = str(info.value)
    assert "builtins.eval" in message and "functools.partial" in message
    assert "store the model as joblib" in message
    assert info.value.status == 503
    assert not marker.exists()


@pytest.mark.parametrize(
    "func",
    [builtins.exec, operator.attrgetter("x"), np.save, functools.reduce],
    ids=["exec", "operator.attrgetter", "numpy.save", "functools.reduce"],
)
def test_functions_and_builtins_are_never_trusted(tmp_path: Path, func: Any) -> None:
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "f.skops"
    skops.io.dump(FunctionTransformer(func), path)
    with pytest.raises(LoaderError, match="outside the types mreg trusts"):
        load_model(path, "skops")


def test_the_trusted_list_names_only_types() -> None:
    for name in SKOPS_TRUSTED_TYPES:
        module, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(module), attr)
        assert isinstance(obj, type), f"{name} is not a type"
        assert module.split(".")[0] in ("sklearn", "numpy", "scipy"), name


@pytest.mark.parametrize(
    "estimator",
    [
        "sklearn.ensemble.RandomForestClassifier(n_estimators=3, random_state=0)",
        "sklearn.ensemble.HistGradientBoostingClassifier(max_iter=5)",
        "sklearn.ensemble.GradientBoostingClassifier(n_estimators=3)",
        "sklearn.neural_network.MLPClassifier(max_iter=20, random_state=0)",
        "sklearn.neighbors.KNeighborsClassifier()",
        "sklearn.tree.DecisionTreeClassifier(random_state=0)",
    ],
)
def test_ordinary_scikit_learn_models_still_load(tmp_path: Path, estimator: str) -> None:
    import warnings

    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    module, _, call = estimator.partition("(")
    mod, _, cls = module.rpartition(".")
    kwargs = eval(f"dict({call}")  # the parameters written above
    x, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_pipeline(
            StandardScaler(), getattr(importlib.import_module(mod), cls)(**kwargs)
        )
        model.fit(x, y)
    path = tmp_path / "m.skops"
    skops.io.dump(model, path)
    assert predict(load_model(path), [IRIS_ROW]) == model.predict([IRIS_ROW]).tolist()


def test_every_skops_model_of_the_example_registry_loads() -> None:
    snap = Registry(ROOT).snapshot("HEAD")
    checked = []
    for m in snap.models(archived=None):
        for v in snap.versions(m.name):
            if v.artifact is None or v.artifact.format != "skops":
                continue
            md5 = v.artifact.md5
            stored = ROOT / "examples" / "storage" / "files" / "md5" / md5[:2] / md5[2:]
            loaded = load_model(stored, "skops")  # refused here if a type is not trusted
            if m.name.startswith("iris"):
                outputs = predict(loaded, [IRIS_ROW], v.output_info["labels"])
                assert outputs[0]["label"] in ("versicolor", "virginica")
            checked.append(f"{m.name}:v{v.version}")
    assert checked == ["iris:v1", "iris:v2", "iris:v3", "iris-legacy:v1", "wine:v1"]


def test_a_served_exploit_is_503_for_that_model_only(
    showcase: Showcase, payload: tuple[Path, Path]
) -> None:
    path, marker = payload
    reg = showcase.registry()
    reg.create_model("evil", library="sklearn", is_public=True)
    reg.register("evil", path)
    with TestClient(app=create_app(showcase.root, "HEAD")) as client:
        evil = client.post("/v1/models/evil/invoke", json={"data": [1.0, 2.0]})
        iris = client.post("/v1/models/iris/invoke", json={"data": IRIS_ROW})
    assert evil.status_code == 503
    error = evil.json()["error"]
    assert "builtins.eval" in error["message"]
    assert error["detail"]["info"]["untrusted_types"] == [
        "builtins.dict",
        "builtins.eval",
        "functools.partial",
    ]
    assert iris.status_code == 200
    assert not marker.exists()
