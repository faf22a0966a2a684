"""--follow origin/BRANCH: a fetch never prompts, a remote that hangs is stopped and reported.

The stalled remote is real: the clone's `core.sshCommand` is a shell that
records its environment and pid, then sleeps; git runs it for the ssh URL.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from tests.conftest import git
from tests.server_fixtures import LABELS, SETOSA
from tool.cli import cli

pytest_plugins = ["tests.server_fixtures"]


@pytest.fixture
def registry(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, create=True)
    return reg


def version_served(client: TestClient[Any]) -> int:
    r = client.post("/v1/models/iris/invoke", json={"data": SETOSA})
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


def gone_or_zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def test_a_stalled_fetch_is_stopped_and_reported(
    registry: Registry, other_model_file: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(registry.root), str(clone))
    seen = tmp_path / "ssh-env"
    pidfile = tmp_path / "ssh-pid"
    git(clone, "remote", "set-url", "origin", "ssh://stalled.invalid/reg.git")
    git(
        clone,
        "config",
        "core.sshCommand",
        f"sh -c 'echo $$ > {pidfile}; env > {seen}; exec sleep 600' ssh",
    )
    # 10 s, not less: the `during` read below must land while the fetch still hangs, which a
    # busy machine may delay by seconds.
    app = create_app(Registry(clone), follow="origin/main", poll=0, fetch_timeout=10)
    with TestClient(app=app) as c:
        info = c.get("/v1/registry").json()
        assert (info["last_fetch_error"], info["last_fetch_at"], info["fetching_since"]) == (
            None,
            None,
            None,
        )

        r: dict[str, Any] = {}
        reload = threading.Thread(target=lambda: r.update(c.post("/v1/admin/reload").json()))
        reload.start()
        while not pidfile.exists():  # the stalled ssh has started: the fetch is running
            assert reload.is_alive(), "the reload ended before the fetch started"
            time.sleep(0.01)
        during = c.get("/v1/registry").json()
        reload.join()
        assert during["fetching_since"] is not None and during["last_fetch_error"] is None
        assert r["reloaded"] is False
        error = c.get("/v1/registry").json()["last_fetch_error"]
        assert error["message"] == "no answer from the remote 'origin' in 10s: git fetch stopped"
        assert r["last_reload_error"]["message"].startswith("fetching origin/main failed")
        assert version_served(c) == 1  # still serving what it had
        assert "GIT_TERMINAL_PROMPT=0" in seen.read_text().splitlines()
        assert gone_or_zombie(int(pidfile.read_text()))  # the stalled ssh was stopped too

        git(clone, "remote", "set-url", "origin", str(registry.root))
        git(clone, "config", "--unset", "core.sshCommand")
        registry.register("iris", other_model_file, output_info={"labels": LABELS})
        r = c.post("/v1/admin/reload").json()
        assert (r["reloaded"], r["last_fetch_error"], r["last_reload_error"]) == (True, None, None)
        assert r["last_fetch_at"] is not None
        assert version_served(c) == 2


def test_a_fetch_that_wants_a_password_fails_instead_of_prompting(
    registry: Registry, tmp_path: Path
) -> None:
    """An https remote asking for credentials: git must not wait for a terminal."""
    import http.server
    import threading

    class NeedsLogin(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="registry"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NeedsLogin)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(registry.root), str(clone))
        git(clone, "remote", "set-url", "origin", f"http://127.0.0.1:{httpd.server_port}/reg.git")
        app = create_app(Registry(clone), follow="origin/main", poll=0, fetch_timeout=60)
        with TestClient(app=app) as c:
            assert c.post("/v1/admin/reload").json()["reloaded"] is False
            error = c.get("/v1/registry").json()["last_fetch_error"]["message"]
            assert "terminal prompts disabled" in error
    finally:
        httpd.shutdown()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--rev", "HEAD", "--follow", "main"], "--rev and --follow exclude", id="rev-follow"
        ),
        pytest.param(["--follow", "main", "--poll", "-1"], "--poll must be 0 or more", id="neg"),
        pytest.param(["--poll", "10"], "--poll only applies with --follow", id="poll-alone"),
        pytest.param(
            ["--fetch-timeout", "5"], "--fetch-timeout only applies with --follow", id="timeout"
        ),
        pytest.param(
            ["--follow", "origin/main", "--fetch-timeout", "0"],
            "--fetch-timeout must be more than 0",
            id="zero-timeout",
        ),
    ],
)
def test_serve_options_that_would_be_ignored_are_errors(
    registry: Registry, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        cli, ["--repo", str(registry.root), "serve", *args, "--get", "/v1/registry"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stdout == ""


def test_serve_follow_with_a_fetch_timeout_starts(registry: Registry) -> None:
    result = CliRunner().invoke(
        cli,
        [
            *("--repo", str(registry.root), "serve", "--follow", "main", "--poll", "0"),
            *("--fetch-timeout", "5", "--get", "/v1/registry"),
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["follow"], info["last_fetch_error"]) == ("main", None)
