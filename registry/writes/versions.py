"""Writes to versions: register (and deploy), status moves and patches, each one commit."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from registry import commits, plumbing
from registry.base import RegistryBase
from registry.commits import Plan, WriteResult
from registry.errors import (
    ArtifactError,
    ConflictError,
    ImmutableFieldError,
    ModelNotFoundError,
    RegistryError,
)
from registry.layout import Resolution, model_path, pointer_path, version_path
from registry.manifests import (
    IMMUTABLE_VERSION_FIELDS,
    STATUS_MOVES,
    Artifact,
    ModelManifest,
    Status,
    VersionManifest,
)
from registry.names import check_model_name, check_tag, new_version_id, parse_ref
from registry.plumbing import CommitMessage
from registry.snapshot import Snapshot
from registry.writes.fields import action_trailers, given, parse_values, ref_scope, revalidate
from registry.writes.pointers import check_point_rules, pointer_text
from registry.writes.staging import artifact_changes, infer_lib, stage_artifact
from registry.yamlio import render_new, render_update

VERSION_PATCHABLE = ("description", "notes", "license", "metadata", "visibility")


class VersionWrites(RegistryBase):
    """Writes to `models/<model>/versions/<n>.yaml` and the version's artifact."""

    def register(
        self,
        model: str,
        artifact: str | os.PathLike[str] | None = None,
        *,
        format: str | None = None,
        library: str | None = None,
        description: str | None = None,
        notes: str | None = None,
        license: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        train_info: Mapping[str, Any] | None = None,
        input_info: Mapping[str, Any] | None = None,
        output_info: Mapping[str, Any] | None = None,
        import_info: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        point: Sequence[str] = (),
        untrained: bool = False,
        create: bool = False,
        branch: str | None = None,
        commit: bool = True,
    ) -> WriteResult[VersionManifest]:
        """Register the next version of `model` with `artifact`, in one commit tagged `<model>@v<n>`.

        The artifact is copied into the DVC cache and pushed to the default
        remote before the commit. `point` moves those pointers to the new
        version in the same commit. `untrained` registers a version without
        an artifact; `create` creates the model first if it does not exist.
        With `branch` the commit goes to a new branch and no tag is made (the
        number is settled when the pull request merges).
        `labels` are stored in the version's `metadata.labels`.
        """
        check_model_name(model)
        for tag in point:
            check_tag(tag)
        if untrained and artifact is not None:
            raise RegistryError(
                "an untrained version has no artifact: drop the file or --untrained"
            )
        if not untrained and artifact is None:
            raise ArtifactError("give an artifact file to register (or register it --untrained)")
        head = (
            self.snapshot("HEAD", models=[model])
            if commit and plumbing.rev_sha(self.root, "HEAD")
            else self.snapshot(models=[model])
        )
        if not head.has_model(model) and not create:
            raise ModelNotFoundError(
                f"model {model!r} not found: create it with 'mreg model create {model}'"
                " or register with --create",
                ref=model,
            )
        if head.has_model(model) and head.model(model).archived:
            raise ConflictError(f"model {model!r} is archived: restore it first")
        who, when = self._author()
        staged = stage_artifact(self.root, artifact, format) if artifact is not None else None
        info = dict(train_info or {})
        if metrics:
            info["metrics"] = {**info.get("metrics", {}), **parse_values(metrics)}
        if params:
            info["params"] = {**info.get("params", {}), **parse_values(params)}
        meta = dict(metadata or {})
        if labels:
            meta["labels"] = {**meta.get("labels", {}), **labels}
        version_id = new_version_id()

        def build(base: Snapshot) -> Plan[VersionManifest]:
            changes: dict[str, bytes | None] = {}
            model_library = library
            trailers = action_trailers("register", model)
            if base.has_model(model):
                model_library = model_library or base.model(model).library
            else:
                lib = library or (infer_lib(staged, format) if staged else None)
                created = ModelManifest(name=model, created_at=when, **given(library=lib))
                changes[model_path(model)] = render_new(created).encode()
            n = base.next_version_number(model) if base.has_model(model) else 1
            art: Artifact | None = None
            worktree: dict[str, Path] = {}
            if staged is not None:
                art, art_changes, worktree = artifact_changes(
                    model, n, staged, format, model_library
                )
                changes.update(art_changes)
            fields = given(
                artifact=art,
                description=description,
                notes=notes,
                license=license,
                train_info=info or None,
                input_info=dict(input_info) if input_info else None,
                output_info=dict(output_info) if output_info else None,
                import_info=dict(import_info) if import_info else None,
                metadata=meta or None,
            )
            version = VersionManifest(
                id=version_id,
                version=n,
                status=Status.untrained if staged is None else Status.trained,
                created_at=when,
                created_by=who,
                **fields,
            )
            changes[version_path(model, n)] = render_new(version).encode()
            trailers += [("Mreg-Version", str(n)), ("Mreg-Version-Id", version_id)]
            for tag in point:
                arms = [(f"v{n}", 100)]
                changes[pointer_path(model, tag)] = pointer_text(base, model, tag, arms, None)
                trailers.append(("Mreg-Pointer", tag))
            check_point_rules(self, base, model, point, changes)
            subject = f"{model}: register v{n} ({version_id})"
            if point:
                subject += f", point {', '.join(point)}"
            return Plan(
                changes,
                CommitMessage(subject, trailers),
                version,
                tag=f"{model}@v{n}",
                worktree_files=worktree,
            )

        return commits.write(self, build, branch=branch, commit=commit, models=[model])

    def deploy(
        self,
        obj_or_path: Any,
        *,
        name: str,
        description: str | None = None,
        point: Sequence[str] = (),
        **fields: Any,
    ) -> WriteResult[VersionManifest]:
        """Register a fitted scikit-learn estimator (saved with skops) or a file, creating the model if needed."""
        if isinstance(obj_or_path, str | os.PathLike):
            return self.register(
                name, obj_or_path, description=description, point=point, create=True, **fields
            )
        if not hasattr(obj_or_path, "fit") or not hasattr(obj_or_path, "predict"):
            raise RegistryError(
                f"deploy takes a fitted scikit-learn estimator or a file path,"
                f" not {type(obj_or_path).__name__}"
            )
        import skops.io

        with tempfile.TemporaryDirectory(prefix="mreg-deploy-") as tmp:
            path = Path(tmp) / "model.skops"
            skops.io.dump(obj_or_path, path)
            fields.setdefault("library", "sklearn")
            fields.setdefault("format", "skops")
            return self.register(
                name, path, description=description, point=point, create=True, **fields
            )

    def set_status(
        self,
        ref: str,
        status: Status | str,
        *,
        artifact: str | os.PathLike[str] | None = None,
        format: str | None = None,
        library: str | None = None,
        branch: str | None = None,
        commit: bool = True,
    ) -> WriteResult[VersionManifest]:
        """Move a version's status forward (untrained -> training -> trained|failed).

        Becoming trained needs an artifact: the one given here, pushed first.
        """
        try:
            target = Status(status)
        except ValueError:
            raise RegistryError(
                f"unknown status {status!r}: use training, trained or failed"
            ) from None
        if artifact is not None and target != Status.trained:
            raise RegistryError("an artifact is attached only when the version becomes trained")
        staged = stage_artifact(self.root, artifact, format) if artifact is not None else None

        def build(base: Snapshot) -> Plan[VersionManifest]:
            res = version_ref(base, ref)
            old = res.version
            n = old.version
            label = f"{res.model}:v{n}"
            check_status_move(label, old, target, artifact=staged is not None)
            data = old.model_dump(exclude_unset=True)
            data["status"] = target
            changes: dict[str, bytes | None] = {}
            worktree: dict[str, Path] = {}
            if target == Status.trained and old.artifact is None:
                if staged is None:
                    raise ArtifactError(
                        f"{label} needs an artifact to become trained: give --artifact FILE"
                    )
                lib = library or base.model(res.model).library
                art, art_changes, worktree = artifact_changes(res.model, n, staged, format, lib)
                data["artifact"] = art
                changes.update(art_changes)
            path = version_path(res.model, n)
            new = revalidate(VersionManifest, data, path)
            changes[path] = render_update(base.read_text(path), new, path).encode()
            trailers = [
                *action_trailers("version-status", res.model),
                ("Mreg-Version", str(n)),
                ("Mreg-Version-Id", old.id),
                ("Mreg-Status", target.value),
            ]
            return Plan(
                changes,
                CommitMessage(f"{res.model}: v{n} {old.status.value} -> {target.value}", trailers),
                new,
                worktree_files=worktree,
            )

        return commits.write(self, build, branch=branch, commit=commit, models=ref_scope(ref))

    def check_status(self, ref: str, status: Status | str, *, artifact: bool = False) -> None:
        """Refuse early what `set_status(ref, status)` would refuse (e.g. before an upload)."""
        res = version_ref(self.snapshot("HEAD", models=ref_scope(ref)), ref)
        check_status_move(
            f"{res.model}:v{res.version.version}", res.version, Status(status), artifact=artifact
        )

    def update_version(
        self,
        ref: str,
        *,
        deprecate: bool | None = None,
        branch: str | None = None,
        commit: bool = True,
        **fields: Any,
    ) -> WriteResult[VersionManifest]:
        """Patch version-level fields (metadata is merged; None clears a field).

        `deprecate=True` sets `deprecated_at`, False clears it. Immutable
        fields (id, version, created_at, created_by, artifact) are refused;
        status moves with `set_status`.
        """
        for key in fields:
            if key in (*IMMUTABLE_VERSION_FIELDS, "artifact"):
                raise ImmutableFieldError(
                    f"version field {key!r} is immutable once registered", ref=ref
                )
            if key == "status":
                raise ImmutableFieldError(
                    "status moves only forward, with 'mreg version status REF STATUS'", ref=ref
                )
            if key not in VERSION_PATCHABLE:
                raise RegistryError(
                    f"unknown version field {key!r} (patchable: {', '.join(VERSION_PATCHABLE)})"
                )
        if not fields and deprecate is None:
            raise RegistryError("nothing to update: give at least one field")
        _, when = self._author()

        def build(base: Snapshot) -> Plan[VersionManifest]:
            res = version_ref(base, ref)
            old = res.version
            data = old.model_dump(exclude_unset=True)
            for key, value in fields.items():
                if key == "metadata" and value is not None:
                    data[key] = {**data.get(key, {}), **value}
                elif value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
            if deprecate is True and not old.deprecated:
                data["deprecated_at"] = when
            elif deprecate is False:
                data.pop("deprecated_at", None)
            path = version_path(res.model, old.version)
            new = revalidate(VersionManifest, data, path)
            changed = [
                k
                for k in (*VERSION_PATCHABLE, "deprecated_at")
                if getattr(new, k) != getattr(old, k)
            ]
            what = ", ".join("deprecated" if k == "deprecated_at" else k for k in changed)
            trailers = [
                *action_trailers("version-update", res.model),
                ("Mreg-Version", str(old.version)),
                ("Mreg-Version-Id", old.id),
            ]
            return Plan(
                {path: render_update(base.read_text(path), new, path).encode()},
                CommitMessage(
                    f"{res.model}: update v{old.version} ({what or 'no change'})", trailers
                ),
                new,
            )

        return commits.write(self, build, branch=branch, commit=commit, models=ref_scope(ref))


def version_ref(base: Snapshot, ref: str) -> Resolution:
    """The version `ref` names at `base`; a bare model name is refused, since a write needs one."""
    parsed = parse_ref(ref)
    if parsed.version_id is None and parsed.tag is None:
        raise RegistryError(f"{ref!r} names a model: say which version, e.g. {ref}:v1")
    return base.resolve(parsed)


def check_status_move(label: str, old: VersionManifest, target: Status, *, artifact: bool) -> None:
    """Whether `old` may move to `target` (with a new artifact when `artifact`)."""
    if artifact and old.artifact is not None:
        raise ImmutableFieldError(f"{label} has an artifact already; it cannot change")
    if target not in STATUS_MOVES[old.status]:
        raise ConflictError(
            f"{label} is {old.status.value}: it cannot become {target.value}"
            f" (statuses move untrained -> training -> trained or failed)"
        )
