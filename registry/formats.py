"""Artifact formats: their names, the file suffixes that imply them, and the library each implies."""

from __future__ import annotations

import os
from pathlib import Path

# Format names accepted in a version's `artifact.format`, and their aliases.
FORMAT_ALIASES = {
    "skops": "skops",
    "joblib": "joblib",
    "pickle": "pickle",
    "pkl": "pickle",
    "onnx": "onnx",
    "torchscript": "torchscript",
    "pt": "torchscript",
    "keras": "keras",
    "h5": "h5",
    "hdf5": "h5",
    "mlflow": "mlflow",
}

FORMATS = tuple(sorted(set(FORMAT_ALIASES.values())))

# The file's suffix names its format when the user or the manifest does not.
SUFFIX_FORMATS = {
    ".skops": "skops",
    ".joblib": "joblib",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".onnx": "onnx",
    ".pt": "torchscript",
    ".pth": "torchscript",
    ".torchscript": "torchscript",
    ".keras": "keras",
    ".h5": "h5",
    ".mlflow": "mlflow",  # an MLflow model directory (with its MLmodel file), zipped
}

# The library a format implies when neither the user nor the model names one.
FORMAT_LIBRARIES = {
    "skops": "sklearn",
    "joblib": "sklearn",
    "pickle": "sklearn",
    "onnx": "onnx",
    "torchscript": "pytorch",
    "keras": "keras",
    "h5": "keras",
    "mlflow": "mlflow",
}


def infer_format(path: str | os.PathLike[str]) -> str | None:
    return SUFFIX_FORMATS.get(Path(path).suffix.lower())


def infer_library(fmt: str) -> str | None:
    return FORMAT_LIBRARIES.get(fmt)
