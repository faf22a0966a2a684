"""The model-repository extension (`/v2/repository/...`) and the V2 error shape of unknown /v2
routes: in process, then with `tritonclient.http` against a real `mreg serve`.

The registry is tests/repository_registry.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from litestar.testing import TestClient
from tritonclient.utils import InferenceServerException

from registry import Registry
from server import create_app
from server.runtime.auth import parse_tokens
from tests.processes import serving
from tests.repository_registry import tokens_file
from tests.server_fixtures import SETOSA, bearer, token_entries, token_secret

pytest_plugins = ["tests.server_fixtures", "tests.repository_registry"]

INFER = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]}


@pytest.fixture
def client(repo: Registry, tmp_path: Path) -> Iterator[TestClient[Any]]:
    app = create_app(repo, tokens=parse_tokens(token_entries(), "test"), usage_path=tmp_path / "u")
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


def index(client: TestClient[Any], body: Any = None) -> list[dict[str, str]]:
    r = client.post("/v2/repository/index", json=body, headers=bearer("admin"))
    assert r.status_code == 200, r.text
    result: list[dict[str, str]] = r.json()
    return result


def states(entries: list[dict[str, str]]) -> dict[tuple[str, str], str]:
    return {(e["name"], e["version"]): e["state"] for e in entries}


def test_index_load_unload(client: TestClient[Any]) -> None:
    assert states(index(client)) == {
        ("iris", "1"): "UNAVAILABLE",
        ("iris", "2"): "UNAVAILABLE",
        ("public-iris", "1"): "UNAVAILABLE",
    }
    assert index(client, {"ready": True}) == []
    # `iris` loads its latest (v2), `iris:prod` the pointer's target (v1).
    for name in ("iris", "iris:prod"):
        r = client.post(f"/v2/repository/models/{name}/load", headers=bearer("admin"))
        assert r.status_code == 200, r.text
    assert index(client, {"ready": True}) == [
        {"name": "iris", "version": "1", "state": "READY", "reason": ""},
        {"name": "iris", "version": "2", "state": "READY", "reason": ""},
    ]
    r = client.post(
        "/v2/repository/models/iris/unload",
        json={"parameters": {"unload_dependents": False}},
        headers=bearer("admin"),
    )
    assert r.status_code == 200, r.text
    unloaded = [e for e in index(client) if e["name"] == "iris"]
    assert {(e["state"], e["reason"]) for e in unloaded} == {("UNAVAILABLE", "unloaded")}
    # Unloaded as in Triton's explicit model control: not ready, invokes refused, until loaded.
    r = client.post("/v2/models/iris/infer", json=INFER, headers=bearer("invoker"))
    assert r.status_code == 409
    assert r.json()["code"] == "model_unloaded"
    assert "POST /v2/repository/models/iris/load" in r.json()["error"]
    r = client.post("/v1/models/iris/invoke", json={"data": SETOSA}, headers=bearer("invoker"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "model_unloaded"
    assert client.get("/v2/models/iris/ready", headers=bearer("reader")).status_code == 409
    assert client.get("/v2/models/public-iris/ready").status_code == 200  # another model
    client.post("/v2/repository/models/iris/load", headers=bearer("admin"))
    r = client.post("/v2/models/iris/infer", json=INFER, headers=bearer("invoker"))
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == ["setosa"]


@pytest.mark.parametrize(
    ("path", "body", "who", "status", "code"),
    [
        ("/v2/repository/index", None, None, 401, "unauthorized"),
        ("/v2/repository/index", None, "reader", 403, "forbidden"),
        ("/v2/repository/models/iris/load", None, "invoker", 403, "forbidden"),
        ("/v2/repository/models/nope/load", None, "admin", 404, "model_not_found"),
        ("/v2/repository/models/iris:nope/load", None, "admin", 404, "pointer_not_found"),
        ("/v2/repository/models/nope/unload", None, "admin", 404, "model_not_found"),
        ("/v2/repository/index", {"repository_name": "other"}, "admin", 400, "invalid_input"),
        ("/v2/repository/index", {"ready": 0}, "admin", 400, "invalid_input"),
        (
            "/v2/repository/models/iris/load",
            {"parameters": {"config": "{}"}},
            "admin",
            400,
            "bad_request",
        ),
    ],
)
def test_repository_errors_in_the_v2_shape(
    client: TestClient[Any], path: str, body: Any, who: str | None, status: int, code: str
) -> None:
    r = client.post(path, json=body, headers=bearer(who) if who else {})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert isinstance(r.json()["error"], str)


def test_a_server_without_tokens_refuses_the_repository_calls(
    repo: Registry, tmp_path: Path
) -> None:
    """Any web page could post an unload to an open loopback server: it needs a token, always."""
    app = create_app(repo, tokens=[], usage_path=tmp_path / "u")
    with TestClient(app=app, raise_server_exceptions=False) as open_client:
        for path in ("/v2/repository/index", "/v2/repository/models/iris/unload"):
            r = open_client.post(path)
            assert r.status_code == 403
            assert r.json() == {
                "error": "the model-repository extension needs a token with the 'admin' scope:"
                " start mreg serve with --tokens FILE (or MREG_TOKENS)",
                "code": "admin_token_required",
            }
        r = open_client.post("/v2/models/iris/infer", json=INFER)
        assert r.status_code == 200, r.text  # the model was not unloaded


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/nothing", 404),
        ("POST", "/v2/models/iris/explain", 404),
        ("GET", "/v2/repository/index", 405),
        ("DELETE", "/v2/health/live", 405),
    ],
)
def test_unknown_v2_routes_answer_in_the_v2_shape(
    client: TestClient[Any], method: str, path: str, status: int
) -> None:
    r = client.request(method, path)
    assert r.status_code == status
    body = r.json()
    assert isinstance(body["error"], str) and body["code"] in ("not_found", "method_not_allowed")
    # /v1 keeps its own shape.
    assert client.get("/v1/nothing").json()["error"]["code"] == "not_found"


# -- tritonclient.http against a real `mreg serve` -------------------------------------------


@pytest.fixture(scope="module")
def url(repo: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tokens = tokens_file(tmp_path_factory.mktemp("tokens"))
    # --no-preload: nothing is in memory until the repository calls load it (explicit control).
    with serving(repo.root, "--tokens", str(tokens), "--no-preload", timeout=60) as process:
        yield f"127.0.0.1:{process.port}"


ADMIN = {"Authorization": f"Bearer {token_secret('admin')}"}


@pytest.mark.slow
def test_tritonclient_repository_calls(url: str) -> None:
    client = triton.InferenceServerClient(url=url)
    try:
        entries = client.get_model_repository_index(headers=ADMIN)
        assert {(e["name"], e["version"]) for e in entries} == {
            ("iris", "1"),
            ("iris", "2"),
            ("public-iris", "1"),
        }
        client.load_model("public-iris", headers=ADMIN)
        assert client.get_model_repository_index(headers=ADMIN, query_params=None) != []
        ready = [
            e for e in client.get_model_repository_index(headers=ADMIN) if e["state"] == "READY"
        ]
        assert [(e["name"], e["version"]) for e in ready] == [("public-iris", "1")]
        client.unload_model("public-iris", headers=ADMIN)
        assert not client.is_model_ready("public-iris")
        data = np.asarray([SETOSA], dtype=np.float32)
        tensor = triton.InferInput("input", list(data.shape), "FP32")
        tensor.set_data_from_numpy(data)
        with pytest.raises(InferenceServerException, match="is unloaded") as unloaded:
            client.infer("public-iris", [tensor])
        assert unloaded.value.status() == "409"
        client.load_model("public-iris", headers=ADMIN)
        assert client.is_model_ready("public-iris")
        assert client.infer("public-iris", [tensor]).as_numpy("label").tolist() == [b"setosa"]
        # Without the admin token: the client's own exception, with the server's message.
        with pytest.raises(InferenceServerException, match="'admin' scope") as denied:
            client.load_model("iris")
        assert denied.value.status() == "401"
    finally:
        client.close()


@pytest.mark.slow
def test_tritonclient_reads_the_error_of_an_unknown_v2_route(url: str) -> None:
    client = triton.InferenceServerClient(url=url)
    try:
        # Triton's trace and log settings are routes mreg does not have: a clean client error.
        with pytest.raises(InferenceServerException, match="Not Found") as missing:
            client.get_log_settings()
        assert missing.value.status() == "404"
    finally:
        client.close()
