"""mreg serve and mreg invoke: run the inference server, and call one."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from typing import Any

import click

from registry import Registry
from tool.base import cli, fail, pass_registry

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_hosts(host: str, port: int) -> list[str]:
    """The Host values a loopback bind without tokens answers (no DNS rebinding name can pass)."""
    bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = {"localhost", "*.localhost", "127.0.0.1", "[::1]", *LOOPBACK_NAMES, bound}
    return sorted({*names, *(f"{name}:{port}" for name in names)})


@cli.command()
@click.option(
    "--rev", default=None, help="Serve this git revision (branch, tag, sha).  [default: HEAD]"
)
@click.option(
    "--follow", metavar="BRANCH", help="Follow BRANCH: load new commits and swap to them."
)
@click.option(
    "--poll",
    type=float,
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="With --follow: how often to check the branch (0: only on POST /v1/admin/reload).",
)
@click.option(
    "--fetch-timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="With --follow REMOTE/BRANCH: stop a git fetch that takes longer, and show it in"
    " /v1/registry.  [default: 60]",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to bind.")
@click.option(
    "--grpc-port",
    type=click.IntRange(min=1, max=65535),
    metavar="PORT",
    help="Also serve V2 over gRPC (KServe's GRPCInferenceService) on this port of --host.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
)
@click.option(
    "--preload/--no-preload",
    default=True,
    show_default=True,
    help="Load the latest version and pointer targets of every model at start and on reload"
    " (/readyz waits for them); --no-preload loads each on first use.",
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=1, max=4096),
    default=1,
    show_default=True,
    help="Batch up to this many rows of concurrent requests to one model (1: off), for models"
    " whose model.yaml has no serving.max_batch_size.",
)
@click.option(
    "--max-batch-delay-ms",
    type=click.FloatRange(min=0, max=1000),
    default=2.0,
    show_default=True,
    help="Longest a request waits for its batch to fill, unless model.yaml says otherwise.",
)
@click.option(
    "--max-queued",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Requests one model may hold (running and waiting); beyond it 503 with Retry-After.",
)
@click.option(
    "--max-loaded",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="How many models stay in memory (least recently used go first).",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Largest request body in bytes; bigger ones get 413.",
)
@click.option(
    "--write-mode",
    type=click.Choice(["commit", "branch"]),
    default="commit",
    show_default=True,
    help="HTTP writes commit to the served branch, or each to a new branch for a pull request.",
)
@click.option(
    "--max-upload",
    type=click.IntRange(min=1),
    default=1 << 30,
    show_default=True,
    help="Largest artifact upload (PUT .../artifact) in bytes; bigger ones get 413.",
)
@click.option(
    "--max-upload-total",
    type=click.IntRange(min=1),
    default=4 << 30,
    show_default=True,
    help="Bytes all uploads in progress may hold on disk together; beyond it 507.",
)
@click.option(
    "--allow-code-formats",
    is_flag=True,
    help="Accept uploads in formats that run code at load (pickle, joblib, torchscript, mlflow)"
    " that registry.yaml does not trust: on a branch (?branch=NAME) only, for review.",
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(dir_okay=False),
    help="Tokens file (YAML/JSON: name, sha256, scopes); default: the MREG_TOKENS variable.",
)
@click.option(
    "--webhooks",
    "webhooks_file",
    type=click.Path(dir_okay=False),
    help="Webhooks file (YAML/JSON: url, events, secret): POST signed events of every change.",
)
@click.option("--insecure", is_flag=True, help="Allow a non-loopback host without any token.")
@click.option(
    "--usage-url",
    envvar="MREG_USAGE_URL",
    metavar="URL",
    help="Usage store shared by every worker and replica (postgresql://user@host/db);"
    " default: SQLite in .git/mreg/usage.sqlite. Also the MREG_USAGE_URL variable.",
)
@click.option(
    "--get",
    "get_path",
    metavar="PATH",
    help="Do not serve: request PATH from the app in-process, print the body and exit (CI check).",
)
@pass_registry
def serve(
    registry: Registry,
    rev: str | None,
    follow: str | None,
    poll: float,
    fetch_timeout: float | None,
    host: str,
    port: int,
    grpc_port: int | None,
    workers: int,
    preload: bool,
    max_loaded: int,
    max_batch_size: int,
    max_batch_delay_ms: float,
    max_queued: int,
    max_body: int,
    write_mode: str,
    max_upload: int,
    max_upload_total: int,
    allow_code_formats: bool,
    tokens_file: str | None,
    webhooks_file: str | None,
    insecure: bool,
    usage_url: str | None,
    get_path: str | None,
) -> None:
    """Serve the registry at one git revision over HTTP (Litestar + uvicorn).

    Changes arrive as commits: from git, or from the write routes (a token with
    the write scope), which commit to the served branch and swap to the new
    commit at once (--write-mode branch: to a new branch each). With --follow
    it picks up new commits of the branch and swaps to them atomically.

    \b
    Examples:
        mreg serve --rev iris@v3 --port 8000
        mreg serve --follow main --poll 10 --tokens /etc/mreg/tokens.yaml --host 0.0.0.0
        mreg serve --follow origin/main --fetch-timeout 30
        mreg serve --follow origin/main --webhooks /etc/mreg/webhooks.yaml --tokens tokens.yaml
        mreg serve --get /v1/registry
        mreg serve --follow origin/main --usage-url postgresql://mreg@db/mreg --workers 4
        mreg serve --port 8000 --grpc-port 8001
    """
    from server import create_app
    from server.runtime.auth import load_tokens
    from server.runtime.webhook_config import load_webhooks

    _check_follow_options(rev, follow, poll, fetch_timeout)
    if grpc_port is not None and get_path is None:
        _check_grpc(host, grpc_port, workers)
    tokens = load_tokens(tokens_file)
    hooks = load_webhooks(webhooks_file)
    if hooks and workers > 1:
        fail("--webhooks needs --workers 1: every worker would deliver every event")
    if not tokens and not is_loopback(host) and not insecure and get_path is None:
        fail(
            f"refusing to serve {host} without tokens: configure --tokens or MREG_TOKENS,"
            " bind to 127.0.0.1, or pass --insecure"
        )
    options: dict[str, Any] = {
        "repo": str(registry.root),
        "rev": rev or "HEAD",
        "follow": follow,
        "poll": poll,
        **({"fetch_timeout": fetch_timeout} if fetch_timeout is not None else {}),
        "tokens": tokens_file,
        "preload": preload,
        "max_loaded": max_loaded,
        "max_batch_size": max_batch_size,
        "max_batch_delay_ms": max_batch_delay_ms,
        "max_queued": max_queued,
        "max_body": max_body,
        "write_mode": write_mode,
        "max_upload": max_upload,
        "max_upload_total": max_upload_total,
        "allow_code_formats": allow_code_formats,
        "usage_url": usage_url or None,
        **(
            {"grpc_address": grpc_address(host, grpc_port)}
            if grpc_port is not None and get_path is None
            else {}
        ),
        # Without tokens, a loopback server answers only loopback Host names: a web page that
        # rebinds its own name to 127.0.0.1 cannot read or invoke it.
        "allowed_hosts": loopback_hosts(host, port)
        if not tokens and is_loopback(host) and get_path is None
        else None,
    }
    app = create_app(**{**options, "tokens": tokens, "webhooks": hooks})
    if get_path is not None:
        _get(app, get_path)
        return

    import logging

    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    click.echo(
        f"mreg: serving {registry.root} at {follow or rev} on http://{host}:{port}", err=True
    )
    if "grpc_address" in options:
        click.echo(f"mreg: and over gRPC on {options['grpc_address']}", err=True)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
        return
    # Each worker builds its own app from the same options (the app above checked they load).
    os.environ["MREG_SERVE_OPTIONS"] = json.dumps(options)
    uvicorn.run(
        "server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


def _check_follow_options(
    rev: str | None, follow: str | None, poll: float, fetch_timeout: float | None
) -> None:
    """Options that would otherwise be silently ignored, or make no sense, are mistakes."""
    if rev is not None and follow is not None:
        fail(
            "--rev and --follow exclude each other: --rev serves one fixed revision,"
            " --follow serves the newest commit of a branch"
        )
    given = click.get_current_context().get_parameter_source
    if follow is None:
        if given("poll") is not click.core.ParameterSource.DEFAULT:
            fail("--poll only applies with --follow BRANCH")
        if fetch_timeout is not None:
            fail("--fetch-timeout only applies with --follow REMOTE/BRANCH")
    if poll < 0:
        fail(
            f"--poll must be 0 or more seconds (0: reload only on POST /v1/admin/reload), not {poll:g}"
        )
    if fetch_timeout is not None and not fetch_timeout > 0:
        fail(f"--fetch-timeout must be more than 0 seconds, not {fetch_timeout:g}")


def grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_grpc(host: str, grpc_port: int, workers: int) -> None:
    if workers > 1:
        fail("--grpc-port serves from one process: use it with --workers 1")
    try:
        import grpc  # noqa: F401
    except ImportError:
        fail("--grpc-port needs grpcio: pip install 'mreg[grpc]'")
    # A taken port is one line here, not a traceback from the app's startup (racy, but the
    # startup still fails, with its own message, if the port goes in between).
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((host, grpc_port))
        except OSError as exc:
            fail(f"--grpc-port {grpc_port}: cannot listen on {host}: {exc.strerror}")


def _get(app: Any, path: str) -> None:
    import logging

    from litestar.testing import TestClient

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the test client logs every request

    with TestClient(app=app) as client:
        response = client.get(path)
    click.echo(response.text)
    if response.status_code >= 400:
        sys.exit(1)
