"""Helpers every kind of write shares: the fields given, the commit trailers, re-validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from registry.errors import RegistryError
from registry.manifests import ModelManifest, VersionManifest
from registry.names import parse_ref


def _number(text: str) -> Any:
    """`3` -> 3, `0.97` -> 0.97, anything else stays text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_values(pairs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values given as text on a command line become numbers when they are numbers."""
    return {k: _number(v) if isinstance(v, str) else v for k, v in (pairs or {}).items()}


def given(**fields: Any) -> dict[str, Any]:
    """Only the fields that were given, so unset ones stay out of the manifest."""
    return {k: v for k, v in fields.items() if v is not None}


def action_trailers(action: str, model: str) -> list[tuple[str, str]]:
    return [("Mreg-Action", action), ("Mreg-Model", model)]


M = TypeVar("M", ModelManifest, VersionManifest)


def revalidate(kind: type[M], data: dict[str, Any], file: str) -> M:
    from pydantic import ValidationError

    from registry.yamlio import describe_validation_error

    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        message, _ = describe_validation_error(exc)
        raise RegistryError(message, file=file) from None


def ref_scope(ref: str) -> list[str] | None:
    """The models a write to `ref` can touch: its model, or all of them for a bare version id."""
    model = parse_ref(ref).model
    return [model] if model is not None else None
