"""The exception hierarchy: every failure mreg reports is a RegistryError.

Each error carries what the user needs to fix it: a message, and where known
the file and line, the reference and the link of a chain that broke. The CLI
prints ``str(error)`` as one line; the server maps ``status`` and ``code`` to
its JSON error shape.
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Root of every error mreg raises on purpose."""

    code = "registry_error"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        ref: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.ref = ref
        self.detail = detail

    @property
    def location(self) -> str | None:
        if self.file is None:
            return None
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        where = self.location
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        detail: dict[str, Any] = {}
        if self.file is not None:
            detail["file"] = self.file
        if self.line is not None:
            detail["line"] = self.line
        if self.ref is not None:
            detail["ref"] = self.ref
        if self.detail is not None:
            detail["info"] = self.detail
        return {"code": self.code, "message": str(self), "detail": detail or None}


class ManifestError(RegistryError):
    """A manifest that cannot be read: bad YAML, unknown key, wrong type, wrong name."""

    code = "invalid_manifest"
    status = 422


class InvalidNameError(RegistryError):
    code = "invalid_name"
    status = 400


class InvalidRefError(RegistryError):
    code = "invalid_ref"
    status = 400


class NotFoundError(RegistryError):
    code = "not_found"
    status = 404


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class VersionNotFoundError(NotFoundError):
    code = "version_not_found"


class PointerNotFoundError(NotFoundError):
    code = "pointer_not_found"


class RevisionNotFoundError(NotFoundError):
    code = "revision_not_found"


class ResolutionError(RegistryError):
    """A pointer chain that cannot end at a version: a cycle, too deep, dangling."""

    code = "unresolvable_ref"
    status = 422


class NotServableError(RegistryError):
    """The ref resolves, but to a version that has no usable artifact (untrained, failed)."""

    code = "version_not_ready"
    status = 409


class ConflictError(RegistryError):
    """The write conflicts with the registry's state (exists already, concurrent writer)."""

    code = "conflict"
    status = 409


class ProtectedPointerError(ConflictError):
    """A protected pointer (registry.yaml `protected_pointers`) changed without review."""

    code = "protected_pointer"
    status = 409


class ImmutableFieldError(RegistryError):
    code = "immutable_field"
    status = 409


class NotARegistryError(RegistryError):
    code = "not_a_registry"
    status = 400


class ArtifactError(RegistryError):
    """An artifact that is missing, unreadable or does not match its md5."""

    code = "artifact_unavailable"
    status = 503


class LoaderError(RegistryError):
    """A model that cannot be loaded or cannot run on the given input."""

    code = "loader_error"
    status = 503


class UntrustedFormatError(RegistryError):
    """An artifact in a format that runs code where registry.yaml `trusted_formats` forbids it."""

    code = "untrusted_format"
    status = 403


class InvalidInputError(RegistryError):
    """Input the model rejects (wrong shape, wrong type)."""

    code = "invalid_input"
    status = 422


class PromotionRuleError(RegistryError):
    """A protected pointer's move that breaks a promotion rule of registry.yaml (`rule` names it)."""

    code = "promotion_rule"
    status = 409

    def __init__(self, message: str, *, rule: str, ref: str | None = None) -> None:
        super().__init__(message, ref=ref, detail={"rule": rule})
        self.rule = rule
