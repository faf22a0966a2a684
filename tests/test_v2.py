"""The Open Inference Protocol (KServe V2 REST) routes, in process (the real client: test_v2_e2e.py).

The `served` registry (tests/server_fixtures.py): iris (private) v1 skops with
labels (prod -> v1, champion -> prod), v2 another skops, v3 untrained (next ->
v3); public-iris (public) v1; raw-iris v1 without labels; fmt-onnx v1.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from server.runtime.auth import parse_tokens
from tests.server_fixtures import LABELS, SETOSA, VIRGINICA, bearer, token_entries

pytest_plugins = ["tests.server_fixtures"]

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def client(served_registry: Registry, tmp_path: Path) -> Iterator[TestClient[Any]]:
    tokens = parse_tokens(token_entries(), "test")
    app = create_app(served_registry, tokens=tokens, usage_path=tmp_path / "u")
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


def tensor(rows: list[list[float]], name: str = "input") -> dict[str, Any]:
    return {
        "name": name,
        "shape": [len(rows), len(rows[0])],
        "datatype": "FP32",
        "data": [x for row in rows for x in row],
    }


def infer(
    client: TestClient[Any], path: str, body: Any, who: str | None = "invoker", **kwargs: Any
) -> Any:
    headers = {**(bearer(who) if who else {}), **kwargs.pop("headers", {})}
    return client.post(f"/v2/models/{path}/infer", json=body, headers=headers, **kwargs)


def vid(registry: Registry, model: str, n: int) -> str:
    return registry.snapshot("HEAD").version(model, n).id


def test_health_and_server_metadata(client: TestClient[Any]) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "mreg"
    assert meta["extensions"] == ["binary_tensor_data"]


def test_model_metadata_comes_from_the_manifests(
    client: TestClient[Any], served_registry: Registry
) -> None:
    r = client.get("/v2/models/iris:prod", headers=bearer("reader"))
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["name"] == "iris"
    assert meta["versions"] == ["1", "2"]  # v3 is untrained
    assert meta["platform"] == "sklearn_skops"
    assert meta["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "confidence", "datatype": "FP64", "shape": [-1]},
    ]
    assert meta["parameters"]["version"] == "1"
    assert meta["parameters"]["model_id"] == vid(served_registry, "iris", 1)
    latest = client.get("/v2/models/iris", headers=bearer("reader")).json()
    assert latest["parameters"]["version"] == "2"
    raw = client.get("/v2/models/raw-iris/versions/1", headers=bearer("reader")).json()
    assert raw["outputs"] == [{"name": "output", "datatype": "FP64", "shape": [-1]}]
    assert client.get("/v2/models/iris/versions/2/ready", headers=bearer("reader")).json() == {
        "name": "iris",
        "version": "2",
        "ready": True,
    }


def test_input_metadata_reads_feature_names_and_the_schema(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris", is_public=True)
    schema = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
    reg.register("iris", model_files["skops"], input_info={"schema": schema})
    reg.register("iris", model_files["skops"], input_info={"feature_names": FEATURES})
    app = create_app(reg, usage_path=tmp_path / "u")
    with TestClient(app=app) as c:
        for n in (1, 2):
            meta = c.get(f"/v2/models/iris/versions/{n}").json()
            assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
        assert c.get("/v2/models/iris/versions/2").json()["parameters"]["feature_names"] == FEATURES


@pytest.mark.parametrize(
    ("path", "version"),
    [
        ("iris", 2),
        ("iris:latest", 2),
        ("iris:prod", 1),
        ("iris:champion", 1),
        ("iris:v2", 2),
        ("iris/versions/1", 1),
        ("iris/versions/v1", 1),
        ("iris/versions/prod", 1),
        ("{id}", 1),
        ("iris/versions/{id}", 1),
    ],
)
def test_infer_names_the_version_it_used(
    client: TestClient[Any], served_registry: Registry, path: str, version: int
) -> None:
    path = path.format(id=vid(served_registry, "iris", 1))
    r = infer(client, path, {"id": "req-1", "inputs": [tensor([SETOSA, VIRGINICA])]})
    assert r.status_code == 200, r.text
    body = r.json()
    model_id = vid(served_registry, "iris", version)
    assert body["model_name"] == "iris"
    assert body["model_version"] == str(version)
    assert body["id"] == "req-1"
    assert body["parameters"]["model_id"] == model_id == r.headers["x-mreg-model-id"]
    label, confidence = body["outputs"]
    assert label == {"name": "label", "datatype": "BYTES", "shape": [2], "data": LABELS[::2]}
    assert confidence["name"] == "confidence" and confidence["shape"] == [2]
    assert all(0.5 < p <= 1.0 for p in confidence["data"])


def test_infer_is_an_invocation_like_v1(client: TestClient[Any]) -> None:
    """The same usage records as POST /v1/.../invoke: the ref asked for, who, the version."""
    assert infer(client, "iris:prod", {"inputs": [tensor([SETOSA])]}).status_code == 200
    assert infer(client, "iris/versions/2", {"inputs": [tensor([SETOSA])]}).status_code == 200
    jobs = client.get("/v1/jobs", headers=bearer("reader")).json()["jobs"]
    assert [(j["ref"], j["version"], j["who"]) for j in jobs] == [
        ("iris:v2", 2, "invoker"),
        ("iris:prod", 1, "invoker"),
    ]


def test_one_input_per_feature(client: TestClient[Any]) -> None:
    columns = [
        {"name": name, "shape": [2, 1], "datatype": "FP64", "data": [SETOSA[i], VIRGINICA[i]]}
        for i, name in enumerate(FEATURES)
    ]
    # The served iris has no feature_names: the model says which names it takes.
    r = infer(client, "iris", {"inputs": columns})
    assert r.status_code == 422
    assert "one per feature of iris (no feature_names in its input_info)" in r.json()["error"]


def test_one_input_per_feature_in_manifest_order(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    reg = Registry.init(tmp_path / "reg")
    reg.create_model("iris", is_public=True)
    reg.register(
        "iris",
        model_files["skops"],
        input_info={"feature_names": FEATURES},
        output_info={"labels": LABELS},
    )
    columns = [
        {"name": name, "shape": [2], "datatype": "FP32", "data": [SETOSA[i], VIRGINICA[i]]}
        for i, name in enumerate(FEATURES)
    ]
    app = create_app(reg, usage_path=tmp_path / "u")
    with TestClient(app=app) as c:
        r = c.post("/v2/models/iris/infer", json={"inputs": columns[::-1]})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == ["setosa", "virginica"]
        r = c.post("/v2/models/iris/infer", json={"inputs": columns[:3]})
        assert r.status_code == 422
        assert r.json()["error"].startswith(
            "several inputs must be one per feature of iris (sepal_length, sepal_width,"
        )


def test_raw_outputs_and_requested_outputs(client: TestClient[Any]) -> None:
    r = infer(client, "raw-iris", {"inputs": [tensor([SETOSA, VIRGINICA])]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == [
        {"name": "output", "datatype": "INT64", "shape": [2], "data": [0, 2]}
    ]
    r = infer(client, "iris", {"inputs": [tensor([SETOSA])], "outputs": [{"name": "label"}]})
    assert [o["name"] for o in r.json()["outputs"]] == ["label"]


def test_binary_tensor_data_both_ways(client: TestClient[Any]) -> None:
    rows = struct.pack("<8f", *SETOSA, *VIRGINICA)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(rows)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    r = client.post(
        "/v2/models/public-iris/infer",
        content=header + rows,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert r.status_code == 200, r.text
    size = int(r.headers["inference-header-content-length"])
    meta = json.loads(r.content[:size])
    label, confidence = meta["outputs"]
    assert label["parameters"]["binary_data_size"] == 4 + len("setosa") + 4 + len("virginica")
    blob = r.content[size:]
    assert blob[:14] == struct.pack("<I", 6) + b"setosa" + struct.pack("<I", 9)
    assert blob[14:23] == b"virginica"
    probabilities = struct.unpack(
        "<2d", blob[23 : 23 + confidence["parameters"]["binary_data_size"]]
    )
    assert all(0.5 < p <= 1.0 for p in probabilities)


def test_private_models_need_a_token(client: TestClient[Any]) -> None:
    body = {"inputs": [tensor([SETOSA])]}
    for path in ("iris", "iris:prod"):
        r = infer(client, path, body, who=None)
        assert r.status_code in (401, 404), r.text  # 404 once private is indistinguishable
        assert set(r.json()) == {"error", "code"}
        assert "outputs" not in r.text
        assert client.get(f"/v2/models/{path}").status_code in (401, 404)
    assert infer(client, "public-iris", body, who=None).status_code == 200
    assert infer(client, "iris", body, who="reader").status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("nope", {"inputs": [tensor([SETOSA])]}, 404, "model 'nope' not found"),
        ("iris:next", {"inputs": [tensor([SETOSA])]}, 409, "is untrained"),
        ("iris:prod/versions/2", {"inputs": [tensor([SETOSA])]}, 400, "already names a version"),
        ("iris:nope", {"inputs": [tensor([SETOSA])]}, 404, "pointer"),
        (
            "iris/versions/mv_zz",
            {"inputs": [tensor([SETOSA])]},
            404,
            "pointer iris:mv_zz not found",
        ),
        ("nope", {"inputs": []}, 404, "model 'nope' not found"),  # before the body is read
        ("iris", {"inputs": []}, 400, "the request has no inputs"),
        ("iris", {"data": [SETOSA]}, 400, "invalid inference request"),
        (
            "iris",
            {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32"}]},
            422,
            "input 'input' has no data",
        ),
        (
            "iris",
            {"inputs": [{**tensor([SETOSA]), "datatype": "FP8"}]},
            400,
            "unsupported datatype 'FP8'",
        ),
        (
            "iris",
            {"inputs": [{**tensor([SETOSA]), "shape": [2, 4]}]},
            422,
            "4 values do not fill shape [2, 4]",
        ),
        (
            "iris",
            {"inputs": [{**tensor([SETOSA]), "shape": [], "data": [1.0]}]},
            422,
            "shape needs a batch dimension",
        ),
        (
            "iris",
            {"inputs": [tensor([SETOSA]), tensor([SETOSA])]},
            422,
            "input 'input' is given twice",
        ),
        (
            "iris",
            {"inputs": [tensor([SETOSA])], "outputs": [{"name": "proba"}]},
            422,
            "unknown output 'proba': iris gives label, confidence",
        ),
        ("iris", {"inputs": [tensor([[1.0, 2.0]])]}, 422, "the model rejected the input"),
    ],
)
def test_errors_have_the_protocol_shape(
    client: TestClient[Any], path: str, body: Any, status: int, message: str
) -> None:
    r = infer(client, path, body)
    assert r.status_code == status, r.text
    error = r.json()
    assert set(error) == {"error", "code"}
    assert isinstance(error["error"], str) and message in error["error"]


def test_the_body_is_read_as_its_schema_says(client: TestClient[Any]) -> None:
    """JSON's 4.0 is a whole number; a parameter of the wrong type is a bad request."""
    whole = {**tensor([SETOSA]), "shape": [1.0, 4.0]}
    r = infer(client, "iris", {"inputs": [whole], "id": None, "parameters": None})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == ["setosa"]
    for body in (
        {"inputs": [{**tensor([SETOSA]), "shape": [1.5, 4]}]},
        {"inputs": [tensor([SETOSA])], "parameters": {"binary_data_output": "yes"}},
        {"inputs": [{**tensor([SETOSA]), "parameters": {"binary_data_size": -1}}]},
    ):
        r = infer(client, "iris", body)
        assert r.status_code == 400, body
        assert r.json()["error"].startswith("invalid inference request: "), r.text


