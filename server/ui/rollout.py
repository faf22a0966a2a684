"""The model page's pointers: where each resolves, its traffic split (the arms and their
shares, drawn as a bar) and, for a pointer with a shadow, the shadow report."""

from __future__ import annotations

from typing import Any

from registry import RegistryError
from server.http.auth import Seen
from server.runtime.auth import Viewer
from server.runtime.runtime import Runtime
from server.runtime.served import Served
from server.runtime.views import pointer_dict
from server.v1.rollout import shadow_report


def pointer_rows(
    runtime: Runtime, served: Served, model: str, viewer: Viewer
) -> list[dict[str, Any]]:
    """Each pointer as the page shows it: `chain`, `arms` (target, weight, version, chain; empty
    for one target), `shadow` (the report, or None)."""
    manifest = served.models[model]
    rows = []
    for p in served.pointers[model]:
        row = pointer_dict(served, p, viewer)
        row["chain"], row["arms"], row["shadow"] = [], [], None
        if row["resolves_to"] is not None:  # else the chain may name a hidden version
            try:
                res = served.snapshot.resolve(f"{model}:{p.tag}")
            except RegistryError as exc:
                row["error"] = str(exc)
            else:
                row["chain"] = list(res.chain)
                row["arms"] = [
                    {
                        "target": arm.target,
                        "weight": arm.weight,
                        "version": arm.version.version,
                        "chain": list(arm.chain),
                    }
                    for arm in res.arms
                ]
                if res.shadow is not None:
                    row["shadow"] = shadow_report(Seen(runtime, served, manifest, viewer), p.tag)
        rows.append(row)
    return rows
