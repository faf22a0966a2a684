"""End to end: the management API of a real `mreg serve` process, driven over HTTP.

The Neurodeploy flow (create, upload, invoke, archive, restore, delete) is
checked the way a reviewer would: `git log` (one commit per write, authored as
the token, with trailers), the DVC remote (the artifact pushed) and
`mreg validate --base` (clean). Then an interrupted upload, parallel HTTP and
CLI writers, and schemathesis against the write routes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from registry import Registry
from tests.conftest import git
from tests.processes import MREG, ROOT, serving
from tests.server_fixtures import LABELS, SETOSA, VIRGINICA, bearer, token_secret

pytest_plugins = ["tests.server_fixtures"]

TOKENS = {"writer": ["write"], "reader": ["read"], "admin": ["admin"]}


@contextlib.contextmanager
def serve(root: Path, tokens: Path, *args: str) -> Iterator[str]:
    with serving(root, "--tokens", str(tokens), *args, timeout=60) as process:
        yield process.url


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.init(tmp_path / "reg")


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    entries = [
        {"name": n, "sha256": hashlib.sha256(token_secret(n).encode()).hexdigest(), "scopes": s}
        for n, s in TOKENS.items()
    ]
    path.write_text(json.dumps(entries))
    return path


def log(root: Path, base: str) -> list[tuple[str, str, dict[str, str]]]:
    """(author, subject, trailers) of each commit after `base`, oldest first."""
    out = git(root, "log", "--reverse", "--format=%an%x1f%B%x1e", f"{base}..HEAD")
    found = []
    for record in filter(None, (r.strip() for r in out.split("\x1e"))):
        author, body = record.split("\x1f")
        lines = body.strip().splitlines()
        trailers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        found.append((author, lines[0], trailers))
    return found


def mreg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MREG, "--repo", str(root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.slow
def test_the_neurodeploy_flow_over_http(
    registry: Registry, tokens: Path, other_model_file: Path
) -> None:
    root = registry.root
    start = git(root, "rev-parse", "HEAD")
    data = other_model_file.read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    w = bearer("writer")
    with serve(root, tokens) as url, httpx.Client(base_url=url, timeout=60) as http:
        r = http.post("/v1/models", json={"name": "iris", "library": "sklearn"}, headers=w)
        assert r.status_code == 201, r.text
        r = http.post(
            "/v1/models/iris/versions",
            json={"output_info": {"labels": LABELS}, "metrics": {"accuracy": 0.96}},
            headers=w,
        )
        assert r.status_code == 201, r.text
        assert r.json()["version"]["status"] == "untrained"
        r = http.put(
            "/v1/models/iris/versions/1/artifact?filename=iris.skops",
            content=data,
            headers={**w, "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode()},
        )
        assert r.status_code == 200, r.text
        assert r.json()["version"]["artifact"]["md5"] == md5
        trained = r.json()["write"]["commit"]

        r = http.post("/v1/models/iris/invoke", json={"inputs": [SETOSA, VIRGINICA]}, headers=w)
        assert r.status_code == 200, r.text
        assert [o["label"] for o in r.json()["outputs"]] == ["setosa", "virginica"]
        assert r.json()["revision"] == trained

        r = http.put("/v1/models/iris/pointers/prod", json={"target": "v1"}, headers=w)
        assert r.status_code == 200, r.text
        r = http.post("/v1/models/iris/archive", headers=w)
        assert r.status_code == 200, r.text
        listed = http.get("/v1/models", headers=w).json()["models"]
        assert "iris" not in [m["name"] for m in listed]
        r = http.post("/v1/models/iris/restore", headers=w)
        assert r.status_code == 200, r.text
        restored = r.json()["write"]["commit"]
        r = http.post("/v1/models/iris/invoke?pointer=prod", json={"data": SETOSA}, headers=w)
        assert r.status_code == 200, r.text
        r = http.delete("/v1/models/iris", headers=w)
        assert r.status_code == 200, r.text
        assert http.get("/v1/models/iris", headers=w).status_code == 404
        assert (
            http.post("/v1/models", json={"name": "x"}, headers=bearer("reader")).status_code == 403
        )

    assert log(root, start) == [
        ("writer", "iris: create model", {"Mreg-Action": "model-create", "Mreg-Model": "iris"}),
        (
            "writer",
            f"iris: register v1 ({log(root, start)[1][2]['Mreg-Version-Id']})",
            {
                "Mreg-Action": "register",
                "Mreg-Model": "iris",
                "Mreg-Version": "1",
                "Mreg-Version-Id": log(root, start)[1][2]["Mreg-Version-Id"],
            },
        ),
        (
            "writer",
            "iris: v1 untrained -> trained",
            {
                "Mreg-Action": "version-status",
                "Mreg-Model": "iris",
                "Mreg-Version": "1",
                "Mreg-Version-Id": log(root, start)[1][2]["Mreg-Version-Id"],
                "Mreg-Status": "trained",
            },
        ),
        (
            "writer",
            "iris: point prod -> v1",
            {
                "Mreg-Action": "point",
                "Mreg-Model": "iris",
                "Mreg-Pointer": "prod",
                "Mreg-To": "v1",
                "Mreg-Version": "1",
                "Mreg-Version-Id": log(root, start)[1][2]["Mreg-Version-Id"],
            },
        ),
        ("writer", "iris: archive model", {"Mreg-Action": "model-archive", "Mreg-Model": "iris"}),
        ("writer", "iris: restore model", {"Mreg-Action": "model-restore", "Mreg-Model": "iris"}),
        ("writer", "iris: delete model", {"Mreg-Action": "model-delete", "Mreg-Model": "iris"}),
    ]
    assert git(root, "tag", "--list", "iris@*") == "iris@v1"
    remote = root / ".dvc" / "storage" / "files" / "md5" / md5[:2] / md5[2:]
    assert remote.read_bytes() == data
    # The history a reviewer would merge is clean, artifacts included, and so is the end state.
    checked = mreg(root, "validate", "--rev", restored, "--base", start, "--check-artifacts")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    final = mreg(root, "validate", "--base", start)
    assert final.returncode == 0, final.stdout + final.stderr
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.slow
def test_an_interrupted_upload_leaves_nothing_behind(registry: Registry, tokens: Path) -> None:
    registry.create_model("iris")
    registry.register("iris", untrained=True)
    root = registry.root
    before = git(root, "rev-parse", "HEAD")
    uploads = root / ".git" / "mreg" / "uploads"
    with serve(root, tokens) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"PUT /v1/models/iris/versions/1/artifact?filename=iris.skops HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\nAuthorization: Bearer "
                + token_secret("writer").encode()
                + b"\r\n"
                b"Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n"
                + b"x"
                * 200_000
            )
            # Wait until the server is streaming it to disk, then hang up half-way.
            deadline = time.monotonic() + 30
            while not (uploads.is_dir() and any(uploads.iterdir())):
                assert time.monotonic() < deadline, "the upload never reached the server"
                time.sleep(0.05)
        deadline = time.monotonic() + 30
        while any(uploads.iterdir()):
            assert time.monotonic() < deadline, f"left behind: {list(uploads.rglob('*'))}"
            time.sleep(0.05)
        version = httpx.get(f"{url}/v1/models/iris/versions/1", headers=bearer("reader")).json()
        assert version["status"] == "untrained"
    assert git(root, "rev-parse", "HEAD") == before
    assert not (root / ".dvc" / "storage" / "files").exists()


@pytest.mark.slow
def test_parallel_http_and_cli_writers_lose_nothing(registry: Registry, tokens: Path) -> None:
    registry.create_model("churn")
    root = registry.root
    start = git(root, "rev-parse", "HEAD")
    http_writes, cli_writes = 12, 4
    with serve(root, tokens) as url:

        def over_http(i: int) -> httpx.Response:
            return httpx.post(
                f"{url}/v1/models/churn/versions",
                json={"description": f"http {i}"},
                headers=bearer("writer"),
                timeout=120,
            )

        def over_cli(i: int) -> subprocess.CompletedProcess[str]:
            return mreg(root, "register", "churn", "--untrained", "--description", f"cli {i}")

        with ThreadPoolExecutor(max_workers=http_writes + cli_writes) as pool:
            https = [pool.submit(over_http, i) for i in range(http_writes)]
            clis = [pool.submit(over_cli, i) for i in range(cli_writes)]
            responses = [f.result() for f in https]
            runs = [f.result() for f in clis]
        assert [r.status_code for r in responses] == [201] * http_writes, [
            r.text for r in responses if r.status_code != 201
        ]
        assert [r.returncode for r in runs] == [0] * cli_writes, [r.stderr for r in runs]
        numbers = [r.json()["version"]["version"] for r in responses]
        assert len(set(numbers)) == http_writes

        r = httpx.post(f"{url}/v1/admin/reload", headers=bearer("admin"))
        assert r.status_code == 200, r.text
        served = httpx.get(f"{url}/v1/models/churn/versions", headers=bearer("reader")).json()
    total = http_writes + cli_writes
    assert [v["version"] for v in served["versions"]] == list(range(1, total + 1))
    descriptions = sorted(v["description"] for v in served["versions"])
    assert descriptions == sorted(
        [f"http {i}" for i in range(http_writes)] + [f"cli {i}" for i in range(cli_writes)]
    )
    commits = log(root, start)
    assert len(commits) == total
    authors = sorted(author for author, _, _ in commits)
    assert authors == sorted(["Test User"] * cli_writes + ["writer"] * http_writes)
    tags = git(root, "tag", "--list", "churn@*").split()
    assert sorted(tags) == sorted(f"churn@v{n}" for n in range(1, total + 1))
    assert mreg(root, "validate", "--base", start).returncode == 0


@pytest.mark.slow
def test_schemathesis_finds_the_write_routes_honest(
    registry: Registry, tokens: Path, tmp_path: Path
) -> None:
    """Every documented check, on every write route, with a write token: zero failures."""
    registry.create_model("iris", library="sklearn")
    registry.register("iris", untrained=True)
    with serve(registry.root, tokens) as url:
        document = httpx.get(f"{url}/schema/openapi.json", timeout=30).json()
        writes = sum(
            "writes" in op.get("tags", [])
            for item in document["paths"].values()
            for op in item.values()
            if isinstance(op, dict)
        )
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{url}/schema/openapi.json",
                "--checks",
                "all",
                "--include-tag",
                "writes",
                "-H",
                f"Authorization: Bearer {token_secret('writer')}",
                "--max-examples",
                "15",
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--seed",
                "1",
                # Not the 10 s defaults: a write on a busy machine may take longer (no timing).
                "--request-timeout",
                "60",
                "--max-response-time",
                "60",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
    assert run.returncode == 0, run.stdout[-5000:]
    assert writes >= 12 and f"Tested: {writes}" in run.stdout  # every write route, none left out
