"""Traffic splits: the arms of a weighted pointer, its shadow, and choosing an arm for a call.

A weighted pointer (`targets: [{target: v3, weight: 90}, {target: v4, weight: 10}]`)
resolves to its arms, each ending at one version. `choose` picks one for a
call: with a routing key, by a stable hash of the key (sha256, mod 100,
against the cumulative weights in file order), so one key keeps one arm for
as long as the split stays the same; without a key, at random by weight.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from registry.manifests import VersionManifest


class Weighted(Protocol):
    @property
    def weight(self) -> int: ...


W = TypeVar("W", bound=Weighted)


@dataclass(frozen=True)
class Arm:
    """One arm of a split: its target as written, its weight (percent) and where it ends."""

    target: str
    weight: int
    version: VersionManifest
    chain: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "weight": self.weight,
            "version": self.version.version,
            "id": self.version.id,
            "status": self.version.status.value,
            "chain": list(self.chain),
        }


@dataclass(frozen=True)
class Shadow:
    """A pointer's shadow: the target that also gets `sample` of the calls, off the request path.

    `version` is None (and `error` says why) when the shadow does not resolve
    to one version: a broken shadow never breaks the primary resolution.
    """

    target: str
    sample: float
    version: VersionManifest | None
    error: str | None = None

    def takes(
        self,
        key: str | None = None,
        rand: random.Random | Callable[[], float] | None = None,
    ) -> bool:
        """Whether this call is also sent to the shadow: `sample` of the calls.

        With a routing key the answer is stable per key (a bucket of its own,
        independent of the arm the key chooses); without one, at random.
        """
        if self.version is None:
            return False
        if key is not None:
            return bucket(f"shadow:{key}") < self.sample * 100
        draw = rand.random if isinstance(rand, random.Random) else (rand or random.random)
        return draw() < self.sample

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "sample": self.sample,
            "version": self.version.version if self.version is not None else None,
            "id": self.version.id if self.version is not None else None,
            "error": self.error,
        }


def bucket(key: str) -> int:
    """The key's stable bucket in 0..99: sha256 of its UTF-8 bytes, mod 100."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 100


def choose(
    arms: Sequence[W],
    key: str | None = None,
    rand: random.Random | Callable[[], float] | None = None,
) -> W:
    """The arm a call goes to: by `key`'s bucket when given (sticky), else at random by weight.

    `rand` is a `random.Random` or a function returning a float in [0, 1)
    (default: the module's generator); tests pass a seeded one.
    """
    if not arms:
        raise ValueError("choose() needs at least one arm")
    total = sum(arm.weight for arm in arms)
    if key is not None:
        point = bucket(key) * total / 100
    else:
        draw = rand.random if isinstance(rand, random.Random) else (rand or random.random)
        point = draw() * total
    upto = 0
    for arm in arms:
        upto += arm.weight
        if point < upto:
            return arm
    return arms[-1]


def primary(arms: Sequence[W]) -> W:
    """The arm that stands for the split where one version is needed: the heaviest, first on ties."""
    return max(arms, key=lambda arm: arm.weight)


def scale(arms: Sequence[tuple[str, int]], share: int) -> list[tuple[str, int]]:
    """The arms' weights scaled to sum to `share` (largest remainders), each at least 1.

    Raises ValueError when `share` is smaller than the number of arms.
    """
    if share < len(arms):
        raise ValueError(f"{len(arms)} arms cannot share {share}%")
    total = sum(w for _, w in arms)
    exact = [w * share / total for _, w in arms]
    weights = [max(1, int(x)) for x in exact]
    order = sorted(range(len(arms)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    i = 0
    while sum(weights) < share:
        weights[order[i % len(order)]] += 1
        i += 1
    while sum(weights) > share:
        j = max(range(len(weights)), key=lambda k: weights[k])
        weights[j] -= 1
    return [(target, w) for (target, _), w in zip(arms, weights, strict=True)]
