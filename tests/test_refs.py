"""The reference grammar: parsing, names and reserved tags, including property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry import (
    InvalidNameError,
    InvalidRefError,
    check_model_name,
    check_tag,
    is_reserved_tag,
    parse_ref,
)

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True).filter(
    lambda s: not s.startswith("mv_")
)
tags = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,127}", fullmatch=True)
ids = st.from_regex(r"mv_[0-9a-f]{16}", fullmatch=True)


@given(model=names, tag=st.none() | tags)
def test_model_refs_round_trip(model: str, tag: str | None) -> None:
    text = model if tag is None else f"{model}:{tag}"
    ref = parse_ref(text)
    assert (ref.model, ref.tag, ref.version_id) == (model, tag, None)
    assert str(ref) == text


@given(vid=ids)
def test_version_ids_parse(vid: str) -> None:
    ref = parse_ref(vid)
    assert ref.is_version_id and str(ref) == vid


@given(st.text(max_size=30))
def test_parse_ref_either_parses_or_raises_invalid_ref(text: str) -> None:
    try:
        ref = parse_ref(text)
    except InvalidRefError:
        return
    assert str(ref) == text


@pytest.mark.parametrize(
    "text", ["", "Iris", "iris:", ":prod", "iris:prod:x", "iris:PROD", "a" * 65, "iris/x"]
)
def test_bad_refs(text: str) -> None:
    with pytest.raises(InvalidRefError):
        parse_ref(text)


@pytest.mark.parametrize(
    ("tag", "reserved"),
    [("latest", True), ("v1", True), ("v10", True), ("prod", False), ("v1a", False), ("vx", False)],
)
def test_reserved_tags(tag: str, reserved: bool) -> None:
    assert is_reserved_tag(tag) is reserved
    if reserved:
        with pytest.raises(InvalidNameError, match="reserved"):
            check_tag(tag)
    else:
        assert check_tag(tag) == tag


def test_version_number_of_ref() -> None:
    assert parse_ref("iris:v12").version_number == 12
    assert parse_ref("iris:prod").version_number is None


@pytest.mark.parametrize("name", ["Iris", "-iris", "", "a" * 65, "mv_0123456789abcdef", "ir is"])
def test_bad_model_names(name: str) -> None:
    with pytest.raises(InvalidNameError):
        check_model_name(name)
