"""Open Inference Protocol (V2) tensors of mreg's outputs: one meaning for every V2 server.

`mreg serve`'s /v2 and the MLServer runtime (server/mlserver) answer with the
same tensors: `label` (BYTES) and `confidence` (FP64) for a classifier whose
version has `output_info.labels`, else `output`. Inputs are one tensor of
shape [batch, ...], or one tensor per feature named as `input_info.feature_names`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from registry.errors import InvalidInputError


def output_tensors(outputs: Sequence[Any]) -> dict[str, np.ndarray]:
    """The named output tensors of `registry.predict`'s outputs (one per input)."""
    if outputs and all(isinstance(o, dict) and "label" in o for o in outputs):
        tensors = {"label": _array([o["label"] for o in outputs])}
        confidence = [o.get("confidence") for o in outputs]
        if None not in confidence:
            tensors["confidence"] = np.asarray(confidence, dtype=np.float64)
        return tensors
    return {"output": _array(list(outputs))}


def _array(values: list[Any]) -> np.ndarray:
    """Numbers as they are; anything else as text (BYTES), a non-string as its JSON."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged
        array = None
    if array is not None and array.dtype.kind in "biuf":
        return array
    texts = [
        v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False)
        for v in values
    ]
    return np.array(texts, dtype=object)


def v2_datatype(array: np.ndarray) -> str:
    """The V2 datatype an output tensor is sent as."""
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def output_metadata(labels: Any) -> list[tuple[str, str, list[int]]]:
    """(name, datatype, shape) of each output a version gives."""
    if labels:
        return [("label", "BYTES", [-1]), ("confidence", "FP64", [-1])]
    return [("output", "FP64", [-1])]


def input_rows(
    arrays: Mapping[str, np.ndarray], feature_names: Sequence[str], model: str | None = None
) -> list[Any]:
    """The model's inputs (one per row of the batch) from a request's tensors (`model`: the
    name its errors give)."""
    if len(arrays) == 1:
        ((name, array),) = arrays.items()
        if array.ndim == 0:
            raise InvalidInputError(f"input {name!r}: shape needs a batch dimension first")
        return list(array.tolist())
    if set(arrays) != set(feature_names):
        expected = (
            ", ".join(feature_names) if feature_names else "no feature_names in its input_info"
        )
        of = f" of {model}" if model else ""
        raise InvalidInputError(
            f"several inputs must be one per feature{of} ({expected});"
            " or send one tensor of shape [batch, features]"
        )
    columns = []
    for name in feature_names:
        array = arrays[name]
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InvalidInputError(f"input {name!r}: a feature is shape [batch] or [batch, 1]")
        columns.append(array)
    if len({len(c) for c in columns}) != 1:
        raise InvalidInputError("the feature inputs differ in batch size")
    return list(np.stack(columns, axis=1).tolist())
