"""A manifest holding an integer of 5,000 digits (more than Python converts) is one error line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from tool.cli import cli

HUGE = "7" * 5000


@pytest.mark.parametrize("args", [["validate"], ["model", "show", "iris"]])
def test_a_5000_digit_integer_in_a_manifest_is_one_error_line(
    tmp_path: Path, args: list[str]
) -> None:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris")
    manifest = reg.root / "models" / "iris" / "model.yaml"
    manifest.write_text(manifest.read_text() + f"metadata:\n  big: {HUGE}\n")
    result = CliRunner().invoke(cli, ["--repo", str(reg.root), *args])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [
        line
        for line in result.output.splitlines()
        if " error " in line or line.startswith("error:")
    ]
    assert len(errors) == 1, result.output
    assert "models/iris/model.yaml:4" in errors[0]
    assert "integer too large to read" in errors[0]
