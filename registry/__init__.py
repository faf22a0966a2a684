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
    from registry.artifacts import cache_file, ensure_local
    from registry.cache import ManifestCache
    from registry.commits import WriteResult
    from registry.diff import (
        MetricChange,
        ModelChange,
        PointerChange,
        RegistryDiff,
        VersionChange,
        changed_paths,
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
        PromotionRuleError,
        ProtectedPointerError,
        RegistryError,
        ResolutionError,
        RevisionNotFoundError,
        UntrustedFormatError,
        VersionNotFoundError,
    )
    from registry.events import EVENT_TYPES, Event, events_between, events_of
    from registry.format_policy import (
        CODE_FORMATS,
        DEFAULT_TRUSTED_FORMATS,
        check_loadable,
        check_write_format,
        named_format,
    )
    from registry.formats import FILENAME_PATTERN, FORMAT_FILES, FORMATS, SUFFIX_FORMATS
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
        PointerArm,
        PointerManifest,
        PromotionRequire,
        PromotionRule,
        RegistrySettings,
        Status,
        TrainSpec,
        VersionManifest,
        rfc3339,
        utcnow,
    )
    from registry.mlserver_repo import (
        MLSERVER_RUNTIME,
        ExportedVersion,
        MLServer,
        MLServerSync,
        SyncPass,
        export_mlserver,
    )
    from registry.names import (
        BRANCH_PATTERN,
        MODEL_PATTERN,
        REF_PATTERN,
        TAG_PATTERN,
        TARGET_PATTERN,
        Ref,
        check_model_name,
        check_tag,
        decode_cursor,
        encode_cursor,
        is_reserved_tag,
        parse_ref,
    )
    from registry.progress import transfer_progress
    from registry.promotion import Approval, Breach, approved, check_move, codeowners
    from registry.quick import list_models_cached, list_page_cached, resolve_cached
    from registry.refnames import check_new_branch, full_ref, remote_of
    from registry.registry import Registry
    from registry.remotes import file_md5
    from registry.snapshot import Snapshot
    from registry.source import GitSource, OverlaySource, blob_id, open_repo
    from registry.split import Arm, Shadow, bucket, choose
    from registry.storage import (
        Fetched,
        StorageURI,
        check_trusted,
        fetch,
        parse_storage_uri,
        read_provenance,
        trusted_formats,
    )
    from registry.tensors import input_rows, output_metadata, output_tensors, v2_datatype
    from registry.train import TrainResult, changed_models, train_changed, train_model
    from registry.train_setup import init_training
    from registry.train_stage import Stage, check_gate, load_stage
    from registry.uploads import UploadSpaceError, clean_uploads, receive_upload
    from registry.validation import (
        FINDING_CODES,
        Finding,
        ValidationReport,
        incompatible_input,
        validate_registry,
    )
    from registry.validation.storage import ServedArtifactProblem, check_served_artifacts
    from registry.views import model_view, pointer_view, version_rows
    from registry.worktree import WorkTreeSource
    from registry.yamlio import parse_manifest, render_new, render_update

# Where each public name lives.
_SUBMODULES: dict[str, str] = {
    "registry.artifacts": "cache_file ensure_local",
    "registry.progress": "transfer_progress",
    "registry.remotes": "file_md5",
    "registry.cache": "ManifestCache",
    "registry.commits": "WriteResult",
    "registry.diff": (
        "MetricChange ModelChange PointerChange RegistryDiff VersionChange changed_paths "
        "diff_registry"
    ),
    "registry.events": "EVENT_TYPES Event events_between events_of",
    "registry.errors": (
        "ArtifactError ConflictError ImmutableFieldError InvalidInputError "
        "InvalidNameError InvalidRefError LoaderError ManifestError ModelNotFoundError "
        "NotARegistryError NotFoundError NotServableError PointerNotFoundError "
        "PromotionRuleError ProtectedPointerError RegistryError ResolutionError RevisionNotFoundError "
        "UntrustedFormatError VersionNotFoundError"
    ),
    "registry.format_policy": (
        "CODE_FORMATS DEFAULT_TRUSTED_FORMATS check_loadable check_write_format named_format"
    ),
    "registry.formats": "FILENAME_PATTERN FORMAT_FILES FORMATS SUFFIX_FORMATS",
    "registry.manifests": (
        "STATUS_MOVES Artifact ModelManifest PointerArm PointerManifest "
        "PromotionRequire PromotionRule RegistrySettings Status TrainSpec "
        "VersionManifest rfc3339 utcnow"
    ),
    "registry.names": (
        "BRANCH_PATTERN MODEL_PATTERN REF_PATTERN TAG_PATTERN TARGET_PATTERN "
        "Ref check_model_name check_tag decode_cursor encode_cursor is_reserved_tag parse_ref"
    ),
    "registry.promotion": "Approval Breach approved check_move codeowners",
    "registry.quick": "list_models_cached list_page_cached resolve_cached",
    "registry.refnames": "check_new_branch full_ref remote_of",
    "registry.registry": "Registry",
    "registry.snapshot": "Snapshot",
    "registry.split": "Arm Shadow bucket choose",
    "registry.layout": (
        "MAX_CHAIN ModelFilter Page Pointer Resolution artifact_dir model_path "
        "newest_servable pointer_path version_path"
    ),
    "registry.source": "GitSource OverlaySource blob_id open_repo",
    "registry.worktree": "WorkTreeSource",
    "registry.train": "TrainResult changed_models train_changed train_model",
    "registry.train_setup": "init_training",
    "registry.train_stage": "Stage check_gate load_stage",
    "registry.validation": (
        "FINDING_CODES Finding ValidationReport incompatible_input validate_registry"
    ),
    "registry.uploads": "UploadSpaceError clean_uploads receive_upload",
    "registry.validation.storage": "ServedArtifactProblem check_served_artifacts",
    "registry.yamlio": "parse_manifest render_new render_update",
    "registry.views": "model_view pointer_view version_rows",
    "registry.loaders": "LoadedModel artifact_format load_model predict",
    "registry.importers.mlflow": "ImportedVersion import_mlflow",
    "registry.storage": (
        "Fetched StorageURI check_trusted fetch parse_storage_uri read_provenance trusted_formats"
    ),
    "registry.mlserver_repo": (
        "MLSERVER_RUNTIME ExportedVersion MLServer MLServerSync SyncPass export_mlserver"
    ),
    "registry.tensors": "input_rows output_metadata output_tensors v2_datatype",
}
_LAZY = {name: module for module, names in _SUBMODULES.items() for name in names.split()}


