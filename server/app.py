"""The Litestar app: `create_app(repo, rev)` serves one revision of a registry; writes are commits."""

from __future__ import annotations

import json
import os
from pathlib import Path

from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware

from registry import Registry
from server.http import DEFAULT_MAX_BODY
from server.http.auth import DEPENDENCIES
from server.http.errors import EXCEPTION_HANDLERS
from server.http.hosts import AllowedHostsMiddleware
from server.http.metrics import MetricsMiddleware
from server.http.openapi import OPENAPI
from server.protocols.v2 import V2_ROUTER
from server.protocols.v2.errors import app_http_error
from server.protocols.v2.repository import REPOSITORY_ROUTER
from server.runtime import Runtime
from server.runtime.auth import Auth, Token, load_tokens
from server.runtime.batcher import DEFAULT_MAX_QUEUED, Batching, BatchSettings
from server.runtime.follow import FETCH_TIMEOUT
from server.runtime.pool import ArtifactLocator, default_locator
from server.runtime.webhook_config import Webhook, load_webhooks
from server.ui import TEMPLATE_CONFIG, UI_ROUTES
from server.v1 import V1_ROUTES
from server.v1.writes import DEFAULT_MAX_UPLOAD, DEFAULT_MAX_UPLOAD_TOTAL, check_settings
from server.v1.writes.schemas import SCHEMA_PLUGINS


def create_app(
    repo: str | os.PathLike[str] | Registry | None = None,
    rev: str = "HEAD",
    *,
    follow: str | None = None,
    poll: float = 5.0,
    fetch_timeout: float = FETCH_TIMEOUT,
    tokens: list[Token] | str | os.PathLike[str] | None = None,
    preload: bool = False,
    max_loaded: int = 8,
    max_body: int = DEFAULT_MAX_BODY,
    locate: ArtifactLocator | None = None,
    usage_path: str | os.PathLike[str] | None = None,
    write_mode: str = "commit",
    max_upload: int = DEFAULT_MAX_UPLOAD,
    max_upload_total: int = DEFAULT_MAX_UPLOAD_TOTAL,
    usage_url: str | None = None,
    allowed_hosts: list[str] | None = None,
    allow_code_formats: bool = False,
    webhooks: list[Webhook] | str | os.PathLike[str] | None = None,
    grpc_address: str | None = None,
    max_batch_size: int = 1,
    max_batch_delay_ms: float = 0.0,
    max_queued: int = DEFAULT_MAX_QUEUED,
) -> Litestar:
    """A Litestar app serving the registry `repo` at `rev` (or following branch `follow`).

    tokens: a list of Token, a tokens file, or None to read MREG_TOKENS (none: no auth).
    fetch_timeout: seconds a fetch of a followed remote branch (`origin/main`) may take.
    write_mode: "commit" (writes commit to the served branch) or "branch" (to new branches).
    max_upload_total: the bytes all uploads in progress may hold together (507 beyond).
    usage_url: a shared usage store (`postgresql://...`); default: SQLite at `usage_path`
    (default `.git/mreg/usage.sqlite`).
    allowed_hosts: answer only requests whose Host header is one of these (`host` or
    `host:port`, `*.domain`; others get a 400 in mreg's error shape); None answers any Host.
    allow_code_formats: accept uploads in formats that run code (pickle, joblib, torchscript,
    mlflow) when registry.yaml does not trust them, on a branch only (registry.format_policy).
    webhooks: a list of Webhook, or a webhooks file (server.runtime.webhook_config), that
    receive the events of every revision the server swaps to.
    grpc_address: also serve V2 over gRPC on `host:port`, on the same event loop and runtime.
    max_batch_size, max_batch_delay_ms: the batching of models whose model.yaml says nothing
    (1: off); max_queued: requests one model may hold before it answers 503
    (server.runtime.batcher).
    Raises RegistryError when the revision or the usage store cannot be loaded.
    """
    writes = check_settings(write_mode, max_upload, max_upload_total, allow_code_formats)
    registry = repo if isinstance(repo, Registry) else Registry(repo)
    auth = Auth(tokens if isinstance(tokens, list) else load_tokens(tokens))
    runtime = Runtime(
        registry,
        rev,
        follow=follow,
        poll=poll,
        fetch_timeout=fetch_timeout,
        auth=auth,
        preload=preload,
        max_loaded=max_loaded,
        locate=locate or default_locator,
        usage_path=usage_url
        or (Path(usage_path) if usage_path else registry.state_dir / "usage.sqlite"),
        webhooks=webhooks if isinstance(webhooks, list) else load_webhooks(webhooks),
        batching=Batching(BatchSettings(max_batch_size, max_batch_delay_ms), max_queued),
    )
    startup, shutdown = [runtime.startup], [runtime.shutdown]
    if grpc_address:
        from server.protocols.grpc import GrpcServer  # grpcio only with --grpc-port (mreg[grpc])

        grpc_server = GrpcServer(runtime, grpc_address)
        startup.append(grpc_server.start)
        shutdown.insert(0, grpc_server.stop)  # in-flight RPCs finish before usage is closed
    app = Litestar(
        route_handlers=[*V1_ROUTES, *UI_ROUTES, V2_ROUTER, REPOSITORY_ROUTER],
        template_config=TEMPLATE_CONFIG,
        dependencies=DEPENDENCIES,
        # Unknown /v2 routes answer in the V2 shape (no router's handlers see them).
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: app_http_error},
        middleware=[
            *(
                [DefineMiddleware(AllowedHostsMiddleware, allowed_hosts=allowed_hosts)]
                if allowed_hosts
                else []
            ),
            DefineMiddleware(MetricsMiddleware, metrics=runtime.metrics),
        ],
        on_startup=startup,
        on_shutdown=shutdown,
        openapi_config=OPENAPI,
        plugins=SCHEMA_PLUGINS,
        request_max_body_size=max_body,
        debug=False,
        logging_config=None,  # the process configures logging (mreg serve, uvicorn, tests)
    )
    app.state.runtime = runtime
    app.state.writes = writes
    return app


def app_from_env() -> Litestar:
    """App factory for `uvicorn --factory` workers: options come from MREG_SERVE_OPTIONS."""
    options = json.loads(os.environ["MREG_SERVE_OPTIONS"])
    return create_app(**options)
