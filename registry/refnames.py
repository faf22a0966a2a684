"""Which git names the registry writes and serves: never one that git resolves by search order.

Git resolves a short name by searching `refs/<name>`, `refs/tags/<name>`,
`refs/heads/<name>`, `refs/remotes/<name>` in that order, and a hex string as a
commit id prefix. A write that may create the branch `origin/main` would
therefore shadow the remote-tracking branch a replica follows. So a new write
branch may not be a name git already resolves, nor look like one it would
(`<remote>/...`, `refs/...`, a commit id prefix), and what a server serves is
pinned to a full ref name or a full commit id once, at start (`full_ref`).
"""

from __future__ import annotations

import re
from pathlib import Path

from registry.errors import ConflictError, InvalidNameError, RevisionNotFoundError
from registry.plumbing import git, rev_sha

_BRANCH_BAD = re.compile(r"[\s~^:?*\[\\]|\.\.|@\{|^-|/$|\.lock$|^$")
# Names that git (or a person) reads as something other than a branch.
_SHADOWING = re.compile(r"^(?:refs|heads|tags|remotes)/|^[0-9a-fA-F]{7,64}$|^(?:[A-Z_]*HEAD)$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")


def remotes(root: Path) -> list[str]:
    """The configured git remotes of the repository at `root`."""
    return git(root, "remote", check=False).stdout.decode().split()


def remote_of(root: Path, name: str) -> tuple[str, str] | None:
    """`origin/main` or `refs/remotes/origin/main` -> ("origin", "main") for a configured remote."""
    short = name.removeprefix("refs/remotes/")
    # The longest remote first: a remote may itself hold a slash (`team/origin`).
    for remote in sorted(remotes(root), key=len, reverse=True):
        branch = short.removeprefix(f"{remote}/")
        if branch != short and branch:
            return remote, branch
    return None


def check_new_branch(root: Path, name: str) -> None:
    """A valid branch name that shadows no existing ref, remote, tag or commit, or a clear error."""
    proc = git(root, "check-ref-format", "--branch", name, check=False)
    if proc.returncode != 0 or _BRANCH_BAD.search(name):
        raise InvalidNameError(f"invalid branch name {name!r}")
    if rev_sha(root, f"refs/heads/{name}") is not None:
        raise ConflictError(f"branch {name} exists already: choose another name")
    found = remote_of(root, name)
    if found is not None:
        raise InvalidNameError(
            f"branch name {name!r} would shadow the remote-tracking branches of"
            f" remote {found[0]!r}: choose a name that does not start with {found[0]}/"
        )
    if _SHADOWING.search(name):
        raise InvalidNameError(
            f"branch name {name!r} reads as a ref, a commit id or HEAD: choose another name"
        )
    if git(root, "rev-parse", "--verify", "--quiet", name, check=False).returncode == 0:
        raise ConflictError(
            f"branch name {name!r} already names a ref or commit in this repository:"
            " choose another name"
        )


def full_ref(root: Path, rev: str) -> str:
    """The full ref name (`refs/heads/main`, `refs/remotes/origin/main`, `refs/tags/t`) or the
    full commit id that `rev` names now; `HEAD` stays `HEAD`.

    `<remote>/<branch>` always means the remote-tracking branch, even if a local
    branch of that name exists; a name that is both a branch and a tag is refused.
    """
    if rev == "HEAD" or (_FULL_SHA.match(rev) and rev_sha(root, rev) == rev):
        return rev
    if rev.startswith("refs/"):
        if rev_sha(root, rev) is None:
            raise RevisionNotFoundError(f"revision {rev!r} not found")
        return rev
    found = remote_of(root, rev)
    if found is not None:
        return f"refs/remotes/{found[0]}/{found[1]}"
    candidates = [
        ref for ref in (f"refs/heads/{rev}", f"refs/tags/{rev}") if rev_sha(root, ref) is not None
    ]
    if len(candidates) > 1:
        raise ConflictError(
            f"{rev!r} is both a branch and a tag: name one in full ({' or '.join(candidates)})"
        )
    if candidates:
        return candidates[0]
    sha = rev_sha(root, rev)
    if sha is None:
        raise RevisionNotFoundError(f"revision {rev!r} not found")
    return sha
