"""Attacks of issue 18 (items 5-7) against the server: each test performs one and shows it fails.

The registry: `iris` (public) with v1 whose `input_info.example` is a shell
injection, v2, and v3 that was public at an older commit and is private now,
pointed at by id (`prod -> mv_...`); `secret` (a private model, v1).
Tokens are configured, so a caller without one is anonymous.
"""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from tests.server_fixtures import LABELS, SETOSA, bearer, metric_samples, token_entries

pytest_plugins = ["tests.server_fixtures"]

INJECTION = "'$(touch x)'"
MISSING_ID = "mv_00000000000000ff"


@pytest.fixture(scope="module")
def hardening_registry(
    tmp_path_factory: pytest.TempPathFactory,
    model_files: dict[str, Path],
    other_model_file: Path,
    session_env: None,
) -> dict[str, Any]:
    reg = Registry.init(tmp_path_factory.mktemp("hardening") / "reg")
    out = {"labels": LABELS}
    reg.create_model("iris", is_public=True)
    example = {"example": [INJECTION, "; touch y", '"$(touch z)"', "`touch w`"]}
    reg.register("iris", model_files["skops"], output_info=out, input_info=example)
    reg.register("iris", other_model_file, output_info=out)
    v3 = reg.register("iris", model_files["skops"], output_info=out).value
    older = reg.point("iris:prod", v3.id).commit
    reg.update_version("iris:v3", visibility="private")
    secret = reg.create_model("secret") and reg.register("secret", model_files["skops"]).value
    return {"registry": reg, "v3": v3.id, "older": older, "secret_id": secret.id}


@pytest.fixture
def client(hardening_registry: dict[str, Any], tmp_path: Path) -> Iterator[TestClient[Any]]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump(token_entries()))
    app = create_app(hardening_registry["registry"], tokens=tokens, usage_path=tmp_path / "u")
    with TestClient(app=app) as c:
        yield c


# -- item 5: the copy-curl line ------------------------------------------------------------


def test_the_copied_curl_line_runs_no_command_from_the_example(
    client: TestClient[Any], tmp_path: Path
) -> None:
    paste = tmp_path / "paste"
    paste.mkdir()
    # The model page's curl line is for latest; the injection is in v1, so read the line
    # from the page at v1's commit (tag iris@v1), where v1 is latest.
    first = client.get("/ui/models/iris?rev=iris@v1", headers=bearer("reader"))
    assert first.status_code == 200, first.text
    found = re.search(r'<textarea id="curl"[^>]*>(.*?)</textarea>', first.text, re.S)
    assert found is not None
    curl = html.unescape(found.group(1))
    assert "touch x" in curl  # the example is in the line
    assert subprocess.run(["bash", "-n", "-c", curl], check=False).returncode == 0
    # Paste it into bash, with curl a function that prints its arguments one a line.
    script = 'curl() { printf "%s\\n" "$@"; }\n' + curl + "\n"
    ran = subprocess.run(
        ["bash", "-c", script], cwd=paste, capture_output=True, text=True, check=True
    )
    assert list(paste.iterdir()) == []  # no x, y, z or w
    args = ran.stdout.splitlines()
    body = args[args.index("-d") + 1]
    assert yaml.safe_load(body) == {"data": [INJECTION, "; touch y", '"$(touch z)"', "`touch w`"]}


# -- item 6: private versions ---------------------------------------------------------------


def test_pointers_do_not_show_the_id_of_a_private_version(
    client: TestClient[Any], hardening_registry: dict[str, Any]
) -> None:
    v3 = hardening_registry["v3"]
    for path in ("/v1/pointers", "/v1/models/iris", "/v1/models/iris/pointers", "/ui/models/iris"):
        anonymous = client.get(path)
        assert anonymous.status_code == 200, (path, anonymous.text)
        assert v3 not in anonymous.text, path
    pointers = client.get("/v1/models/iris/pointers").json()["pointers"]
    assert [(p["tag"], p["target"], p["resolves_to"]) for p in pointers] == [("prod", None, None)]
    # A reader sees where it points.
    reader = client.get("/v1/models/iris/pointers", headers=bearer("reader")).json()
    assert reader["pointers"][0]["target"] == v3
    assert reader["pointers"][0]["resolves_to"] == {"version": 3, "id": v3}


