"""YAML in and out.

Reads take the fast path (libyaml through PyYAML's C loader, about twenty
times quicker than pure-Python parsing); only when a manifest is wrong is it
parsed again round-trip to find the line of the offending key. Writes are
round-trip (ruamel.yaml): comments, key order and quoting a person wrote
survive every change mreg makes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError as RuamelYAMLError
from ruamel.yaml.representer import RoundTripRepresenter

from registry.errors import ManifestError
from registry.manifests import rfc3339

M = TypeVar("M", bound=BaseModel)

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The fast safe loader; a number Python refuses to read is a YAML error with its line."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return int(super().construct_yaml_int(node))
        except ValueError as exc:  # more than sys.get_int_max_str_digits() digits
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"integer too large to read ({exc.args[0].split(';')[0]})",
                node.start_mark,
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_resolver = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


class _Representer(RoundTripRepresenter):
    """Quote strings that a YAML 1.1 reader would take for another type.

    The fast reader is YAML 1.1 (`no` is false there), the writer 1.2; quoting
    such strings keeps a value the same whichever reads it.
    """

    def represent_str(self, data: str) -> Any:
        node = super().represent_str(data)
        implicit = _resolver.resolve(yaml.ScalarNode, data, (True, False))  # type: ignore[no-untyped-call]
        if node.style is None and implicit != _STR_TAG:
            node.style = "'"
        return node

    def represent_datetime(self, data: datetime) -> Any:
        return self.represent_scalar("tag:yaml.org,2002:timestamp", rfc3339(data))


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(datetime, _Representer.represent_datetime)


def _round_trip() -> YAML:
    rt = YAML()
    rt.Representer = _Representer
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    return rt


ALIAS_BUDGET = 10_000
"""How many nodes YAML aliases may add to a manifest when expanded (a "billion laughs" adds 10**9)."""


def load_fast(data: bytes | str, file: str) -> Any:
    """Parse YAML quickly; a syntax error or an alias bomb is a ManifestError with the line."""
    try:
        anchored = b"&" in data if isinstance(data, bytes) else "&" in data
        if not anchored:
            return yaml.load(data, Loader=_Loader)  # no anchor, so no alias to expand
        return _load_budgeted(data, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ManifestError(f"malformed YAML: {exc.problem or exc}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"malformed YAML: {exc}", file=file) from None


def _load_budgeted(data: bytes | str, file: str) -> Any:
    """Parse a document with anchors: refuse it before building it if aliases expand too far.

    The parser shares one node per anchor, so reading is cheap; what expands is
    every later copy (the parse cache, JSON, pydantic). The expanded size is
    counted over the node graph, each node once.
    """
    loader = _Loader(data)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, file)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node, file: str) -> None:
    sizes: dict[int, int] = {}  # id(node) -> nodes it stands for once expanded
    open_: set[int] = set()
    shared: yaml.Node | None = None  # the first node met twice: where an anchor is used
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            continue
        if key in sizes:
            shared = shared or node
            continue
        if key in open_:
            raise ManifestError(
                "a YAML alias refers to itself (a recursive structure)",
                file=file,
                line=node.start_mark.line + 1,
            )
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node))
    total = sizes[id(root)]
    if total - len(sizes) > ALIAS_BUDGET:
        where = shared or root
        raise ManifestError(
            f"YAML aliases expand to {total:,} nodes, more than the {ALIAS_BUDGET:,} they may add"
            " to a manifest: write the values out",
            file=file,
            line=where.start_mark.line + 1,
        )


def load_document(data: bytes | str, file: str) -> CommentedMap:
    """Parse round-trip, for editing. The top level must be a mapping."""
    try:
        doc = _round_trip().load(data)
    except RuamelYAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ManifestError(f"malformed YAML: {exc}", file=file, line=line) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ManifestError(f"malformed YAML: {exc}", file=file) from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise ManifestError("a manifest must be a YAML mapping", file=file, line=1)
    return doc


def dump_document(doc: Any) -> str:
    out = io.StringIO()
    _round_trip().dump(doc, out)
    return out.getvalue()


def key_line(data: bytes | str, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the key at `loc` (a pydantic error location), best effort."""
    try:
        node: Any = _round_trip().load(data)
    except (RuamelYAMLError, ValueError):
        return None
    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            lc = getattr(node, "lc", None)
            if lc is not None:
                line = lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line if line is not None else 1


def describe_validation_error(exc: ValidationError) -> tuple[str, tuple[int | str, ...]]:
    """One line for the first problem, and where it is."""
    errors = exc.errors()
    # An unknown key explains a "missing" one next to it (a typo): report it first.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"unknown key {field!r}", loc
    if err["type"] == "missing":
        return f"missing required key {field!r}", loc
    return f"{field}: {err['msg']}", loc


def parse_manifest(data: bytes | str, model: type[M], file: str) -> M:
    """Parse and validate one manifest; every failure is a ManifestError with file and line."""
    raw = load_fast(data, file)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ManifestError("a manifest must be a YAML mapping", file=file, line=1)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        message, loc = describe_validation_error(exc)
        raise ManifestError(message, file=file, line=key_line(data, loc)) from None


def manifest_data(manifest: BaseModel) -> dict[str, Any]:
    """The fields worth writing: set explicitly, non-empty, in schema order."""
    data = manifest.model_dump(mode="python", exclude_none=True, exclude_unset=True)
    return {k: _plain(v) for k, v in data.items() if v != {} and v != []}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def render_new(manifest: BaseModel) -> str:
    """YAML text of a new manifest."""
    return dump_document(manifest_data(manifest))


def render_update(old_text: str | bytes, manifest: BaseModel, file: str) -> str:
    """Rewrite `old_text` so it holds `manifest`, touching only keys whose value changed."""
    doc = load_document(old_text, file)
    _merge(doc, manifest_data(manifest))
    return dump_document(doc)


def _merge(doc: CommentedMap, new: Mapping[str, Any]) -> None:
    for key in [k for k in doc if k not in new]:
        del doc[key]
    for key, value in new.items():
        if key in doc and isinstance(doc[key], CommentedMap) and isinstance(value, Mapping):
            _merge(doc[key], value)
        elif key not in doc or not _same(doc[key], value):
            doc[key] = value


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return rfc3339(old) == rfc3339(new)
    if isinstance(old, datetime) or isinstance(new, datetime):
        return False
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return old.keys() == new.keys() and all(_same(old[k], new[k]) for k in old)
    return bool(type(old) is type(new) or isinstance(old, type(new))) and old == new
