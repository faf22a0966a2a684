"""Writes to pointers: point (create, move, or canary with a weight) and delete, each one commit.

Every write of a pointer file goes through `pointer_plan`, which resolves
the state to be and checks the promotion rules of a protected pointer
(registry/promotion.py), so that `point`, `promote` and `rollback` (and the
server's writes, which call them) refuse the same moves.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry import commits, plumbing
from registry.base import RegistryBase
from registry.commits import Plan, WriteResult
from registry.errors import (
    ConflictError,
    InvalidNameError,
    PointerNotFoundError,
    ProtectedPointerError,
    RegistryError,
)
from registry.layout import Pointer, Resolution, pointer_path
from registry.manifests import PointerArm, PointerManifest
from registry.names import TAG_RE, VERSION_ID_RE, check_tag, parse_ref
from registry.plumbing import CommitMessage
from registry.promotion import Approval, check_move, refuse_breaches
from registry.snapshot import Snapshot
from registry.source import OverlaySource
from registry.split import scale
from registry.writes.fields import action_trailers, given, ref_scope
from registry.yamlio import render_new, render_update


def pointer_ref(ref: str) -> tuple[str, str]:
    """(model, tag) of a MODEL:TAG ref, or an InvalidNameError."""
    parsed = parse_ref(ref)
    if parsed.model is None or parsed.tag is None:
        raise InvalidNameError(f"expected MODEL:TAG, got {ref!r}")
    return parsed.model, check_tag(parsed.tag)


def check_target(tag: str, target: str) -> None:
    if not (TAG_RE.fullmatch(target) or VERSION_ID_RE.fullmatch(target)):
        raise InvalidNameError(
            f"invalid pointer target {target!r}: use v<n>, another tag or a version id"
        )
    if target == tag:
        raise ConflictError(f"pointer {tag} cannot target itself")


def split_text(arms: Sequence[tuple[str, int]]) -> str:
    """`v3` for one arm of 100, else `v3 90%, v4 10%`: how subjects and the CLI show a pointer."""
    if len(arms) == 1 and arms[0][1] == 100:
        return arms[0][0]
    return ", ".join(f"{t} {w}%" for t, w in arms)


class PointerWrites(RegistryBase):
    """Writes to `pointers/<model>/<tag>.yaml`."""

    def point(
        self,
        ref: str,
        target: str,
        *,
        weight: int | None = None,
        description: str | None = None,
        approved_by: Sequence[str] = (),
        branch: str | None = None,
        commit: bool = True,
        unreviewed: bool = False,
    ) -> WriteResult[Pointer]:
        """Create or move the pointer `model:tag` to `target` (v<n>, another tag, or a version id).

        With `weight` (1-99), a canary: `target` gets that share of the
        traffic and the pointer's other arms are scaled to the rest (the
        pointer must exist). `approved_by` adds `Approved-by:` trailers (for
        a protected pointer's `approvers`). `unreviewed`: the commit lands on a
        served branch without review (an HTTP write), so a protected pointer is
        refused (ProtectedPointerError) unless it goes to a new `branch`.
        """
        model, tag = pointer_ref(ref)
        check_target(tag, target)
        if weight is not None and not 1 <= weight <= 99:
            raise RegistryError(
                f"weight {weight} is not 1-99 (point without a weight to send all traffic)"
            )

        def build(base: Snapshot) -> Plan[Pointer]:
            refuse_protected(base, model, tag, unreviewed and branch is None)
            old = base.pointer(model, tag) if tag in base.pointer_tags(model) else None
            if weight is None:
                arms = [(target, 100)]
                subject = (
                    f"{model}: move {tag} {split_text(old.arms)} -> {target}"
                    if old is not None
                    else f"{model}: point {tag} -> {target}"
                )
            else:
                if old is None:
                    raise PointerNotFoundError(
                        f"pointer {model}:{tag} does not exist: a canary splits an existing"
                        f" pointer (mreg point {model}:{tag} TARGET first)",
                        ref=ref,
                    )
                rest = [(t, w) for t, w in old.arms if t != target]
                if not rest:
                    raise ConflictError(f"{model}:{tag} already sends all traffic to {target}")
                try:
                    arms = [*scale(rest, 100 - weight), (target, weight)]
                except ValueError as exc:
                    raise ConflictError(f"{model}:{tag}: {exc} beside {target}") from None
                subject = (
                    f"{model}: canary {tag} {target} {weight}%"
                    f" ({split_text(old.arms)} -> {split_text(arms)})"
                )
            text = pointer_text(base, model, tag, arms, description)
            return pointer_plan(self, base, model, tag, text, "point", subject, approved_by)

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
        model, tag = pointer_ref(ref)

        def build(base: Snapshot) -> Plan[Pointer]:
            refuse_protected(base, model, tag, unreviewed and branch is None)
            old = base.pointer(model, tag)
            users = [
                p for p in base.pointers(model) if tag in [t for t, _ in p.arms] or p.shadow == tag
            ]
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
                CommitMessage(
                    f"{model}: delete pointer {tag} (was {split_text(old.arms)})", trailers
                ),
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
    base: Snapshot,
    model: str,
    tag: str,
    arms: Sequence[tuple[str, int]],
    description: str | None,
) -> bytes:
    """The pointer file with these arms (one of 100: a plain `target:`).

    An existing file keeps its comments, its description and its shadow.
    """
    path = pointer_path(model, tag)
    old = base.pointer(model, tag) if tag in base.pointer_tags(model) else None
    fields = given(
        description=description if description is not None or old is None else old.description,
        shadow=old.shadow if old is not None else None,
        shadow_sample=old.shadow_sample if old is not None else None,
    )
    if len(arms) == 1 and arms[0][1] == 100:
        new = PointerManifest(target=arms[0][0], **fields)
    else:
        new = PointerManifest(targets=[PointerArm(target=t, weight=w) for t, w in arms], **fields)
    if old is not None:
        return render_update(base.read_text(path), new, path).encode()
    return render_new(new).encode()


def pointer_plan(
    registry: RegistryBase,
    base: Snapshot,
    model: str,
    tag: str,
    text: bytes,
    action: str,
    subject: str,
    approved_by: Sequence[str] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> Plan[Pointer]:
    """The plan that writes `text` as pointer `model:tag`, once its promotion rules allow it."""
    if base.model(model).archived:
        raise ConflictError(f"model {model!r} is archived: restore it first")
    path = pointer_path(model, tag)
    old = base.pointer(model, tag) if tag in base.pointer_tags(model) else None
    after = Snapshot(OverlaySource(base.source, {path: text}), registry.cache)
    res = after.resolve(f"{model}:{tag}")
    pointer = after.pointer(model, tag)
    check_rules(registry, base, model, tag, _quiet_resolve(base, model, tag), res, approved_by)
    trailers = [*action_trailers(action, model), ("Mreg-Pointer", tag)]
    if old is not None:
        trailers.append(("Mreg-From", old.target))
        if old.weighted:
            trailers.append(("Mreg-From-Targets", split_text(old.arms)))
    trailers.append(("Mreg-To", pointer.target))
    if pointer.weighted:
        trailers.append(("Mreg-To-Targets", split_text(pointer.arms)))
    trailers += [
        ("Mreg-Version", str(res.version.version)),
        ("Mreg-Version-Id", res.version.id),
        *extra,
        *(("Approved-by", who) for who in approved_by),
    ]
    return Plan({path: text}, CommitMessage(subject, trailers), pointer)


def check_rules(
    registry: RegistryBase,
    base: Snapshot,
    model: str,
    tag: str,
    old: Resolution | None,
    new: Resolution,
    approved_by: Sequence[str],
) -> None:
    """Refuse the move when it breaks a promotion rule (PromotionRuleError naming the rule)."""
    settings = base.settings()
    if tag not in settings.promotion:
        return
    author, when = plumbing.author(registry.root)
    breaches = check_move(
        registry,
        settings,
        model,
        tag,
        old,
        new,
        history_rev=None,
        when=when,
        approvals=[Approval(author, tuple(approved_by))],
    )
    refuse_breaches(f"{model}:{tag}", breaches)


def check_point_rules(
    registry: RegistryBase,
    base: Snapshot,
    model: str,
    tags: Sequence[str],
    changes: dict[str, bytes | None],
) -> None:
    """The promotion rules of pointers that another write (register --point) moves."""
    if not any(tag in base.settings().promotion for tag in tags):
        return
    after = Snapshot(OverlaySource(base.source, changes), registry.cache)
    for tag in tags:
        new = after.resolve(f"{model}:{tag}")
        check_rules(registry, base, model, tag, _quiet_resolve(base, model, tag), new, ())


def _quiet_resolve(snap: Snapshot, model: str, tag: str) -> Resolution | None:
    if tag not in snap.pointer_tags(model):
        return None
    try:
        return snap.resolve(f"{model}:{tag}")
    except RegistryError:
        return None
