"""Without a token, private models and versions do not exist: no route tells them from missing ones.

The registry: `secret` (private; v1, pointer `prod`), `open` (public; v1, v2
with `visibility: private`, pointers `stable -> v1` and `canary -> v2`).
Tokens are configured, so a caller without one is anonymous.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from tests.conftest import git
from tests.server_fixtures import LABELS, SETOSA, bearer, token_entries

pytest_plugins = ["tests.server_fixtures"]

MISSING_ID = "mv_00000000000000ff"


@pytest.fixture(scope="module")
def private_registry(
    tmp_path_factory: pytest.TempPathFactory,
    model_files: dict[str, Path],
    other_model_file: Path,
    session_env: None,
) -> Registry:
    reg = Registry.init(tmp_path_factory.mktemp("private") / "reg")
    out = {"labels": LABELS}
    reg.create_model("secret", description="not for everyone")
    reg.register("secret", model_files["skops"], output_info=out, point=["prod"])
    reg.create_model("open", is_public=True)
    reg.register("open", model_files["skops"], output_info=out, point=["stable"])
    reg.register("open", other_model_file, output_info=out, point=["canary"])
    reg.update_version("open:v2", visibility="private")
    return reg


def tokens_file(tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump(token_entries()))
    return path


@pytest.fixture
def client(private_registry: Registry, tmp_path: Path) -> Iterator[TestClient[Any]]:
    app = create_app(private_registry, tokens=tokens_file(tmp_path), usage_path=tmp_path / "u")
    with TestClient(app=app) as c:
        yield c


def ids(registry: Registry) -> dict[str, str]:
    snap = registry.snapshot("HEAD")
    return {
        "secret:v1": snap.version("secret", 1).id,
        "open:v1": snap.version("open", 1).id,
        "open:v2": snap.version("open", 2).id,
    }


def call(client: TestClient[Any], method: str, path: str, who: str | None = None) -> Any:
    headers = bearer(who) if who else {}
    if method == "POST":
        body: dict[str, Any] = {"data": SETOSA}
        if path.startswith("/v1/runs?pipeline="):
            path, body = "/v1/runs", {"pipeline": path.split("=", 1)[1], "data": SETOSA}
        return client.post(path, json=body, headers=headers)
    return client.get(path, headers=headers)


def same_answer(hidden: Any, missing: Any, hidden_name: str, missing_name: str) -> None:
    """Byte for byte the same, but for the name that was asked for."""
    assert hidden.status_code == missing.status_code
    assert hidden.headers["content-type"] == missing.headers["content-type"]
    assert hidden.text.replace(hidden_name, missing_name) == missing.text


MODEL_ROUTES = [
    ("GET", "/v1/models/{m}"),
    ("GET", "/v1/models/{m}/versions"),
    ("GET", "/v1/models/{m}/versions/1"),
    ("GET", "/v1/models/{m}/pointers"),
    ("GET", "/v1/resolve/{m}"),
    ("GET", "/v1/resolve/{m}:prod"),
    ("GET", "/v1/resolve/{m}:v1"),
    ("POST", "/v1/models/{m}/invoke"),
    ("POST", "/v1/models/{m}/invoke?pointer=prod"),
    ("POST", "/v1/models/{m}/invoke?version=1"),
    ("POST", "/v1/runs?pipeline={m}:prod"),
    ("POST", "/v1/runs?pipeline={m}"),
]


@pytest.mark.parametrize(("method", "route"), MODEL_ROUTES)
def test_a_private_model_answers_like_a_missing_one(
    client: TestClient[Any], method: str, route: str
) -> None:
    hidden = call(client, method, route.format(m="secret"))
    missing = call(client, method, route.format(m="nosuch"))
    assert hidden.status_code == 404, hidden.text
    assert hidden.json()["error"]["code"] == "model_not_found"
    same_answer(hidden, missing, "secret", "nosuch")
    # A token that reads sees it.
    assert call(client, method, route.format(m="secret"), who="admin").status_code == 200


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "/v1/resolve/{id}"),
        ("POST", "/v1/models/open/invoke?modelId={id}"),
        ("POST", "/v1/runs?pipeline={id}"),
    ],
)
@pytest.mark.parametrize("hidden_ref", ["secret:v1", "open:v2"])
def test_a_private_version_id_answers_like_a_missing_one(
    client: TestClient[Any], private_registry: Registry, method: str, route: str, hidden_ref: str
) -> None:
    hidden_id = ids(private_registry)[hidden_ref]
    hidden = call(client, method, route.format(id=hidden_id))
    missing = call(client, method, route.format(id=MISSING_ID))
    assert hidden.status_code == 404, hidden.text
    assert hidden.json()["error"]["code"] == "version_not_found"
    assert "secret" not in hidden.text
    same_answer(hidden, missing, hidden_id, MISSING_ID)


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "/v1/models/open/versions/{n}"),
        ("GET", "/v1/resolve/open:v{n}"),
        ("POST", "/v1/models/open/invoke?version={n}"),
        ("POST", "/v1/runs?pipeline=open:v{n}"),
    ],
)
def test_a_private_version_of_a_public_model_answers_like_a_missing_one(
    client: TestClient[Any], method: str, route: str
) -> None:
    hidden = call(client, method, route.format(n=2))
    missing = call(client, method, route.format(n=9))
    assert hidden.status_code == 404, hidden.text
    same_answer(hidden, missing, "v2", "v9")
    assert call(client, method, route.format(n=2), who="admin").status_code == 200


def test_latest_skips_a_private_version_for_anonymous_callers(
    client: TestClient[Any], private_registry: Registry
) -> None:
    known = ids(private_registry)
    anonymous = call(client, "POST", "/v1/models/open/invoke")
    assert anonymous.status_code == 200
    assert (anonymous.json()["version"], anonymous.json()["model_id"]) == (1, known["open:v1"])
    assert client.get("/v1/resolve/open").json()["version"] == 1
    model = client.get("/v1/models/open").json()
    assert model["latest"] == {"version": 1, "id": known["open:v1"]}
    assert [v["version"] for v in model["versions"]] == [1]
    assert model["versions_count"] == 1
    assert known["open:v2"] not in client.get("/v1/models/open").text
    versions = client.get("/v1/models/open/versions").json()["versions"]
    assert [v["version"] for v in versions] == [1]
    # The pointer to the private version is public, but not where it leads.
    pointers = {p["tag"]: p for p in client.get("/v1/models/open/pointers").json()["pointers"]}
    assert pointers["stable"]["resolves_to"] == {"version": 1, "id": known["open:v1"]}
    assert pointers["canary"]["resolves_to"] is None
    canary = call(client, "POST", "/v1/models/open/invoke?pointer=canary")
    assert (canary.status_code, canary.json()["error"]["code"]) == (404, "version_not_found")

    reader = call(client, "POST", "/v1/models/open/invoke", who="reader")
    assert (reader.json()["version"], reader.json()["model_id"]) == (2, known["open:v2"])
    assert client.get("/v1/models/open", headers=bearer("reader")).json()["versions_count"] == 2


def test_listings_and_counts_show_anonymous_callers_only_public_things(
    client: TestClient[Any],
) -> None:
    assert [m["name"] for m in client.get("/v1/models").json()["models"]] == ["open"]
    assert [m["name"] for m in client.get("/v1/models?q=secret").json()["models"]] == []
    pointers = client.get("/v1/pointers").json()["pointers"]
    assert sorted(p["tag"] for p in pointers) == ["canary", "stable"]
    anonymous = client.get("/v1/registry").json()
    assert anonymous["counts"] == {
        "models": 1,
        "archived_models": 0,
        "versions": 1,
        "pointers": 2,
    }
    assert anonymous["loaded_models"] is None
    reader = client.get("/v1/registry", headers=bearer("reader")).json()
    assert reader["counts"] == {"models": 2, "archived_models": 0, "versions": 3, "pointers": 3}


def test_jobs_and_runs_of_private_things_are_hidden_from_anonymous_callers(
    client: TestClient[Any],
) -> None:
    secret = client.post(
        "/v1/runs", json={"pipeline": "secret:prod", "data": SETOSA}, headers=bearer("invoker")
    )
    assert secret.status_code == 200, secret.text
    private_version = call(client, "POST", "/v1/models/open/invoke?version=2", who="invoker")
    assert private_version.status_code == 200
    assert call(client, "POST", "/v1/models/secret/invoke").status_code == 404
    assert call(client, "POST", "/v1/models/open/invoke").status_code == 200

    everything = client.get("/v1/jobs", headers=bearer("reader")).json()["jobs"]
    assert [(j["model"], j["version"], j["http_status"]) for j in everything] == [
        ("open", 1, 200),
        ("secret", None, 404),
        ("open", 2, 200),
        ("secret", 1, 200),
    ]
    anonymous = client.get("/v1/jobs").json()["jobs"]
    assert [(j["model"], j["version"]) for j in anonymous] == [("open", 1)]
    assert client.get("/v1/jobs?model=secret").json()["jobs"] == []

    run_id = secret.json()["id"]
    hidden = client.get(f"/v1/runs/{run_id}")
    missing = client.get("/v1/runs/run_nosuch")
    same_answer(hidden, missing, run_id, "run_nosuch")
    assert hidden.status_code == 404
    assert client.get(f"/v1/runs/{run_id}", headers=bearer("reader")).json()["model"] == "secret"


def test_a_failed_reload_names_no_private_file_to_anonymous_callers(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("secret-sauce")
    reg.register("secret-sauce", model_files["skops"], output_info={"labels": LABELS})
    reg.create_model("open", is_public=True)
    app = create_app(reg, follow="main", poll=0, tokens=tokens_file(tmp_path))
    with TestClient(app=app) as c:
        broken = reg.root / "models" / "secret-sauce" / "model.yaml"
        broken.write_text(broken.read_text() + "typo_field: 1\n")
        git(reg.root, "commit", "-qam", "break it")
        assert c.post("/v1/admin/reload", headers=bearer("admin")).json()["reloaded"] is False
        admin = c.get("/v1/registry", headers=bearer("admin")).json()
        assert "secret-sauce" in admin["last_reload_error"]["message"]
        anonymous = c.get("/v1/registry")
        assert "secret-sauce" not in anonymous.text
        error = anonymous.json()["last_reload_error"]
        assert error["revision"] == git(reg.root, "rev-parse", "main")
        assert error["message"] == "the newest revision failed to load (a token shows why)"
        assert anonymous.json()["counts"]["models"] == 1
