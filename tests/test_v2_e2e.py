"""`mreg serve` on the project's example registry, called by an unmodified third-party client.

The client is NVIDIA's `tritonclient[http]` (the Open Inference Protocol's
reference client), used as its documentation shows: binary tensors by
default, JSON on request, errors as InferenceServerException.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import isolated_env
from tests.processes import MREG, ROOT, serving
from tests.server_fixtures import SETOSA, VIRGINICA

ENV = {"PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of this project (its example registry) with the artifacts the tests use pulled."""
    clone = tmp_path_factory.mktemp("examples") / "mreg"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    pulled = subprocess.run(
        [*MREG, "--repo", str(clone), "pull", "iris", "iris:prod", "digits-onnx"],
        capture_output=True,
        text=True,
        cwd=ROOT,  # not the clone: its own copy of the code must not shadow this one
        env={**os.environ, **ENV},
    )
    assert pulled.returncode == 0, pulled.stderr
    # Every example model is trained: one that is not yet, for the 409 a client sees.
    home = tmp_path_factory.mktemp("home")
    registered = subprocess.run(
        [*MREG, "--repo", str(clone), "register", "churn", "--untrained", "--create"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **ENV, **isolated_env(home)},
    )
    assert registered.returncode == 0, registered.stderr
    return clone


@pytest.fixture(scope="module")
def url(examples: Path) -> Iterator[str]:
    with serving(examples, cwd=ROOT, timeout=60) as process:
        yield f"127.0.0.1:{process.port}"


@pytest.fixture
def client(url: str) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(url=url)
    yield c
    c.close()


def fp32(rows: list[list[float]], *, binary: bool = True, name: str = "input") -> triton.InferInput:
    data = np.asarray(rows, dtype=np.float32)
    tensor = triton.InferInput(name, list(data.shape), "FP32")
    tensor.set_data_from_numpy(data, binary_data=binary)
    return tensor


@pytest.mark.slow
def test_health_and_metadata(client: triton.InferenceServerClient, examples: Path) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris:prod")
    assert client.is_model_ready("iris", model_version="3")
    meta = client.get_model_metadata("iris:prod")
    assert meta["name"] == "iris"
    assert meta["versions"] == ["1", "2", "3"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "confidence"]
    assert meta["parameters"]["version"] == "2"  # prod -> v2 in the example registry
    assert meta["parameters"]["feature_names"] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_iris(client: triton.InferenceServerClient, binary: bool) -> None:
    outputs = [
        triton.InferRequestedOutput("label", binary_data=binary),
        triton.InferRequestedOutput("confidence", binary_data=binary),
    ]
    result = client.infer("iris:prod", [fp32([SETOSA, VIRGINICA], binary=binary)], outputs=outputs)
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == ["setosa", "virginica"]
    confidence = result.as_numpy("confidence")
    assert confidence.shape == (2,) and ((confidence > 0.5) & (confidence <= 1.0)).all()
    response = result.get_response()
    assert response["model_name"] == "iris"
    assert response["model_version"] == "2"
    # The client's defaults (binary in, binary out) against the latest version, v3:
    latest = client.infer("iris", [fp32([VIRGINICA])])
    assert latest.as_numpy("label").tolist() == [b"virginica"]
    assert latest.get_response()["model_version"] == "3"


@pytest.mark.slow
def test_infer_onnx_digits(client: triton.InferenceServerClient) -> None:
    from sklearn.datasets import load_digits

    images, truth = load_digits(return_X_y=True)
    result = client.infer("digits-onnx", [fp32(images[:50].tolist())])
    predicted = [int(v) for v in result.as_numpy("label")]
    assert sum(p == t for p, t in zip(predicted, truth[:50], strict=True)) >= 45
    assert result.get_response()["parameters"]["model_id"] == "mv_d860c4af4cfa91ef"


@pytest.mark.slow
def test_errors_reach_the_client_as_one_message(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as missing:
        client.infer("nope", [fp32([SETOSA])])
    assert missing.value.status() == "404"
    assert missing.value.message() == "model 'nope' not found at HEAD"
    with pytest.raises(InferenceServerException) as untrained:
        client.get_model_metadata("churn")
    assert untrained.value.status() == "409"
    assert "no trained" in str(untrained.value.message())
    with pytest.raises(InferenceServerException) as rejected:
        client.infer("iris", [fp32([[1.0, 2.0]])])
    assert rejected.value.status() == "422"
    assert str(rejected.value.message()).startswith("the model rejected the input")


@pytest.mark.slow
def test_the_readme_example_prints_what_it_says(url: str) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Open Inference Protocol (KServe V2).**") :]
    code = section[section.index("```python\n") + 10 : section.index("\n```", 10)]
    expected = [line[2:] for line in code.splitlines() if line.startswith("# ")]
    run = subprocess.run(
        [sys.executable, "-c", code.replace("127.0.0.1:8000", url)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == expected
