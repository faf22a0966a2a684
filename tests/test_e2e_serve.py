"""End to end: `mreg serve` as a real process on a loopback port, called over HTTP and by `mreg invoke`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry import Registry
from tests.processes import MREG, free_port, serving
from tests.server_fixtures import LABELS, SETOSA, VIRGINICA

pytest_plugins = ["tests.server_fixtures"]


@pytest.fixture
def registry(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris", project="flowers")
    reg.register("iris", model_files["onnx"], output_info={"labels": LABELS}, point=["prod"])
    return reg


@pytest.fixture
def server(registry: Registry) -> Iterator[str]:
    with serving(registry.root, "--preload", timeout=60) as process:
        yield process.url


@pytest.mark.slow
def test_serve_and_invoke_over_http(server: str, registry: Registry) -> None:
    r = httpx.post(f"{server}/v1/models/iris/invoke", json={"inputs": [SETOSA, VIRGINICA]})
    assert r.status_code == 200, r.text
    body = r.json()
    version = registry.snapshot("HEAD").version("iris", 1)
    assert body["model_id"] == version.id == r.headers["x-mreg-model-id"]
    assert [o["label"] for o in body["outputs"]] == ["setosa", "virginica"]

    cli = subprocess.run(
        [*MREG, "invoke", "iris:prod", "--data", json.dumps(SETOSA), "--url", server],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["outputs"][0]["label"] == "setosa"

    by_id = subprocess.run(  # the server's URL from MREG_URL
        [*MREG, "invoke", version.id, "--inputs", json.dumps([VIRGINICA])],
        capture_output=True,
        text=True,
        env={**os.environ, "MREG_URL": server},
    )
    assert by_id.returncode == 0, by_id.stderr
    assert json.loads(by_id.stdout)["outputs"][0]["label"] == "virginica"

    missing = subprocess.run(
        [*MREG, "invoke", "nope", "--data", "[1]", "--url", server], capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: 404 model_not_found: model 'nope' not found")

    jobs = httpx.get(f"{server}/v1/jobs").json()["jobs"]
    assert [(j["ref"], j["http_status"]) for j in jobs] == [
        ("nope", 404),  # a failed call is a job too, with the status it got
        (version.id, 200),
        ("iris:prod", 200),
        ("iris", 200),
    ]
    assert "mreg_invocations_total" in httpx.get(f"{server}/metrics").text


def test_invoke_without_a_server_is_one_error_line(tmp_path: Path) -> None:
    port = free_port()
    r = subprocess.run(
        [*MREG, "invoke", "iris", "--data", "[1]", "--url", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: cannot reach http://127.0.0.1:{port}")
    assert len(r.stderr.strip().splitlines()) == 1


def test_invoke_reads_the_server_url_from_mreg_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = subprocess.run(
        [*MREG, "invoke", "iris", "--data", "[1]"],
        capture_output=True,
        text=True,
        env={**os.environ, "MREG_URL": url},
    )
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: cannot reach {url}")


@pytest.mark.parametrize(
    ("args", "status", "needle"),
    [
        (["--get", "/v1/registry"], 0, '"counts"'),
        (["--get", "/v1/models/nope"], 1, '"model_not_found"'),
    ],
)
def test_serve_get_smoke_check(
    registry: Registry, args: list[str], status: int, needle: str
) -> None:
    r = subprocess.run(
        [*MREG, "--repo", str(registry.root), "serve", *args], capture_output=True, text=True
    )
    assert r.returncode == status, r.stderr
    assert needle in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "error: refusing to serve 0.0.0.0 without tokens"),
        (["--rev", "no-such-tag"], "error: revision 'no-such-tag' not found"),
        (["--tokens", "/nonexistent/tokens.yaml"], "error: cannot read tokens file"),
    ],
)
def test_serve_refuses_with_one_error_line(
    registry: Registry, args: list[str], message: str
) -> None:
    r = subprocess.run(
        [*MREG, "--repo", str(registry.root), "serve", *args], capture_output=True, text=True
    )
    assert r.returncode == 1
    assert r.stderr.startswith(message), r.stderr
