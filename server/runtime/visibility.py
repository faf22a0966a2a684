"""What a caller may see: without a token, private things do not exist.

When the server has tokens configured, an anonymous caller (no
Authorization header) sees only public models (`is_public: true`), and of
those only the versions whose `visibility` is not `private`. Everything
else answers exactly as if it were missing: the same status, code and
message a truly missing model, version or version id gets, so private
names cannot be enumerated. `latest` for an anonymous caller is the newest
trained, not deprecated version it may see. Any valid token (every scope
implies `read`) sees everything; without configured tokens everything is open.
"""

from __future__ import annotations

from registry import (
    ModelManifest,
    ModelNotFoundError,
    NotServableError,
    Ref,
    Resolution,
    VersionManifest,
    VersionNotFoundError,
    newest_servable,
)
from server.runtime.auth import Viewer
from server.runtime.pins import LATEST, Pin, PinKind
from server.runtime.served import Served


def missing_model(served: Served, name: str) -> ModelNotFoundError:
    """The error a model that does not exist gets (Served.model's)."""
    return ModelNotFoundError(f"model {name!r} not found at {served.ref}", ref=name)


def missing_version(served: Served, model: str, n: int) -> VersionNotFoundError:
    """The error a version number that does not exist gets (Snapshot.version's)."""
    return VersionNotFoundError(
        f"version {model}:v{n} not found at {served.snapshot.label}", ref=f"{model}:v{n}"
    )


def missing_id(served: Served, version_id: str) -> VersionNotFoundError:
    """The error a version id that does not exist gets (Snapshot.version_by_id's)."""
    return VersionNotFoundError(
        f"version id {version_id} not found at {served.snapshot.label}", ref=version_id
    )


def model(served: Served, name: str, viewer: Viewer) -> ModelManifest:
    """The model `name`, or the missing-model error when the viewer may not see it."""
    manifest = served.models.get(name)
    if manifest is None or not viewer.sees(manifest):
        raise missing_model(served, name)
    return manifest


def versions(served: Served, manifest: ModelManifest, viewer: Viewer) -> list[VersionManifest]:
    every = served.versions[manifest.name]
    if viewer.reader:
        return every
    return [v for v in every if viewer.sees_version(manifest, v)]


def version(served: Served, manifest: ModelManifest, n: int, viewer: Viewer) -> VersionManifest:
    found = served.snapshot.version(manifest.name, n)
    if not viewer.sees_version(manifest, found):
        raise missing_version(served, manifest.name, n)
    return found


def _latest(
    served: Served, manifest: ModelManifest, viewer: Viewer, ref: str, chain: tuple[str, ...]
) -> Resolution:
    """`latest` among the versions the viewer sees, with the core's error when there is none."""
    seen = versions(served, manifest, viewer)
    latest = newest_servable(seen)
    if latest is None:
        error = NotServableError if seen else VersionNotFoundError
        raise error(
            f"{manifest.name}:latest: model {manifest.name!r} has no trained,"
            " non-deprecated version",
            ref=ref,
        )
    return Resolution(ref, manifest.name, latest, (*chain, f"{manifest.name}:v{latest.version}"))


def _hides_versions(served: Served, manifest: ModelManifest, viewer: Viewer) -> bool:
    """Whether the model has versions this viewer may not see (memoized per revision)."""
    if viewer.reader:
        return False
    key = ("hides", manifest.name)
    hides = served.public_memo.get(key)
    if hides is None:
        hides = served.public_memo[key] = any(
            v.visibility == "private" for v in served.versions[manifest.name]
        )
    return bool(hides)


def _check_id(served: Served, version_id: str, viewer: Viewer) -> None:
    """A version id of a model or version the viewer may not see does not exist for them."""
    if viewer.reader:
        return
    owner, found = served.snapshot.version_by_id(version_id)
    manifest = served.models.get(owner)
    if manifest is None or not viewer.sees_version(manifest, found):
        raise missing_id(served, version_id)


def _check_result(
    served: Served, manifest: ModelManifest, found: Resolution, viewer: Viewer
) -> None:
    # Every arm of a weighted pointer: a call may be routed to any of them.
    for version in (found.version, *(arm.version for arm in found.arms)):
        if not viewer.sees_version(manifest, version):
            raise missing_version(served, manifest.name, version.version)


def resolve_pin(served: Served, name: str, pin: Pin, viewer: Viewer) -> Resolution:
    """The servable version `pin` names, as this viewer may see it (Served.resolve otherwise)."""
    if viewer.reader:
        return served.resolve(name, pin)[0]
    manifest = model(served, name, viewer)
    if pin.kind is PinKind.MODEL_ID:
        _check_id(served, pin.value, viewer)
    if pin == LATEST and _hides_versions(served, manifest, viewer):
        key = ("latest", name)
        resolution = served.public_memo.get(key)
        if resolution is None:
            resolution = _latest(served, manifest, viewer, name, (name, f"{name}:latest"))
            served.public_memo[key] = resolution
        if not resolution.version.servable:
            v = resolution.version
            raise NotServableError(
                f"{name}:v{v.version} ({v.id}) is {v.status.value} and has no artifact to serve",
                ref=name,
            )
        return resolution
    resolution = served.resolve(name, pin)[0]
    _check_result(served, manifest, resolution, viewer)
    return resolution


def resolve_ref(served: Served, ref: Ref, viewer: Viewer) -> Resolution:
    """What GET /v1/resolve answers: the version `ref` resolves to, as this viewer may see it."""
    if ref.version_id is not None:
        _check_id(served, ref.version_id, viewer)
        return served.snapshot.resolve(ref)
    assert ref.model is not None
    manifest = served.models.get(ref.model)
    if manifest is not None and not viewer.sees(manifest):
        # What the core says of a model that does not exist.
        raise ModelNotFoundError(
            f"model {ref.model!r} not found at {served.snapshot.label}", ref=ref.model
        )
    if (
        manifest is not None
        and ref.tag in (None, "latest")
        and not manifest.archived
        and _hides_versions(served, manifest, viewer)
    ):
        text = str(ref)
        chain = (text,) if ref.tag else (text, f"{ref.model}:latest")
        return _latest(served, manifest, viewer, text, chain)
    resolution = served.snapshot.resolve(ref)
    if manifest is not None:
        _check_result(served, manifest, resolution, viewer)
    return resolution


def owner(served: Served, version_id: str, viewer: Viewer) -> str:
    """The model a version id belongs to, when the viewer may see that version."""
    _check_id(served, version_id, viewer)
    return served.snapshot.version_by_id(version_id)[0]
