"""`mreg import mlflow` against a real MLflow registry (a SQLite store made here), and serving
the `mlflow` artifact format through mlflow.pyfunc.

The store holds `Iris Classifier` (scikit-learn: v1 saved by MLflow as skops,
v2 as cloudpickle; an alias, descriptions, tags, run params and metrics) and
`Doubler`, a pyfunc model from code, which has no scikit-learn flavor and so
is kept as an MLflow model directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from litestar.testing import TestClient

from registry import LoaderError, Registry, rfc3339
from server import create_app
from tests.conftest import ALL_FORMATS, git
from tests.server_fixtures import SETOSA, VIRGINICA
from tool.cli import cli

pytest_plugins = ["tests.server_fixtures"]

DOUBLER = textwrap.dedent(
    """
    import mlflow
    import numpy as np


    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return np.asarray(model_input, dtype=float).sum(axis=1) * 2


    mlflow.models.set_model(Doubler())
    """
)

BUILD = textwrap.dedent(
    """
    import sys
    import mlflow
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    uri, artifacts, doubler = sys.argv[1:4]
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("iris", artifact_location=artifacts)
    X, y = load_iris(return_X_y=True)
    for c, fmt in ((0.5, "skops"), (1.0, "cloudpickle")):
        with mlflow.start_run(experiment_id=exp):
            model = LogisticRegression(C=c, max_iter=500).fit(X, y)
            mlflow.log_param("C", c)
            mlflow.log_metric("accuracy", model.score(X, y))
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name="Iris Classifier",
                serialization_format=fmt,
                pip_requirements=["scikit-learn"],
            )
    with mlflow.start_run(experiment_id=exp):
        mlflow.pyfunc.log_model(
            name="doubler",
            python_model=doubler,
            registered_model_name="Doubler",
            pip_requirements=["numpy"],
        )
    client = MlflowClient(uri)
    client.update_registered_model("Iris Classifier", description="iris flowers")
    client.set_registered_model_tag("Iris Classifier", "team", "ml")
    client.set_registered_model_alias("Iris Classifier", "Champion", "1")
    client.set_model_version_tag("Iris Classifier", "2", "stage", "candidate")
    client.update_model_version("Iris Classifier", "2", description="second try")
    """
)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory, session_env: None) -> str:
    """A real MLflow tracking store and model registry (SQLite, local artifacts)."""
    root = tmp_path_factory.mktemp("mlflow")
    code = root / "doubler.py"
    code.write_text(DOUBLER)
    uri = f"sqlite:///{root}/mlflow.db"
    subprocess.run(
        [sys.executable, "-c", BUILD, uri, (root / "artifacts").as_uri(), str(code)],
        check=True,
        capture_output=True,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    return uri


@pytest.fixture(scope="module")
def imported(
    mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory, session_env: None
) -> Registry:
    reg = Registry.init(tmp_path_factory.mktemp("imported") / "reg", trusted_formats=ALL_FORMATS)
    result = mreg(reg.root, "import", "mlflow", "--tracking-uri", mlflow_uri, "--json")
    assert result.exit_code == 0, result.output
    return reg


def mreg(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--repo", str(root), *args])


def mlflow_versions(uri: str, name: str) -> dict[str, Any]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    return {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}


@pytest.mark.slow
def test_import_brings_versions_in_order_with_their_history(
    imported: Registry, mlflow_uri: str
) -> None:
    snap = imported.snapshot("HEAD")
    model = snap.model("iris-classifier")
    assert (model.description, model.labels) == ("iris flowers", {"team": "ml"})
    v1, v2 = snap.versions("iris-classifier")
    assert [v1.version, v2.version] == [1, 2]
    assert v1.artifact is not None and v1.artifact.format == "skops"
    assert v2.artifact is not None and v2.artifact.format == "skops"  # cloudpickle, converted
    source = mlflow_versions(mlflow_uri, "Iris Classifier")
    for mine, theirs in ((v1, source["1"]), (v2, source["2"])):
        info = mine.import_info or {}
        assert info["model"] == "Iris Classifier"
        assert info["version"] == int(theirs.version)
        assert info["run_id"] == theirs.run_id
        created = datetime.fromtimestamp(theirs.creation_timestamp / 1000, UTC)
        assert info["created_at"] == rfc3339(created)
    assert (v1.train_info or {})["params"] == {"C": 0.5}
    assert (v2.train_info or {})["params"] == {"C": 1.0}
    assert 0.9 < (v2.train_info or {})["metrics"]["accuracy"] <= 1.0
    assert (v2.description, (v2.metadata or {})["labels"]) == ("second try", {"stage": "candidate"})
    assert snap.resolve("iris-classifier:champion").version.version == 1

    (doubler,) = snap.versions("doubler")
    assert doubler.artifact is not None and doubler.artifact.format == "mlflow"
    assert doubler.artifact.path == "artifacts/v1/model.mlflow"

    subjects = git(imported.root, "log", "--format=%s").splitlines()
    registers = [s for s in subjects if ": register v" in s]
    assert len(registers) == 3  # one commit per version
    iris = [s for s in reversed(registers) if s.startswith("iris-classifier: ")]
    assert [s.split(" (")[0] for s in iris] == [
        "iris-classifier: register v1",
        "iris-classifier: register v2",
    ]
    assert iris[0].endswith(", point champion")
    assert sorted(git(imported.root, "tag").split()) == [
        "doubler@v1",
        "iris-classifier@v1",
        "iris-classifier@v2",
    ]
    assert git(imported.root, "status", "--porcelain") == ""


@pytest.mark.slow
def test_importing_again_skips_what_was_imported_and_follows_aliases(
    imported: Registry, mlflow_uri: str
) -> None:
    before = git(imported.root, "rev-parse", "HEAD")
    result = mreg(imported.root, "import", "mlflow", "--tracking-uri", mlflow_uri, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(r["model"], r["version"], r["skipped"]) for r in rows} == {
        ("iris-classifier", 1, True),
        ("iris-classifier", 2, True),
        ("doubler", 1, True),
    }
    assert git(imported.root, "rev-parse", "HEAD") == before

    from mlflow import MlflowClient

    MlflowClient(mlflow_uri).set_registered_model_alias("Iris Classifier", "Champion", "2")
    result = mreg(
        imported.root, "import", "mlflow", "--tracking-uri", mlflow_uri, "Iris Classifier"
    )
    assert result.exit_code == 0, result.output
    assert git(imported.root, "log", "--format=%s", f"{before}..HEAD") == (
        "iris-classifier: move champion v1 -> v2"
    )
    assert imported.resolve("iris-classifier:champion").version.version == 2


@pytest.mark.slow
def test_imported_models_are_served(imported: Registry) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    expected = LogisticRegression(C=1.0, max_iter=500).fit(X, y).predict([SETOSA, VIRGINICA])
    with TestClient(app=create_app(imported)) as c:
        r = c.post("/v1/models/iris-classifier/invoke", json={"inputs": [SETOSA, VIRGINICA]})
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["outputs"]) == (2, expected.tolist())
        r = c.post("/v1/models/doubler/invoke", json={"inputs": [[1, 2], [0.5, 0.25]]})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"] == [6.0, 1.5]


@pytest.mark.slow
def test_the_mlflow_format_without_mlflow_is_a_503_naming_the_extra(
    imported: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` fails as if absent
    with TestClient(app=create_app(imported)) as c:
        r = c.post("/v1/models/doubler/invoke", json={"data": [1, 2]})
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "loader_error"
    assert "install mreg[mlflow]" in error["message"]


@pytest.mark.slow
def test_an_unknown_mlflow_model_is_one_error_line(mlflow_uri: str, tmp_path: Path) -> None:
    reg = Registry.init(tmp_path / "reg")
    before = git(reg.root, "rev-parse", "HEAD")
    result = mreg(reg.root, "import", "mlflow", "--tracking-uri", mlflow_uri, "No Such Model")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "No Such Model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert git(reg.root, "rev-parse", "HEAD") == before


@pytest.mark.slow
def test_an_mlflow_model_directory_registers_as_one_mlflow_file(tmp_path: Path) -> None:
    import mlflow.pyfunc

    code = tmp_path / "doubler.py"
    code.write_text(DOUBLER)
    folder = tmp_path / "doubler-model"
    mlflow.pyfunc.save_model(str(folder), python_model=str(code), pip_requirements=["numpy"])
    reg = Registry.init(tmp_path / "reg", trusted_formats=ALL_FORMATS)
    for _ in range(2):
        result = mreg(reg.root, "register", "doubler", str(folder), "--create")
        assert result.exit_code == 0, result.output
    v1, v2 = reg.snapshot("HEAD").versions("doubler")
    assert v1.artifact is not None and v2.artifact is not None
    assert (v1.artifact.format, v1.artifact.path) == ("mlflow", "artifacts/v1/doubler-model.mlflow")
    assert v1.artifact.md5 == v2.artifact.md5  # the same directory packs to the same bytes
    with TestClient(app=create_app(reg)) as c:
        r = c.post("/v1/models/doubler/invoke", json={"data": [2, 3]})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"] == [10.0]

    plain = tmp_path / "plain-folder"
    plain.mkdir()
    result = mreg(reg.root, "register", "doubler", str(plain))
    assert result.exit_code == 1
    assert result.stderr == f"error: artifact {plain} is not a file\n"


HOSTILE = textwrap.dedent(
    """
    import sys
    import mlflow
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    uri, artifacts = sys.argv[1:3]
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("hostile", artifact_location=artifacts)
    X, y = load_iris(return_X_y=True)
    with mlflow.start_run(experiment_id=exp):
        mlflow.sklearn.log_model(
            LogisticRegression(max_iter=500).fit(X, y),
            name="model",
            registered_model_name="Hostile",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    """
)


class Hostile:
    """Unpickling this creates the file `target` (a stand-in for any code)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.target), "w"))


