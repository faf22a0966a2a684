"""DNS rebinding and cross-site posts against a real tokenless `mreg serve` (issue 18, item 8).

A web page on `evil.example` that rebinds its name to 127.0.0.1 makes the
browser send `Host: evil.example`: a loopback server without tokens refuses
it. A page may also post `text/plain` or a form to 127.0.0.1 without asking
(no CORS preflight): invoke and runs take only `application/json`, /v2 infer
JSON or the binary extension's bytes (tritonclient keeps working).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from registry import Registry
from tests.processes import ROOT, ServeProcess, serving
from tests.server_fixtures import LABELS, SETOSA, token_entries

pytest_plugins = ["tests.server_fixtures"]

ENV = {"PYTHONPATH": str(ROOT)}
BODY = json.dumps({"data": SETOSA})
V2_BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]}
)


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path], session_env: None
) -> Path:
    reg = Registry.init(tmp_path_factory.mktemp("rebinding") / "reg")
    reg.create_model("iris", is_public=True)
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS})
    return reg.root


@pytest.fixture(scope="module")
def tokenless(repo: Path) -> Iterator[ServeProcess]:
    with serving(repo, env=ENV, cwd=ROOT) as process:
        yield process


def test_a_rebound_host_name_is_refused(tokenless: ServeProcess) -> None:
    for host in ("evil.example", f"evil.example:{tokenless.port}", "127.0.0.1.evil.example"):
        r = tokenless.get("/v1/models", headers={"Host": host})
        assert r.status_code == 400, (host, r.text)
        assert "iris" not in r.text
        # mreg's one error shape, not Litestar's own `{"message": "invalid host header"}`.
        assert r.headers["content-type"] == "application/json"
        assert set(r.json()) == {"error"}
        assert set(r.json()["error"]) == {"code", "message", "detail"}
        assert r.json()["error"]["code"] == "bad_request"
        assert "Host" in r.json()["error"]["message"]
        invoked = tokenless.post(
            "/v1/models/iris/invoke",
            content=BODY,
            headers={"Host": host, "Content-Type": "application/json"},
        )
        assert invoked.status_code == 400
        assert invoked.json()["error"]["code"] == "bad_request"
    for host in (
        f"127.0.0.1:{tokenless.port}",
        f"localhost:{tokenless.port}",
        "localhost",
        f"app.localhost:{tokenless.port}",
    ):
        r = tokenless.get("/v1/models", headers={"Host": host})
        assert r.status_code == 200, (host, r.text)
        assert [m["name"] for m in r.json()["models"]] == ["iris"]


@pytest.mark.parametrize("path", ["/v1/models/iris/invoke", "/v1/runs"])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"]
)
def test_a_cross_site_post_cannot_invoke(
    tokenless: ServeProcess, path: str, content_type: str
) -> None:
    body = BODY if path.endswith("invoke") else json.dumps({"pipeline": "iris", "data": SETOSA})
    r = tokenless.post(path, content=body, headers={"Content-Type": content_type})
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    ok = tokenless.post(path, content=body, headers={"Content-Type": "application/json"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["outputs"][0]["label"] == "setosa"


def test_v2_infer_takes_json_or_binary_never_text(tokenless: ServeProcess) -> None:
    path = "/v2/models/iris/infer"
    refused = tokenless.post(path, content=V2_BODY, headers={"Content-Type": "text/plain"})
    assert refused.status_code == 415, refused.text
    assert refused.json()["code"] == "unsupported_media_type"  # the V2 shape
    for headers in ({"Content-Type": "application/json"}, {}):
        r = httpx.post(f"{tokenless.url}{path}", content=V2_BODY, headers=headers, timeout=30)
        assert r.status_code == 200, (headers, r.text)
    # NVIDIA's client, binary tensors (its default) and JSON, as it sends them.
    client = triton.InferenceServerClient(url=f"127.0.0.1:{tokenless.port}")
    try:
        for binary in (True, False):
            tensor = triton.InferInput("input", [1, 4], "FP32")
            tensor.set_data_from_numpy(np.asarray([SETOSA], dtype=np.float32), binary_data=binary)
            result = client.infer("iris", [tensor])
            assert result.as_numpy("label").tolist() == [b"setosa"]
    finally:
        client.close()


def test_with_tokens_any_host_is_answered(repo: Path, tmp_path: Path) -> None:
    env = {**ENV, "MREG_TOKENS": json.dumps(token_entries())}
    with serving(repo, env=env, cwd=ROOT) as process:
        r = process.get("/v1/models", headers={"Host": "models.internal.example"})
        assert r.status_code == 200, r.text
        assert [m["name"] for m in r.json()["models"]] == ["iris"]
