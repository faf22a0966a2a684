"""Change rules: what a change may do to its base (immutable fields, versions, status, protected pointers).

A protected pointer's move is compatible when every key of the old version's
`input_info` (except the free-text `description`) is present with the same
value in the new version's; the new one may add keys. An old version with no
`input_info` allows any move. For weighted pointers every arm of the new
state is compared with every arm of the old. The promotion rules of
registry.yaml (registry/promotion.py) are checked for every protected
pointer the change touches, by the base's rules and the head's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.base import RegistryBase
from registry.errors import RegistryError
from registry.layout import VERSION_FILE_RE, Resolution, model_path, pointer_path
from registry.manifests import (
    IMMUTABLE_VERSION_FIELDS,
    STATUS_MOVES,
    ModelManifest,
    RegistrySettings,
    VersionManifest,
)
from registry.promotion import arm_versions, change_approvals, check_move
from registry.snapshot import Snapshot
from registry.validation.findings import WARNING, Findings, M


@dataclass(frozen=True)
class MoveContext:
    """What the promotion rules need of a change: the registry (history), the base and the head."""

    registry: RegistryBase
    base: str
    rev: str | None


def incompatible_input(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys of the old `input_info` the new one drops or changes (the compatibility rule above)."""
    return sorted(k for k, v in old.items() if k != "description" and new.get(k) != v)


class ChangeRules(Findings):
    """The change from the base snapshot, model by model."""

    def check_model_change(self, old: Snapshot, name: str) -> None:
        new = self.snap
        if not old.has_model(name) or not new.has_model(name):
            return  # a new model, or a deleted one: nothing to compare
        mpath = model_path(name)
        old_model = self._quiet(old, ModelManifest, mpath)
        new_model = self._quiet(new, ModelManifest, mpath)
        if old_model and new_model and old_model.created_at != new_model.created_at:
            self.error(
                "immutable-field",
                mpath,
                self.line(new, mpath, "created_at"),
                "created_at is set once and never changes",
            )
        old_files = {
            f: p for f, p in old.version_files(name).items() if VERSION_FILE_RE.fullmatch(f)
        }
        new_files = new.version_files(name)
        highest = max((int(f[: -len(".yaml")]) for f in old_files), default=0)
        for fname, path in sorted(old_files.items()):
            if fname not in new_files:
                was = self._quiet(old, VersionManifest, path)
                ident = f" ({was.id})" if was else ""
                self.error(
                    "deleted-version",
                    path,
                    None,
                    f"v{fname[: -len('.yaml')]}{ident} was deleted: versions are never deleted;"
                    " deprecate it, or archive the model",
                )
        for fname, path in sorted(new_files.items()):
            if not VERSION_FILE_RE.fullmatch(fname):
                continue
            n = int(fname[: -len(".yaml")])
            if fname not in old_files:
                if n <= highest:
                    self.error(
                        "version-reused",
                        path,
                        self.line(new, path, "version"),
                        f"new version {n} is not above the base's highest version ({highest})",
                    )
                continue
            a = self._quiet(old, VersionManifest, path)
            b = self.versions.get(name, {}).get(n)
            if a is not None and b is not None:
                self.check_version_change(path, a, b)

    def check_version_change(self, path: str, a: VersionManifest, b: VersionManifest) -> None:
        new = self.snap
        if a.id != b.id:
            self.error(
                "version-reused",
                path,
                self.line(new, path, "id"),
                f"v{a.version} was {a.id} at the base and is now {b.id}:"
                " a version number is never reused; register a new version",
            )
        for key in IMMUTABLE_VERSION_FIELDS:
            if key != "id" and getattr(a, key) != getattr(b, key):
                self.error(
                    "immutable-field",
                    path,
                    self.line(new, path, key),
                    f"{key} is immutable once registered",
                )
        if a.artifact is not None and a.artifact != b.artifact:
            old_art = a.artifact.model_dump()
            new_art = b.artifact.model_dump() if b.artifact is not None else {}
            changed = [k for k in old_art if old_art[k] != new_art.get(k)]
            keys = ("artifact", changed[0]) if changed and b.artifact else ("artifact",)
            detail = ", ".join(f"artifact.{k}" for k in changed) or "artifact"
            self.error(
                "immutable-field",
                path,
                self.line(new, path, *keys),
                f"{detail} changed: a registered artifact is immutable; register a new version",
            )
        if a.status != b.status and b.status not in STATUS_MOVES[a.status]:
            self.error(
                "status-backwards",
                path,
                self.line(new, path, "status"),
                f"status cannot move from {a.status.value} to {b.status.value}"
                " (untrained -> training -> trained | failed)",
            )

    def check_protected(self, old: Snapshot, name: str, move: MoveContext | None = None) -> None:
        """Protected pointers: deletions warned; every arm's input compatible; promotion rules."""
        new = self.snap
        protected: set[str] = set()
        rule_sets = [s for s in (self.settings(old), self.settings(new)) if s is not None]
        for settings in rule_sets:
            protected.update(settings.protected_pointers)
        old_tags, new_tags = set(old.pointer_tags(name)), set(new.pointer_tags(name))
        for tag in sorted(protected & (old_tags | new_tags)):
            path = pointer_path(name, tag)
            if tag not in new_tags:
                if new.has_model(name):
                    self.add(
                        WARNING,
                        "protected-pointer-deleted",
                        path,
                        None,
                        f"protected pointer {name}:{tag} was deleted",
                    )
                continue
            was = _resolve(old, name, tag) if tag in old_tags else None
            now = _resolve(new, name, tag)
            if now is None:
                continue  # it does not resolve: the reference rules say why
            line = self.line(new, path, "targets" if now.arms else "target")
            self._check_schema(name, tag, path, line, was, now)
            if move is not None:
                self._check_rules(move, rule_sets, name, tag, path, line, was, now)

    def _check_schema(
        self,
        name: str,
        tag: str,
        path: str,
        line: int | None,
        was: Resolution | None,
        now: Resolution,
    ) -> None:
        for a in arm_versions(was).values():
            for b in arm_versions(now).values():
                bad = incompatible_input(a.input_info, b.input_info) if a.id != b.id else []
                if bad:
                    self.error(
                        "protected-pointer-schema",
                        path,
                        line,
                        f"protected pointer {name}:{tag} moves from v{a.version} to v{b.version},"
                        f" whose input_info differs in {', '.join(bad)}",
                    )

    def _check_rules(
        self,
        move: MoveContext,
        rule_sets: list[RegistrySettings],
        name: str,
        tag: str,
        path: str,
        line: int | None,
        was: Resolution | None,
        now: Resolution,
    ) -> None:
        rules = [s for s in rule_sets if tag in s.promotion]
        if not rules:
            return
        approvals, when = change_approvals(move.registry, move.base, move.rev, path)
        for settings in rules:
            for breach in check_move(
                move.registry,
                settings,
                name,
                tag,
                was,
                now,
                history_rev=move.rev,
                when=when,
                approvals=approvals,
                base_rev=move.base,
            ):
                self.error("promotion-rule", path, line, f"rule {breach.rule}: {breach.message}")

    @staticmethod
    def _quiet(snap: Snapshot, kind: type[M], path: str) -> M | None:
        try:
            return snap.parse(kind, [path]).get(path)
        except RegistryError:
            return None

    def settings(self, snap: Snapshot) -> RegistrySettings | None:
        try:
            return snap.settings()
        except RegistryError:
            return None


def _resolve(snap: Snapshot, name: str, tag: str) -> Resolution | None:
    try:
        return snap.resolve(f"{name}:{tag}")
    except RegistryError:
        return None
