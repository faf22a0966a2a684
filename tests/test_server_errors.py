"""Every failure answers in one JSON shape, and a broken model fails alone."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from server.runtime.auth import Token, hash_token
from tests.conftest import ALL_FORMATS
from tests.server_fixtures import LABELS, SETOSA, bearer, dvc_objects, remove_artifact

pytest_plugins = ["tests.server_fixtures"]

MAX_BODY = 2_000


class Exploding:
    """A "model" whose predict fails in a way no loader expects: the server must answer 500."""

    def predict(self, x: Any) -> Any:
        raise RuntimeError("boom")


@pytest.fixture(scope="module")
def faulty_registry(
    tmp_path_factory: pytest.TempPathFactory,
    model_files: dict[str, Path],
    other_model_file: Path,
    session_env: None,
) -> Registry:
    root = tmp_path_factory.mktemp("faulty") / "reg"
    reg = Registry.init(root, trusted_formats=ALL_FORMATS)
    reg.create_model("iris")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS})
    reg.register("iris", untrained=True)
    reg.point("iris:next", "v2")
    reg.create_model("public-iris", is_public=True)
    reg.register("public-iris", model_files["onnx"], output_info={"labels": LABELS})
    reg.create_model("broken")
    broken = reg.register("broken", other_model_file).value
    assert broken.artifact is not None
    remove_artifact(root, broken.artifact.md5)  # gone from the cache and the remote
    exploding = tmp_path_factory.mktemp("exploding") / "exploding.pkl"
    exploding.write_bytes(pickle.dumps(Exploding()))
    reg.create_model("exploding")
    reg.register("exploding", exploding, format="pickle")
    return reg


@pytest.fixture
def client(faulty_registry: Registry, tmp_path: Path) -> Iterator[TestClient[Any]]:
    tokens = [
        Token("reader", hash_token("secret-reader-token"), frozenset({"read"})),
        Token("invoker", hash_token("secret-invoker-token"), frozenset({"read", "invoke"})),
    ]
    app = create_app(
        faulty_registry, tokens=tokens, max_body=MAX_BODY, usage_path=tmp_path / "usage"
    )
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient[Any], path: str, who: str | None = "invoker", **kwargs: Any) -> Any:
    headers = {**(bearer(who) if who else {}), **kwargs.pop("headers", {})}
    return client.post(path, headers=headers, **kwargs)


CASES: dict[int, tuple[str, Callable[[TestClient[Any]], Any]]] = {
    400: (
        "bad_request",
        lambda c: post(
            c,
            "/v1/models/iris/invoke",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
    ),
    401: (
        "unauthorized",
        lambda c: post(
            c,
            "/v1/models/iris/invoke",
            who=None,
            json={"data": SETOSA},
            headers={"Authorization": "Bearer not-a-token"},
        ),
    ),
    403: (
        "forbidden",
        lambda c: post(c, "/v1/models/iris/invoke", who="reader", json={"data": SETOSA}),
    ),
    404: ("model_not_found", lambda c: post(c, "/v1/models/nope/invoke", json={"data": SETOSA})),
    409: (
        "version_not_ready",
        lambda c: post(c, "/v1/models/iris/invoke?pointer=next", json={"data": SETOSA}),
    ),
    413: (
        "body_too_large",
        lambda c: post(c, "/v1/models/iris/invoke", json={"inputs": [SETOSA] * 200}),
    ),
    422: ("invalid_input", lambda c: post(c, "/v1/models/iris/invoke", json={"data": [1.0, 2.0]})),
    500: (
        "internal_error",
        lambda c: post(c, "/v1/models/exploding/invoke", json={"data": SETOSA}),
    ),
    503: (
        "artifact_unavailable",
        lambda c: post(c, "/v1/models/broken/invoke", json={"data": SETOSA}),
    ),
}


@pytest.mark.parametrize("status", sorted(CASES))
def test_one_error_shape_for_every_status(client: TestClient[Any], status: int) -> None:
    code, send = CASES[status]
    r = send(client)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message", "detail"]
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_a_wrong_shape_says_what_the_model_expected(client: TestClient[Any]) -> None:
    error = post(client, "/v1/models/iris/invoke", json={"data": [1.0, 2.0]}).json()["error"]
    assert error["message"] == (
        "the model rejected the input: X has 2 features, but StandardScaler is expecting 4"
        " features as input."
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"x": 1}, 400, "Object contains unknown field `x`"),
        ({"inputs": 3}, 400, "Expected `array`, got `int`"),
        ({}, 422, 'expected a body {"data": x} for one input or {"inputs": [x, ...]}'),
        ({"data": [1], "inputs": [[1]]}, 422, "give either 'data' or 'inputs', not both"),
    ],
)
def test_a_body_that_does_not_match_says_what_was_expected(
    client: TestClient[Any], body: dict[str, Any], status: int, message: str
) -> None:
    r = post(client, "/v1/models/iris/invoke", json=body)
    assert r.status_code == status
    assert message in r.json()["error"]["message"]
    assert '{"data": x}' in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("modelId=mv_0000000000000000", 404),
        ("modelId=not-an-id", 400),
        ("version=7", 404),
        ("version=0", 400),
        ("pointer=nope", 404),
        ("version=1&pointer=next", 409),
        ("version=1&pointer=v2", 409),
    ],
)
def test_bad_pins(client: TestClient[Any], query: str, status: int) -> None:
    r = post(client, f"/v1/models/iris/invoke?{query}", json={"data": SETOSA})
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) == {"code", "message", "detail"}


def test_a_model_id_of_another_model_is_404(
    client: TestClient[Any], faulty_registry: Registry
) -> None:
    other = faulty_registry.snapshot("HEAD").version("public-iris", 1).id
    r = post(client, f"/v1/models/iris/invoke?modelId={other}", json={"data": SETOSA})
    assert r.status_code == 404
    assert "is a version of 'public-iris', not of 'iris'" in r.json()["error"]["message"]


def test_a_broken_model_fails_alone(client: TestClient[Any]) -> None:
    for _ in range(2):
        assert post(client, "/v1/models/broken/invoke", json={"data": SETOSA}).status_code == 503
        assert post(client, "/v1/models/iris/invoke", json={"data": SETOSA}).status_code == 200
        assert (
            post(client, "/v1/models/public-iris/invoke", json={"data": SETOSA}).status_code == 200
        )
    metrics = client.get("/metrics", headers=bearer("reader")).text
    assert 'mreg_model_load_failures_total{model="broken"}' in metrics
    assert client.get("/readyz").status_code == 200


def test_a_missing_cache_file_is_fetched_from_the_remote(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    reg = Registry.init(tmp_path / "reg", trusted_formats=ALL_FORMATS)
    reg.create_model("iris")
    version = reg.register("iris", model_files["joblib"]).value
    assert version.artifact is not None
    cache, remote = dvc_objects(reg.root, version.artifact.md5)
    remove_artifact(reg.root, version.artifact.md5, remote=False)
    assert remote.is_file() and not cache.exists()
    with TestClient(app=create_app(reg)) as c:
        r = c.post("/v1/models/iris/invoke", json={"data": SETOSA})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == [0]
    assert cache.is_file()


def test_a_corrupt_cache_file_is_never_loaded(tmp_path: Path, model_files: dict[str, Path]) -> None:
    reg = Registry.init(tmp_path / "reg", trusted_formats=ALL_FORMATS)
    reg.create_model("iris")
    version = reg.register("iris", model_files["joblib"]).value
    assert version.artifact is not None
    for path in dvc_objects(reg.root, version.artifact.md5):
        path.chmod(0o644)
        path.write_bytes(b"tampered")
    with TestClient(app=create_app(reg)) as c:
        r = c.post("/v1/models/iris/invoke", json={"data": SETOSA})
    assert r.status_code == 503
    assert "md5" in r.json()["error"]["message"]


def test_unknown_routes_and_methods_use_the_same_shape(client: TestClient[Any]) -> None:
    for r in (client.get("/v1/nothing"), client.put("/v1/models/iris")):
        assert r.status_code in (404, 405)
        assert set(r.json()["error"]) == {"code", "message", "detail"}
    # Under /v2 the protocol's own shape (tests/test_v2_repository.py has the tritonclient side).
    r = client.get("/v2/nothing")
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found", "code": "not_found"}


@pytest.mark.parametrize("status", sorted(CASES))
def test_every_failed_call_is_recorded_with_its_status(
    client: TestClient[Any], status: int
) -> None:
    code, send = CASES[status]
    assert send(client).status_code == status
    job = client.get("/v1/jobs", headers=bearer("reader")).json()["jobs"][0]
    assert (job["status"], job["http_status"], job["error"]) == ("failed", status, code)


def test_an_unexpected_model_error_is_a_recorded_500(client: TestClient[Any]) -> None:
    r = post(client, "/v1/models/exploding/invoke", json={"data": SETOSA})
    assert r.status_code == 500
    assert "boom" not in r.text  # the server log has it, the caller does not
    job = client.get("/v1/jobs", headers=bearer("reader")).json()["jobs"][0]
    assert (job["model"], job["version"], job["status"], job["http_status"]) == (
        "exploding",
        1,
        "failed",
        500,
    )


def test_deeply_nested_json_is_a_400(faulty_registry: Registry, tmp_path: Path) -> None:
    app = create_app(faulty_registry, usage_path=tmp_path / "usage")  # the default body limit
    with TestClient(app=app) as c:
        r = c.post(
            "/v1/models/iris/invoke",
            content=b"[" * 20_000,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"] == {
            "code": "bad_request",
            "message": "invalid request: JSON nested too deeply",
            "detail": None,
        }
        job = c.get("/v1/jobs").json()["jobs"][0]
    assert (job["model"], job["http_status"]) == ("iris", 400)


def test_405_says_which_methods_are_allowed(client: TestClient[Any]) -> None:
    r = client.post("/v1/resolve/iris")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, OPTIONS"
    assert r.json()["error"]["code"] == "method_not_allowed"
