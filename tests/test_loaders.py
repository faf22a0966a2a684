"""registry.loaders: every supported format loads, predicts, labels, and rejects bad input as 422."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from registry import InvalidInputError, LoaderError, artifact_format, load_model, predict
from tests.server_fixtures import FORMATS, LABELS, SETOSA, VIRGINICA

pytest_plugins = ["tests.server_fixtures"]


def double(x: object) -> object:
    return x


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_predicts_labels(model_files: dict[str, Path], fmt: str) -> None:
    model = load_model(model_files[fmt], fmt)
    outputs = predict(model, [SETOSA, VIRGINICA], LABELS)
    assert [o["label"] for o in outputs] == ["setosa", "virginica"]
    assert all(0.5 < o["confidence"] <= 1.0 for o in outputs)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_rejects_a_wrong_shape_as_invalid_input(
    model_files: dict[str, Path], fmt: str
) -> None:
    model = load_model(model_files[fmt], fmt)
    with pytest.raises(InvalidInputError) as info:
        predict(model, [[1.0, 2.0]], LABELS)
    assert info.value.status == 422
    assert "the model rejected the input" in str(info.value)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_format_is_taken_from_the_suffix_when_not_given(
    model_files: dict[str, Path], fmt: str
) -> None:
    assert artifact_format(None, model_files[fmt]) == fmt
    assert load_model(model_files[fmt]).format == fmt


@pytest.mark.parametrize("fmt", ["keras", "h5", "onnx", "skops"])
def test_a_file_named_by_md5_alone_loads(
    model_files: dict[str, Path], tmp_path: Path, fmt: str
) -> None:
    """The DVC cache names files by md5 without a suffix; the manifest's format decides."""
    bare = tmp_path / "0123456789abcdef"
    bare.write_bytes(model_files[fmt].read_bytes())
    assert predict(load_model(bare, fmt), [SETOSA], LABELS)[0]["label"] == "setosa"


def test_without_labels_outputs_are_raw_predictions(model_files: dict[str, Path]) -> None:
    assert predict(load_model(model_files["joblib"]), [SETOSA, VIRGINICA]) == [0, 2]
    scores = predict(load_model(model_files["torchscript"]), [SETOSA])
    assert len(scores) == 1 and len(scores[0]) == 3


def test_labels_as_a_map(model_files: dict[str, Path]) -> None:
    labels = {"0": "s", "1": "ve", "2": "vi"}
    outputs = predict(load_model(model_files["skops"]), [SETOSA], labels)
    assert outputs[0]["label"] == "s"


def test_non_numeric_input_is_invalid_input(model_files: dict[str, Path]) -> None:
    with pytest.raises(InvalidInputError):
        predict(load_model(model_files["skops"]), [["a", "b", "c", "d"]], LABELS)
    with pytest.raises(InvalidInputError):
        predict(load_model(model_files["onnx"]), [[1.0, [2.0], 3.0]], LABELS)


def test_skops_refuses_types_outside_the_trusted_libraries(tmp_path: Path) -> None:
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "custom.skops"
    skops.io.dump(FunctionTransformer(double), path)
    with pytest.raises(LoaderError) as info:
        load_model(path)
    assert "tests.test_loaders.double" in str(info.value)
    assert "joblib" in str(info.value)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [("parquet", "unsupported artifact format 'parquet'"), (None, "cannot tell the format")],
)
def test_unknown_formats_are_loader_errors(tmp_path: Path, fmt: str | None, message: str) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(LoaderError, match=message):
        load_model(path, fmt)


def test_a_corrupt_file_is_a_loader_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not an onnx model")
    with pytest.raises(LoaderError, match=r"cannot load broken\.onnx as onnx") as info:
        load_model(path)
    assert info.value.status == 503


def test_a_missing_file_is_a_loader_error(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="does not exist"):
        load_model(tmp_path / "gone.joblib")


def test_a_pickle_without_a_model_is_a_loader_error(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(LoaderError, match=r"m\.pkl holds a dict, not a model with predict\(\)"):
        load_model(path)


def test_importing_registry_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, registry; "
        "print(sorted(m for m in ('torch', 'keras', 'onnxruntime', 'skops', 'dvc') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
