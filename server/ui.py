"""The web page (`/ui/`): server-rendered Jinja2 templates over the same data as the JSON API.

Pages read the served revision by default, or any git revision with `?rev=`.
Privacy is the API's: a private model needs a token with the read scope,
and without one it is a missing model. The page takes the token from the
`Authorization` header or, for a browser, from the `mreg_token` cookie that
the token form (`/ui/token`) sets (HttpOnly, SameSite=Strict, path /ui).
The routes are left out of the OpenAPI schema.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlparse

import anyio.to_thread
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from registry import RegistryError
from server import visibility
from server.errors import ApiError
from server.service import Server
from server.state import Served
from server.ui_views import (
    Viewer,
    example_input,
    hides_state,
    human_size,
    metric_charts,
    metrics_of,
    pointer_histories,
    readable_model,
    served_at,
    viewer,
    visible_diff,
)

HERE = Path(__file__).parent
TOKEN_COOKIE = "mreg_token"
PAGE_SIZE = 10
YES = ("1", "true", "on", "yes")


def _link(path: str, rev: str | None = None, **params: Any) -> str:
    """A page URL that keeps the revision the user is looking at."""
    query = {k: v for k, v in {**params, "rev": rev}.items() if v not in (None, "", False)}
    return f"/ui{path}" + (f"?{urlencode(query)}" if query else "")


def when(value: str | None) -> str:
    """An RFC 3339 time as people read it: 2026-11-25 14:19 UTC."""
    if not value:
        return "never"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _engine(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.globals["link"] = _link
    env.filters["size"] = human_size
    env.filters["short"] = lambda sha: (sha or "")[:10]
    env.filters["when"] = when
    env.trim_blocks = env.lstrip_blocks = True


TEMPLATE_CONFIG = TemplateConfig(
    directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_engine
)


def _authorization(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if header:
        return header
    token = request.cookies.get(TOKEN_COOKIE)
    return f"Bearer {token}" if token else None


async def _page(
    request: Request[Any, Any, Any], server: Server, rev: str | None
) -> tuple[Served, Viewer]:
    who = viewer(server, _authorization(request))
    served = server.served if not rev else await anyio.to_thread.run_sync(served_at, server, rev)
    return served, who


def _render(
    name: str,
    request: Request[Any, Any, Any],
    server: Server,
    served: Served | None,
    who: Viewer | None,
    rev: str | None,
    status: int = 200,
    **context: Any,
) -> Template:
    return Template(
        template_name=f"ui/{name}.html.j2",
        status_code=status,
        context={
            "served": served,
            "server_revision": server.served.revision,
            "server_ref": server.served.ref,
            "who": who,
            "auth_enabled": server.auth.enabled,
            "rev": rev or "",
            "path": request.url.path,
            **context,
        },
    )


# -- pages -----------------------------------------------------------------------


@get("/", name="ui-models")
async def models_page(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    q: FromQuery[str | None] = None,
    archived: FromQuery[str | None] = None,
    used: FromQuery[str | None] = None,
    library: FromQuery[str | None] = None,
    project: FromQuery[str | None] = None,
    page: Annotated[int, QueryParameter(ge=1)] = 1,
    rev: FromQuery[str | None] = None,
) -> Template:
    served, who = await _page(request, server, rev)
    show_archived = (archived or "").lower() in YES
    needle = (q or "").strip().lower()
    last_used = server.usage.last_used
    readable = [m for _, m in sorted(served.models.items()) if who.may_read(server, m)]
    libraries = sorted({m.library for m in readable if m.library})
    projects = sorted({m.project for m in readable if m.project})
    rows = []
    for m in readable:
        if m.archived != show_archived:
            continue
        if used in ("yes", "no") and (m.name in last_used) != (used == "yes"):
            continue
        if library and m.library != library:
            continue
        if project and m.project != project:
            continue
        if needle and not any(
            needle in (text or "").lower() for text in (m.name, m.description, m.project, m.task)
        ):
            continue
        rows.append(m)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(page, pages)
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    models = []
    for m in shown:
        row = server.model_dict(served, m, full=False, viewer=who.api)
        row["pointers"] = [server.pointer_dict(served, p, who.api) for p in served.pointers[m.name]]
        models.append(row)
    filters = {
        "q": q or "",
        "archived": "1" if show_archived else "",
        "used": used or "",
        "library": library or "",
        "project": project or "",
    }
    return _render(
        "models",
        request,
        server,
        served,
        who,
        rev,
        models=models,
        total=len(rows),
        page=page,
        pages=pages,
        filters=filters,
        libraries=libraries,
        projects=projects,
    )


@get("/models/{model:str}", name="ui-model")
async def model_page(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: FromPath[str],
    rev: FromQuery[str | None] = None,
) -> Template:
    served, who = await _page(request, server, rev)
    manifest = readable_model(server, served, who, model)
    info = server.model_dict(served, manifest, full=True, viewer=who.api)
    versions = visibility.versions(served, manifest, who.api)
    by_number = {v.version: v for v in versions}
    pointers = []
    for p in served.pointers[model]:
        row = server.pointer_dict(served, p, who.api)
        row["chain"] = []
        if row["resolves_to"] is not None:  # else the chain may name a hidden version
            try:
                row["chain"] = list(served.snapshot.resolve(f"{model}:{p.tag}").chain)
            except RegistryError as exc:
                row["error"] = str(exc)
        pointers.append(row)
    histories = await anyio.to_thread.run_sync(
        pointer_histories, server.registry, served, model, [p.tag for p in served.pointers[model]]
    )
    histories = {
        tag: [h for h in states if not hides_state(served, manifest, who, h)]
        for tag, states in histories.items()
    }
    latest = info["latest"]
    latest_version = by_number.get(latest["version"]) if latest else None
    base = str(request.base_url).rstrip("/")
    curl = None
    if latest:
        # Every value is shell-quoted: the example comes from a manifest, the base from Host.
        url = f"{base}/v1/models/{model}/invoke?modelId={latest['id']}"
        curl = (
            f"curl -s -X POST {shlex.quote(url)}"
            " -H 'Content-Type: application/json'"
            + ("" if manifest.is_public else ' -H "Authorization: Bearer $MREG_TOKEN"')
            + f" -d {shlex.quote(example_input(latest_version))}"
        )
    tags_of: dict[int, list[str]] = {}
    for row in pointers:
        if row.get("resolves_to"):
            tags_of.setdefault(row["resolves_to"]["version"], []).append(row["tag"])
    return _render(
        "model",
        request,
        server,
        served,
        who,
        rev,
        model=info,
        manifest=manifest,
        versions=list(reversed(versions)),
        metrics={v.version: metrics_of(v) for v in versions},
        metric_names=sorted({k for v in versions for k in metrics_of(v)}),
        charts=metric_charts(versions),
        pointers=pointers,
        histories=histories,
        tags_of=tags_of,
        latest=latest,
        curl=curl,
    )


@get("/models/{model:str}/versions/{n:int}", name="ui-version")
async def version_page(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    model: FromPath[str],
    n: FromPath[int],
    rev: FromQuery[str | None] = None,
) -> Template:
    served, who = await _page(request, server, rev)
    manifest = readable_model(server, served, who, model)
    version = visibility.version(served, manifest, n, who.api)
    info = server.model_dict(served, manifest, full=False, viewer=who.api)
    named_by = []
    if info["latest"] and info["latest"]["version"] == n:
        named_by.append({"tag": "latest", "chain": [model, f"{model}:latest", f"{model}:v{n}"]})
    for p in served.pointers[model]:
        try:
            resolution = served.snapshot.resolve(f"{model}:{p.tag}")
        except RegistryError:
            continue
        if resolution.version.version == n:
            named_by.append({"tag": p.tag, "chain": list(resolution.chain)})
    infos = {
        key: getattr(version, key)
        for key in ("input_info", "output_info", "train_info", "import_info")
    }
    return _render(
        "version",
        request,
        server,
        served,
        who,
        rev,
        model=info,
        manifest=manifest,
        version=version,
        infos=infos,
        named_by=named_by,
        example=example_input(version),
        invoke_url=f"/v1/models/{model}/invoke?modelId={version.id}",
    )


@get("/diff", name="ui-diff")
async def diff_page(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    base: FromQuery[str | None] = None,
    head: FromQuery[str | None] = None,
) -> Template:
    who = viewer(server, _authorization(request))
    head = head or server.served.revision
    for value in (base, head):
        if value and value.startswith("-"):
            raise ApiError(400, "bad_request", f"invalid revision {value!r}")
    if not base:
        # By default: the newest commit that changed the registry, against its parent.
        newest = await anyio.to_thread.run_sync(lambda: server.registry.log(rev=head, limit=1))
        base = f"{newest[0].commit[:12]}~1" if newest else head
    diff = await anyio.to_thread.run_sync(visible_diff, server, who, base, head)
    return _render("diff", request, server, None, who, None, diff=diff, base=base, head=head)


@get("/token", name="ui-token")
async def token_page(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    next: FromQuery[str | None] = None,
) -> Template:
    who = viewer(server, _authorization(request))
    return _render("token", request, server, None, who, None, next=_safe_next(next), error=None)


@post("/token", name="ui-token-set", status_code=303)
async def token_set(
    request: Request[Any, Any, Any],
    server: NamedDependency[Server],
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    origin = request.headers.get("origin")
    if origin and urlparse(origin).netloc != request.headers.get("host"):
        # Another site's form must not swap the token this browser uses here.
        raise ApiError(403, "forbidden", "the token form only accepts posts from this page")
    target = _safe_next(data.get("next"))
    token = (data.get("token") or "").strip()
    if data.get("action") == "forget" or not token:
        response: Response[Any] = Redirect(target, status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/ui")
        return response
    try:
        who = viewer(server, f"Bearer {token}")
    except ApiError as exc:
        return _render(
            "token", request, server, None, None, None, 401, next=target, error=exc.message
        )
    response = Redirect(target, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    del who
    return response


def _safe_next(value: str | None) -> str:
    """Only a page of this UI (no open redirect)."""
    if value and value.startswith("/ui/") and not value.startswith("//"):
        return value
    return "/ui/"


# -- errors: the page's own HTML error (the API keeps its JSON shape) -------------


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Template:
    if isinstance(exc, RegistryError):
        status, code, message = exc.status, exc.code, exc.message
    elif isinstance(exc, HTTPException):
        status, code, message = exc.status_code, "http_error", str(exc.detail)
    else:
        status, code, message = (
            500,
            "internal_error",
            "unexpected server error (see the server log)",
        )
    server: Server = request.app.state.server
    return _render("error", request, server, None, None, None, status, code=code, message=message)


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect("/ui/")


ui_router = Router(
    path="/ui",
    route_handlers=[models_page, model_page, version_page, diff_page, token_page, token_set],
    include_in_schema=False,
    exception_handlers={RegistryError: _error_page, HTTPException: _error_page},
)

UI_ROUTES: list[ControllerRouterHandler] = [
    root,
    ui_router,
    create_static_files_router(path="/ui/static", directories=[HERE / "static"]),
]
