"""The shared `mreg serve` helper fails a test with what the server said, and stops it at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import Registry
from tests.processes import serving


def test_a_server_that_exits_fails_the_test_with_its_output(tmp_path: Path) -> None:
    with (
        pytest.raises(pytest.fail.Exception) as failed,
        serving(tmp_path / "not-a-repo", timeout=60),
    ):
        pass
    message = str(failed.value)
    assert message.startswith("mreg serve did not become ready:\n")
    assert "error: " in message and "is not inside a git repository" in message


@pytest.mark.slow
def test_serving_yields_a_ready_server_and_stops_it(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path / "reg")
    with serving(reg.root, timeout=60) as server:
        assert server.get("/readyz").status_code == 200
        assert server.get("/v1/registry").json()["revision"] == reg.snapshot("HEAD").revision
    assert server.proc.returncode is not None
    assert f"127.0.0.1:{server.port}" in server.output()
