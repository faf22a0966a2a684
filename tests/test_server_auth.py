"""Bearer tokens with scopes, public models, and where tokens come from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from server.runtime.auth import TokenConfigError, hash_token, load_tokens
from tests.server_fixtures import SETOSA, bearer, token_entries

pytest_plugins = ["tests.server_fixtures"]


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": token_entries()}))
    return path


@pytest.fixture
def client(
    served_registry: Registry, tokens_file: Path, tmp_path: Path
) -> Iterator[TestClient[Any]]:
    app = create_app(served_registry, tokens=str(tokens_file), usage_path=tmp_path / "u")
    with TestClient(app=app) as c:
        yield c


def invoke(client: TestClient[Any], model: str, who: str | None) -> Any:
    headers = bearer(who) if who else {}
    return client.post(f"/v1/models/{model}/invoke", json={"data": SETOSA}, headers=headers)


@pytest.mark.parametrize(
    ("model", "who", "status"),
    [
        ("public-iris", None, 200),
        ("public-iris", "reader", 200),
        ("iris", None, 404),
        ("iris", "reader", 403),
        ("iris", "invoker", 200),
        ("iris", "admin", 200),
    ],
)
def test_invoke_needs_the_invoke_scope_unless_public(
    client: TestClient[Any], model: str, who: str | None, status: int
) -> None:
    r = invoke(client, model, who)
    assert r.status_code == status, r.text
    if status == 404:
        assert r.json()["error"]["code"] == "model_not_found"
    if status == 403:
        assert (
            r.json()["error"]["message"]
            == "token 'reader' lacks the 'invoke' scope on model 'iris'"
        )


@pytest.mark.parametrize(
    ("path", "who", "status"),
    [
        ("/v1/models/iris", None, 404),
        ("/v1/models/iris", "reader", 200),
        ("/v1/models/iris/versions", "invoker", 200),
        ("/v1/models/public-iris", None, 200),
        ("/v1/resolve/iris:prod", None, 404),
        ("/v1/resolve/public-iris", None, 200),
        ("/healthz", None, 200),
        ("/metrics", None, 200),
    ],
)
def test_reads_need_the_read_scope_unless_public(
    client: TestClient[Any], path: str, who: str | None, status: int
) -> None:
    assert client.get(path, headers=bearer(who) if who else {}).status_code == status


def test_an_unknown_or_malformed_token_is_401(client: TestClient[Any]) -> None:
    for header in ("Bearer not-a-token", "Basic abc", "Bearer "):
        r = client.get("/v1/models/public-iris", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthorized"


def test_lists_show_private_models_only_to_readers(client: TestClient[Any]) -> None:
    anonymous = [m["name"] for m in client.get("/v1/models").json()["models"]]
    assert anonymous == ["public-iris"]
    reader = client.get("/v1/models", params={"limit": 100}, headers=bearer("reader")).json()
    assert "iris" in [m["name"] for m in reader["models"]]
    assert client.get("/v1/pointers").json()["pointers"] == []


def test_jobs_record_who_and_hide_private_models_from_anonymous(client: TestClient[Any]) -> None:
    assert invoke(client, "iris", "invoker").status_code == 200
    assert invoke(client, "public-iris", None).status_code == 200
    jobs = client.get("/v1/jobs", headers=bearer("reader")).json()["jobs"]
    assert [(j["model"], j["who"]) for j in jobs] == [
        ("public-iris", "anonymous"),
        ("iris", "invoker"),
    ]
    public = client.get("/v1/jobs").json()["jobs"]
    assert [j["model"] for j in public] == ["public-iris"]


def test_reload_needs_the_admin_scope(client: TestClient[Any]) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers=bearer("invoker")).status_code == 403
    r = client.post("/v1/admin/reload", headers=bearer("admin"))
    assert r.status_code == 200
    assert r.json()["reloaded"] is False


def test_tokens_from_the_environment(
    served_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MREG_TOKENS", json.dumps(token_entries()))
    with TestClient(app=create_app(served_registry, usage_path=tmp_path / "u")) as c:
        assert invoke(c, "iris", None).status_code == 404
        assert invoke(c, "iris", "invoker").status_code == 200


def test_without_tokens_everything_is_open(served_registry: Registry, tmp_path: Path) -> None:
    with TestClient(app=create_app(served_registry, usage_path=tmp_path / "u")) as c:
        assert invoke(c, "iris", None).status_code == 200


def test_a_tokens_file_stores_hashes_only(tokens_file: Path) -> None:
    tokens = load_tokens(tokens_file)
    assert [t.name for t in tokens] == ["reader", "invoker", "admin"]
    assert tokens[0].sha256 == hash_token("secret-reader-token")
    assert "secret" not in tokens_file.read_text()
    assert tokens[2].scopes == {"read", "invoke", "write", "admin"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- name: a\n  sha256: abc\n  scopes: [read]\n", "sha256 must be 64 hex digits"),
        (
            f"- name: a\n  sha256: '{'0' * 64}'\n  scopes: [deploy]\n",
            "scopes must be a non-empty list",
        ),
        (
            f"- name: a\n  sha256: '{'0' * 64}'\n  scopes: [read]\n  token: x\n",
            "unknown key 'token'",
        ),
        ("tokens: 3\n", "expected a list of tokens"),
        ("[unclosed\n", "not valid YAML or JSON"),
    ],
)
def test_a_bad_tokens_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(content)
    with pytest.raises(TokenConfigError, match=message) as raised:
        load_tokens(path)
    assert "\n" not in raised.value.message  # one line, as the CLI prints it
