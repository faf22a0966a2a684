"""The web page in a real headless Chromium (Selenium), against `mreg serve` on the example registry.

The browser comes from Debian's `chromium` and `chromium-driver` packages,
installed by the Makefile's `system-deps` target when missing; without them
the test fails (never skips). Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from tests.processes import ROOT, serving
from tests.server_fixtures import token_entries, token_secret

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
]


def browser_binaries() -> tuple[str, str]:
    """chromium and chromedriver; `make system-deps` installs them if missing, else the test fails."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        done = subprocess.run(
            ["make", "-s", "system-deps"], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            pytest.fail(f"make system-deps failed:\n{done.stdout}{done.stderr}")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromedriver are required (make system-deps installs them)")
    return chromium, driver


@pytest.fixture
def example(tmp_path: Path) -> tuple[Registry, dict[str, str]]:
    """A clone of the project's example registry, with two real changes on top.

    wine becomes private (only a read token shows it) and iris:prod moves
    v2 -> v3, so the pointer has history and the diff has something to show.
    """
    clone = tmp_path / "mreg"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    reg = Registry(clone)
    before = reg.snapshot("HEAD").revision
    assert before is not None
    reg.update_model("wine", is_public=False)
    reg.point("iris:prod", "v3")
    reg.pull()  # as `make serve` does: the artifacts from the committed DVC remote
    return reg, {"before": before}


@pytest.fixture
def server(example: tuple[Registry, dict[str, str]]) -> Iterator[str]:
    reg, _ = example
    env = {"MREG_TOKENS": json.dumps(token_entries())}
    with serving(reg.root, env=env, timeout=120) as process:
        yield process.url


@contextlib.contextmanager
def chromium(
    profile: Path, *flags: str, capabilities: dict[str, object] | None = None
) -> Iterator[Any]:
    """A headless Chromium driven by Selenium (CHROMIUM_FLAGS and `flags`), its profile in
    `profile`; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*CHROMIUM_FLAGS, *flags, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def shot(driver: object, name: str) -> Path:
    """A screenshot of the whole page (beyond the window) in tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"ui-{name}.png"
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]  # type: ignore[attr-defined]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    png = driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(png["data"]))
    return path


