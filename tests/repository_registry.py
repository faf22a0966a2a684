"""The small registry the /v2 repository and gRPC tests serve (PYTEST_DONT_REWRITE).

iris (private, skops, labels) v1 (prod -> v1) and v2 (other bytes); public-iris (public, onnx) v1.
A pytest plugin: its `repo` fixture builds it once per test module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry import Registry
from tests.server_fixtures import LABELS, token_entries


def build(root: Path, model_files: dict[str, Path], other: Path) -> Registry:
    reg = Registry.init(root)
    reg.create_model("iris", library="sklearn")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, point=["prod"])
    reg.register("iris", other, output_info={"labels": LABELS})
    reg.create_model("public-iris", library="sklearn", is_public=True)
    reg.register("public-iris", model_files["onnx"], output_info={"labels": LABELS})
    return reg


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory,
    model_files: dict[str, Path],
    other_model_file: Path,
    session_env: None,
) -> Registry:
    return build(tmp_path_factory.mktemp("repo") / "reg", model_files, other_model_file)


def tokens_file(directory: Path) -> Path:
    """The test tokens (reader, invoker, admin) as a `--tokens` file."""
    path = directory / "tokens.json"
    path.write_text(json.dumps(token_entries()))
    return path
