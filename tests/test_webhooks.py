"""Webhooks: a real receiver on a loopback port gets signed events of every change the server sees.

The receiver is an `http.server` in a thread that verifies each delivery's
signature with the README's own `verify` function, and answers 401 when it does not
verify. One test runs `mreg serve --follow origin/main` as a real process and
pushes a CLI commit to the followed branch of a real bare remote.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from litestar.testing import TestClient

from registry import Registry
from server import create_app
from server.runtime.auth import Token, parse_tokens
from server.runtime.webhook_config import Webhook
from tests.conftest import git, head
from tests.processes import MREG, ROOT, free_port, serving
from tests.server_fixtures import LABELS, bearer, token_entries
from tool.cli import cli

pytest_plugins = ["tests.server_fixtures"]

SECRET = "s3cret-webhook-key"


def readme_verify() -> Callable[[str, Mapping[str, str], bytes], bool]:
    """The receiver check the README gives (its `verify` function), as written there."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.M | re.S)
    (block,) = [b for b in blocks if "X-Mreg-Signature" in b]
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    check: Callable[[str, Mapping[str, str], bytes], bool] = namespace["verify"]
    return check


verify = readme_verify()


class Receiver:
    """A webhook receiver on 127.0.0.1:`port`: verified payloads in `received`, others rejected."""

    def __init__(self, secret: str, port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[dict[str, Any]] = []
        self.rejected: list[tuple[dict[str, str], bytes]] = []
        self._httpd: http.server.ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                ok = verify(receiver.secret, headers, body)
                if ok:
                    payload = json.loads(body)
                    assert headers["X-Mreg-Event"] == payload["type"]
                    receiver.received.append(payload)
                else:
                    receiver.rejected.append((headers, body))
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def types(self) -> list[str]:
        return [p["type"] for p in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET).start()
    yield r
    r.stop()


def wait_for(check: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g}s for {what}")
        time.sleep(0.05)


@pytest.fixture
def registry(tmp_path: Path, model_files: dict[str, Path]) -> Registry:
    reg = Registry.init(tmp_path / "reg", remote=str(tmp_path / "storage"))
    reg.register(
        "iris", model_files["skops"], output_info={"labels": LABELS}, create=True, point=["prod"]
    )
    return reg


def test_a_pushed_cli_commit_reaches_the_receiver_signed(
    registry: Registry, other_model_file: Path, receiver: Receiver, tmp_path: Path
) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(registry.root, "remote", "add", "origin", str(bare))
    git(registry.root, "push", "-q", "origin", "HEAD:refs/heads/main")
    git(registry.root, "fetch", "-q", "origin")
    laptop = tmp_path / "laptop"
    git(tmp_path, "clone", "-q", str(bare), str(laptop))
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps(token_entries()))
    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text(
        yaml.safe_dump([{"name": "ci", "url": receiver.url, "secret": SECRET, "events": ["*"]}])
    )
    with serving(
        registry.root,
        *("--follow", "origin/main", "--poll", "0.2"),
        *("--tokens", str(tokens_file), "--webhooks", str(hooks)),
    ) as server:
        subprocess.run(
            [*MREG, "register", "iris", str(other_model_file), "--point", "prod"],
            cwd=laptop,
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        git(laptop, "push", "-q", "origin", "HEAD:main")
        pushed = head(laptop)
        wait_for(lambda: "pointer.moved" in receiver.types(), "pointer.moved at the receiver")

        assert receiver.rejected == []
        assert receiver.types() == ["model_version.created", "pointer.moved"]
        created, moved = receiver.received
        assert created["data"]["ref"] == "iris:v2" and created["data"]["status"] == "trained"
        assert (created["entity"], created["action"]) == ("model_version", "created")
        assert moved["data"]["ref"] == "iris:prod"
        assert (moved["data"]["from"]["version"], moved["data"]["to"]["version"]) == (1, 2)
        assert moved["data"]["to"]["targets"] == [{"target": "v2", "weight": 100, "version": 2}]
        assert {p["revision"] for p in receiver.received} == {pushed}

        log = server.get("/v1/webhooks/deliveries", headers=bearer("admin"))
        assert log.status_code == 200, log.text
        deliveries = log.json()["deliveries"]
        assert [d["event"] for d in deliveries] == ["pointer.moved", "model_version.created"]
        assert {d["status"] for d in deliveries} == {"delivered"}
        assert all(d["attempts"][-1]["status_code"] == 204 for d in deliveries)
        assert log.json()["webhooks"] == [
            {"name": "ci", "url": receiver.url, "events": ["*"], "retry_window": 3600.0}
        ]
        assert SECRET not in log.text

        denied = server.get("/v1/webhooks/deliveries", headers=bearer("reader"))
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"
        anonymous = server.get("/v1/webhooks/deliveries")
        assert anonymous.status_code == 401 and "error" in anonymous.json()


def tokens() -> list[Token]:
    return parse_tokens(token_entries(), "tokens")


def deliveries(client: TestClient[Any]) -> list[dict[str, Any]]:
    r = client.get("/v1/webhooks/deliveries", headers=bearer("admin"))
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["deliveries"]
    return found


def test_a_receiver_that_is_down_at_first_loses_nothing(
    registry: Registry, other_model_file: Path
) -> None:
    late = Receiver(SECRET)  # its port is known, nothing listens there yet
    hook = Webhook("late", late.url, SECRET, retry_window=600)
    app = create_app(registry, follow="main", poll=0, tokens=tokens(), webhooks=[hook])
    with TestClient(app=app) as client:
        registry.register("iris", other_model_file, output_info={"labels": LABELS}, point=["prod"])
        assert client.post("/v1/admin/reload", headers=bearer("admin")).json()["reloaded"]

        def failed_twice() -> bool:
            found = deliveries(client)
            return bool(found) and len(found[-1]["attempts"]) >= 2

        wait_for(failed_twice, "two failed attempts")
        first = deliveries(client)[-1]
        assert first["status"] == "pending"
        assert all(a["status_code"] is None and a["error"] for a in first["attempts"])

        late.start()
        try:
            wait_for(
                lambda: all(d["status"] == "delivered" for d in deliveries(client)),
                "every delivery to arrive",
            )
        finally:
            late.stop()
        log = deliveries(client)
        assert sorted(p["id"] for p in late.received) == sorted(d["event_id"] for d in log)
        assert late.types() == ["model_version.created", "pointer.moved"]  # in order


def test_a_wrong_secret_fails_verification_and_the_log_shows_it(registry: Registry) -> None:
    wrong = Receiver("not-the-secret").start()
    hook = Webhook(
        "wrong", wrong.url, SECRET, events=frozenset({"pointer.created"}), retry_window=2
    )
    app = create_app(registry, follow="main", poll=0, tokens=tokens(), webhooks=[hook])
    try:
        with TestClient(app=app) as client:
            # The server's own write (a commit) is an event too.
            r = client.put(
                "/v1/models/iris/pointers/stable", json={"target": "v1"}, headers=bearer("admin")
            )
            assert r.status_code in (200, 201), r.text
            wait_for(
                lambda: deliveries(client)[:1] and deliveries(client)[0]["status"] == "failed",
                "the delivery to fail",
            )
            (failed,) = deliveries(client)
    finally:
        wrong.stop()
    assert failed["event"] == "pointer.created"
    assert len(failed["attempts"]) >= 2
    assert {a["status_code"] for a in failed["attempts"]} == {401}
    assert wrong.received == []
    headers, body = wrong.rejected[0]
    assert verify(SECRET, headers, body)  # signed, with the server's secret
    assert json.loads(body)["data"]["ref"] == "iris:stable"


def test_a_receiver_that_hangs_never_holds_up_a_write(registry: Registry) -> None:
    arrived, release = threading.Event(), threading.Event()
    answered: list[str] = []

    class Hanging(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrived.set()
            release.wait(120)
            answered.append(json.loads(body)["data"]["ref"])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    hook = Webhook("slow", url, SECRET, events=frozenset({"pointer.created"}), timeout=300)
    app = create_app(registry, follow="main", poll=0, tokens=tokens(), webhooks=[hook])
    try:
        with TestClient(app=app) as client:
            first = client.put(
                "/v1/models/iris/pointers/stable", json={"target": "v1"}, headers=bearer("admin")
            )
            assert first.status_code in (200, 201), first.text
            wait_for(arrived.is_set, "the first delivery to reach the receiver")
            # The receiver holds the first delivery: the next write is answered all the same.
            second = client.put(
                "/v1/models/iris/pointers/beta", json={"target": "v1"}, headers=bearer("admin")
            )
            assert second.status_code in (200, 201), second.text
            assert answered == [] and not release.is_set()
            release.set()
            wait_for(
                lambda: [d["status"] for d in deliveries(client)] == ["delivered", "delivered"],
                "both deliveries",
            )
            arrived.clear()
            release.clear()
            third = client.put(
                "/v1/models/iris/pointers/gamma", json={"target": "v1"}, headers=bearer("admin")
            )
            assert third.status_code in (200, 201), third.text
            wait_for(arrived.is_set, "the third delivery to reach the receiver")
        # The server stopped while the receiver still holds the third delivery.
        assert answered == ["iris:stable", "iris:beta"]
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "- {url: 'http://127.0.0.1:9/h', secret: k, events: [model.create]}",
            "unknown event 'model.create'",
        ),
        ("- {url: 'http://127.0.0.1:9/h'}", "secret must be a non-empty string"),
        ("- {url: 'ftp://x/h', secret: k}", "url must be an http:// or https:// URL"),
        ("- {url: 'http://x/h', secret: k, retries: 3}", "unknown key 'retries'"),
        ("- {url: 'http://x/h', secret: k, retry_window: 0}", "retry_window must be a number"),
        ("url: http://x/h", "expected a list of webhooks"),
        ("[unclosed", "not valid YAML or JSON"),
    ],
)
def test_a_bad_webhooks_file_is_one_error_line(
    registry: Registry, tmp_path: Path, config: str, message: str
) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text(config)
    result = CliRunner().invoke(
        cli, ["--repo", str(registry.root), "serve", "--webhooks", str(path), "--get", "/healthz"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


def test_webhooks_need_one_worker(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text("- {url: 'http://127.0.0.1:9/h', secret: k}")
    result = CliRunner().invoke(
        cli, ["--repo", str(registry.root), "serve", "--webhooks", str(path), "--workers", "2"]
    )
    assert result.exit_code == 1
    assert (
        result.stderr
        == "error: --webhooks needs --workers 1: every worker would deliver every event\n"
    )


def test_without_webhooks_the_log_is_empty(registry: Registry) -> None:
    with TestClient(app=create_app(registry)) as client:
        r = client.get("/v1/webhooks/deliveries")
        bad = client.get("/v1/webhooks/deliveries?status=lost")
    assert r.status_code == 200
    assert r.json() == {"webhooks": [], "deliveries": [], "pending": 0, "dropped": 0}
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request", bad.text
