"""The served revision's models, versions and pointers, read from the snapshot when first asked for.

Each is a read-only mapping by model name, as the server's views expect
(`served.models.get(name)`, `served.versions[name]`, `sorted(served.pointers)`),
but a key is read only when it is looked up: one model's files, by path in the
tree, through the parse cache. Iterating lists the model names (one
`git ls-tree`, no parsing); `values()` and `items()` parse in batches.
"""

from __future__ import annotations

import re
from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from typing import Generic, TypeVar

from registry import MODEL_PATTERN, ModelManifest, Pointer, Snapshot, VersionManifest

V = TypeVar("V")
_NAME = re.compile(MODEL_PATTERN)
BATCH = 1000  # models parsed together when many are asked for at once


class _ByModel(Mapping[str, V], Generic[V]):
    """name -> what the snapshot holds of that model, read on first lookup and kept."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._memo: dict[str, V] = {}

    def _read(self, names: list[str]) -> dict[str, V]:
        raise NotImplementedError

    def _exists(self, name: str) -> bool:
        return _NAME.fullmatch(name) is not None and self.snapshot.has_model(name)

    def __getitem__(self, name: str) -> V:
        hit = self._memo.get(name)
        if hit is not None:
            return hit
        if not self._exists(name):
            raise KeyError(name)
        value = self._memo[name] = self._read([name])[name]
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._memo or self._exists(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot.model_names())

    def __len__(self) -> int:
        return len(self.snapshot.model_names())

    def fill(self, names: Iterable[str] | None = None) -> None:
        """Read these models (default: all) in batches, so that the lookups that follow are hits."""
        wanted = self.snapshot.model_names() if names is None else list(names)
        todo = [n for n in wanted if n not in self._memo]
        for start in range(0, len(todo), BATCH):
            self._memo.update(self._read(todo[start : start + BATCH]))

    def values(self) -> ValuesView[V]:
        self.fill()
        return super().values()

    def items(self) -> ItemsView[str, V]:
        self.fill()
        return super().items()

    @property
    def memo(self) -> Mapping[str, V]:
        """What was read so far."""
        return self._memo

    @property
    def read(self) -> int:
        """How many models were read so far (tests count these)."""
        return len(self._memo)


class Models(_ByModel[ModelManifest]):
    """Every model at the revision, archived ones too."""

    def _read(self, names: list[str]) -> dict[str, ModelManifest]:
        if len(names) > 1:
            self.snapshot.model_names()  # many models: one listing of the tree, not one each
        return {n: self.snapshot.model(n) for n in names}

    def fill(self, names: Iterable[str] | None = None) -> None:
        if names is None:  # every model: parsed as one batch
            self._memo.update((m.name, m) for m in self.snapshot.models(archived=None))
        else:
            super().fill(names)


class Versions(_ByModel[list[VersionManifest]]):
    """Every version of each model, oldest first."""

    def _read(self, names: list[str]) -> dict[str, list[VersionManifest]]:
        return self.snapshot.versions_of(names)


class Pointers(_ByModel[list[Pointer]]):
    """Each model's pointers, sorted by tag (an empty list when it has none)."""

    def _read(self, names: list[str]) -> dict[str, list[Pointer]]:
        if len(names) > 1:
            self.snapshot.model_names()
        return {n: self.snapshot.pointers(n) for n in names}
