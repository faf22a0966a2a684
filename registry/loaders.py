"""Model loaders: turn an artifact file into something that predicts, by library and format.

Formats: scikit-learn as ``skops`` (default), ``joblib`` or ``pickle``; ``onnx``
(onnxruntime); ``torchscript`` (``torch.jit.load``); Keras 3 ``keras`` and the
legacy ``h5``. Heavy libraries are imported on first use, so a server that
only serves scikit-learn never imports torch.

Trust: see `registry.format_policy` (which formats run code) and `registry.skops_trust`.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InvalidInputError, LoaderError
from registry.format_policy import check_loadable
from registry.formats import FORMAT_ALIASES, FORMATS, SUFFIX_FORMATS
from registry.skops_trust import SKOPS_TRUSTED_TYPES
from registry.tree_checks import check_trees

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


class LoadedModel:
    """A model ready to predict on a batch of inputs (one list item per input)."""

    library: str
    format: str

    def __init__(self, library: str, fmt: str, path: Path) -> None:
        self.library = library
        self.format = fmt
        self.path = path

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        """Raw predictions, one per input, as JSON-ready values."""
        raise NotImplementedError

    def scores(self, inputs: Sequence[Any]) -> tuple[list[Any], np.ndarray] | None:
        """(class of each column, class scores per input), or None when the model has none."""
        return None


def _as_array(inputs: Sequence[Any], dtype: Any = None) -> np.ndarray:
    try:
        return np.asarray(inputs, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"input is not a rectangular array of numbers: {exc}") from None


def _jsonable(values: np.ndarray | Sequence[Any]) -> list[Any]:
    if isinstance(values, np.ndarray) and values.dtype != object:
        out: list[Any] = values.tolist()  # plain Python values already
        return out
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return [v.item() if isinstance(v, np.generic) else v for v in items]


def _bad_input(exc: Exception) -> InvalidInputError:
    # Torch and Keras wrap the useful line (shapes that do not match) in a long report.
    text = _ANSI_RE.sub("", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    shaped = [line for line in lines if "shape" in line.lower() or "dimension" in line.lower()]
    message = shaped[0] if shaped else (" ".join(lines) or type(exc).__name__)
    return InvalidInputError(f"the model rejected the input: {message[:500]}")


class SklearnModel(LoadedModel):
    def __init__(self, estimator: Any, fmt: str, path: Path) -> None:
        super().__init__("sklearn", fmt, path)
        if not callable(getattr(estimator, "predict", None)):
            raise LoaderError(
                f"{path.name} holds a {type(estimator).__name__}, not a model with predict()"
            )
        self.estimator = estimator
        self._has_proba = hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        x = _as_array(inputs)
        try:
            return _jsonable(self.estimator.predict(x))
        except (ValueError, TypeError, IndexError, AttributeError) as exc:
            raise _bad_input(exc) from None

    def scores(self, inputs: Sequence[Any]) -> tuple[list[Any], np.ndarray] | None:
        if not self._has_proba:
            return None
        x = _as_array(inputs)
        try:
            proba = self.estimator.predict_proba(x)
        except (ValueError, TypeError, IndexError) as exc:
            raise _bad_input(exc) from None
        except AttributeError:
            # e.g. SVC(probability=False): hasattr passes, the call does not
            self._has_proba = False
            return None
        return _jsonable(self.estimator.classes_), np.asarray(proba)


class OnnxModel(LoadedModel):
    def __init__(self, session: Any, path: Path) -> None:
        super().__init__("onnx", "onnx", path)
        self.session = session
        first = session.get_inputs()[0]
        self.input_name = first.name
        self.dtype = np.int64 if "int64" in first.type else np.float32
        self.output_names = [o.name for o in session.get_outputs()]

    def _run(self, inputs: Sequence[Any]) -> list[Any]:
        x = _as_array(inputs, self.dtype)
        try:
            return list(self.session.run(None, {self.input_name: x}))
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise _bad_input(exc) from None

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        return _jsonable(np.asarray(self._run(inputs)[0]))

    def scores(self, inputs: Sequence[Any]) -> tuple[list[Any], np.ndarray] | None:
        outputs = self._run(inputs)
        # skl2onnx classifiers: [label, probabilities] (zipmap=False gives an array)
        if len(outputs) >= 2 and isinstance(outputs[1], np.ndarray) and outputs[1].ndim == 2:
            return list(range(outputs[1].shape[1])), outputs[1]
        first = outputs[0]
        if isinstance(first, np.ndarray) and first.ndim == 2 and first.dtype.kind == "f":
            return list(range(first.shape[1])), _probabilities(first)
        return None


class TorchModel(LoadedModel):
    def __init__(self, module: Any, path: Path) -> None:
        super().__init__("pytorch", "torchscript", path)
        self.module = module

    def _forward(self, inputs: Sequence[Any]) -> np.ndarray:
        import torch

        x = torch.from_numpy(_as_array(inputs, np.float32))
        try:
            with torch.inference_mode():
                y = self.module(x)
        except Exception as exc:  # TorchScript raises torch.jit.Error / RuntimeError
            raise _bad_input(exc) from None
        return np.asarray(y.detach().cpu().numpy())

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        return _jsonable(self._forward(inputs))

    def scores(self, inputs: Sequence[Any]) -> tuple[list[Any], np.ndarray] | None:
        y = self._forward(inputs)
        if y.ndim != 2 or y.dtype.kind != "f":
            return None
        return list(range(y.shape[1])), _probabilities(y)


class KerasModel(LoadedModel):
    def __init__(self, model: Any, fmt: str, path: Path) -> None:
        super().__init__("keras", fmt, path)
        self.model = model

    def _forward(self, inputs: Sequence[Any]) -> np.ndarray:
        import keras

        x = _as_array(inputs, np.float32)
        try:
            # Calling the model skips predict()'s per-call data pipeline setup.
            y = self.model(x, training=False)
        except Exception as exc:  # the backend's own errors (ValueError, RuntimeError)
            raise _bad_input(exc) from None
        return np.asarray(keras.ops.convert_to_numpy(y))

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        return _jsonable(self._forward(inputs))

    def scores(self, inputs: Sequence[Any]) -> tuple[list[Any], np.ndarray] | None:
        y = self._forward(inputs)
        if y.ndim != 2 or y.dtype.kind != "f":
            return None
        return list(range(y.shape[1])), _probabilities(y)


def _probabilities(y: np.ndarray) -> np.ndarray:
    """Scores as probabilities: kept when each row already is one, else softmax."""
    if y.size and (y >= 0).all() and np.allclose(y.sum(axis=1), 1.0, atol=1e-3):
        return y
    z = np.exp(y - y.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True))


# -- loading ---------------------------------------------------------------


def artifact_format(fmt: str | None, path: Path) -> str:
    """The canonical format name of an artifact (manifest `format`, else its file suffix)."""
    if fmt:
        canonical = FORMAT_ALIASES.get(fmt.lower())
        if canonical is None:
            raise LoaderError(
                f"unsupported artifact format {fmt!r}: expected one of {', '.join(FORMATS)}"
            )
        return canonical
    canonical = SUFFIX_FORMATS.get(path.suffix.lower())
    if canonical is None:
        raise LoaderError(f"cannot tell the format of {path.name}: set artifact.format")
    return canonical


def _load_skops(path: Path) -> LoadedModel:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = sorted(set(untrusted) - SKOPS_TRUSTED_TYPES)
    if refused:
        raise LoaderError(
            f"{path.name}: skops file names functions or types outside the types mreg trusts"
            f" (scikit-learn, NumPy and SciPy classes): {', '.join(refused)};"
            " store the model as joblib if you trust it",
            detail={"untrusted_types": refused},
        )
    estimator = skops.io.load(path, trusted=untrusted)
    return SklearnModel(check_trees(estimator, path.name), "skops", path)


def _load_joblib(path: Path) -> LoadedModel:
    import joblib

    return SklearnModel(joblib.load(path), "joblib", path)


def _load_pickle(path: Path) -> LoadedModel:
    with path.open("rb") as f:
        return SklearnModel(pickle.load(f), "pickle", path)


def _load_onnx(path: Path) -> LoadedModel:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One request is one small batch: thread pools cost more than they give.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return OnnxModel(session, path)


def _load_torchscript(path: Path) -> LoadedModel:
    import torch

    module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    module.eval()
    return TorchModel(module, path)


def _load_keras(path: Path, fmt: str) -> LoadedModel:
    # TensorFlow is not a dependency: Keras 3 runs on the torch backend unless told otherwise.
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    suffix = ".keras" if fmt == "keras" else ".h5"
    if path.suffix == suffix:
        return KerasModel(keras.saving.load_model(str(path), compile=False), fmt, path)
    # Keras decides the format by the file name; the DVC cache names files by md5 alone.
    with tempfile.TemporaryDirectory(prefix="mreg-keras-") as tmp:
        link = Path(tmp) / f"model{suffix}"
        link.symlink_to(path.resolve())
        model = keras.saving.load_model(str(link), compile=False)
    return KerasModel(model, fmt, path)


class MlflowModel(LoadedModel):
    """An MLflow model (format `mlflow`) served through `mlflow.pyfunc`."""

    def __init__(self, pyfunc: Any, workdir: tempfile.TemporaryDirectory[str], path: Path) -> None:
        super().__init__("mlflow", "mlflow", path)
        from mlflow.exceptions import MlflowException

        self.model = pyfunc
        self._workdir = workdir  # the unpacked model directory lives as long as the model
        self._errors = (MlflowException, ValueError, TypeError, IndexError, KeyError)
        schema = pyfunc.metadata.get_input_schema()
        self._columns = (
            schema.input_names() if schema is not None and schema.has_input_names() else None
        )

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        x: Any = _as_array(inputs)
        if self._columns is not None:
            import pandas

            x = pandas.DataFrame(x, columns=self._columns)
        try:
            return _jsonable(np.asarray(self.model.predict(x)))
        except self._errors as exc:
            raise _bad_input(exc) from None


def _load_mlflow(path: Path) -> LoadedModel:
    """A zipped MLflow model directory: unpacked to a temporary directory, loaded with pyfunc."""
    import zipfile

    try:
        import mlflow.pyfunc
    except ImportError:
        raise LoaderError(
            f"{path.name} is an MLflow model: serving it needs MLflow, install mreg[mlflow]",
            detail={"missing_extra": "mlflow"},
        ) from None
    workdir = tempfile.TemporaryDirectory(prefix="mreg-mlflow-")
    with zipfile.ZipFile(path) as z:
        z.extractall(workdir.name)
    if not (Path(workdir.name) / "MLmodel").is_file():
        workdir.cleanup()
        raise LoaderError(f"{path.name} is not an MLflow model archive: it has no MLmodel file")
    return MlflowModel(mlflow.pyfunc.load_model(workdir.name), workdir, path)


_LOADERS: dict[str, Callable[[Path], LoadedModel]] = {
    "skops": _load_skops,
    "joblib": _load_joblib,
    "pickle": _load_pickle,
    "onnx": _load_onnx,
    "torchscript": _load_torchscript,
    "keras": lambda p: _load_keras(p, "keras"),
    "h5": lambda p: _load_keras(p, "h5"),
    "mlflow": _load_mlflow,
}


def load_model(
    path: str | os.PathLike[str], fmt: str | None = None, trusted: Iterable[str] | None = None
) -> LoadedModel:
    """Load the artifact at `path` as format `fmt` (default: its suffix), if `trusted` lists it.

    Raises LoaderError when the file cannot be loaded (its message names the file).
    """
    p = Path(path)
    canonical = artifact_format(fmt, p)
    if trusted is not None:
        check_loadable(canonical, trusted, p.name)
    if not p.is_file():
        raise LoaderError(f"artifact {p} does not exist")
    try:
        return _LOADERS[canonical](p)
    except LoaderError:
        raise
    except ImportError as exc:
        raise LoaderError(
            f"cannot load {p.name} as {canonical}: {exc.name or exc} is not installed"
            " (install mreg[onnx], mreg[torch] or mreg[keras])"
        ) from None
    except Exception as exc:  # every library has its own error types for a bad file
        raise LoaderError(f"cannot load {p.name} as {canonical}: {exc}") from None


def predict(
    model: LoadedModel, inputs: Sequence[Any], labels: Sequence[Any] | dict[str, Any] | None = None
) -> list[Any]:
    """One output per input: `{"label", "confidence"}` for a classifier given `labels`, else raw.

    `labels` (a version's `output_info.labels`) names classes: a list indexed
    by class number, or a map from class value to name.
    """
    if not inputs:
        return []
    if labels:
        scored = model.scores(inputs)
        if scored is not None:
            classes, proba = scored
            best = proba.argmax(axis=1)
            return [
                {"label": _label(classes[i], labels), "confidence": _confidence(proba[row, i])}
                for row, i in enumerate(best.tolist())
            ]
        return [{"label": _label(p, labels), "confidence": None} for p in model.predict(inputs)]
    return model.predict(inputs)


def _label(value: Any, labels: Sequence[Any] | dict[str, Any]) -> Any:
    if isinstance(labels, dict):
        return labels.get(str(value), value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    index = int(value)
    return labels[index] if index == value and 0 <= index < len(labels) else value


def _confidence(p: Any) -> float | None:
    value = float(p)
    return None if math.isnan(value) else round(value, 6)