# Submodules reachable as attributes without an import of their own (`registry.names.TAG_RE`).
_MODULES = frozenset({"names", "formats", "plumbing", "errors"})


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"registry.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "BRANCH_PATTERN",
    "CODE_FORMATS",
    "DEFAULT_TRUSTED_FORMATS",
    "EVENT_TYPES",
    "FILENAME_PATTERN",
    "FINDING_CODES",
    "FORMATS",
    "FORMAT_FILES",
    "MAX_CHAIN",
    "MLSERVER_RUNTIME",
    "MODEL_PATTERN",
    "REF_PATTERN",
    "STATUS_MOVES",
    "SUFFIX_FORMATS",
    "TAG_PATTERN",
    "TARGET_PATTERN",
    "Approval",
    "Arm",
    "Artifact",
    "ArtifactError",
    "Breach",
    "ConflictError",
    "Event",
    "ExportedVersion",
    "Fetched",
    "Finding",
    "GitSource",
    "ImmutableFieldError",
    "ImportedVersion",
    "InvalidInputError",
    "InvalidNameError",
    "InvalidRefError",
    "LoadedModel",
    "LoaderError",
    "MLServer",
    "MLServerSync",
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
    "PointerArm",
    "PointerChange",
    "PointerManifest",
    "PointerNotFoundError",
    "PromotionRequire",
    "PromotionRule",
    "PromotionRuleError",
    "ProtectedPointerError",
    "Ref",
    "Registry",
    "RegistryDiff",
    "RegistryError",
    "RegistrySettings",
    "Resolution",
    "ResolutionError",
    "RevisionNotFoundError",
    "ServedArtifactProblem",
    "Shadow",
    "Snapshot",
    "Stage",
    "Status",
    "StorageURI",
    "SyncPass",
    "TrainResult",
    "TrainSpec",
    "UntrustedFormatError",
    "UploadSpaceError",
    "ValidationReport",
    "VersionChange",
    "VersionManifest",
    "VersionNotFoundError",
    "WorkTreeSource",
    "WriteResult",
    "approved",
    "artifact_dir",
    "artifact_format",
    "blob_id",
    "bucket",
    "cache_file",
    "changed_models",
    "changed_paths",
    "check_gate",
    "check_loadable",
    "check_model_name",
    "check_move",
    "check_new_branch",
    "check_served_artifacts",
    "check_tag",
    "check_trusted",
    "check_write_format",
    "choose",
    "clean_uploads",
    "codeowners",
    "decode_cursor",
    "diff_registry",
    "encode_cursor",
    "ensure_local",
    "events_between",
    "events_of",
    "export_mlserver",
    "fetch",
    "file_md5",
    "full_ref",
    "import_mlflow",
    "incompatible_input",
    "init_training",
    "input_rows",
    "is_reserved_tag",
    "list_models_cached",
    "list_page_cached",
    "load_model",
    "load_stage",
    "model_path",
    "model_view",
    "named_format",
    "newest_servable",
    "open_repo",
    "output_metadata",
    "output_tensors",
    "parse_manifest",
    "parse_ref",
    "parse_storage_uri",
    "pointer_path",
    "pointer_view",
    "predict",
    "read_provenance",
    "receive_upload",
    "remote_of",
    "render_new",
    "render_update",
    "resolve_cached",
    "rfc3339",
    "train_changed",
    "train_model",
    "transfer_progress",
    "trusted_formats",
    "utcnow",
    "v2_datatype",
    "validate_registry",
    "version_path",
    "version_rows",
]
