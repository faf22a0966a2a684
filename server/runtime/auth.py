"""Bearer tokens: loaded from a file or MREG_TOKENS (never Git), stored as sha256, with scopes.

A tokens file (YAML or JSON) is a list, or a map with a ``tokens`` list, of::

    - name: ci-bot
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      scopes: [read, invoke]

``mreg serve`` never sees a token in clear text except in the request that
presents it; it hashes that and compares it with every stored hash in
constant time. ``admin`` implies ``write``, ``write`` implies ``invoke`` (writes
over HTTP are commits), and ``invoke`` implies ``read``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from registry import ModelManifest, VersionManifest
from server.runtime.config_file import ConfigError, config_entries, parse_config, read_config
from server.runtime.errors import Forbidden, Unauthorized

SCOPES = ("read", "invoke", "write", "admin")
IMPLIED = {
    "read": {"read"},
    "invoke": {"read", "invoke"},
    "write": {"read", "invoke", "write"},
    "admin": {"read", "invoke", "write", "admin"},
}
HASH_RE = re.compile(r"[0-9a-f]{64}")
ENV_VAR = "MREG_TOKENS"


class TokenConfigError(ConfigError):
    code = "invalid_tokens"


@dataclass(frozen=True)
class Token:
    name: str
    sha256: str
    scopes: frozenset[str]


def hash_token(token: str) -> str:
    """The sha256 hex digest a tokens file stores for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(data: Any, where: str) -> list[Token]:
    out: list[Token] = []
    for i, entry in enumerate(config_entries(data, "tokens", where, TokenConfigError)):
        if not isinstance(entry, dict):
            raise TokenConfigError(f"{where}: token #{i + 1} is not a map")
        unknown = set(entry) - {"name", "sha256", "scopes"}
        if unknown:
            raise TokenConfigError(f"{where}: token #{i + 1}: unknown key {sorted(unknown)[0]!r}")
        name, digest, scopes = entry.get("name"), entry.get("sha256"), entry.get("scopes")
        if not isinstance(name, str) or not name:
            raise TokenConfigError(f"{where}: token #{i + 1} has no name")
        if not isinstance(digest, str) or not HASH_RE.fullmatch(digest.lower()):
            raise TokenConfigError(
                f"{where}: token {name!r}: sha256 must be 64 hex digits (the hash, never the token)"
            )
        if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
            raise TokenConfigError(
                f"{where}: token {name!r}: scopes must be a non-empty list of {', '.join(SCOPES)}"
            )
        granted: set[str] = set()
        for scope in scopes:
            granted |= IMPLIED[scope]
        out.append(Token(name, digest.lower(), frozenset(granted)))
    return out


def load_tokens(path: str | os.PathLike[str] | None = None) -> list[Token]:
    """Tokens from `path` (YAML or JSON), else from the MREG_TOKENS variable (JSON or YAML text)."""
    if path is not None:
        return parse_tokens(*read_config(path, "tokens", TokenConfigError))
    env_text = os.environ.get(ENV_VAR)
    if not env_text:
        return []
    return parse_tokens(parse_config(env_text, ENV_VAR, TokenConfigError), ENV_VAR)


@dataclass(frozen=True)
class Viewer:
    """Who asks: `reader` sees private models and versions (any valid token, or no auth at all)."""

    reader: bool
    token: Token | None = None

    @property
    def who(self) -> str:
        return self.token.name if self.token else "anonymous"

    def sees(self, model: ModelManifest) -> bool:
        return self.reader or model.is_public

    def sees_version(self, model: ModelManifest, version: VersionManifest) -> bool:
        return self.reader or (model.is_public and version.visibility != "private")


OPEN = Viewer(reader=True)  # no tokens configured: everything is open


class Auth:
    """Who a request is, and whether it may read or invoke a model."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        self.tokens = list(tokens)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def identify(self, authorization: str | None) -> Token | None:
        """The token presented in an Authorization header; 401 when it is not a known one."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("expected 'Authorization: Bearer <token>'")
        digest = hash_token(value.strip())
        found = None
        # Compare with every stored hash, so timing says nothing about which one matched.
        for token in self.tokens:
            if hmac.compare_digest(digest, token.sha256):
                found = token
        if found is None:
            raise Unauthorized("unknown token")
        return found

    def viewer(self, authorization: str | None) -> Viewer:
        """Who the caller is and what it may see; 401 for a malformed or unknown token."""
        if not self.tokens:
            return OPEN
        token = self.identify(authorization)
        return Viewer(reader=token is not None, token=token)

    def name_of(self, authorization: str | None) -> str:
        """The caller's name for a job record, never raising (an unknown token is anonymous)."""
        try:
            return self.viewer(authorization).who
        except Unauthorized:
            return "anonymous"

    def check(self, viewer: Viewer, scope: str, model: ModelManifest | None = None) -> None:
        """401 or 403 unless `viewer` holds `scope` (public models need none to read or invoke)."""
        if not self.tokens:
            return
        if model is not None and model.is_public and scope in ("read", "invoke"):
            return
        token = viewer.token
        if token is None:
            raise Unauthorized(f"a token with the {scope!r} scope is required")
        if scope not in token.scopes:
            what = f" on model {model.name!r}" if model is not None else ""
            raise Forbidden(f"token {token.name!r} lacks the {scope!r} scope{what}")

    def require(
        self, authorization: str | None, scope: str, model: ModelManifest | None = None
    ) -> str:
        """The caller's name when it holds `scope` (public models need none); else 401 or 403."""
        viewer = self.viewer(authorization)
        self.check(viewer, scope, model)
        return viewer.who

    def can_read_private(self, authorization: str | None) -> bool:
        """Whether a listing may include private models for this caller."""
        return self.viewer(authorization).reader
