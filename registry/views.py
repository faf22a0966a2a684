"""What programs see of a model: one shape for the API (`GET /v1/models[/{m}]`) and `--json`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI's fast path imports this module without pydantic
    from registry.layout import Pointer
    from registry.manifests import VersionManifest


def model_view(
    model: Mapping[str, Any],
    versions_count: int,
    latest: tuple[int, str] | None,
) -> dict[str, Any]:
    """A model as listed: its manifest's fields (as JSON), `latest` (`{version, id}` of the
    newest servable version, or null) and `versions_count`."""
    return {
        **model,
        "latest": None if latest is None else {"version": latest[0], "id": latest[1]},
        "versions_count": versions_count,
    }


def version_rows(versions: Iterable[VersionManifest]) -> list[dict[str, Any]]:
    """A model's versions as `GET /v1/models/{m}` and `mreg model show --json` list them."""
    return [
        {
            "version": v.version,
            "id": v.id,
            "status": v.status.value,
            "deprecated": v.deprecated,
            "format": v.artifact.format if v.artifact else None,
        }
        for v in versions
    ]


def pointer_view(
    pointer: Pointer, resolved: VersionManifest | None, error: str | None = None
) -> dict[str, Any]:
    """A pointer and the version it resolves to (`resolves_to`, null with the `error` when it
    does not resolve, or not for this caller)."""
    out = pointer.to_dict()
    if resolved is None:
        out["resolves_to"] = None
        out["error"] = error
    else:
        out["resolves_to"] = {"version": resolved.version, "id": resolved.id}
    return out
