"""References (DESIGN.md section 3): following `iris:prod -> champion -> v7` to one version."""

from __future__ import annotations

from typing import Protocol

from registry.errors import (
    ModelNotFoundError,
    NotServableError,
    PointerNotFoundError,
    ResolutionError,
    VersionNotFoundError,
)
from registry.layout import MAX_CHAIN, Pointer, Resolution
from registry.manifests import ModelManifest, VersionManifest
from registry.names import LATEST, VERSION_ID_RE, VERSION_TAG_RE, Ref, parse_ref


class Readable(Protocol):
    """What resolution reads of a registry at one revision (a `Snapshot`)."""

    @property
    def label(self) -> str: ...
    def model(self, name: str) -> ModelManifest: ...
    def latest(self, name: str) -> VersionManifest | None: ...
    def version_files(self, name: str) -> dict[str, str]: ...
    def version(self, name: str, n: int) -> VersionManifest: ...
    def version_by_id(self, version_id: str) -> tuple[str, VersionManifest]: ...
    def pointer(self, name: str, tag: str) -> Pointer: ...
    def line_of(self, path: str, *keys: str) -> int | None: ...


def resolve_ref(snap: Readable, ref: str | Ref) -> Resolution:
    """Follow `ref` to exactly one version, or raise an error naming the link that failed."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    text = str(parsed)
    if parsed.version_id is not None:
        model, version = snap.version_by_id(parsed.version_id)
        _check_not_archived(snap, model, text)
        return Resolution(text, model, version, (text, f"{model}:v{version.version}"))
    assert parsed.model is not None
    model = parsed.model
    _check_not_archived(snap, model, text)
    tag = parsed.tag or LATEST
    chain: list[str] = [text] if parsed.tag else [text, f"{model}:{LATEST}"]
    for _ in range(MAX_CHAIN + 1):
        if tag == LATEST:
            latest = snap.latest(model)
            if latest is None:
                # Versions exist but none is ready (untrained, training, failed,
                # deprecated): a conflict with the model's state, not a missing thing.
                error = NotServableError if snap.version_files(model) else VersionNotFoundError
                raise error(
                    f"{model}:latest: model {model!r} has no trained, non-deprecated version",
                    ref=text,
                )
            chain.append(f"{model}:v{latest.version}")
            return Resolution(text, model, latest, tuple(chain))
        m = VERSION_TAG_RE.fullmatch(tag)
        if m:
            return Resolution(text, model, snap.version(model, int(m.group(1))), tuple(chain))
        pointer = snap.pointer(model, tag) if len(chain) == 1 else _link(snap, model, tag, chain)
        target = pointer.target
        if VERSION_ID_RE.fullmatch(target):
            owner, version = _target_id(snap, pointer, chain)
            chain.append(f"{owner}:v{version.version}")
            return Resolution(text, model, version, tuple(chain))
        if VERSION_TAG_RE.fullmatch(target) and not _has_version(snap, model, target):
            raise VersionNotFoundError(
                f"pointer {model}:{tag} targets {target}, which does not exist",
                file=pointer.file,
                line=snap.line_of(pointer.file, "target"),
                ref=text,
            )
        link = f"{model}:{target}"
        if link in chain:
            raise ResolutionError(
                f"pointer cycle: {' -> '.join([*chain, link])}", file=pointer.file, ref=text
            )
        chain.append(link)
        tag = target
    raise ResolutionError(f"pointer chain deeper than {MAX_CHAIN}: {' -> '.join(chain)}", ref=text)


def _has_version(snap: Readable, model: str, tag: str) -> bool:
    return f"{tag[1:]}.yaml" in snap.version_files(model)


def _link(snap: Readable, model: str, tag: str, chain: list[str]) -> Pointer:
    try:
        return snap.pointer(model, tag)
    except PointerNotFoundError:
        raise PointerNotFoundError(
            f"{' -> '.join(chain)}: pointer {model}:{tag} does not exist", ref=chain[0]
        ) from None


def _target_id(snap: Readable, pointer: Pointer, chain: list[str]) -> tuple[str, VersionManifest]:
    try:
        owner, version = snap.version_by_id(pointer.target)
    except VersionNotFoundError:
        raise VersionNotFoundError(
            f"pointer {pointer.model}:{pointer.tag} targets {pointer.target}, which does not exist",
            file=pointer.file,
            line=snap.line_of(pointer.file, "target"),
            ref=chain[0],
        ) from None
    if owner != pointer.model:
        raise ResolutionError(
            f"pointer {pointer.model}:{pointer.tag} targets {pointer.target},"
            f" a version of another model ({owner})",
            file=pointer.file,
            line=snap.line_of(pointer.file, "target"),
            ref=chain[0],
        )
    return owner, version


def _check_not_archived(snap: Readable, model: str, ref: str) -> None:
    if snap.model(model).archived:
        raise ModelNotFoundError(
            f"model {model!r} is archived at {snap.label} (restore it to use {ref})", ref=ref
        )
