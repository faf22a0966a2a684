"""V2 over gRPC: `mreg serve --grpc-port` called by `tritonclient.grpc`, a real process.

The same runtime as REST: the answers of `/v2` REST, the same tokens (the
`authorization` metadata), usage records and metrics, and the repository
calls. The registry is tests/repository_registry.py's.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from registry import Registry
from tests.processes import MREG, free_port, serving
from tests.repository_registry import tokens_file
from tests.server_fixtures import SETOSA, VIRGINICA, bearer

pytest_plugins = ["tests.server_fixtures", "tests.repository_registry"]

pytestmark = pytest.mark.slow


def auth(who: str) -> dict[str, str]:
    return {"authorization": bearer(who)["Authorization"]}


class Servers:
    def __init__(self, http: str, grpc: str) -> None:
        self.http, self.grpc = http, grpc


@pytest.fixture(scope="module")
def servers(repo: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tokens = tokens_file(tmp_path_factory.mktemp("tokens"))
    grpc_port = free_port()
    args = ("--tokens", str(tokens), "--grpc-port", str(grpc_port))
    with serving(repo.root, *args, timeout=60) as process:
        yield Servers(process.url, f"127.0.0.1:{grpc_port}")


@pytest.fixture
def client(servers: Servers) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(url=servers.grpc)
    yield c
    c.close()


def fp32(rows: list[list[float]], name: str = "input") -> triton.InferInput:
    data = np.asarray(rows, dtype=np.float32)
    tensor = triton.InferInput(name, list(data.shape), "FP32")
    tensor.set_data_from_numpy(data)
    return tensor


def test_live_ready_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "mreg"
    assert client.is_model_ready("public-iris")
    assert client.is_model_ready("iris", model_version="1", headers=auth("reader"))
    meta = client.get_model_metadata("iris:prod", headers=auth("reader"), as_json=True)
    assert meta["name"] == "iris"
    assert meta["versions"] == ["1", "2"]
    assert meta["platform"] == "sklearn_skops"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "-1"]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "confidence"]


def test_infer_gives_what_rest_gives(
    client: triton.InferenceServerClient, servers: Servers
) -> None:
    result = client.infer("iris:prod", [fp32([SETOSA, VIRGINICA])], headers=auth("invoker"))
    labels = result.as_numpy("label").tolist()
    confidence = result.as_numpy("confidence")
    response = result.get_response(as_json=True)
    assert response["model_name"] == "iris"
    assert response["model_version"] == "1"
    rest = httpx.post(
        f"{servers.http}/v2/models/iris:prod/infer",
        json={
            "inputs": [
                {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": SETOSA + VIRGINICA}
            ]
        },
        headers=bearer("invoker"),
    ).json()
    assert [v.encode() for v in rest["outputs"][0]["data"]] == labels == [b"setosa", b"virginica"]
    assert confidence.tolist() == rest["outputs"][1]["data"]
    model_id = response["parameters"]["model_id"]["string_param"]
    assert model_id == rest["parameters"]["model_id"]
    # One output asked for, by version number:
    only = client.infer(
        "iris",
        [fp32([VIRGINICA])],
        model_version="2",
        outputs=[triton.InferRequestedOutput("label")],
        headers=auth("invoker"),
    )
    assert only.as_numpy("label").tolist() == [b"virginica"]
    assert only.as_numpy("confidence") is None
    assert only.get_response(as_json=True)["model_version"] == "2"


def test_tokens_and_usage_records(client: triton.InferenceServerClient, servers: Servers) -> None:
    with pytest.raises(InferenceServerException, match="not found") as hidden:
        client.infer("iris", [fp32([SETOSA])])  # private, no token: as if it did not exist
    assert hidden.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException, match="unknown token") as unknown:
        client.infer("public-iris", [fp32([SETOSA])], headers={"authorization": "Bearer nope"})
    assert unknown.value.status() == "StatusCode.UNAUTHENTICATED"
    with pytest.raises(InferenceServerException, match="lacks the 'invoke' scope") as denied:
        client.infer("iris", [fp32([SETOSA])], headers=auth("reader"))
    assert denied.value.status() == "StatusCode.PERMISSION_DENIED"
    result = client.infer("iris", [fp32([SETOSA])], request_id="grpc-1", headers=auth("invoker"))
    assert result.get_response(as_json=True)["id"] == "grpc-1"
    # The calls are in the usage store, with who made them, as REST's are.
    deadline = time.monotonic() + 30
    while True:
        jobs = httpx.get(f"{servers.http}/v1/jobs?limit=50", headers=bearer("reader")).json()
        mine = [j for j in jobs["jobs"] if j["who"] == "invoker" and j["model"] == "iris"]
        if any(j["status"] == "succeeded" for j in mine) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(j["status"] == "succeeded" and j["ref"] == "iris" for j in mine), jobs
    assert any(j["http_status"] == 403 for j in jobs["jobs"] if j["who"] == "reader")
    assert any(j["http_status"] == 401 for j in jobs["jobs"])
    metrics = httpx.get(f"{servers.http}/metrics", headers=bearer("reader")).text
    assert re.search(
        r'mreg_invocations_total\{model="iris",model_id="mv_\w+",version="2"\}', metrics
    )
    infer = 'method="GRPC",route="/inference.GRPCInferenceService/ModelInfer"'
    assert f'mreg_http_requests_total{{{infer},status="200"}}' in metrics
    assert f'mreg_http_requests_total{{{infer},status="403"}}' in metrics


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([[1.0, 2.0, 3.0]], "the model rejected the input"),
        (None, "several inputs must be one per feature"),
    ],
    ids=["wrong-width", "not-the-features"],
)
def test_a_bad_tensor_is_invalid_argument(
    client: triton.InferenceServerClient, inputs: list[list[float]] | None, message: str
) -> None:
    tensors = [fp32(inputs)] if inputs else [fp32([[1.0]], "a"), fp32([[2.0]], "b")]
    with pytest.raises(InferenceServerException, match=message) as bad:
        client.infer("public-iris", tensors)
    assert bad.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_data_that_does_not_fill_its_shape(client: triton.InferenceServerClient) -> None:
    tensor = fp32([SETOSA])
    tensor.set_shape([2, 4])  # one row of data for a shape of two
    with pytest.raises(InferenceServerException, match="do not fill shape") as bad:
        client.infer("public-iris", [tensor])
    assert bad.value.status() == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException, match="not found") as missing:
        client.infer("nope", [fp32([SETOSA])])
    assert missing.value.status() == "StatusCode.NOT_FOUND"


def test_repository_calls(client: triton.InferenceServerClient) -> None:
    admin = auth("admin")
    index = client.get_model_repository_index(headers=admin, as_json=True)["models"]
    assert {(m["name"], m["version"]) for m in index} == {
        ("iris", "1"),
        ("iris", "2"),
        ("public-iris", "1"),
    }
    client.load_model("iris:prod", headers=admin)
    ready = client.get_model_repository_index(headers=admin, as_json=True)["models"]
    assert ("iris", "1", "READY") in {(m["name"], m["version"], m["state"]) for m in ready}
    client.unload_model("iris", headers=admin)
    assert not client.is_model_ready("iris", headers=auth("reader"))
    with pytest.raises(InferenceServerException, match="is unloaded") as unloaded:
        client.infer("iris", [fp32([SETOSA])], headers=auth("invoker"))
    assert unloaded.value.status() == "StatusCode.FAILED_PRECONDITION"
    client.load_model("iris", headers=admin)
    assert client.is_model_ready("iris", headers=auth("reader"))
    with pytest.raises(InferenceServerException, match="'admin' scope") as denied:
        client.load_model("iris", headers=auth("invoker"))
    assert denied.value.status() == "StatusCode.PERMISSION_DENIED"
    with pytest.raises(InferenceServerException) as anonymous:
        client.get_model_repository_index()
    assert anonymous.value.status() == "StatusCode.UNAUTHENTICATED"


def test_grpc_port_mistakes_are_one_line(repo: Registry, servers: Servers) -> None:
    taken = servers.grpc.rsplit(":", 1)[1]
    for args, message in [
        (["--workers", "2"], "error: --grpc-port serves from one process: use it with --workers 1"),
        ([], f"error: --grpc-port {taken}: cannot listen on 127.0.0.1: Address already in use"),
    ]:
        r = subprocess.run(
            [*MREG, "--repo", str(repo.root), "serve", "--grpc-port", taken, *args],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 1
        assert r.stderr.strip() == message


def test_the_vendored_proto_speaks_tritons_wire_format() -> None:
    """Every message and field mreg serves has the number tritonclient's own proto gives it (the
    two modules also live in one process: mreg's messages are in a descriptor pool of their own).
    """
    from tritonclient.grpc import service_pb2 as theirs

    from server.protocols.grpc import grpc_predict_v2_pb2 as ours

    def fields(descriptor: object) -> dict[str, tuple[int, int]]:
        found = {}
        for field in descriptor.fields:  # type: ignore[attr-defined]
            found[field.name] = (field.number, field.type)
        for nested in descriptor.nested_types:  # type: ignore[attr-defined]
            for name, value in fields(nested).items():
                found[f"{nested.name}.{name}"] = value
        return found

    for name, message in ours.DESCRIPTOR.message_types_by_name.items():
        expected = fields(theirs.DESCRIPTOR.message_types_by_name[name])
        for field, number in fields(message).items():
            assert expected[field] == number, (name, field)
    service = ours.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    tritons = theirs.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in service.methods:
        assert tritons.methods_by_name[method.name].input_type.name == method.input_type.name