def test_metrics_do_not_label_private_versions_for_anonymous_scrapers(
    client: TestClient[Any], hardening_registry: dict[str, Any]
) -> None:
    for query in ("version=3", "version=2"):
        r = client.post(f"/v1/models/iris/invoke?{query}", json={"data": SETOSA}, **_reader())
        assert r.status_code == 200, r.text
    r = client.post("/v1/models/secret/invoke", json={"data": SETOSA}, **_reader())
    assert r.status_code == 200, r.text
    anonymous = client.get("/metrics").text
    assert hardening_registry["v3"] not in anonymous
    assert hardening_registry["secret_id"] not in anonymous
    assert "secret" not in anonymous
    invocations = {
        dict(labels)["version"]
        for (name, labels), _ in metric_samples(anonymous).items()
        if name == "mreg_invocations_total"
    }
    assert invocations == {"2"}
    reader = client.get("/metrics", headers=bearer("reader")).text
    assert hardening_registry["v3"] in reader and hardening_registry["secret_id"] in reader


def _reader() -> dict[str, Any]:
    return {"headers": bearer("invoker")}


def test_a_private_version_page_is_missing_at_an_older_revision_too(
    client: TestClient[Any], hardening_registry: dict[str, Any]
) -> None:
    older = hardening_registry["older"]
    v3 = hardening_registry["v3"]
    hidden = client.get(f"/ui/models/iris/versions/3?rev={older}")
    missing = client.get(f"/ui/models/iris/versions/9?rev={older}")
    assert hidden.status_code == missing.status_code == 404
    assert v3 not in hidden.text
    assert hidden.text.replace("v3", "v9").replace("versions/3", "versions/9") == missing.text
    model = client.get(f"/ui/models/iris?rev={older}")
    assert model.status_code == 200
    assert v3 not in model.text
    assert "/versions/3" not in model.text  # not listed (a pointer to it says "not found")
    assert client.get(f"/ui/models/iris/versions/3?rev={older}", **_reader()).status_code == 200


def test_the_diff_does_not_list_a_private_version(
    client: TestClient[Any], hardening_registry: dict[str, Any]
) -> None:
    v3 = hardening_registry["v3"]
    page = client.get("/ui/diff?base=iris@v2&head=HEAD")
    assert page.status_code == 200
    assert v3 not in page.text
    assert "iris:v3" not in page.text
    reader = client.get("/ui/diff?base=iris@v2&head=HEAD", headers=bearer("reader"))
    assert v3 in reader.text and "iris:v3" in reader.text


@pytest.mark.parametrize("path", ["/v2/models/{id}", "/v2/models/{id}/ready"])
@pytest.mark.parametrize("hidden", ["v3", "secret_id"])
def test_v2_a_private_version_id_answers_like_a_missing_one(
    client: TestClient[Any], hardening_registry: dict[str, Any], path: str, hidden: str
) -> None:
    hidden_id = hardening_registry[hidden]
    answer = client.get(path.format(id=hidden_id))
    missing = client.get(path.format(id=MISSING_ID))
    assert answer.status_code == missing.status_code == 404
    assert "secret" not in answer.text
    assert answer.content.replace(hidden_id.encode(), MISSING_ID.encode()) == missing.content
    infer = client.post(
        f"/v2/models/{hidden_id}/infer",
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]},
    )
    assert infer.status_code == 404 and "secret" not in infer.text
    assert client.get(path.format(id=hidden_id), headers=bearer("reader")).status_code == 200


# -- item 7: 500s where 400/422 is promised --------------------------------------------------


def _tensor(shape: list[int], data: list[Any], datatype: str = "FP32") -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_tensor([9223372036854775807, 0], []), "too large"),
        (_tensor([1] * 100, [1.0]), "100 dimensions"),
        (_tensor([1, 4], [500, 1, 1, 1], "INT8"), "not INT8"),
    ],
)
def test_v2_tensors_that_do_not_fit_are_422(
    client: TestClient[Any], body: dict[str, Any], says: str
) -> None:
    r = client.post("/v2/models/iris/infer", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert says in r.json()["error"]


def test_v2_json_nested_too_deeply_is_a_400_in_the_v2_shape(client: TestClient[Any]) -> None:
    deep = '{"inputs": [{"name": "input", "shape": [1], "datatype": "FP32", "data": '
    deep += "[" * 5000 + "]" * 5000 + "}]}"
    r = client.post(
        "/v2/models/iris/infer", content=deep, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "invalid request: JSON nested too deeply", "code": "bad_request"}


@pytest.mark.parametrize("path", ["/v1/models/iris", "/v1/models/iris/versions/1"])
def test_a_write_of_metadata_nested_300_deep_is_refused(
    client: TestClient[Any], hardening_registry: dict[str, Any], path: str
) -> None:
    reg = hardening_registry["registry"]
    before = reg.snapshot("HEAD").revision
    metadata: dict[str, Any] = {}
    inner = metadata
    for _ in range(300):
        inner["a"] = {}
        inner = inner["a"]
    r = client.patch(path, json={"metadata": metadata}, headers=bearer("admin"))
    assert r.status_code == 400, r.text
    assert "nested deeper than 64 levels" in r.json()["error"]["message"]
    assert reg.snapshot("HEAD").revision == before
