"""References (DESIGN.md section 3): following `iris:prod -> champion -> v7` to one version."""

from __future__ import annotations

from typing import Protocol

from registry.errors import (
    ModelNotFoundError,
    NotServableError,
    PointerNotFoundError,
    RegistryError,
    ResolutionError,
    VersionNotFoundError,
)
from registry.layout import MAX_CHAIN, Pointer, Resolution
from registry.manifests import ModelManifest, VersionManifest
from registry.names import LATEST, VERSION_ID_RE, VERSION_TAG_RE, Ref, parse_ref
from registry.split import Arm, Shadow, primary


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
    """Follow `ref` to exactly one version, or raise an error naming the link that failed.

    A weighted pointer on the way resolves every arm (none may be weighted
    itself); the result carries them in `arms`, and the pointer's shadow, if
    any, in `shadow`.
    """
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
    return _follow(snap, text, model, tag, chain, split=True)


def _follow(
    snap: Readable, text: str, model: str, tag: str, chain: list[str], *, split: bool
) -> Resolution:
    """From `tag` (the last link of `chain`) to one version; `split`: a weighted pointer may come."""
    shadow: Shadow | None = None
    while len(chain) <= MAX_CHAIN + 1:
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
            return Resolution(text, model, latest, tuple(chain), shadow=shadow)
        m = VERSION_TAG_RE.fullmatch(tag)
        if m:
            version = snap.version(model, int(m.group(1)))
            return Resolution(text, model, version, tuple(chain), shadow=shadow)
        pointer = snap.pointer(model, tag) if len(chain) == 1 else _link(snap, model, tag, chain)
        if split and shadow is None and pointer.shadow is not None:
            shadow = _shadow(snap, text, pointer, chain)
        if pointer.weighted:
            if not split:
                raise ResolutionError(
                    f"{' -> '.join(chain)}: pointer {model}:{tag} is weighted,"
                    " but an arm or a shadow must end at one version",
                    file=pointer.file,
                    ref=text,
                )
            arms = []
            for target, weight in pointer.targets:
                res = _from_target(snap, text, pointer, target, list(chain))
                arms.append(Arm(target, weight, res.version, res.chain))
            main = primary(arms)
            return Resolution(text, model, main.version, main.chain, tuple(arms), shadow)
        step = _step(snap, text, pointer, pointer.target, chain)
        if isinstance(step, Resolution):
            return Resolution(step.ref, step.model, step.version, step.chain, shadow=shadow)
        tag = step
    raise ResolutionError(f"pointer chain deeper than {MAX_CHAIN}: {' -> '.join(chain)}", ref=text)


def _from_target(
    snap: Readable, text: str, pointer: Pointer, target: str, chain: list[str]
) -> Resolution:
    """Where one arm (or a shadow) of `pointer` ends: exactly one version."""
    step = _step(snap, text, pointer, target, chain)
    if isinstance(step, Resolution):
        return step
    return _follow(snap, text, pointer.model, step, chain, split=False)


def _shadow(snap: Readable, text: str, pointer: Pointer, chain: list[str]) -> Shadow:
    assert pointer.shadow is not None
    sample = pointer.shadow_sample if pointer.shadow_sample is not None else 1.0
    try:
        res = _from_target(snap, text, pointer, pointer.shadow, list(chain))
    except RegistryError as exc:
        return Shadow(pointer.shadow, sample, None, str(exc))
    return Shadow(pointer.shadow, sample, res.version)


def _step(
    snap: Readable, text: str, pointer: Pointer, target: str, chain: list[str]
) -> Resolution | str:
    """One link from `pointer` to `target`: the version it names, or the next tag to follow."""
    model, tag = pointer.model, pointer.tag
    if VERSION_ID_RE.fullmatch(target):
        owner, version = _target_id(snap, pointer, target, chain)
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
    return target


def _has_version(snap: Readable, model: str, tag: str) -> bool:
    return f"{tag[1:]}.yaml" in snap.version_files(model)


def _link(snap: Readable, model: str, tag: str, chain: list[str]) -> Pointer:
    try:
        return snap.pointer(model, tag)
    except PointerNotFoundError:
        raise PointerNotFoundError(
            f"{' -> '.join(chain)}: pointer {model}:{tag} does not exist", ref=chain[0]
        ) from None


def _target_id(
    snap: Readable, pointer: Pointer, target: str, chain: list[str]
) -> tuple[str, VersionManifest]:
    try:
        owner, version = snap.version_by_id(target)
    except VersionNotFoundError:
        raise VersionNotFoundError(
            f"pointer {pointer.model}:{pointer.tag} targets {target}, which does not exist",
            file=pointer.file,
            line=snap.line_of(pointer.file, "target"),
            ref=chain[0],
        ) from None
    if owner != pointer.model:
        raise ResolutionError(
            f"pointer {pointer.model}:{pointer.tag} targets {target},"
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
