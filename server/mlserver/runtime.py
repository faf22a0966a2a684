"""`MregModel`: an MLServer runtime that serves any mreg artifact format with mreg's own loaders.

A model directory holds what `mreg fetch` / `mreg export mlserver` / the
storage initializer wrote: the artifact and `.mreg.json` (model, version, id,
commit, format, labels, the trust policy it was fetched under). Its
`model-settings.json` names this class:

    {"name": "iris", "implementation": "server.mlserver.runtime.MregModel",
     "parameters": {"uri": ".", "version": "3"}}

It answers V2 with the same tensors as `mreg serve` (registry/tensors.py):
`label` and `confidence` where the version has `output_info.labels`, else
`output`; the response's parameters carry `model_id` and `revision`.
Imports only `registry` and `mlserver`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import (
    InferenceRequest,
    InferenceResponse,
    MetadataTensor,
    Parameters,
    ResponseOutput,
)
from mlserver.utils import get_model_uri

import registry
from registry import (
    Fetched,
    check_trusted,
    input_rows,
    output_metadata,
    output_tensors,
    read_provenance,
    v2_datatype,
)

__all__ = ["MregModel"]


# mlserver lives in its own venv, not the one mypy runs in: MLModel is Any here.
class MregModel(MLModel):  # type: ignore[misc]
    """One version of one mreg model, loaded from a directory that `mreg fetch` wrote."""

    _fetched: Fetched
    _model: registry.LoadedModel

    async def load(self) -> bool:
        uri = Path(await get_model_uri(self.settings))
        directory = uri if uri.is_dir() else uri.parent
        fetched = read_provenance(directory)
        if fetched is None:
            raise MLServerError(
                f"{directory} has no .mreg.json: write it with 'mreg fetch' or"
                " 'mreg export mlserver'",
                status_code=422,
            )
        try:
            check_trusted(
                fetched.format, fetched.trusted_formats, f"{fetched.model}:v{fetched.version}"
            )
            self._model = await asyncio.to_thread(
                registry.load_model, directory / fetched.file, fetched.format
            )
        except registry.RegistryError as exc:
            raise MLServerError(str(exc), status_code=exc.status) from None
        self._fetched = fetched
        width = len(fetched.feature_names) or -1
        self.inputs = [MetadataTensor(name="input", datatype="FP64", shape=[-1, width])]
        self.outputs = [
            MetadataTensor(name=name, datatype=datatype, shape=shape)
            for name, datatype, shape in output_metadata(fetched.labels)
        ]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        fetched = self._fetched
        arrays: dict[str, Any] = {}
        for tensor in payload.inputs:
            if tensor.name in arrays:
                raise MLServerError(f"input {tensor.name!r} is given twice", status_code=422)
            try:
                arrays[tensor.name] = NumpyCodec.decode_input(tensor)
            except (ValueError, TypeError) as exc:
                raise MLServerError(f"input {tensor.name!r}: {exc}", status_code=422) from None
        if not arrays:
            raise MLServerError("the request has no inputs")
        try:
            rows = input_rows(arrays, fetched.feature_names)
            outputs = registry.predict(self._model, rows, fetched.labels)
        except registry.RegistryError as exc:
            raise MLServerError(str(exc), status_code=exc.status) from None
        tensors = output_tensors(outputs)
        wanted = [o.name for o in payload.outputs] if payload.outputs else list(tensors)
        unknown = [name for name in wanted if name not in tensors]
        if unknown:
            raise MLServerError(
                f"unknown output {unknown[0]!r}: {fetched.model} gives {', '.join(tensors)}",
                status_code=422,
            )
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            parameters=Parameters(model_id=fetched.id, revision=fetched.commit),
            outputs=[_output(name, tensors[name]) for name in wanted],
        )


def _output(name: str, array: Any) -> ResponseOutput:
    return ResponseOutput(
        name=name,
        datatype=v2_datatype(array),
        shape=list(array.shape),
        data=array.reshape(-1).tolist(),
    )
