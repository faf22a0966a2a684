"""Following a branch: where the served ref points now, and fetching a remote one (`origin/main`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry import Registry, plumbing, remote_of, rfc3339

FETCH_TIMEOUT = 60.0
"""Seconds a `git fetch` of a followed remote branch may take before it is stopped."""


@dataclass
class ReloadError:
    """A reload or fetch that failed: the revision it tried (None: the fetch), why, and when."""

    revision: str | None
    message: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "message": self.message, "at": rfc3339(self.at)}


def rev_parse(registry: Registry, rev: str) -> str:
    """The commit sha of `rev` (a full ref name or commit id, see `registry.full_ref`), "" when
    there is none (cheap enough for a poll every few seconds)."""
    return plumbing.rev_sha(registry.root, rev) or ""


def remote_branch(registry: Registry, rev: str) -> tuple[str, str] | None:
    """`refs/remotes/origin/main` -> ("origin", "main") when `origin` is a remote of the repository."""
    if not rev.startswith("refs/remotes/"):
        return None
    return remote_of(registry.root, rev)


def fetch_remote_branch(registry: Registry, rev: str, timeout: float = FETCH_TIMEOUT) -> str | None:
    """For `refs/remotes/origin/main`: fetch that branch from its remote; the error text if it fails.

    A server deployed as a clone follows `origin/main`; anything else (a local
    branch, a tag) needs no fetch.
    """
    found = remote_branch(registry, rev)
    if found is None:
        return None
    remote, branch = found
    into = f"refs/remotes/{remote}/{branch}"
    return plumbing.fetch_branch(registry.root, remote, branch, into, timeout)
