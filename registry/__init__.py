"""mreg's core library: manifests, references, snapshots at a revision, writes as commits.

`tool/` and `server/` import only from here.
"""

import importlib
from typing import TYPE_CHECKING, Any

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
from registry.names import Ref, check_model_name, check_tag, is_reserved_tag, parse_ref
from registry.registry import Registry
from registry.snapshot import (
    MAX_CHAIN,
    Pointer,
    Resolution,
    Snapshot,
    artifact_dir,
    model_path,
    newest_servable,
    pointer_path,
    version_path,
)
from registry.source import GitSource, OverlaySource, WorkTreeSource, blob_id, open_repo
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
from registry.yamlio import parse_manifest, render_new, render_update

if TYPE_CHECKING:
    from registry.importers.mlflow import ImportedVersion, import_mlflow
    from registry.loaders import LoadedModel, artifact_format, load_model, predict

# The loaders import NumPy (and, when used, the ML libraries): load them on first
# use so that the CLI's reads start fast.
_LAZY = {
    name: "registry.loaders" for name in ("LoadedModel", "artifact_format", "load_model", "predict")
}
_LAZY.update({name: "registry.importers.mlflow" for name in ("ImportedVersion", "import_mlflow")})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'registry' has no attribute {name!r}")


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
    "ModelManifest",
    "ModelNotFoundError",
    "NotARegistryError",
    "NotFoundError",
    "NotServableError",
    "OverlaySource",
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
    "diff_registry",
    "ensure_local",
    "file_md5",
    "import_mlflow",
    "incompatible_input",
    "init_training",
    "is_reserved_tag",
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
    "rfc3339",
    "train_changed",
    "train_model",
    "utcnow",
    "validate_registry",
    "version_path",
]
