"""Artifact formats: their names, the file suffixes that imply them, and the library each implies."""

from __future__ import annotations

import os
import zipfile
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

# The file name an artifact gets when only its format is given.
FORMAT_FILES = {
    "skops": "model.skops",
    "joblib": "model.joblib",
    "pickle": "model.pkl",
    "onnx": "model.onnx",
    "torchscript": "model.pt",
    "keras": "model.keras",
    "h5": "model.h5",
    "mlflow": "model.mlflow",
}
# An artifact's file name: one of the suffixes that name a format.
FILENAME_PATTERN = (
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}\.("
    + "|".join(suffix[1:] for suffix in SUFFIX_FORMATS)
    + ")$"
)

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


def is_mlflow_dir(path: str | os.PathLike[str]) -> bool:
    """A directory holding an MLflow model (its MLmodel file)."""
    return Path(path).is_dir() and (Path(path) / "MLmodel").is_file()


def pack_mlflow_dir(folder: Path, target: Path) -> Path:
    """An MLflow model directory as one zip file (the `mlflow` format).

    The same directory always packs to the same bytes (sorted entries, fixed
    times and modes), so registering it again gives the same md5.
    """
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), (1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes())
    return target
