"""Names, tags and the reference grammar of DESIGN.md section 3.

ref := model [":" tag] | version-id
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from registry.errors import InvalidNameError, InvalidRefError

MODEL_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
TAG_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
VERSION_TAG_RE = re.compile(r"v([0-9]+)")
VERSION_ID_RE = re.compile(r"mv_[0-9a-f]{8,64}")
LATEST = "latest"

# The same rules as anchored patterns, for schemas (the OpenAPI document states every rule a
# request must follow, so that a request the schema allows is never refused as malformed).
# What git refuses in a ref (git_ref_problem): '..', a trailing '.' or '.lock'.
GIT_SAFE = r"(?!.*\.\.)(?!.*\.$)(?!.*\.lock$)"
MODEL_PATTERN = rf"^{GIT_SAFE}(?!{VERSION_ID_RE.pattern}$){MODEL_NAME_RE.pattern}$"
"""A name `check_model_name` accepts."""
TAG_PATTERN = rf"^{GIT_SAFE}(?!latest$)(?!v[0-9]+$){TAG_RE.pattern}$"
"""A tag `check_tag` accepts for a pointer file (not `latest` or `v<n>`)."""
TARGET_PATTERN = rf"^(v[0-9]+|{TAG_RE.pattern}|{VERSION_ID_RE.pattern})$"
"""Where a pointer may point: v<n>, another tag or a version id."""
REF_PATTERN = f"^(?:{VERSION_ID_RE.pattern}|{MODEL_NAME_RE.pattern}(?::{TAG_RE.pattern})?)$"
"""A reference `parse_ref` reads: model, model:tag or a version id."""
BRANCH_PATTERN = r"^(?!HEAD$)(?!.*\.lock(/|$))[A-Za-z0-9_][A-Za-z0-9_-]*([./][A-Za-z0-9_-]+)*$"
"""A branch name a write may create (a subset of what git accepts)."""


def is_reserved_tag(tag: str) -> bool:
    """`latest` and `v<digits>` are automatic pointers, never user pointer files."""
    return tag == LATEST or VERSION_TAG_RE.fullmatch(tag) is not None


def git_ref_problem(name: str) -> str | None:
    """Why git would refuse `name` in a ref (`git check-ref-format`), for names of the alphabet.

    The alphabet already keeps out what git forbids anywhere (spaces, ``~^:?*[\\``,
    ``@{``, a leading ``.`` or ``-``); these are the rules it leaves: a model
    becomes the tag ``<model>@v<n>``, so a name git refuses would fail only
    after the commit.
    """
    if ".." in name:
        return "git refuses '..' in a ref name"
    if name.endswith(".lock"):
        return "git refuses a ref name ending in '.lock'"
    if name.endswith("."):
        return "git refuses a ref name ending in '.'"
    return None


def check_model_name(name: str) -> str:
    if not MODEL_NAME_RE.fullmatch(name):
        raise InvalidNameError(
            f"invalid model name {name!r}: use 1-64 characters of a-z, 0-9, '.', '_', '-',"
            " starting with a letter or digit"
        )
    if VERSION_ID_RE.fullmatch(name):
        raise InvalidNameError(f"invalid model name {name!r}: it reads as a version id")
    problem = git_ref_problem(name)
    if problem is not None:
        raise InvalidNameError(f"invalid model name {name!r}: {problem} (tag {name}@v<n>)")
    return name


def check_tag(tag: str, *, allow_reserved: bool = False) -> str:
    if not TAG_RE.fullmatch(tag):
        raise InvalidNameError(
            f"invalid tag {tag!r}: use 1-128 characters of a-z, 0-9, '.', '_', '-',"
            " starting with a letter or digit"
        )
    problem = git_ref_problem(tag)
    if problem is not None:
        raise InvalidNameError(f"invalid tag {tag!r}: {problem}")
    if not allow_reserved and is_reserved_tag(tag):
        raise InvalidNameError(
            f"tag {tag!r} is reserved: 'latest' and 'v<n>' are automatic pointers"
        )
    return tag


def new_version_id() -> str:
    return "mv_" + secrets.token_hex(8)


@dataclass(frozen=True)
class Ref:
    """A parsed reference: a model with an optional tag, or a version id."""

    model: str | None = None
    tag: str | None = None
    version_id: str | None = None

    @property
    def is_version_id(self) -> bool:
        return self.version_id is not None

    @property
    def version_number(self) -> int | None:
        """n for `model:v<n>`, else None."""
        if self.tag is None:
            return None
        m = VERSION_TAG_RE.fullmatch(self.tag)
        return int(m.group(1)) if m else None

    def __str__(self) -> str:
        if self.version_id is not None:
            return self.version_id
        return f"{self.model}:{self.tag}" if self.tag else str(self.model)


def parse_ref(text: str) -> Ref:
    """Parse `iris`, `iris:prod`, `iris:v3`, `iris:latest` or `mv_<hex>`."""
    if not isinstance(text, str) or not text:
        raise InvalidRefError("empty reference: expected MODEL[:TAG] or a version id")
    if VERSION_ID_RE.fullmatch(text):
        return Ref(version_id=text)
    model, sep, tag = text.partition(":")
    if not MODEL_NAME_RE.fullmatch(model):
        raise InvalidRefError(
            f"invalid reference {text!r}: expected MODEL[:TAG] or a version id (mv_<hex>)",
            ref=text,
        )
    if sep and not TAG_RE.fullmatch(tag):
        raise InvalidRefError(f"invalid tag in reference {text!r}", ref=text)
    return Ref(model=model, tag=tag if sep else None)


def encode_cursor(name: str) -> str:
    """The opaque cursor of a page that starts after `name` (as GET /v1/models gives it)."""
    return name.encode().hex()


def decode_cursor(cursor: str) -> str:
    """The name a page starts after; an InvalidNameError for what no page gave."""
    try:
        return bytes.fromhex(cursor).decode("utf-8")
    except ValueError:
        raise InvalidNameError(
            f"invalid cursor {cursor!r}: pass next_cursor from a previous page"
        ) from None
