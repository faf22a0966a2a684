"""The web page as a phone and a pasted curl line meet it (issue 19, item 14), against a real
`mreg serve` of the project's example registry (wine private, iris:prod moved, as in
test_ui_browser.py).

At 390 px (a phone, emulated in headless Chromium) no page is wider than the
screen; the copied curl line answers 200 for iris (`input_info.feature_names`)
and for wine (no `input_info`: the artifact's `n_features_in_`); the diff
page has the served-revision banner; fields have human labels.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry import Registry
from tests.processes import ROOT, ServeProcess, serving
from tests.server_fixtures import bearer, token_entries, token_secret
from tests.test_ui_browser import chromium, shot

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
TOKEN = "invoker"  # reads private models and invokes them


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    clone = tmp_path_factory.mktemp("phone") / "mreg"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    reg = Registry(clone)
    reg.update_model("wine", is_public=False)
    reg.point("iris:prod", "v3")
    reg.pull()
    return reg


@pytest.fixture(scope="module")
def server(example: Registry) -> Iterator[ServeProcess]:
    env = {"MREG_TOKENS": json.dumps(token_entries())}
    with serving(example.root, env=env, timeout=120) as process:
        yield process


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "chromium-profile") as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        yield driver


def page(server: ServeProcess, path: str) -> str:
    r = httpx.get(f"{server.url}{path}", headers=bearer(TOKEN), timeout=60)
    assert r.status_code == 200, r.text
    return r.text


def copied_curl(server: ServeProcess, model: str) -> str:
    found = re.search(
        r'<textarea id="curl"[^>]*>(.*?)</textarea>', page(server, f"/ui/models/{model}"), re.S
    )
    assert found, model
    return html.unescape(found.group(1))


@pytest.mark.slow
def test_every_page_fits_a_phone(server: ServeProcess, phone: object, example: Registry) -> None:
    # The diff from the first commit that holds models: every table, the versions one widest.
    first = example.log()[-1].commit
    d = phone
    d.get(f"{server.url}/ui/")  # type: ignore[attr-defined]
    d.add_cookie({"name": "mreg_token", "value": token_secret(TOKEN), "path": "/ui"})  # type: ignore[attr-defined]
    widths = {}
    for name, path in {
        "models": "/ui/",
        "model": "/ui/models/iris",
        "model-wine": "/ui/models/wine",
        "version": "/ui/models/iris/versions/3",
        "diff": f"/ui/diff?base={first}~1&head=HEAD",
    }.items():
        d.get(f"{server.url}{path}")  # type: ignore[attr-defined]
        assert "mreg" in d.title  # type: ignore[attr-defined]
        widths[name] = d.execute_script("return document.documentElement.scrollWidth")  # type: ignore[attr-defined]
        shot(d, f"phone-{name}")
    assert widths == dict.fromkeys(widths, 390), widths
    # The Model Info card is on the screen, not cut off: its right edge is inside 390 px.
    d.get(f"{server.url}/ui/models/wine")  # type: ignore[attr-defined]
    right = d.execute_script(  # type: ignore[attr-defined]
        "return Math.max(...['model-info', 'curl', 'copy-curl'].map("
        "id => document.getElementById(id).getBoundingClientRect().right))"
    )
    assert 0 < right <= 390


@pytest.mark.parametrize("model", ["iris", "wine"])
def test_the_copied_curl_line_is_answered(server: ServeProcess, model: str) -> None:
    curl = copied_curl(server, model)
    env = {**os.environ, "MREG_TOKEN": token_secret(TOKEN)}
    answer = subprocess.run(
        ["bash", "-c", f"{curl} -o /dev/stderr -w '%{{http_code}}'"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert answer.stdout == "200", (curl, answer.stderr)
    body = json.loads(answer.stderr)
    assert body["model"] == model and len(body["outputs"]) == 1


def test_wine_without_input_info_gets_a_body_as_wide_as_its_artifact(
    server: ServeProcess, example: Registry
) -> None:
    wine = example.snapshot("HEAD").resolve("wine").version
    assert not wine.input_info  # nothing in the manifest says how wide an input is
    assert '{"data": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}' in (
        copied_curl(server, "wine")
    )
    form = re.search(
        r'<textarea name="body" id="try-body"[^>]*>(.*?)</textarea>',
        page(server, "/ui/models/wine/versions/1"),
        re.S,
    )
    assert form and len(json.loads(html.unescape(form.group(1)))["data"]) == 13


def test_diff_page_has_the_served_revision_banner(server: ServeProcess, example: Registry) -> None:
    text = page(server, "/ui/diff")
    banner = re.search(r'<div class="banner[^"]*" id="revision">(.*?)</div>', text, re.S)
    served = example.snapshot("HEAD").revision
    assert banner and "Served revision" in banner.group(1) and served[:10] in banner.group(1)


def test_fields_have_human_labels(server: ServeProcess) -> None:
    model = page(server, "/ui/models/iris")
    version = page(server, "/ui/models/iris/versions/3")
    labels = re.findall(r"<dt>([^<]+)</dt>", model) + re.findall(r"<dt>([^<]+)</dt>", version)
    assert "Created" in labels and "Last used" in labels and "Format" in labels, labels
    assert not [
        label
        for label in labels
        if "_" in label or (label != label.capitalize() and label not in ("MD5", "Model Id"))
    ], labels
    assert "<h2>Input</h2>" in version and "<h2>input_info</h2>" not in version