@pytest.mark.slow
def test_browse_copy_and_try_it_in_chromium(
    server: str, browser: object, example: tuple[Registry, dict[str, str]]
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    reg, marks = example
    snap = reg.snapshot("HEAD")
    d = browser
    # A page being replaced leaves stale elements behind: a wait tries again.
    wait = WebDriverWait(d, 30, ignored_exceptions=[StaleElementReferenceException])  # type: ignore[arg-type]

    def rows(table: str) -> list[str]:
        found = d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-model]")  # type: ignore[attr-defined]
        return [r.get_attribute("data-model") for r in found]

    # The list, anonymous: the private wine is not there; the archived model is behind a filter.
    d.get(f"{server}/")  # type: ignore[attr-defined]
    assert d.current_url.endswith("/ui/")  # type: ignore[attr-defined]
    assert rows("models") == ["diabetes", "digits-onnx", "digits-torch", "iris"]
    iris_row = d.find_element(By.CSS_SELECTOR, 'tr[data-model="iris"]')  # type: ignore[attr-defined]
    assert "v3" in iris_row.find_element(By.CSS_SELECTOR, ".latest").text
    assert "prod → v3" in iris_row.find_element(By.CSS_SELECTOR, ".pointers").text
    shot(d, "models")
    search = d.find_element(By.ID, "q")  # type: ignore[attr-defined]
    search.send_keys("digits")
    search.submit()
    wait.until(lambda _: rows("models") == ["digits-onnx", "digits-torch"])
    d.find_element(By.ID, "q").clear()  # type: ignore[attr-defined]
    d.find_element(By.ID, "archived").click()  # type: ignore[attr-defined]
    d.find_element(By.CSS_SELECTOR, "#filters button").click()  # type: ignore[attr-defined]
    wait.until(lambda _: rows("models") == ["iris-legacy"])

    # The model page: Model Info with the latest version's id, copied to the clipboard.
    d.get(f"{server}/ui/models/iris")  # type: ignore[attr-defined]
    latest = snap.resolve("iris")
    assert latest.version.version == 3
    model_id = d.find_element(By.ID, "model-id").get_attribute("value")  # type: ignore[attr-defined]
    assert model_id == latest.version.id
    curl = d.find_element(By.ID, "curl").get_attribute("value")  # type: ignore[attr-defined]
    assert f"{server}/v1/models/iris/invoke?modelId={model_id}" in curl
    d.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Browser.grantPermissions",
        {"origin": server, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    button = d.find_element(By.ID, "copy-model-id")  # type: ignore[attr-defined]
    button.click()
    wait.until(lambda _: button.get_attribute("data-copied") == model_id)
    clipboard = d.execute_async_script(  # type: ignore[attr-defined]
        "navigator.clipboard.readText().then(arguments[0], e => arguments[0]('error: ' + e))"
    )
    assert clipboard == model_id
    # The curl line, run as a user would paste it, names the pinned version.
    answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, check=True)
    assert json.loads(answer.stdout).get("model_id") == model_id, answer.stdout

    versions = d.find_elements(By.CSS_SELECTOR, "#versions tbody tr")  # type: ignore[attr-defined]
    assert [r.get_attribute("data-version") for r in versions] == ["3", "2", "1"]
    v2 = snap.version("iris", 2)
    assert v2.artifact is not None
    row2 = d.find_element(By.CSS_SELECTOR, '#versions tr[data-version="2"]')  # type: ignore[attr-defined]
    assert "skops" in row2.text and str(v2.train_info["metrics"]["accuracy"]) in row2.text
    chart = d.find_element(By.CSS_SELECTOR, '.chart[data-metric="accuracy"]')  # type: ignore[attr-defined]
    dots = chart.find_elements(By.CSS_SELECTOR, "circle")
    assert [c.get_attribute("data-version") for c in dots] == ["1", "2", "3"]
    stable = d.find_element(By.CSS_SELECTOR, '#pointers tr[data-pointer="stable"] .chain')  # type: ignore[attr-defined]
    assert stable.text == "iris:stable → iris:prod → iris:v3"
    history = d.find_elements(By.CSS_SELECTOR, '#history table[data-pointer="prod"] tbody tr')  # type: ignore[attr-defined]
    moves = [[td.text for td in r.find_elements(By.TAG_NAME, "td")][2:4] for r in history]
    assert moves == [["v2", "v3"], ["-", "v2"]]
    shot(d, "model")

    # A version's page: artifact, the pointers naming it, and the try-it form.
    d.get(f"{server}/ui/models/iris/versions/2")  # type: ignore[attr-defined]
    assert d.find_element(By.ID, "artifact-md5").text == v2.artifact.md5  # type: ignore[attr-defined]
    assert d.find_element(By.ID, "artifact-format").text == "skops"  # type: ignore[attr-defined]
    assert "sepal_length" in d.find_element(By.ID, "input-info").text  # type: ignore[attr-defined]
    named = d.find_element(By.ID, "named-by").text  # type: ignore[attr-defined]
    assert "prod" not in named  # prod moved to v3
    body = d.find_element(By.ID, "try-body")  # type: ignore[attr-defined]
    body.clear()
    body.send_keys('{"data": [5.1, 3.5, 1.4, 0.2]}')
    d.find_element(By.ID, "try-submit").click()  # type: ignore[attr-defined]
    result = wait.until(ec.visibility_of_element_located((By.ID, "try-result")))
    wait.until(lambda _: result.get_attribute("data-done") == "1")
    assert d.find_element(By.ID, "try-prediction").text.startswith("setosa")  # type: ignore[attr-defined]
    response = json.loads(d.find_element(By.ID, "try-response").text)  # type: ignore[attr-defined]
    assert (response["version"], response["model_id"]) == (2, v2.id)
    shot(d, "version")

    # The diff between the example's HEAD and the served commit, as mreg diff shows it.
    d.get(f"{server}/ui/diff?base={marks['before']}&head=HEAD")  # type: ignore[attr-defined]
    pointer_rows = d.find_elements(By.CSS_SELECTOR, "#diff-pointers tbody tr")  # type: ignore[attr-defined]
    assert [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in pointer_rows] == [
        ["iris:prod", "moved", "v2", "v3"],
        ["iris:stable", "moved", "prod (v2)", "prod (v3)"],  # followed through the chain
    ]
    assert d.find_elements(By.ID, "diff-models") == []  # type: ignore[attr-defined]  # wine is private
    shot(d, "diff")

    # A read token, through the token form: now the private model is listed, and its change.
    d.get(f"{server}/ui/token?next=/ui/")  # type: ignore[attr-defined]
    d.find_element(By.ID, "token-input").send_keys(token_secret("reader"))  # type: ignore[attr-defined]
    d.find_element(By.ID, "token-set").click()  # type: ignore[attr-defined]
    wait.until(lambda _: "wine" in rows("models"))
    assert "reader" in d.find_element(By.ID, "who").text  # type: ignore[attr-defined]
    used = d.find_element(By.CSS_SELECTOR, 'tr[data-model="iris"] .last-used').text  # type: ignore[attr-defined]
    assert used.endswith(" UTC")  # the curl and try-it calls above
    wine = d.find_element(By.CSS_SELECTOR, 'tr[data-model="wine"]')  # type: ignore[attr-defined]
    assert "private" in wine.text.lower() and "v1" in wine.text.split()
    shot(d, "models-with-token")
    Select(d.find_element(By.ID, "used")).select_by_value("yes")  # type: ignore[attr-defined]
    d.find_element(By.CSS_SELECTOR, "#filters button").click()  # type: ignore[attr-defined]
    wait.until(lambda _: rows("models") == ["iris"])
    d.get(f"{server}/ui/diff?base={marks['before']}&head=HEAD")  # type: ignore[attr-defined]
    models = d.find_element(By.ID, "diff-models").text  # type: ignore[attr-defined]
    assert "wine" in models and "is_public" in models
