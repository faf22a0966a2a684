"""registry.yaml `trusted_formats`: formats that run code at load are a policy (issue 18, item 2).

The attack: a `write` token uploads a pickle whose `__reduce__` creates a file,
straight to the served branch; the next invoke used to unpickle it. Now the
upload is refused (403), the loader refuses an untrusted format (503 for that
model only) and `mreg validate` reports it.
"""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry import Registry
from tests.conftest import git
from tests.processes import MREG, serving
from tests.server_fixtures import LABELS, SETOSA, bearer, write_tokens

pytest_plugins = ["tests.server_fixtures"]


class Hostile:
    """Unpickling this creates the file `target` (a stand-in for any code)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.target), "w"))


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    return write_tokens(tmp_path / "tokens.json", {"writer": ["write"], "admin": ["admin"]})


@pytest.fixture
def registry(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, create=True)
    return reg


def upload(url: str, query: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/iris/versions?{query}",
        content=body,
        headers={**bearer("writer"), "Content-Type": "application/octet-stream"},
        timeout=60,
    )


def invoke(url: str, query: str = "") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/iris/invoke{query}",
        json={"data": SETOSA},
        headers=bearer("admin"),
        timeout=60,
    )


def test_a_write_token_cannot_upload_a_pickle_that_runs_on_invoke(
    registry: Registry, tokens: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    body = pickle.dumps(Hostile(marker))
    head = git(registry.root, "rev-parse", "HEAD")
    with serving(registry.root, "--tokens", str(tokens)) as s:
        for query in (
            "filename=model.skops&format=pickle",
            "filename=model.pkl",
            "filename=model.joblib&branch=review",  # a branch, but the server does not allow it
        ):
            r = upload(s.url, query, body)
            assert r.status_code == 403, (query, r.text)
            error = r.json()["error"]
            assert error["code"] == "untrusted_format"
            assert "trusted_formats" in error["message"]
        assert invoke(s.url, "?version=2").status_code == 404
        assert invoke(s.url).json()["version"] == 1
    assert git(registry.root, "rev-parse", "HEAD") == head
    assert git(registry.root, "branch", "--list", "review") == ""
    assert not marker.exists()


def test_allow_code_formats_takes_them_on_a_branch_only(
    registry: Registry, tokens: Path, tmp_path: Path
) -> None:
    body = pickle.dumps(Hostile(tmp_path / "pwned"))
    head = git(registry.root, "rev-parse", "HEAD")
    with serving(registry.root, "--tokens", str(tokens), "--allow-code-formats") as s:
        r = upload(s.url, "filename=model.pkl", body)
        assert r.status_code == 403, r.text
        assert "branch" in r.json()["error"]["message"]
        r = upload(s.url, "filename=model.pkl&branch=review", body)
        assert r.status_code == 201, r.text
        assert r.json()["write"]["branch"] == "review"
    assert git(registry.root, "rev-parse", "HEAD") == head
    assert not (tmp_path / "pwned").exists()


def test_the_loader_refuses_an_untrusted_format_for_that_model_only(
    registry: Registry, tokens: Path, tmp_path: Path
) -> None:
    """A pickle committed by other means (the CLI, a merge) is still not loaded."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Hostile(marker)))
    registry.register("evil", evil, format="pickle", create=True)
    with serving(registry.root, "--tokens", str(tokens)) as s:
        r = httpx.post(
            f"{s.url}/v1/models/evil/invoke",
            json={"data": SETOSA},
            headers=bearer("admin"),
            timeout=60,
        )
        assert r.status_code == 503, r.text
        assert "trusted_formats" in r.json()["error"]["message"]
        assert invoke(s.url).status_code == 200
        assert s.get("/healthz").status_code == 200
    assert not marker.exists()


def mreg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MREG, "--repo", str(root), *args], capture_output=True, text=True, check=False
    )


def test_validate_reports_an_untrusted_format_and_the_policy_can_list_it(
    registry: Registry, model_files: dict[str, Path]
) -> None:
    registry.register("iris", model_files["joblib"], format="joblib")
    proc = mreg(registry.root, "validate", "--format", "json")
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)
    assert [(f["code"], f["file"]) for f in findings] == [
        ("untrusted-format", "models/iris/versions/2.yaml")
    ]
    assert "joblib" in findings[0]["message"]
    settings = registry.root / "registry.yaml"
    settings.write_text(settings.read_text() + "trusted_formats: [skops, joblib]\n")
    assert mreg(registry.root, "validate").returncode == 0
    settings.write_text(settings.read_text().replace("joblib]", "exe]"))
    proc = mreg(registry.root, "validate")
    assert proc.returncode == 1
    assert "unknown format 'exe'" in proc.stdout