def test_a_body_that_is_not_json_is_400(client: TestClient[Any]) -> None:
    r = client.post("/v2/models/iris/infer", content=b"{not json", headers=bearer("invoker"))
    assert r.status_code == 400
    assert r.json()["error"].startswith("invalid inference request")
    r = client.post(
        "/v2/models/iris/infer",
        content=b"{}",
        headers={**bearer("invoker"), "Inference-Header-Content-Length": "99"},
    )
    assert r.status_code == 400
    assert r.json() == {
        "error": "invalid Inference-Header-Content-Length: '99'",
        "code": "bad_request",
    }


def test_binary_bytes_that_are_not_text_are_400(client: TestClient[Any]) -> None:
    raw = struct.pack("<I", 2) + b"\xff\xfe"
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    r = client.post(
        "/v2/models/public-iris/infer",
        content=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert r.status_code == 422
    assert r.json()["error"] == "input 'input': BYTES values must be UTF-8 text"


def test_the_v2_routes_are_in_the_openapi_schema(client: TestClient[Any]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert {
        "/v2/health/live",
        "/v2/models/{name}",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    } <= set(paths)


def test_the_openapi_schema_documents_the_v2_shapes(client: TestClient[Any]) -> None:
    """What schemathesis checks against (tests/test_openapi.py): the V2 error shape, the body."""
    schema = client.get("/schema/openapi.json").json()
    components = schema["components"]["schemas"]
    infer_op = schema["paths"]["/v2/models/{name}/versions/{version}/infer"]["post"]
    for status in ("400", "404", "422"):
        ref = infer_op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert sorted(components[ref.split("/")[-1]]["required"]) == ["code", "error"]
    body = infer_op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["inputs"] and body["properties"]["inputs"]["minItems"] == 1
    assert set(infer_op["responses"]["200"]["content"]) == {
        "application/json",
        "application/octet-stream",
    }
    params = {p["name"]: p["schema"]["pattern"] for p in infer_op["parameters"]}
    assert "mv_" in params["name"] and params["version"]
    r = infer(client, "iris:prod/versions/2", {"inputs": [tensor([SETOSA])]})
    assert r.status_code == 400  # outside the documented pattern of {name}: said plainly
    assert "already names a version" in r.json()["error"]
