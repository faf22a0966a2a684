"""The MLServer runtime: `mreg export mlserver`, then the real `mlserver start` serves the models
and tritonclient gets the same answers from it as from `mreg serve` of the same registry.

MLServer runs from its own venv (tests/mlserver_venv.py, built once and reused;
the test fails if it cannot be built). One MLServer and one `mreg serve` per module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from click.testing import CliRunner
from sklearn.datasets import load_digits
from tritonclient.utils import InferenceServerException

from tests.conftest import apply_isolation
from tests.mlserver_process import MLServerProcess
from tests.processes import ServeProcess
from tests.showcase import Showcase, copy_showcase, default_trust
from tool.cli import cli

DIGITS = load_digits().data[:3].astype(np.float64)
IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])


@dataclass
class Engines:
    show: Showcase
    repo: Path
    mlserver: MLServerProcess
    mreg: ServeProcess


def register_regressor(show: Showcase, tmp: Path) -> None:
    """A model without labels: its V2 output is the raw `output` tensor."""
    import skops.io
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    path = tmp / "diabetes.skops"
    skops.io.dump(Ridge(alpha=0.5).fit(x, y), path)
    show.registry().register("diabetes", path, create=True)


def register_onnx(show: Showcase, tmp: Path) -> None:
    """An ONNX classifier (skl2onnx) with labels: another format, another loader."""
    from examples.train import digits_onnx

    made = digits_onnx(tmp, {"C": 0.1, "max_iter": 2000})
    show.registry().register(
        "digits-onnx",
        made["path"],
        create=True,
        input_info=made["input_info"],
        output_info=made["output_info"],
    )


@pytest.fixture(scope="module")
def engines(
    showcase_template: Showcase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engines]:
    with pytest.MonkeyPatch.context() as mp:
        apply_isolation(mp, tmp_path_factory.mktemp("home"))
        tmp = tmp_path_factory.mktemp("engines")
        show = copy_showcase(showcase_template, tmp / "registry")
        default_trust(show.root)  # churn's joblib version is untrusted, as in a new registry
        register_regressor(show, tmp)
        register_onnx(show, tmp)
        repo = tmp / "mlserver-models"
        result = CliRunner().invoke(
            cli,
            [
                *("--repo", str(show.root), "export", "mlserver", str(repo)),
                "iris:prod",
                "iris:staging",
                "diabetes",
                "digits-onnx",
            ],
        )
        assert result.exit_code == 0, result.output
        ml = MLServerProcess(repo)
        mreg = ServeProcess(show.root)
        try:
            mreg.wait_ready()
            ml.wait_ready()
            yield Engines(show, repo, ml, mreg)
        finally:
            ml.stop()
            mreg.stop()


def client(url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=url.removeprefix("http://"))


def infer(
    url: str, model: str, inputs: dict[str, np.ndarray], version: str = ""
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    tensors = []
    for name, array in inputs.items():
        tensor = triton.InferInput(name, list(array.shape), "FP64")
        tensor.set_data_from_numpy(array, binary_data=False)  # MLServer's REST takes JSON only
        tensors.append(tensor)
    result = client(url).infer(model, tensors, model_version=version)
    response = result.get_response()
    values = {o["name"]: _text(result.as_numpy(o["name"]).tolist()) for o in response["outputs"]}
    return response, values


def _text(values: list[Any]) -> list[Any]:
    # tritonclient asks for binary outputs by default: mreg serve sends them (BYTES arrive as
    # bytes), MLServer's REST sends JSON only (BYTES arrive as str). The values are the same.
    return [v.decode() if isinstance(v, bytes) else v for v in values]


@pytest.mark.parametrize(
    ("model", "version", "inputs"),
    [
        ("iris", "", {"input": IRIS}),  # the default version: the highest, v3
        ("iris", "2", {"input": IRIS}),
        ("iris", "3", {"input": IRIS[:1]}),
        ("diabetes", "", {"input": np.linspace(-0.05, 0.05, 20).reshape(2, 10)}),
        ("digits-onnx", "1", {"input": DIGITS}),
    ],
)
def test_mlserver_answers_as_mreg_serve(
    engines: Engines, model: str, version: str, inputs: dict[str, np.ndarray]
) -> None:
    ml, ml_values = infer(engines.mlserver.url, model, inputs, version)
    ours, our_values = infer(engines.mreg.url, model, inputs, version)
    assert ml["model_name"] == ours["model_name"] == model
    assert ml["model_version"] == ours["model_version"]
    assert ml["parameters"]["model_id"] == ours["parameters"]["model_id"]
    assert [(o["name"], o["datatype"], o["shape"]) for o in ml["outputs"]] == [
        (o["name"], o["datatype"], o["shape"]) for o in ours["outputs"]
    ]
    assert ml_values == our_values
    if model == "digits-onnx":
        assert ml_values["label"] == ["0", "1", "2"]
    elif model == "iris":
        assert set(ml_values) == {"label", "confidence"}
        assert all(label in ("setosa", "versicolor", "virginica") for label in ml_values["label"])
    else:
        assert list(ml_values) == ["output"]


def test_requested_outputs_in_json(engines: Engines) -> None:
    answers = []
    for url in (engines.mlserver.url, engines.mreg.url):
        tensor = triton.InferInput("input", [3, 4], "FP64")
        tensor.set_data_from_numpy(IRIS, binary_data=False)
        wanted = [triton.InferRequestedOutput("label", binary_data=False)]
        result = client(url).infer("iris", [tensor], model_version="2", outputs=wanted)
        answers.append(result.get_response()["outputs"])
    assert answers[0] == answers[1]
    assert answers[0][0]["data"] == ["setosa", "virginica", "versicolor"]


def test_the_default_version_is_the_newest_on_both(engines: Engines) -> None:
    ml, _ = infer(engines.mlserver.url, "iris", {"input": IRIS})
    assert ml["model_version"] == "3"
    assert ml["parameters"]["model_id"] == engines.show.ids["iris:v3"]


def test_one_tensor_per_feature(engines: Engines) -> None:
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    columns = {name: IRIS[:, i].copy() for i, name in enumerate(names)}
    _, ml_values = infer(engines.mlserver.url, "iris", columns, "2")
    _, our_values = infer(engines.mreg.url, "iris", columns, "2")
    assert ml_values == our_values
    _, whole = infer(engines.mlserver.url, "iris", {"input": IRIS}, "2")
    assert ml_values == whole


def test_metadata_names_the_same_outputs(engines: Engines) -> None:
    ml = client(engines.mlserver.url).get_model_metadata("iris")
    ours = client(engines.mreg.url).get_model_metadata("iris")
    assert [(o["name"], o["datatype"]) for o in ml["outputs"]] == [
        (o["name"], o["datatype"]) for o in ours["outputs"]
    ]
    assert ml["inputs"][0]["shape"] == [-1, 4]


def test_a_wrong_input_is_an_error_on_both(engines: Engines) -> None:
    for url in (engines.mlserver.url, engines.mreg.url):
        with pytest.raises(InferenceServerException) as caught:
            infer(url, "iris", {"input": IRIS[:, :3]}, "2")
        assert caught.value.status() in ("400", "422"), url


def test_the_repository_layout(engines: Engines) -> None:
    settings = json.loads((engines.repo / "iris" / "2" / "model-settings.json").read_text())
    assert settings == {
        "name": "iris",
        "implementation": "server.mlserver.runtime.MregModel",
        "parameters": {"uri": ".", "version": "2"},
    }
    meta = json.loads((engines.repo / "iris" / "2" / ".mreg.json").read_text())
    assert meta["id"] == engines.show.ids["iris:v2"]
    index = engines.mlserver.post("/v2/repository/index", json={}).json()
    assert sorted((m["name"], m["version"], m["state"]) for m in index) == [
        ("diabetes", "1", "READY"),
        ("digits-onnx", "1", "READY"),
        ("iris", "2", "READY"),
        ("iris", "3", "READY"),
    ]


def test_export_again_keeps_what_is_there(engines: Engines) -> None:
    result = CliRunner().invoke(
        cli,
        [
            *("--repo", str(engines.show.root), "export", "mlserver"),
            str(engines.repo),
            "iris:prod",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    (done,) = json.loads(result.output)
    assert done["version"] == 2 and done["written"] is False


def test_export_refuses_a_format_the_registry_does_not_trust(
    engines: Engines, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        ["--repo", str(engines.show.root), "export", "mlserver", str(tmp_path / "out"), "churn"],
    )
    assert result.exit_code == 1
    assert "churn:v1 is a joblib artifact, which runs code when loaded" in result.output
    assert not (tmp_path / "out" / "churn").exists()


def test_export_without_refs_takes_every_trusted_latest(engines: Engines, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--repo", str(engines.show.root), "export", "mlserver", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    # churn's latest is joblib (not trusted), legacy is archived
    assert [(d["model"], d["version"]) for d in json.loads(result.output)] == [
        ("diabetes", 1),
        ("digits-onnx", 1),
        ("iris", 3),
    ]
