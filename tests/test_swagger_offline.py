"""Swagger UI at /schema/swagger works on an air-gapped host (issue 19, item 15).

A real `mreg serve` and a headless Chromium that cannot resolve any name but
loopback (`--host-resolver-rules`, background networking off): the page's
scripts and stylesheet come from the server itself (the swagger-ui-bundle-v2
package), every request the page makes stays on loopback, and the operations
list appears.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from registry import Registry
from tests.processes import ROOT, ServeProcess, serving
from tests.server_fixtures import LABELS
from tests.test_ui_browser import chromium, shot

pytest_plugins = ["tests.server_fixtures"]

# No name resolves but loopback's: a CDN script would fail to load, as on an air-gapped host.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path], session_env: None
) -> Iterator[ServeProcess]:
    reg = Registry.init(tmp_path_factory.mktemp("swagger") / "reg")
    reg.create_model("iris", is_public=True)
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS})
    with serving(reg.root, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT) as process:
        yield process


@pytest.fixture
def offline_browser(tmp_path: Path) -> Iterator[object]:
    logs = {"goog:loggingPrefs": {"performance": "ALL"}}
    with chromium(tmp_path / "chromium-profile", OFFLINE, capabilities=logs) as driver:
        yield driver


def requested_urls(driver: object) -> list[str]:
    """Every URL the page asked for (Chromium's network log)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):  # type: ignore[attr-defined]
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.mark.slow
def test_swagger_ui_renders_the_operations_offline(
    server: ServeProcess, offline_browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = offline_browser
    d.get(f"{server.url}/schema/swagger")  # type: ignore[attr-defined]
    operations = WebDriverWait(d, 60).until(  # type: ignore[arg-type]
        lambda _: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")  # type: ignore[attr-defined]
    )
    paths = {op.get_attribute("data-path") or op.text for op in operations}
    assert "/v1/models" in paths and "/v1/models/{model}/invoke" in paths, paths
    shot(d, "swagger")
    scripts = d.execute_script(  # type: ignore[attr-defined]
        "return [...document.querySelectorAll('script[src], link[href]')].map(e => e.src || e.href)"
    )
    assert scripts and all(s.startswith(f"{server.url}/schema/") for s in scripts), scripts
    urls = requested_urls(d)
    assert any(u.endswith("/swagger-ui-bundle.js") for u in urls), urls
    away = [u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")]
    away = [u for u in away if urlparse(u).hostname not in ("127.0.0.1", "localhost")]
    assert away == [], away
