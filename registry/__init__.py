"""mreg's core library: manifests, references, snapshots at a revision, writes as commits.

`tool/` and `server/` import only from here.

Each public name is imported from its submodule on first use (PEP 562): a
command that reads one pointer does not pay for GitPython, pydantic, DVC,
validation or training. `from registry import X` works as usual and imports
only what X needs.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.artifacts import cache_file, ensure_local, file_md5
    from registry.cache import ManifestCache
    from registry.commits import WriteResult
    from registry.diff import (
        MetricChange,
        ModelChange,
        PointerChange,
        RegistryDiff,
        VersionChange,
        diff_registry,
    )
    from registry.errors import (
        ArtifactError,
        ConflictError,
        ImmutableFieldError,
        InvalidInputError,
        InvalidNameError,
        InvalidRefError,
        LoaderError,
        ManifestError,
        ModelNotFoundError,
        NotARegistryError,
        NotFoundError,
        NotServableError,
        PointerNotFoundError,
        RegistryError,
        ResolutionError,
        RevisionNotFoundError,
        VersionNotFoundError,
    )
    from registry.formats import FORMATS
    from registry.importers.mlflow import ImportedVersion, import_mlflow
    from registry.layout import (
        MAX_CHAIN,
        ModelFilter,
        Page,
        Pointer,
        Resolution,
        artifact_dir,
        model_path,
        newest_servable,
        pointer_path,
        version_path,
    )
    from registry.loaders import LoadedModel, artifact_format, load_model, predict
    from registry.manifests import (
        STATUS_MOVES,
        Artifact,
        ModelManifest,
        PointerManifest,
        RegistrySettings,
        Status,
        TrainSpec,
        VersionManifest,
        rfc3339,
        utcnow,
    )
    from registry.names import (
        Ref,
        check_model_name,
        check_tag,
        decode_cursor,
        encode_cursor,
        is_reserved_tag,
        parse_ref,
    )
    from registry.quick import list_models_cached, list_page_cached, resolve_cached
    from registry.registry import Registry
    from registry.snapshot import Snapshot
    from registry.source import GitSource, OverlaySource, blob_id, open_repo
    from registry.train import TrainResult, changed_models, train_changed, train_model
    from registry.train_setup import init_training
    from registry.train_stage import Stage, check_gate, load_stage
    from registry.validation import (
        FINDING_CODES,
        Finding,
        ValidationReport,
        incompatible_input,
        validate_registry,
    )
    from registry.worktree import WorkTreeSource
    from registry.yamlio import parse_manifest, render_new, render_update

# Where each public name lives.
_SUBMODULES: dict[str, tuple[str, ...]] = {
    "registry.artifacts": ("cache_file", "ensure_local", "file_md5"),
    "registry.cache": ("ManifestCache",),
    "registry.commits": ("WriteResult",),
    "registry.diff": (
        "MetricChange",
        "ModelChange",
        "PointerChange",
        "RegistryDiff",
        "VersionChange",
        "diff_registry",
    ),
    "registry.errors": (
        "ArtifactError",
        "ConflictError",
        "ImmutableFieldError",
        "InvalidInputError",
        "InvalidNameError",
        "InvalidRefError",
        "LoaderError",
        "ManifestError",
        "ModelNotFoundError",
        "NotARegistryError",
        "NotFoundError",
        "NotServableError",
        "PointerNotFoundError",
        "RegistryError",
        "ResolutionError",
        "RevisionNotFoundError",
        "VersionNotFoundError",
    ),
    "registry.formats": ("FORMATS",),
    "registry.manifests": (
        "STATUS_MOVES",
        "Artifact",
        "ModelManifest",
        "PointerManifest",
        "RegistrySettings",
        "Status",
        "TrainSpec",
        "VersionManifest",
        "rfc3339",
        "utcnow",
    ),
    "registry.names": (
        "Ref",
        "check_model_name",
        "check_tag",
        "decode_cursor",
        "encode_cursor",
        "is_reserved_tag",
        "parse_ref",
    ),
    "registry.quick": ("list_models_cached", "list_page_cached", "resolve_cached"),
    "registry.registry": ("Registry",),
    "registry.snapshot": ("Snapshot",),
    "registry.layout": (
        "MAX_CHAIN",
        "ModelFilter",
        "Page",
        "Pointer",
        "Resolution",
        "artifact_dir",
        "model_path",
        "newest_servable",
        "pointer_path",
        "version_path",
    ),
    "registry.source": ("GitSource", "OverlaySource", "blob_id", "open_repo"),
    "registry.worktree": ("WorkTreeSource",),
    "registry.train": ("TrainResult", "changed_models", "train_changed", "train_model"),
    "registry.train_setup": ("init_training",),
    "registry.train_stage": ("Stage", "check_gate", "load_stage"),
    "registry.validation": (
        "FINDING_CODES",
        "Finding",
        "ValidationReport",
        "incompatible_input",
        "validate_registry",
    ),
    "registry.yamlio": ("parse_manifest", "render_new", "render_update"),
    "registry.loaders": ("LoadedModel", "artifact_format", "load_model", "predict"),
    "registry.importers.mlflow": ("ImportedVersion", "import_mlflow"),
}
_LAZY = {name: module for module, names in _SUBMODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "FINDING_CODES",
    "FORMATS",
    "MAX_CHAIN",
    "STATUS_MOVES",
    "Artifact",
    "ArtifactError",
    "ConflictError",
    "Finding",
    "GitSource",
    "ImmutableFieldError",
    "ImportedVersion",
    "InvalidInputError",
    "InvalidNameError",
    "InvalidRefError",
    "LoadedModel",
    "LoaderError",
    "ManifestCache",
    "ManifestError",
    "MetricChange",
    "ModelChange",
    "ModelFilter",
    "ModelManifest",
    "ModelNotFoundError",
    "NotARegistryError",
    "NotFoundError",
    "NotServableError",
    "OverlaySource",
    "Page",
    "Pointer",
    "PointerChange",
    "PointerManifest",
    "PointerNotFoundError",
    "Ref",
    "Registry",
    "RegistryDiff",
    "RegistryError",
    "RegistrySettings",
    "Resolution",
    "ResolutionError",
    "RevisionNotFoundError",
    "Snapshot",
    "Stage",
    "Status",
    "TrainResult",
    "TrainSpec",
    "ValidationReport",
    "VersionChange",
    "VersionManifest",
    "VersionNotFoundError",
    "WorkTreeSource",
    "WriteResult",
    "artifact_dir",
    "artifact_format",
    "blob_id",
    "cache_file",
    "changed_models",
    "check_gate",
    "check_model_name",
    "check_tag",
    "decode_cursor",
    "diff_registry",
    "encode_cursor",
    "ensure_local",
    "file_md5",
    "import_mlflow",
    "incompatible_input",
    "init_training",
    "is_reserved_tag",
    "list_models_cached",
    "list_page_cached",
    "load_model",
    "load_stage",
    "model_path",
    "newest_servable",
    "open_repo",
    "parse_manifest",
    "parse_ref",
    "pointer_path",
    "predict",
    "render_new",
    "render_update",
    "resolve_cached",
    "rfc3339",
    "train_changed",
    "train_model",
    "utcnow",
    "validate_registry",
    "version_path",
]