@pytest.mark.slow
def test_importing_a_hostile_pickle_runs_nothing(tmp_path: Path) -> None:
    """A store whose sklearn model.pkl was replaced: imported as `mlflow`, never unpickled."""
    import pickle

    store = tmp_path / "mlflow"
    store.mkdir()
    uri = f"sqlite:///{store}/mlflow.db"
    subprocess.run(
        [sys.executable, "-c", HOSTILE, uri, (store / "artifacts").as_uri()],
        check=True,
        capture_output=True,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    marker = tmp_path / "pwned"
    pickles = list((store / "artifacts").rglob("model.pkl"))
    assert pickles, "MLflow stored no model.pkl"
    for path in pickles:
        path.write_bytes(pickle.dumps(Hostile(marker)))

    reg = Registry.init(tmp_path / "reg")
    result = mreg(reg.root, "import", "mlflow", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    (version,) = reg.snapshot("HEAD").versions("hostile")
    assert version.artifact is not None and version.artifact.format == "mlflow"
    with TestClient(app=create_app(reg)) as c:  # mlflow is not a trusted format here
        r = c.post("/v1/models/hostile/invoke", json={"data": SETOSA})
    assert r.status_code == 503, r.text
    assert "trusted_formats" in r.json()["error"]["message"]
    assert not marker.exists()
    result = mreg(reg.root, "validate")
    assert result.exit_code == 1 and "untrusted-format" in result.output


def test_the_pickle_audit_reads_globals_without_running_anything(tmp_path: Path) -> None:
    import pickle

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from registry.pickle_audit import load_trusted, untrusted_globals

    marker = tmp_path / "pwned"
    assert untrusted_globals(pickle.dumps(Hostile(marker))) == [f"{open.__module__}.open"]
    path = tmp_path / "hostile.pkl"
    path.write_bytes(pickle.dumps(Hostile(marker)))
    with pytest.raises(LoaderError, match="untrusted globals"):
        load_trusted(path)
    assert not marker.exists()
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    path.write_bytes(pickle.dumps(model))
    assert untrusted_globals(path.read_bytes()) == []
    assert load_trusted(path).predict(x[:2]).tolist() == model.predict(x[:2]).tolist()
