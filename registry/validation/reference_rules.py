"""Reference rules: pointers resolve (no dangling targets, cycles or too deep chains), ids are unique."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from registry.errors import InvalidNameError
from registry.layout import MAX_CHAIN, VERSION_FILE_RE, pointer_path
from registry.manifests import PointerManifest, Status, VersionManifest
from registry.names import LATEST, TAG_RE, VERSION_ID_RE, VERSION_TAG_RE, check_tag, is_reserved_tag
from registry.validation.findings import Findings

if TYPE_CHECKING:
    from registry.ids import IdIndex


class ReferenceRules(Findings):
    """One model's pointers, and version ids across the models checked."""

    def check_pointers(self, name: str) -> None:
        snap = self.snap
        tags = snap.pointer_tags(name)
        if not tags:
            return
        paths = {tag: pointer_path(name, tag) for tag in tags}
        for tag, path in paths.items():
            self.pointers_checked += 1
            try:
                check_tag(tag)
            except InvalidNameError as exc:
                code = "reserved-tag" if is_reserved_tag(tag) else "invalid-name"
                self.error(code, path, None, str(exc))
        if not snap.has_model(name):
            for path in paths.values():
                self.error("dangling-pointer", path, None, f"model {name!r} does not exist")
            return
        parsed = self.parse_each(PointerManifest, list(paths.values()))
        pointers = {tag: parsed[p] for tag, p in paths.items() if p in parsed}
        versions = self.versions.get(name, {})
        numbers = {
            int(f[: -len(".yaml")])
            for f in snap.version_files(name)
            if VERSION_FILE_RE.fullmatch(f)
        }
        walk = _PointerWalk(name, pointers, set(tags), versions, numbers)
        for tag in sorted(pointers):
            for code, at, key, message in walk.follow(tag):
                path = paths[at]
                self.error(code, path, self.line(snap, path, key), message)

    def check_unique_ids(self, names: Iterable[str]) -> None:
        """Ids are unique across the checked models (within a model, check_versions says so)."""
        seen: dict[str, str] = {}
        for name in names:
            for n, v in sorted(self.versions.get(name, {}).items()):
                first = seen.setdefault(v.id, f"{name}:v{n}")
                if first != f"{name}:v{n}" and not first.startswith(f"{name}:"):
                    path = f"models/{name}/versions/{n}.yaml"
                    self.error(
                        "duplicate-id",
                        path,
                        self.line(self.snap, path, "id"),
                        f"id {v.id} is already the id of {first}",
                    )

    def check_ids_elsewhere(self, ids: IdIndex, models: Collection[str]) -> None:
        """No checked version reuses the id of a version outside the checked models."""
        for name in sorted(models):
            for n, v in sorted(self.versions.get(name, {}).items()):
                owner = ids.owner(v.id)
                if owner is None or owner.split("/")[1] in models:
                    continue
                other = owner.split("/")
                path = f"models/{name}/versions/{n}.yaml"
                self.error(
                    "duplicate-id",
                    path,
                    self.line(self.snap, path, "id"),
                    f"id {v.id} is already the id of {other[1]}:v{other[3][: -len('.yaml')]}",
                )


Problem = tuple[str, str, str, str]
"""(code, tag of the pointer file at fault, its key, message)."""


class _PointerWalk:
    """Follows one model's pointers without raising: each problem once, at the link that fails.

    A weighted pointer's arms and a pointer's shadow are followed too; each
    must end at one trained version without meeting another weighted pointer.
    """

    def __init__(
        self,
        model: str,
        pointers: dict[str, PointerManifest],
        tags: set[str],
        versions: dict[int, VersionManifest],
        numbers: set[int],
    ) -> None:
        self.model = model
        self.pointers = pointers
        self.tags = tags
        self.versions = versions
        self.numbers = numbers
        self.by_id = {v.id: v for v in versions.values()}
        self.reported: set[str] = set()

    def _once(self, at: str, key: str, code: str, message: str) -> list[Problem]:
        if at in self.reported:
            return []
        self.reported.add(at)
        return [(code, at, key, message)]

    def follow(self, start: str) -> list[Problem]:
        """The problems of pointer `start` (at most one per pointer file), none when it resolves well."""
        p = self.pointers[start]
        found = self._walk(start, [start], split=True)
        if p.shadow is not None and not found:
            found = self._target(start, "shadow", p.shadow, [start], split=False)
        return found

    def _walk(self, tag: str, chain: list[str], *, split: bool) -> list[Problem]:
        if len(chain) > MAX_CHAIN:
            return self._once(
                chain[0],
                "target",
                "pointer-too-deep",
                f"pointer chain deeper than {MAX_CHAIN}: "
                + " -> ".join(f"{self.model}:{t}" for t in chain),
            )
        p = self.pointers[tag]
        if p.targets is None:
            assert p.target is not None
            return self._target(tag, "target", p.target, chain, split=split)
        if not split:
            parent = chain[-2] if len(chain) > 1 else tag
            return self._once(
                parent,
                "target",
                "pointer-split",
                f"{self.model}:{parent} leads to the weighted pointer {self.model}:{tag}:"
                " an arm or a shadow must end at one version",
            )
        for target, _ in p.arms:
            found = self._target(tag, "targets", target, list(chain), split=False)
            if found:
                return found
        return []

    def _target(
        self, tag: str, key: str, target: str, chain: list[str], *, split: bool
    ) -> list[Problem]:
        """Problems of the link from pointer `tag` (its `key`: target, targets or shadow) to `target`."""
        ref = f"{self.model}:{tag}"
        verb = "shadows" if key == "shadow" else "targets"
        end: VersionManifest | None = None
        if VERSION_ID_RE.fullmatch(target):
            end = self.by_id.get(target)
            if end is None:
                return self._once(
                    tag,
                    key,
                    "dangling-pointer",
                    f"{ref} {verb} {target}, which is not a version of {self.model}",
                )
        elif (m := VERSION_TAG_RE.fullmatch(target)) is not None:
            n = int(m.group(1))
            if n not in self.numbers:
                return self._once(
                    tag, key, "dangling-pointer", f"{ref} {verb} {target}, which does not exist"
                )
            end = self.versions.get(n)
        elif target == LATEST:
            trained = [v for v in self.versions.values() if v.servable and not v.deprecated]
            if not trained and self.versions:
                return self._once(
                    tag,
                    key,
                    "pointer-untrained",
                    f"{ref} {verb} latest, but {self.model} has no trained version",
                )
            return []
        elif not TAG_RE.fullmatch(target):
            return self._once(
                tag,
                key,
                "schema",
                f"{ref}: target {target!r} is not v<n>, a tag of {self.model} or a version id",
            )
        elif target not in self.tags:
            return self._once(
                tag,
                key,
                "dangling-pointer",
                f"{ref} {verb} pointer {self.model}:{target}, which does not exist",
            )
        elif target in chain:
            cycle = [*chain[chain.index(target) :], target]
            at = min(cycle)
            if any(t in self.reported for t in cycle):
                return []
            return self._once(
                at,
                key if at == tag else "target",
                "pointer-cycle",
                "pointer cycle: " + " -> ".join(f"{self.model}:{t}" for t in cycle),
            )
        elif target not in self.pointers:
            return []  # that pointer file is unreadable: reported on its own
        else:
            return self._walk(target, [*chain, target], split=split)
        if end is not None and end.status != Status.trained:
            return self._once(
                tag,
                key,
                "pointer-untrained",
                f"{ref} {verb} v{end.version}, which is {end.status.value}, not trained",
            )
        return []
