"""The registry: a git repository of manifests, read at any revision, written one commit at a time."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from registry import artifacts, commits, journal
from registry.cache import ManifestCache
from registry.commits import CommitMessage, Plan, WriteResult
from registry.errors import (
    ArtifactError,
    ConflictError,
    ImmutableFieldError,
    InvalidNameError,
    ModelNotFoundError,
    NotARegistryError,
    RegistryError,
    VersionNotFoundError,
)
from registry.formats import infer_format, infer_library, is_mlflow_dir, pack_mlflow_dir
from registry.history import LogEntry, PointerState
from registry.manifests import (
    IMMUTABLE_VERSION_FIELDS,
    STATUS_MOVES,
    Artifact,
    ModelManifest,
    PointerManifest,
    RegistrySettings,
    Status,
    VersionManifest,
)
from registry.names import (
    TAG_RE,
    VERSION_ID_RE,
    check_model_name,
    check_tag,
    new_version_id,
    parse_ref,
)
from registry.snapshot import (
    Pointer,
    Resolution,
    Snapshot,
    artifact_dir,
    model_path,
    pointer_path,
    version_path,
)
from registry.source import (
    REGISTRY_ROOTS,
    GitSource,
    OverlaySource,
    Source,
    WorkTreeSource,
    locate_repo,
    open_repo,
)
from registry.yamlio import render_new, render_update

if TYPE_CHECKING:
    import git

T = TypeVar("T")

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
)
VERSION_PATCHABLE = ("description", "notes", "license", "metadata", "visibility")


def _number(text: str) -> Any:
    """`3` -> 3, `0.97` -> 0.97, anything else stays text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_values(pairs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values given as text on a command line become numbers when they are numbers."""
    return {k: _number(v) if isinstance(v, str) else v for k, v in (pairs or {}).items()}


class Registry:
    """A registry repository. Reads go through snapshots; writes are commits."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, require: bool = True) -> None:
        # git's plumbing finds the repository; GitPython is loaded only if `repo` is used.
        self.where = locate_repo(path)
        self.root = Path(self.where.working_dir)
        if require and not (self.root / "registry.yaml").is_file():
            raise NotARegistryError(
                f"{self.root} is not an mreg registry (no registry.yaml): run 'mreg init'"
            )
        self.cache = ManifestCache(self.state_dir / "cache.sqlite")
        # A write killed half-way is finished before anything reads the work tree.
        journal.recover(self.root, self.state_dir)

    @cached_property
    def repo(self) -> git.Repo:
        """The repository as a GitPython Repo."""
        return open_repo(self.root)

    @property
    def state_dir(self) -> Path:
        """Runtime state that is not history (caches, usage, locks): inside .git, never committed."""
        return Path(self.where.git_dir) / "mreg"

    def source(self, rev: str | None = None, *, models: Sequence[str] | None = None) -> Source:
        roots: tuple[str, ...] = REGISTRY_ROOTS
        if models is not None:
            # A partial listing: what a read about these models needs, and nothing else.
            roots = (
                "registry.yaml",
                *(f"{top}/{m}" for m in models for top in ("models", "pointers")),
            )
        if rev is None:
            return WorkTreeSource(self.root, roots=roots)
        return GitSource(self.where, rev, roots=roots)

    def snapshot(self, rev: str | None = None, *, models: Sequence[str] | None = None) -> Snapshot:
        """The registry at `rev` (branch, tag, sha), or the work tree when rev is None.

        With `models`, the snapshot holds only those models and their pointers:
        much cheaper on a large registry, for reads about one model.
        """
        return Snapshot(self.source(rev, models=models), self.cache)

    def resolve(self, ref: str, rev: str | None = None) -> Resolution:
        """The version `ref` resolves to at `rev` (the work tree when None)."""
        parsed = parse_ref(ref)
        only = [parsed.model] if parsed.model is not None else None
        return self.snapshot(rev, models=only).resolve(parsed)

    # -- creating a registry -------------------------------------------------

    @classmethod
    def init(
        cls, path: str | os.PathLike[str] | None = None, remote: str | None = None
    ) -> Registry:
        """Make `path` a registry: git and DVC, registry.yaml, a default DVC remote, one commit.

        Without `remote` the default DVC remote is the local directory
        `.dvc/storage` (git-ignored, recorded as an absolute path so that
        local clones share it). Running it again changes nothing, unless a
        different `remote` is given.
        """
        root = Path(path or ".").resolve()
        root.mkdir(parents=True, exist_ok=True)
        top = commits.git(root, "rev-parse", "--show-toplevel", check=False)
        if top.returncode != 0:
            commits.git(root, "init", "-q", str(root))
        elif Path(top.stdout.decode().strip()).resolve() != root:
            raise NotARegistryError(
                f"{root} is inside the git repository {top.stdout.decode().strip()}:"
                " run 'mreg init' at the top of that repository"
            )
        reg = cls(root, require=False)
        with commits.write_lock(reg.state_dir):
            reg._init_locked(remote)
        return cls(root)

    def _init_locked(self, remote: str | None) -> None:
        from dvc.exceptions import DvcException
        from dvc.repo import Repo as DvcRepo

        root = self.root
        artifacts.quiet_dvc()
        try:
            if not (root / ".dvc" / "config").is_file():
                DvcRepo.init(str(root)).close()
            dvc = DvcRepo(str(root))
            try:
                with dvc.config.edit() as conf:
                    conf["core"]["autostage"] = False
                    if remote is not None or not conf["core"].get("remote"):
                        url = _remote_url(root, remote)
                        name = conf["core"].get("remote") or artifacts.DEFAULT_REMOTE_NAME
                        conf["remote"][name] = {"url": url}
                        conf["core"]["remote"] = name
            finally:
                dvc.close()
        except DvcException as exc:
            raise RegistryError(f"cannot set up DVC in {root}: {exc}") from None
        ignore = root / ".dvc" / ".gitignore"
        lines = ignore.read_text().splitlines() if ignore.is_file() else []
        if f"/{artifacts.LOCAL_STORAGE}" not in lines:
            ignore.write_text("\n".join([*lines, f"/{artifacts.LOCAL_STORAGE}"]) + "\n")
        settings = root / "registry.yaml"
        if not settings.is_file():
            settings.write_text(render_new(RegistrySettings(schema_version=1, name=root.name)))
        for top in ("models", "pointers"):
            (root / top).mkdir(exist_ok=True)
        paths = ["registry.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore"]
        head = commits.rev_sha(root, "HEAD")
        committed = commits.read_committed(root, head, paths)
        changes: dict[str, bytes | None] = {}
        for p in paths:
            data = (root / p).read_bytes() if (root / p).is_file() else None
            if data is not None and committed.get(p) != data:
                changes[p] = data
        if changes:
            message = CommitMessage(
                "mreg: init registry"
                if head is None or "registry.yaml" in changes
                else "mreg: configure DVC",
                [("Mreg-Action", "init")],
            )
            new = commits.commit_tree(root, commits.build_tree(root, head, changes), head, message)
            ref = commits.checked_out_ref(root)
            if not commits.swap_ref(root, ref, new, head):
                raise ConflictError("the repository changed during 'mreg init': retry")
        commits.stage(root, paths)

    def _author(self) -> tuple[str, Any]:
        return commits.author(self.root)

    # -- models ------------------------------------------------------------------

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
        fields = _given(
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
                CommitMessage(f"{name}: create model", _trailers("model-create", name)),
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
                if key in ("labels", "metadata") and value is not None:
                    data[key] = {**data.get(key, {}), **value}
                elif value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
            for label in remove_labels:
                data.get("labels", {}).pop(label, None)
            new = _revalidate(ModelManifest, data, model_path(name))
            changed = sorted(
                k
                for k in {*fields, *(["labels"] if remove_labels else [])}
                if getattr(new, k) != getattr(old, k)
            )
            return self._patch_model(
                base,
                name,
                new,
                "model-update",
                f"{name}: update model ({', '.join(changed) or 'no change'})",
            )

        return commits.write(self, build, branch=branch, commit=commit, models=[name])

    def _patch_model(
        self, base: Snapshot, name: str, new: ModelManifest, action: str, subject: str
    ) -> Plan[ModelManifest]:
        path = model_path(name)
        text = render_update(base.read_text(path), new, path).encode()
        return Plan({path: text}, CommitMessage(subject, _trailers(action, name)), new)

    def archive_model(
        self, name: str, *, branch: str | None = None, commit: bool = True
    ) -> WriteResult[ModelManifest]:
        """Hide a model (sets `archived_at`); `restore_model` undoes it."""
        _, when = self._author()

        def build(base: Snapshot) -> Plan[ModelManifest]:
            old = base.model(name)
            if old.archived:
                raise ConflictError(f"model {name!r} is archived already")
            new = _revalidate(
                ModelManifest,
                {**old.model_dump(exclude_unset=True), "archived_at": when},
                model_path(name),
            )
            return self._patch_model(base, name, new, "model-archive", f"{name}: archive model")

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
            new = _revalidate(ModelManifest, data, model_path(name))
            return self._patch_model(base, name, new, "model-restore", f"{name}: restore model")

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
            tracked = commits.git(self.root, *listing).stdout.decode()
            gone = sorted({*gone, *(p for p in tracked.split("\0") if p)})
            removals = [
                p.removesuffix(".dvc") for p in gone if p.endswith(".dvc") and "/artifacts/" in p
            ]
            return Plan(
                dict.fromkeys(gone),
                CommitMessage(f"{name}: delete model", _trailers("model-delete", name)),
                gone,
                worktree_removals=removals,
            )

        return commits.write(self, build, branch=branch, commit=commit, models=[name])

    # -- versions ----------------------------------------------------------------

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
            if commit and commits.rev_sha(self.root, "HEAD")
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
        staged = self._stage_artifact(artifact, format) if artifact is not None else None
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
            trailers = _trailers("register", model)
            if base.has_model(model):
                model_library = model_library or base.model(model).library
            else:
                lib = library or (infer_lib(staged, format) if staged else None)
                created = ModelManifest(name=model, created_at=when, **_given(library=lib))
                changes[model_path(model)] = render_new(created).encode()
            n = base.next_version_number(model) if base.has_model(model) else 1
            art: Artifact | None = None
            worktree: dict[str, Path] = {}
            if staged is not None:
                art, art_changes, worktree = _artifact_changes(
                    model, n, staged, format, model_library
                )
                changes.update(art_changes)
            fields = _given(
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
                changes[pointer_path(model, tag)] = self._pointer_text(
                    base, model, tag, f"v{n}", None
                )
                trailers.append(("Mreg-Pointer", tag))
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

    def _stage_artifact(
        self, artifact: str | os.PathLike[str], fmt: str | None
    ) -> artifacts.StagedArtifact:
        """Check the file, copy it into the DVC cache and push it: all before any commit.

        An MLflow model directory is packed into one `<name>.mlflow` file first.
        """
        if is_mlflow_dir(artifact):
            if fmt not in (None, "mlflow"):
                raise ArtifactError(
                    f"{artifact} is an MLflow model directory: its format is mlflow"
                )
            with tempfile.TemporaryDirectory(prefix="mreg-mlflow-") as tmp:
                name = Path(artifact).resolve().name
                packed = pack_mlflow_dir(Path(artifact), Path(tmp) / f"{name}.mlflow")
                return self._stage_artifact(packed, fmt)
        artifacts.check_artifact_file(artifact)
        _format_of(Path(artifact).name, fmt)
        if not artifacts.has_default_remote(self.root):
            raise ArtifactError(
                "the registry has no default DVC remote: run 'mreg init --remote URL'"
            )
        staged = artifacts.add_to_cache(self.root, artifact)
        artifacts.push(self.root, [staged.md5])
        return staged

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

    def _version_ref(self, base: Snapshot, ref: str) -> Resolution:
        parsed = parse_ref(ref)
        if parsed.version_id is None and parsed.tag is None:
            raise RegistryError(f"{ref!r} names a model: say which version, e.g. {ref}:v1")
        return base.resolve(parsed)

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
        staged = self._stage_artifact(artifact, format) if artifact is not None else None

        def build(base: Snapshot) -> Plan[VersionManifest]:
            res = self._version_ref(base, ref)
            old = res.version
            n = old.version
            label = f"{res.model}:v{n}"
            if target not in STATUS_MOVES[old.status]:
                raise ConflictError(
                    f"{label} is {old.status.value}: it cannot become {target.value}"
                    f" (statuses move untrained -> training -> trained or failed)"
                )
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
                art, art_changes, worktree = _artifact_changes(res.model, n, staged, format, lib)
                data["artifact"] = art
                changes.update(art_changes)
            elif staged is not None:
                raise ImmutableFieldError(f"{label} has an artifact already; it cannot change")
            path = version_path(res.model, n)
            new = _revalidate(VersionManifest, data, path)
            changes[path] = render_update(base.read_text(path), new, path).encode()
            trailers = [
                *_trailers("version-status", res.model),
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

        return commits.write(self, build, branch=branch, commit=commit, models=_scope(ref))

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
            res = self._version_ref(base, ref)
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
            new = _revalidate(VersionManifest, data, path)
            changed = [
                k
                for k in (*VERSION_PATCHABLE, "deprecated_at")
                if getattr(new, k) != getattr(old, k)
            ]
            what = ", ".join("deprecated" if k == "deprecated_at" else k for k in changed)
            trailers = [
                *_trailers("version-update", res.model),
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

        return commits.write(self, build, branch=branch, commit=commit, models=_scope(ref))

    # -- pointers --------------------------------------------------------------

    def _pointer_text(
        self, base: Snapshot, model: str, tag: str, target: str, description: str | None
    ) -> bytes:
        path = pointer_path(model, tag)
        new = PointerManifest(target=target, **_given(description=description))
        if tag in base.pointer_tags(model):
            old = base.pointer(model, tag)
            keep = PointerManifest(
                target=target,
                **_given(description=description if description is not None else old.description),
            )
            return render_update(base.read_text(path), keep, path).encode()
        return render_new(new).encode()

    def point(
        self,
        ref: str,
        target: str,
        *,
        description: str | None = None,
        branch: str | None = None,
        commit: bool = True,
    ) -> WriteResult[Pointer]:
        """Create or move the pointer `model:tag` to `target` (v<n>, another tag, or a version id)."""
        parsed = parse_ref(ref)
        if parsed.model is None or parsed.tag is None:
            raise InvalidNameError(f"expected MODEL:TAG, got {ref!r}")
        model, tag = parsed.model, check_tag(parsed.tag)
        if not (TAG_RE.fullmatch(target) or VERSION_ID_RE.fullmatch(target)):
            raise InvalidNameError(
                f"invalid pointer target {target!r}: use v<n>, another tag or a version id"
            )
        if target == tag:
            raise ConflictError(f"pointer {model}:{tag} cannot target itself")

        def build(base: Snapshot) -> Plan[Pointer]:
            if base.model(model).archived:
                raise ConflictError(f"model {model!r} is archived: restore it first")
            old_target = (
                base.pointer(model, tag).target if tag in base.pointer_tags(model) else None
            )
            path = pointer_path(model, tag)
            text = self._pointer_text(base, model, tag, target, description)
            after = Snapshot(OverlaySource(base.source, {path: text}), self.cache)
            res = after.resolve(f"{model}:{tag}")
            pointer = after.pointer(model, tag)
            trailers = [*_trailers("point", model), ("Mreg-Pointer", tag)]
            if old_target is not None:
                trailers.append(("Mreg-From", old_target))
            trailers += [
                ("Mreg-To", target),
                ("Mreg-Version", str(res.version.version)),
                ("Mreg-Version-Id", res.version.id),
            ]
            subject = (
                f"{model}: move {tag} {old_target} -> {target}"
                if old_target is not None
                else f"{model}: point {tag} -> {target}"
            )
            return Plan({path: text}, CommitMessage(subject, trailers), pointer)

        return commits.write(self, build, branch=branch, commit=commit, models=[model])

    def delete_pointer(
        self, ref: str, *, branch: str | None = None, commit: bool = True
    ) -> WriteResult[Pointer]:
        """Remove the pointer `model:tag` (its file); other pointers that target it are refused."""
        parsed = parse_ref(ref)
        if parsed.model is None or parsed.tag is None:
            raise InvalidNameError(f"expected MODEL:TAG, got {ref!r}")
        model, tag = parsed.model, check_tag(parsed.tag)

        def build(base: Snapshot) -> Plan[Pointer]:
            old = base.pointer(model, tag)
            users = [p for p in base.pointers(model) if p.target == tag]
            if users:
                raise ConflictError(
                    f"pointer {model}:{users[0].tag} targets {model}:{tag}: move or delete it first"
                )
            trailers = [
                *_trailers("pointer-delete", model),
                ("Mreg-Pointer", tag),
                ("Mreg-From", old.target),
            ]
            return Plan(
                {old.file: None},
                CommitMessage(f"{model}: delete pointer {tag} (was {old.target})", trailers),
                old,
            )

        return commits.write(self, build, branch=branch, commit=commit, models=_scope(ref))

    # -- artifacts in the work tree ---------------------------------------------

    def pull(
        self, refs: Sequence[str] = (), rev: str | None = None
    ) -> list[tuple[str, Path, bool]]:
        """Bring the artifacts of these refs (all versions if none) into the work tree.

        Returns (model:v<n>, work tree path, copied) for each; copied is False
        when the file was there already.
        """
        snap = self.snapshot(rev)
        wanted: list[tuple[str, VersionManifest]] = []
        if refs:
            for ref in refs:
                parsed = parse_ref(ref)
                if (
                    parsed.model is not None
                    and parsed.tag is None
                    and not snap.has_model(parsed.model)
                ):
                    raise ModelNotFoundError(f"model {ref!r} not found at {snap.label}", ref=ref)
                res = snap.resolve(parsed)
                wanted.append((res.model, res.version))
        else:
            for m in snap.models(archived=None):
                wanted += [(m.name, v) for v in snap.versions(m.name) if v.artifact is not None]
        out: list[tuple[str, Path, bool]] = []
        unique = {(model, v.version): (model, v) for model, v in wanted}
        for model, version in unique.values():
            if version.artifact is None:
                raise VersionNotFoundError(
                    f"{model}:v{version.version} has no artifact (status {version.status.value})"
                )
            cached = artifacts.ensure_local(self, snap, model, version)
            target = self.root / "models" / model / version.artifact.path
            out.append((f"{model}:v{version.version}", target, artifacts.checkout(cached, target)))
        return out

    # -- history --------------------------------------------------------------------

    def log(
        self, model: str | None = None, *, rev: str | None = None, limit: int | None = None
    ) -> list[LogEntry]:
        """The registry's history, newest first, from commit subjects and trailers."""
        from registry.history import log

        return log(self, model, rev=rev, limit=limit)

    def pointer_history(self, ref: str, *, rev: str | None = None) -> list[PointerState]:
        """Every state of the pointer `model:tag` over the history, newest first."""
        from registry.history import pointer_history

        return pointer_history(self, ref, rev=rev)


# -- helpers -----------------------------------------------------------------------


def _given(**fields: Any) -> dict[str, Any]:
    """Only the fields that were given, so unset ones stay out of the manifest."""
    return {k: v for k, v in fields.items() if v is not None}


def _trailers(action: str, model: str) -> list[tuple[str, str]]:
    return [("Mreg-Action", action), ("Mreg-Model", model)]


M = TypeVar("M", ModelManifest, VersionManifest)


def _revalidate(kind: type[M], data: dict[str, Any], file: str) -> M:
    from pydantic import ValidationError

    from registry.yamlio import describe_validation_error

    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        message, _ = describe_validation_error(exc)
        raise RegistryError(message, file=file) from None


def infer_lib(staged: artifacts.StagedArtifact, fmt: str | None) -> str | None:
    fmt = fmt or infer_format(staged.filename)
    return infer_library(fmt) if fmt else None


def _format_of(filename: str, fmt: str | None) -> str:
    fmt = fmt or infer_format(filename)
    if fmt is None:
        raise ArtifactError(
            f"cannot tell the format of {filename} from its name: give --format"
            " (skops, joblib, pickle, onnx, torchscript, keras, h5)"
        )
    return fmt


def _artifact_changes(
    model: str,
    n: int,
    staged: artifacts.StagedArtifact,
    fmt: str | None,
    library: str | None,
) -> tuple[Artifact, dict[str, bytes | None], dict[str, Path]]:
    fmt = _format_of(staged.filename, fmt)
    library = library or infer_library(fmt)
    folder = artifact_dir(model, n)
    art = Artifact(
        path=f"artifacts/v{n}/{staged.filename}",
        md5=staged.md5,
        size=staged.size,
        format=fmt,
        **_given(library=library),
    )
    changes: dict[str, bytes | None] = {
        f"{folder}/{staged.filename}.dvc": artifacts.dvc_file_text(
            staged.filename, staged.md5, staged.size
        ),
        f"{folder}/.gitignore": artifacts.gitignore_text(staged.filename),
    }
    return art, changes, {f"{folder}/{staged.filename}": staged.cached}


def _remote_url(root: Path, remote: str | None) -> str:
    """The DVC remote URL to record in the committed `.dvc/config`.

    The default local storage (git-ignored) is recorded by absolute path so that
    local clones share it. A local directory inside the repository, given on
    purpose, is recorded relative to `.dvc/`, so that it stays valid in every
    clone: that is how a registry ships its own small artifacts.
    """
    if remote is not None and "://" in remote:
        return remote
    path = Path(remote).expanduser() if remote else root / ".dvc" / artifacts.LOCAL_STORAGE
    path = path.resolve()
    if remote is not None and path.is_relative_to(root):
        from dvc.config_schema import RelPath

        # DVC writes a RelPath relative to the config file's directory.
        return RelPath(str(path))  # type: ignore[no-any-return]
    return str(path)


def _scope(ref: str) -> list[str] | None:
    """The models a write to `ref` can touch: its model, or all of them for a bare version id."""
    model = parse_ref(ref).model
    return [model] if model is not None else None
