"""The registry: a git repository of manifests, read at any revision, written one commit at a time.

`Registry` puts the parts together: reading (`RegistryBase`: sources,
snapshots, resolve), the writes (`registry.writes`: models, versions,
pointers, each built on `registry.commits`), history (`registry.history`),
and here, creating a registry and pulling artifacts into the work tree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from registry import artifacts, plumbing, remotes, writelock
from registry.errors import (
    ConflictError,
    ModelNotFoundError,
    NotARegistryError,
    RegistryError,
    VersionNotFoundError,
)
from registry.history import History
from registry.manifests import RegistrySettings, VersionManifest
from registry.names import parse_ref
from registry.plumbing import CommitMessage
from registry.writes.models import ModelWrites
from registry.writes.pointers import PointerWrites
from registry.writes.rollout import RolloutWrites
from registry.writes.versions import VersionWrites
from registry.yamlio import render_new


class Registry(ModelWrites, VersionWrites, PointerWrites, RolloutWrites, History):
    """A registry repository. Reads go through snapshots; writes are commits."""

    # -- creating a registry -------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str] | None = None,
        remote: str | None = None,
        trusted_formats: list[str] | None = None,
    ) -> Registry:
        """Make `path` a registry: git and DVC, registry.yaml, a default DVC remote, one commit.

        Without `remote` the default DVC remote is the local directory
        `.dvc/storage` (git-ignored, recorded as an absolute path so that
        local clones share it). Running it again changes nothing, unless a
        different `remote` is given. `trusted_formats` goes to a new registry.yaml
        (default: registry.format_policy.DEFAULT_TRUSTED_FORMATS).
        """
        root = Path(path or ".").resolve()
        root.mkdir(parents=True, exist_ok=True)
        top = plumbing.git(root, "rev-parse", "--show-toplevel", check=False)
        if top.returncode != 0:
            plumbing.git(root, "init", "-q", str(root))
        elif Path(top.stdout.decode().strip()).resolve() != root:
            raise NotARegistryError(
                f"{root} is inside the git repository {top.stdout.decode().strip()}:"
                " run 'mreg init' at the top of that repository"
            )
        reg = cls(root, require=False)
        with writelock.write_lock(reg.state_dir):
            reg._init_locked(remote, trusted_formats)
        return cls(root)

    def _init_locked(self, remote: str | None, trusted_formats: list[str] | None) -> None:
        from dvc.exceptions import DvcException
        from dvc.repo import Repo as DvcRepo

        root = self.root
        remotes.quiet_dvc()
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
            fields: dict[str, Any] = {"schema_version": 1, "name": root.name}
            if trusted_formats is not None:
                fields["trusted_formats"] = trusted_formats
            settings.write_text(render_new(RegistrySettings(**fields)))
        for top in ("models", "pointers"):
            (root / top).mkdir(exist_ok=True)
        paths = ["registry.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore"]
        head = plumbing.rev_sha(root, "HEAD")
        committed = plumbing.read_committed(root, head, paths)
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
            new = plumbing.commit_tree(
                root, plumbing.build_tree(root, head, changes), head, message
            )
            ref = plumbing.checked_out_ref(root)
            if not plumbing.swap_ref(root, ref, new, head):
                raise ConflictError("the repository changed during 'mreg init': retry")
        plumbing.stage(root, paths)

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
                # A weighted pointer serves every arm: pull them all.
                wanted += [(res.model, arm.version) for arm in res.arms] or [
                    (res.model, res.version)
                ]
        else:
            for m in snap.models(archived=None):
                wanted += [(m.name, v) for v in snap.versions(m.name) if v.artifact is not None]
        out: list[tuple[str, Path, bool]] = []
        unique = {(model, v.version): (model, v) for model, v in wanted}
        # Every target is checked before anything is fetched or written.
        targets: list[tuple[str, VersionManifest, Path]] = []
        for model, version in unique.values():
            if version.artifact is None:
                raise VersionNotFoundError(
                    f"{model}:v{version.version} has no artifact (status {version.status.value})"
                )
            targets.append((model, version, artifacts.artifact_target(self.root, model, version)))
        for model, version, target in targets:
            cached = artifacts.ensure_local(self, snap, model, version)
            out.append((f"{model}:v{version.version}", target, artifacts.checkout(cached, target)))
        return out


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
