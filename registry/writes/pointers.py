"""Writes to pointers: point (create or move) and delete, each one commit."""

from __future__ import annotations

from registry import commits
from registry.base import RegistryBase
from registry.commits import Plan, WriteResult
from registry.errors import ConflictError, InvalidNameError, ProtectedPointerError
from registry.layout import Pointer, pointer_path
from registry.manifests import PointerManifest
from registry.names import TAG_RE, VERSION_ID_RE, check_tag, parse_ref
from registry.plumbing import CommitMessage
from registry.snapshot import Snapshot
from registry.source import OverlaySource
from registry.writes.fields import action_trailers, given, ref_scope
from registry.yamlio import render_new, render_update


class PointerWrites(RegistryBase):
    """Writes to `pointers/<model>/<tag>.yaml`."""

    def point(
        self,
        ref: str,
        target: str,
        *,
        description: str | None = None,
        branch: str | None = None,
        commit: bool = True,
        unreviewed: bool = False,
    ) -> WriteResult[Pointer]:
        """Create or move the pointer `model:tag` to `target` (v<n>, another tag, or a version id).

        unreviewed: the commit lands on a served branch without review (an HTTP write), so a
        protected pointer is refused (ProtectedPointerError) unless it goes to a new `branch`.
        """
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
            refuse_protected(base, model, tag, unreviewed and branch is None)
            if base.model(model).archived:
                raise ConflictError(f"model {model!r} is archived: restore it first")
            old_target = (
                base.pointer(model, tag).target if tag in base.pointer_tags(model) else None
            )
            path = pointer_path(model, tag)
            text = pointer_text(base, model, tag, target, description)
            after = Snapshot(OverlaySource(base.source, {path: text}), self.cache)
            res = after.resolve(f"{model}:{tag}")
            pointer = after.pointer(model, tag)
            trailers = [*action_trailers("point", model), ("Mreg-Pointer", tag)]
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
        self,
        ref: str,
        *,
        branch: str | None = None,
        commit: bool = True,
        unreviewed: bool = False,
    ) -> WriteResult[Pointer]:
        """Remove the pointer `model:tag` (its file); other pointers that target it are refused.

        unreviewed: as for `point`, a protected pointer is then deleted only on a new branch.
        """
        parsed = parse_ref(ref)
        if parsed.model is None or parsed.tag is None:
            raise InvalidNameError(f"expected MODEL:TAG, got {ref!r}")
        model, tag = parsed.model, check_tag(parsed.tag)

        def build(base: Snapshot) -> Plan[Pointer]:
            refuse_protected(base, model, tag, unreviewed and branch is None)
            old = base.pointer(model, tag)
            users = [p for p in base.pointers(model) if p.target == tag]
            if users:
                raise ConflictError(
                    f"pointer {model}:{users[0].tag} targets {model}:{tag}: move or delete it first"
                )
            trailers = [
                *action_trailers("pointer-delete", model),
                ("Mreg-Pointer", tag),
                ("Mreg-From", old.target),
            ]
            return Plan(
                {old.file: None},
                CommitMessage(f"{model}: delete pointer {tag} (was {old.target})", trailers),
                old,
            )

        return commits.write(self, build, branch=branch, commit=commit, models=ref_scope(ref))


def refuse_protected(base: Snapshot, model: str, tag: str, unreviewed: bool) -> None:
    """A protected pointer (registry.yaml) changes only through review: on a branch, then a PR."""
    if unreviewed and tag in base.settings().protected_pointers:
        raise ProtectedPointerError(
            f"{model}:{tag} is a protected pointer (registry.yaml protected_pointers):"
            " change it on a branch with ?branch=NAME and merge a reviewed pull request"
        )


def pointer_text(
    base: Snapshot, model: str, tag: str, target: str, description: str | None
) -> bytes:
    """The pointer file pointing at `target`; an existing one keeps its comments and description."""
    path = pointer_path(model, tag)
    new = PointerManifest(target=target, **given(description=description))
    if tag in base.pointer_tags(model):
        old = base.pointer(model, tag)
        keep = PointerManifest(
            target=target,
            **given(description=description if description is not None else old.description),
        )
        return render_update(base.read_text(path), keep, path).encode()
    return render_new(new).encode()
