"""`/metrics`: prometheus_client's exposition, parsed by prometheus_client's parser; private labels.

The `served` registry (tests/server_fixtures.py): iris is private,
public-iris is public; tokens reader (read) and invoker (invoke).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from registry import Registry
from server import create_app
from server.runtime.auth import parse_tokens
from tests.server_fixtures import SETOSA, bearer, metric_samples, token_entries

pytest_plugins = ["tests.server_fixtures"]

FAMILIES = {
    "mreg_http_requests": "counter",
    "mreg_http_request_duration_seconds": "histogram",
    "mreg_invocations": "counter",
    "mreg_model_load_failures": "counter",
    "mreg_reloads": "counter",
    "mreg_reload_failures": "counter",
    "mreg_usage_dropped": "counter",
    "mreg_models_loaded": "gauge",
    "mreg_revision_info": "gauge",
    "mreg_revision_loaded_timestamp_seconds": "gauge",
}


@pytest.fixture
def client(served_registry: Registry, tmp_path: Path) -> Iterator[TestClient[Any]]:
    tokens = parse_tokens(token_entries(), "test")
    app = create_app(served_registry, tokens=tokens, usage_path=tmp_path / "u")
    with TestClient(app=app) as c:
        yield c


def invoke(client: TestClient[Any], model: str, who: str | None = None) -> None:
    headers = bearer(who) if who else {}
    r = client.post(f"/v1/models/{model}/invoke", json={"data": SETOSA}, headers=headers)
    assert r.status_code == 200, r.text


def test_every_family_parses_with_its_type(
    client: TestClient[Any], served_registry: Registry
) -> None:
    invoke(client, "public-iris")
    invoke(client, "public-iris")
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f.type for f in text_string_to_metric_families(r.text)}
    assert families == FAMILIES
    samples = metric_samples(r.text)
    public = served_registry.snapshot("HEAD").version("public-iris", 1)
    key = (("model", "public-iris"), ("model_id", public.id), ("version", "1"))
    assert samples[("mreg_invocations_total", key)] == 2
    route = ("route", "/v1/models/{model}/invoke")
    requests = (("method", "POST"), route, ("status", "200"))
    assert samples[("mreg_http_requests_total", requests)] == 2
    assert samples[("mreg_http_request_duration_seconds_count", (route,))] == 2
    assert samples[("mreg_models_loaded", ())] == 1
    assert samples[("mreg_usage_dropped_total", ())] == 0
    revision = served_registry.snapshot("HEAD").revision
    assert samples[("mreg_revision_info", (("ref", "HEAD"), ("revision", revision)))] == 1


def test_dropped_usage_is_read_at_scrape_time(client: TestClient[Any]) -> None:
    server = client.app.state.runtime
    server.usage.dropped = 7  # what the usage store counts when it cannot keep up
    samples = metric_samples(client.get("/metrics").text)
    assert samples[("mreg_usage_dropped_total", ())] == 7


def test_private_models_are_not_named_to_anonymous_scrapes(
    client: TestClient[Any], served_registry: Registry
) -> None:
    private = served_registry.snapshot("HEAD").version("iris", 2).id
    invoke(client, "iris", who="invoker")
    invoke(client, "public-iris")
    v2 = client.post(
        "/v2/models/iris:prod/infer",
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]},
        headers=bearer("invoker"),
    )
    assert v2.status_code == 200, v2.text

    anonymous = client.get("/metrics").text
    models = {
        s.labels["model"]
        for f in text_string_to_metric_families(anonymous)
        for s in f.samples
        if "model" in s.labels
    }
    assert models == {"public-iris"}
    assert private not in anonymous
    assert '"iris' not in anonymous  # no label value starts with the private name

    for who in ("reader", "invoker"):
        samples = metric_samples(client.get("/metrics", headers=bearer(who)).text)
        key = (("model", "iris"), ("model_id", private), ("version", "2"))
        assert samples[("mreg_invocations_total", key)] == 1
    route = (("method", "POST"), ("route", "/v2/models/{name}/infer"), ("status", "200"))
    assert metric_samples(anonymous)[("mreg_http_requests_total", route)] == 1


def test_a_bad_token_on_a_scrape_is_401(client: TestClient[Any]) -> None:
    r = client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_without_tokens_every_series_is_shown(served_registry: Registry, tmp_path: Path) -> None:
    with TestClient(app=create_app(served_registry, usage_path=tmp_path / "u")) as c:
        invoke(c, "iris")
        assert any(
            s.labels.get("model") == "iris"
            for f in text_string_to_metric_families(c.get("/metrics").text)
            for s in f.samples
        )


def test_each_app_has_its_own_registry(served_registry: Registry, tmp_path: Path) -> None:
    apps = [create_app(served_registry, usage_path=tmp_path / f"u{i}") for i in range(2)]
    with TestClient(app=apps[0]) as first, TestClient(app=apps[1]) as second:
        invoke(first, "public-iris")
        invoke(first, "public-iris")
        invoke(second, "public-iris")
        counts = [
            sum(
                v
                for (name, _), v in metric_samples(c.get("/metrics").text).items()
                if name == "mreg_invocations_total"
            )
            for c in (first, second)
        ]
        assert counts == [2, 1]
