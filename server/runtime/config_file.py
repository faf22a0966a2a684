"""What the tokens and webhooks files share: configuration kept outside Git, a YAML or JSON
document that is a list of entries or a map holding that list, and errors of one line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from registry import RegistryError


class ConfigError(RegistryError):
    """A configuration file (or variable) that cannot be read or says something wrong."""

    status = 400


def read_config(
    path: str | os.PathLike[str], what: str, error: type[ConfigError]
) -> tuple[Any, str]:
    """The document of the `what` file at `path` (JSON, else YAML), and how errors name it."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise error(f"cannot read {what} file {p}: {exc.strerror}") from None
    return parse_config(text, str(p), error), str(p)


def parse_config(text: str, where: str, error: type[ConfigError]) -> Any:
    """`text` as JSON, else as YAML; `where` names it in the error."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())  # one line
        raise error(f"{where}: not valid YAML or JSON: {reason}") from None


def config_entries(data: Any, key: str, where: str, error: type[ConfigError]) -> list[Any]:
    """The entries of a document: the document itself when it is a list, else its `key`."""
    entries = data.get(key) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise error(f"{where}: expected a list of {key} (or a map with '{key}')")
    return entries
