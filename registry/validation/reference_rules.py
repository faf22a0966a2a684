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
        targets = {tag: parsed[p].target for tag, p in paths.items() if p in parsed}
        versions = self.versions.get(name, {})
        numbers = {
            int(f[: -len(".yaml")])
            for f in snap.version_files(name)
            if VERSION_FILE_RE.fullmatch(f)
        }
        walk = _PointerWalk(name, targets, set(tags), versions, numbers)
        for tag in sorted(targets):
            problem = walk.follow(tag)
            if problem is not None:
                code, at, message = problem
                path = paths[at]
                self.error(code, path, self.line(snap, path, "target"), message)

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


class _PointerWalk:
    """Follows one model's pointers without raising: each problem once, at the link that fails."""

    def __init__(
        self,
        model: str,
        targets: dict[str, str],
        tags: set[str],
        versions: dict[int, VersionManifest],
        numbers: set[int],
    ) -> None:
        self.model = model
        self.targets = targets
        self.tags = tags
        self.versions = versions
        self.numbers = numbers
        self.by_id = {v.id: v for v in versions.values()}
        self.reported: set[str] = set()

    def _once(self, at: str, code: str, message: str) -> tuple[str, str, str] | None:
        if at in self.reported:
            return None
        self.reported.add(at)
        return code, at, message

    def follow(self, start: str) -> tuple[str, str, str] | None:
        """(code, tag of the failing link, message), or None when the pointer resolves well."""
        chain = [start]
        tag = start
        for _ in range(MAX_CHAIN):
            target = self.targets[tag]
            ref = f"{self.model}:{tag}"
            end: VersionManifest | None = None
            if VERSION_ID_RE.fullmatch(target):
                end = self.by_id.get(target)
                if end is None:
                    return self._once(
                        tag,
                        "dangling-pointer",
                        f"{ref} targets {target}, which is not a version of {self.model}",
                    )
            elif (m := VERSION_TAG_RE.fullmatch(target)) is not None:
                n = int(m.group(1))
                if n not in self.numbers:
                    return self._once(
                        tag, "dangling-pointer", f"{ref} targets {target}, which does not exist"
                    )
                end = self.versions.get(n)
            elif target == LATEST:
                trained = [v for v in self.versions.values() if v.servable and not v.deprecated]
                if not trained and self.versions:
                    return self._once(
                        tag,
                        "pointer-untrained",
                        f"{ref} targets latest, but {self.model} has no trained version",
                    )
                return None
            elif not TAG_RE.fullmatch(target):
                return self._once(
                    tag,
                    "schema",
                    f"{ref}: target {target!r} is not v<n>, a tag of {self.model} or a version id",
                )
            elif target not in self.tags:
                return self._once(
                    tag,
                    "dangling-pointer",
                    f"{ref} targets pointer {self.model}:{target}, which does not exist",
                )
            elif target in chain:
                cycle = [*chain[chain.index(target) :], target]
                at = min(cycle)
                if any(t in self.reported for t in cycle):
                    return None
                return self._once(
                    at,
                    "pointer-cycle",
                    "pointer cycle: " + " -> ".join(f"{self.model}:{t}" for t in cycle),
                )
            elif target not in self.targets:
                return None  # that pointer file is unreadable: reported on its own
            else:
                chain.append(target)
                tag = target
                continue
            if end is not None and end.status != Status.trained:
                return self._once(
                    tag,
                    "pointer-untrained",
                    f"{ref} targets v{end.version}, which is {end.status.value}, not trained",
                )
            return None
        return self._once(
            start,
            "pointer-too-deep",
            f"pointer chain deeper than {MAX_CHAIN}: "
            + " -> ".join(f"{self.model}:{t}" for t in chain),
        )
