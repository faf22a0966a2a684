"""Progressive delivery on a pointer: promote a canary to all traffic, roll a pointer back.

A canary is `point(ref, target, weight=10)` (registry/writes/pointers.py);
`promote` gives one arm all the traffic; `rollback` restores the pointer
file as it was before its last change. Each is one commit, checked by the
same promotion rules as every pointer write.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry import commits, plumbing
from registry.base import RegistryBase
from registry.commits import Plan, WriteResult
from registry.errors import ConflictError, PointerNotFoundError
from registry.layout import Pointer, pointer_path
from registry.manifests import PointerManifest
from registry.snapshot import Snapshot
from registry.source import OverlaySource
from registry.writes.pointers import (
    check_target,
    pointer_plan,
    pointer_ref,
    pointer_text,
    refuse_protected,
    split_text,
)


class RolloutWrites(RegistryBase):
    """`promote` and `rollback` of a pointer."""

    def promote(
        self,
        ref: str,
        target: str | None = None,
        *,
        approved_by: Sequence[str] = (),
        branch: str | None = None,
        commit: bool = True,
        unreviewed: bool = False,
    ) -> WriteResult[Pointer]:
        """Give one arm of the weighted pointer `model:tag` all the traffic (a single `target:`).

        The arm is `target` when given, else the newest: the arm that resolves
        to the highest version number (the last such arm on a tie).
        `unreviewed`: as for `point` (an HTTP write), a protected pointer only on a new branch.
        """
        model, tag = pointer_ref(ref)
        if target is not None:
            check_target(tag, target)

        def build(base: Snapshot) -> Plan[Pointer]:
            refuse_protected(base, model, tag, unreviewed and branch is None)
            old = base.pointer(model, tag)
            if not old.weighted:
                raise ConflictError(
                    f"{model}:{tag} sends all traffic to {old.target}: nothing to promote"
                    f" (start a canary with mreg point {model}:{tag} TARGET --weight 10)"
                )
            if target is not None:
                if target not in [t for t, _ in old.targets]:
                    raise ConflictError(
                        f"{target} is not an arm of {model}:{tag} ({split_text(old.targets)})"
                    )
                chosen = target
            else:
                res = base.resolve(f"{model}:{tag}")
                newest = max(range(len(res.arms)), key=lambda i: (res.arms[i].version.version, i))
                chosen = res.arms[newest].target
            text = pointer_text(base, model, tag, [(chosen, 100)], None)
            subject = f"{model}: promote {tag} {chosen} ({split_text(old.targets)} -> {chosen})"
            return pointer_plan(self, base, model, tag, text, "promote", subject, approved_by)

        return commits.write(self, build, branch=branch, commit=commit, models=[model])

    def rollback(
        self,
        ref: str,
        *,
        approved_by: Sequence[str] = (),
        branch: str | None = None,
        commit: bool = True,
        unreviewed: bool = False,
    ) -> WriteResult[Pointer]:
        """Restore the pointer file `model:tag` as it was before the last commit that changed it.

        Like `git revert` of that commit for this one file: rolling back twice
        returns to where it was. A pointer that commit created has no earlier
        state (delete it instead); one it deleted comes back. `unreviewed`: as for `promote`.
        """
        model, tag = pointer_ref(ref)
        path = pointer_path(model, tag)

        def build(base: Snapshot) -> Plan[Pointer]:
            refuse_protected(base, model, tag, unreviewed and branch is None)
            start = base.revision or "HEAD"
            out = plumbing.git(self.root, "log", "-n1", "--format=%H", start, "--", path)
            last = out.stdout.decode().strip()
            if not last:
                raise PointerNotFoundError(
                    f"pointer {model}:{tag} has no history at {base.label}", ref=ref
                )
            before = plumbing.read_committed(self.root, f"{last}^", [path]).get(path)
            if before is None:
                raise ConflictError(
                    f"{model}:{tag} was created by {last[:10]}: there is no earlier state to"
                    f" roll back to (mreg pointer delete {model}:{tag} removes it)"
                )
            now = (
                split_text(base.pointer(model, tag).arms)
                if tag in base.pointer_tags(model)
                else "(deleted)"
            )
            after = Snapshot(OverlaySource(base.source, {path: before}), self.cache)
            restored = after.parse(PointerManifest, [path])[path]
            subject = f"{model}: roll back {tag} ({now} -> {split_text(restored.arms)})"
            return pointer_plan(
                self,
                base,
                model,
                tag,
                before,
                "rollback",
                subject,
                approved_by,
                [("Mreg-Reverts", last)],
            )

        return commits.write(self, build, branch=branch, commit=commit, models=[model])
