"""Writes to models: create, update, archive, restore and delete, each one commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry import commits, plumbing
from registry.base import RegistryBase
from registry.commits import Plan, WriteResult
from registry.errors import ConflictError, ImmutableFieldError, RegistryError
from registry.layout import model_path
from registry.manifests import ModelManifest
from registry.names import check_model_name
from registry.plumbing import CommitMessage
from registry.snapshot import Snapshot
from registry.writes.fields import action_trailers, given, revalidate
from registry.yamlio import render_new, render_update

# Fields `update_model` may change; the rest are set once or by archive/restore.
MODEL_PATCHABLE = (
    "description",
    "project",
    "task",
    "owner",
    "library",
    "is_public",
    "labels",
    "metadata",
    "license",
    "serving",
)


class ModelWrites(RegistryBase):
    """Writes to `models/<name>/model.yaml` (and, for delete, everything of the model)."""

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        project: str | None = None,
        task: str | None = None,
        owner: str | None = None,
        library: str | None = None,
        is_public: bool = False,
        labels: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        license: str | None = None,
        branch: str | None = None,
        commit: bool = True,
    ) -> WriteResult[ModelManifest]:
        """Create `models/<name>/model.yaml` in one commit."""
        check_model_name(name)
        _, when = self._author()
        fields = given(
            description=description,
            project=project,
            task=task,
            owner=owner,
            library=library,
            labels=dict(labels) if labels else None,
            metadata=dict(metadata) if metadata else None,
            license=license,
        )
        if is_public:
            fields["is_public"] = True
        manifest = ModelManifest(name=name, created_at=when, **fields)

        def build(base: Snapshot) -> Plan[ModelManifest]:
            if base.has_model(name):
                raise ConflictError(f"model {name!r} exists already")
            return Plan(
                {model_path(name): render_new(manifest).encode()},
                CommitMessage(f"{name}: create model", action_trailers("model-create", name)),
                manifest,
            )

        return commits.write(self, build, branch=branch, commit=commit, models=[name])

    def update_model(
        self,
        name: str,
        *,
        remove_labels: Sequence[str] = (),
        branch: str | None = None,
        commit: bool = True,
        **fields: Any,
    ) -> WriteResult[ModelManifest]:
        """Patch model-level fields (labels and metadata are merged; None clears a field)."""
        for key in fields:
            if key in ("name", "created_at"):
                raise ImmutableFieldError(f"model field {key!r} is set once and cannot change")
            if key == "archived_at":
                raise ImmutableFieldError(
                    "archived_at is set by 'mreg model archive' and cleared by 'mreg model restore'"
                )
            if key not in MODEL_PATCHABLE:
                raise RegistryError(
                    f"unknown model field {key!r} (patchable: {', '.join(MODEL_PATCHABLE)})"
                )
        if not fields and not remove_labels:
            raise RegistryError("nothing to update: give at least one field")

        def build(base: Snapshot) -> Plan[ModelManifest]:
            old = base.model(name)
            data = old.model_dump(exclude_unset=True)
            for key, value in fields.items():
                if key in ("labels", "metadata", "serving") and isinstance(value, dict):
                    data[key] = {**data.get(key, {}), **value}
                elif value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
            for label in remove_labels:
                data.get("labels", {}).pop(label, None)
            new = revalidate(ModelManifest, data, model_path(name))
            changed = sorted(
                k
                for k in {*fields, *(["labels"] if remove_labels else [])}
                if getattr(new, k) != getattr(old, k)
            )
            return _patch_model(
                base,
                name,
                new,
                "model-update",
                f"{name}: update model ({', '.join(changed) or 'no change'})",
            )

        return commits.write(self, build, branch=branch, commit=commit, models=[name])

    def archive_model(
        self, name: str, *, branch: str | None = None, commit: bool = True
    ) -> WriteResult[ModelManifest]:
        """Hide a model (sets `archived_at`); `restore_model` undoes it."""
        _, when = self._author()

        def build(base: Snapshot) -> Plan[ModelManifest]:
            old = base.model(name)
            if old.archived:
                raise ConflictError(f"model {name!r} is archived already")
            new = revalidate(
                ModelManifest,
                {**old.model_dump(exclude_unset=True), "archived_at": when},
                model_path(name),
            )
            return _patch_model(base, name, new, "model-archive", f"{name}: archive model")

        return commits.write(self, build, branch=branch, commit=commit, models=[name])

    def restore_model(
        self, name: str, *, branch: str | None = None, commit: bool = True
    ) -> WriteResult[ModelManifest]:
        """Undo `archive_model` (clears `archived_at`)."""

        def build(base: Snapshot) -> Plan[ModelManifest]:
            old = base.model(name)
            if not old.archived:
                raise ConflictError(f"model {name!r} is not archived")
            data = old.model_dump(exclude_unset=True)
            data.pop("archived_at", None)
            new = revalidate(ModelManifest, data, model_path(name))
            return _patch_model(base, name, new, "model-restore", f"{name}: restore model")

        return commits.write(self, build, branch=branch, commit=commit, models=[name])

    def delete_model(
        self, name: str, *, branch: str | None = None, commit: bool = True
    ) -> WriteResult[list[str]]:
        """Remove a model's manifests, pointers and .dvc files in one commit (history keeps them)."""

        def build(base: Snapshot) -> Plan[list[str]]:
            base.model(name)  # raises if missing
            prefixes = (f"models/{name}/", f"pointers/{name}/")
            gone = [p for p in base.source.paths() if p.startswith(prefixes)]
            # Also tracked files the snapshot does not index (the artifacts' .gitignore).
            where = ["--", f"models/{name}", f"pointers/{name}"]
            listing = (
                ["ls-tree", "-r", "-z", "--name-only", str(base.revision), *where]
                if commit
                else ["ls-files", "-z", *where]
            )
            tracked = plumbing.git(self.root, *listing).stdout.decode()
            gone = sorted({*gone, *(p for p in tracked.split("\0") if p)})
            removals = [
                p.removesuffix(".dvc") for p in gone if p.endswith(".dvc") and "/artifacts/" in p
            ]
            return Plan(
                dict.fromkeys(gone),
                CommitMessage(f"{name}: delete model", action_trailers("model-delete", name)),
                gone,
                worktree_removals=removals,
            )

        return commits.write(self, build, branch=branch, commit=commit, models=[name])


def _patch_model(
    base: Snapshot, name: str, new: ModelManifest, action: str, subject: str
) -> Plan[ModelManifest]:
    path = model_path(name)
    text = render_update(base.read_text(path), new, path).encode()
    return Plan({path: text}, CommitMessage(subject, action_trailers(action, name)), new)
