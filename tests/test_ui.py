"""The web page's routes in-process: what each page lists, privacy exactly as the API, revisions.

The registry is `served_registry` (tests/server_fixtures.py) with tokens: only
`public-iris` is public. The browser test (test_ui_browser.py) clicks through
the same pages in Chromium.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from tests.server_fixtures import bearer, token_entries, token_secret

pytest_plugins = ["tests.server_fixtures"]


@pytest.fixture
def client(served_registry: Registry, tmp_path: Path) -> Iterator[TestClient[Any]]:
    app = create_app(served_registry, tokens=token_entries_list(), usage_path=tmp_path / "u")
    with TestClient(app=app) as c:
        yield c


def token_entries_list() -> Any:
    from server.runtime.auth import parse_tokens

    return parse_tokens(token_entries(), "test")


def listed(page: str) -> list[str]:
    return re.findall(r'<tr data-model="([^"]+)"', page)


def text_of(page: str, element_id: str) -> str:
    """The text inside the element with this id (tags stripped)."""
    match = re.search(
        rf'id="{element_id}"[^>]*>(.*?)</(?:section|div|dd|p|table|code|h1)>', page, re.S
    )
    assert match, f"no #{element_id}"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def test_root_redirects_to_the_page_and_ui_routes_stay_out_of_openapi(
    client: TestClient[Any],
) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (301, 302, 307) and r.headers["location"] == "/ui/"
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert paths and not [p for p in paths if p == "/" or p.startswith("/ui")]


def test_anonymous_list_shows_public_models_only(client: TestClient[Any]) -> None:
    r = client.get("/ui/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert listed(r.text) == ["public-iris"]
    assert "use a token" in text_of(r.text, "who")


@pytest.mark.parametrize("how", ["cookie", "header"])
def test_a_read_token_lists_private_models_ten_a_page(client: TestClient[Any], how: str) -> None:
    if how == "cookie":
        client.cookies.set("mreg_token", token_secret("reader"))
        headers = {}
    else:
        headers = bearer("reader")
    first = client.get("/ui/", headers=headers)
    second = client.get("/ui/?page=2", headers=headers)
    client.cookies.clear()
    api = client.get("/v1/models?limit=100", headers=bearer("reader")).json()["models"]
    assert listed(first.text) + listed(second.text) == [m["name"] for m in api]
    assert len(listed(first.text)) == 10 and len(listed(second.text)) == len(api) - 10
    assert "page 2 of 2" in text_of(second.text, "count")
    assert "reader" in text_of(first.text, "who")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "q=formats",
            ["fmt-h5", "fmt-joblib", "fmt-keras", "fmt-onnx", "fmt-pickle", "fmt-torchscript"],
        ),
        ("library=onnx", ["fmt-onnx"]),
        ("project=flowers", ["iris"]),
        ("archived=1", ["old"]),
        ("used=yes", []),
        ("q=no+labels&project=demo", ["raw-iris"]),
    ],
)
def test_filters_match_the_api(client: TestClient[Any], query: str, expected: list[str]) -> None:
    r = client.get(f"/ui/?{query}", headers=bearer("reader"))
    assert listed(r.text) == expected


def test_model_page_shows_model_info_versions_pointers_and_history(
    client: TestClient[Any], served_registry: Registry
) -> None:
    snap = served_registry.snapshot("HEAD")
    r = client.get("/ui/models/iris", headers=bearer("reader"))
    assert r.status_code == 200
    latest = snap.resolve("iris").version  # v2: v3 is untrained
    assert f'id="model-id" class="mono" readonly value="{latest.id}"' in r.text
    found = re.search(r'<textarea id="curl"[^>]*>(.*?)</textarea>', r.text, re.S)
    assert found
    curl = html.unescape(found.group(1))
    assert f"/v1/models/iris/invoke?modelId={latest.id}" in curl
    assert "Authorization: Bearer $MREG_TOKEN" in curl  # a private model needs a token
    assert re.findall(r'<tr data-version="(\d+)"', r.text) == ["3", "2", "1"]
    champion = re.search(r'<tr data-pointer="champion">(.*?)</tr>', r.text, re.S)
    assert champion and "iris:champion → iris:prod → iris:v1" in html.unescape(champion.group(1))
    history = re.search(
        r'<table class="list history" data-pointer="next">(.*?)</table>', r.text, re.S
    )
    assert history and "iris: point next -&gt; v3" in history.group(1)


def test_version_page_shows_infos_artifact_and_who_names_it(
    client: TestClient[Any], served_registry: Registry
) -> None:
    v1 = served_registry.snapshot("HEAD").version("iris", 1)
    assert v1.artifact is not None
    r = client.get("/ui/models/iris/versions/1", headers=bearer("reader"))
    assert r.status_code == 200
    assert text_of(r.text, "artifact-md5").strip() == v1.artifact.md5
    assert text_of(r.text, "artifact-format").strip() == "skops"
    named = text_of(r.text, "named-by")
    assert "prod" in named and "champion" in named and "next" not in named
    assert "setosa" in text_of(r.text, "output-info")
    assert f'data-url="/v1/models/iris/invoke?modelId={v1.id}"' in r.text
    untrained = client.get("/ui/models/iris/versions/3", headers=bearer("reader"))
    assert 'id="try-form"' not in untrained.text and "nothing to invoke" in untrained.text


@pytest.mark.parametrize(
    "path", ["/ui/models/{m}", "/ui/models/{m}/versions/1", "/ui/models/{m}?rev=HEAD~1"]
)
def test_a_private_model_without_a_read_token_is_a_missing_model(
    client: TestClient[Any], path: str
) -> None:
    private = client.get(path.format(m="iris"))
    missing = client.get(path.format(m="no-such-model"))
    assert private.status_code == missing.status_code == 404
    assert text_of(private.text, "error").replace("iris", "X") == text_of(
        missing.text, "error"
    ).replace("no-such-model", "X")
    assert client.get(path.format(m="iris"), headers=bearer("reader")).status_code == 200
    public = client.get(path.format(m="public-iris"))
    assert public.status_code == 200


def test_the_token_form_sets_and_forgets_an_httponly_cookie(client: TestClient[Any]) -> None:
    bad = client.post("/ui/token", data={"token": "nope", "next": "/ui/"})
    assert bad.status_code == 401 and "unknown token" in text_of(bad.text, "token-error")
    r = client.post(
        "/ui/token",
        data={"token": token_secret("reader"), "next": "/ui/models/iris"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/models/iris"
    cookie = r.headers["set-cookie"]
    assert "mreg_token=" in cookie and "HttpOnly" in cookie and "Path=/ui" in cookie
    assert "samesite=strict" in cookie.lower()
    assert client.get("/ui/models/iris").status_code == 200
    # The cookie is the page's, never the API's.
    assert client.get("/v1/models/iris").status_code in (401, 404)
    gone = client.post("/ui/token", data={"action": "forget"}, follow_redirects=False)
    assert gone.headers["location"] == "/ui/"
    client.cookies.clear()
    assert client.get("/ui/models/iris").status_code == 404
    # Another site's form cannot set the token.
    forged = client.post(
        "/ui/token",
        data={"token": token_secret("reader")},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    # Only pages of the UI are redirect targets.
    away = client.post(
        "/ui/token", data={"action": "forget", "next": "//evil.example/"}, follow_redirects=False
    )
    assert away.headers["location"] == "/ui/"


def test_an_unknown_token_is_the_apis_401_as_a_page(client: TestClient[Any]) -> None:
    client.cookies.set("mreg_token", "not-a-token")
    r = client.get("/ui/")
    client.cookies.clear()
    assert r.status_code == 401 and "unknown token" in text_of(r.text, "error")


def test_pages_at_another_revision(client: TestClient[Any], served_registry: Registry) -> None:
    first = next(
        e for e in served_registry.log("iris") if e.subject.startswith("iris: register v1")
    )
    r = client.get(f"/ui/models/iris?rev={first.commit}", headers=bearer("reader"))
    assert r.status_code == 200
    assert re.findall(r'<tr data-version="(\d+)"', r.text) == ["1"]
    assert "Viewing revision" in text_of(r.text, "revision")
    assert f"rev={first.commit}" in r.text  # links keep the revision
    listing = client.get(f"/ui/?rev={first.commit}", headers=bearer("reader"))
    assert listed(listing.text) == ["iris"]
    bad = client.get("/ui/?rev=no-such-branch")
    assert bad.status_code == 404 and "revision 'no-such-branch' not found" in text_of(
        bad.text, "error"
    )
    # The JSON API keeps its error shape.
    assert client.get("/v1/models/no-such-model").json()["error"]["code"] == "model_not_found"


def test_diff_page_hides_private_models_like_the_api(
    client: TestClient[Any], served_registry: Registry
) -> None:
    root = served_registry.log()[-1].commit
    anonymous = client.get(f"/ui/diff?base={root}&head=HEAD")
    reader = client.get(f"/ui/diff?base={root}&head=HEAD", headers=bearer("reader"))
    assert anonymous.status_code == reader.status_code == 200
    models = lambda page: re.findall(r"<tr><td><code>([a-z0-9.-]+)</code></td><td>added", page)  # noqa: E731
    assert models(anonymous.text) == ["public-iris"]
    assert "iris" in models(reader.text) and "fmt-onnx" in models(reader.text)
    assert "iris:prod" not in anonymous.text and "iris:prod" in reader.text
    default = client.get("/ui/diff", headers=bearer("reader"))
    assert "old" in text_of(default.text, "diff-models")  # the newest registry commit archived it


def test_metric_charts_plot_each_numeric_metric_across_versions() -> None:
    from registry import VersionManifest
    from server.ui.views import metric_charts

    def version(n: int, metrics: dict[str, Any]) -> VersionManifest:
        return VersionManifest(
            id=f"mv_{n:016x}",
            version=n,
            created_at="2026-11-24T05:00:00Z",  # type: ignore[arg-type]
            train_info={"metrics": metrics},
        )

    charts = metric_charts(
        [version(1, {"acc": 0.8, "note": "x"}), version(2, {}), version(3, {"acc": 0.9})]
    )
    assert [c.metric for c in charts] == ["acc"]  # text metrics are not plotted
    (chart,) = charts
    assert [(p.version, p.value) for p in chart.points] == [(1, 0.8), (3, 0.9)]
    low, high = chart.points
    assert low.x < high.x and low.y > high.y  # later to the right, higher up


def test_a_chart_of_one_value_has_one_tick_and_data_sizes_are_not_charted() -> None:
    from registry import VersionManifest
    from server.ui.views import metric_charts

    only = VersionManifest(
        id="mv_0000000000000001",
        version=1,
        created_at="2026-11-24T05:00:00Z",  # type: ignore[arg-type]
        train_info={"metrics": {"accuracy": 1.0, "rows": 178, "loss": 0.0}},
    )
    charts = metric_charts([only])
    assert [c.metric for c in charts] == ["accuracy", "loss"]  # rows is a data size, 0.0 a value
    for chart in charts:
        assert len(chart.ticks) == 1  # not the same value twice, at the top and the bottom
        (y, value), (point,) = chart.ticks[0], chart.points
        assert value == point.value and y == point.y == chart.height / 2
    two = metric_charts(
        [only, only.model_copy(update={"version": 2, "train_info": {"metrics": {"accuracy": 0.5}}})]
    )
    assert [v for _, v in two[0].ticks] == [1.0, 0.5]  # high, then low
