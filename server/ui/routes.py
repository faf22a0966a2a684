"""The web page (`/ui/`): runtime-rendered Jinja2 templates over the same data as the JSON API.

Pages read the served revision by default, or any git revision with `?rev=`.
Privacy is the API's: a private model needs a token with the read scope,
and without one it is a missing model. The page takes the token from the
`Authorization` header or, for a browser, from the `mreg_token` cookie that
the token form (`/ui/token`) sets (HttpOnly, SameSite=Strict, path /ui).
The routes are left out of the OpenAPI schema.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import anyio.to_thread
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from registry import RegistryError
from server.http.auth import TOKEN_COOKIE, Caller, RuntimeDep
from server.runtime import Runtime, Served, visibility
from server.runtime.errors import INTERNAL_MESSAGE, BadRequest, Forbidden, Unauthorized
from server.runtime.views import model_dict, pointer_dict
from server.ui.rollout import pointer_rows
from server.ui.views import (
    Viewer,
    artifact_width,
    example_input,
    hides_state,
    metric_charts,
    metrics_of,
    page_viewer,
    pointer_histories,
    readable_model,
    visible_diff,
)

HERE = Path(__file__).parent
PAGE_SIZE = 10
YES = ("1", "true", "on", "yes")


@dataclass(frozen=True)
class Page:
    """A page being answered: who looks, at which revision (None: a page of no revision)."""

    request: Request[Any, Any, Any]
    runtime: Runtime
    who: Viewer | None
    served: Served | None = None
    rev: str | None = None

    def viewer(self) -> Viewer:
        assert self.who is not None
        return self.who

    def shown(self) -> tuple[Runtime, Served, Viewer]:
        """What a page at a revision shows: the runtime, the revision, who looks."""
        assert self.served is not None
        return self.runtime, self.served, self.viewer()

    def render(self, name: str, status: int = 200, **context: Any) -> Template:
        runtime = self.runtime
        return Template(
            template_name=f"ui/{name}.html.j2",
            status_code=status,
            context={
                "served": self.served,
                "server_served": runtime.served,
                "server_revision": runtime.served.revision,
                "server_ref": runtime.served.ref,
                "who": self.who,
                "auth_enabled": runtime.auth.enabled,
                "rev": self.rev or "",
                "path": self.request.url.path,
                **context,
            },
        )


async def at_revision(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    caller: Caller,
    rev: FromQuery[str | None] = None,
) -> Page:
    """The page dependency of the registry's pages: the served revision, or `?rev=` from git."""
    served = runtime.served if not rev else await anyio.to_thread.run_sync(runtime.served_at, rev)
    return Page(request, runtime, page_viewer(runtime, caller), served, rev)


def anywhere(request: Request[Any, Any, Any], runtime: RuntimeDep, caller: Caller) -> Page:
    """The page dependency of pages that show no revision (the diff, the token form)."""
    return Page(request, runtime, page_viewer(runtime, caller))


PageDep = NamedDependency[Page]


# -- pages -----------------------------------------------------------------------


@get("/", name="ui-models")
async def models_page(
    ui: PageDep,
    q: FromQuery[str | None] = None,
    archived: FromQuery[str | None] = None,
    used: FromQuery[str | None] = None,
    library: FromQuery[str | None] = None,
    project: FromQuery[str | None] = None,
    page: Annotated[int, QueryParameter(ge=1)] = 1,
) -> Template:
    runtime, served, who = ui.shown()
    show_archived = (archived or "").lower() in YES
    needle = (q or "").strip().lower()
    last_used = runtime.usage.last_used
    readable = [m for _, m in sorted(served.models.items()) if who.may_read(runtime, m)]
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
        row = model_dict(runtime, served, m, full=False, viewer=who.api)
        row["pointers"] = [pointer_dict(served, p, who.api) for p in served.pointers[m.name]]
        models.append(row)
    filters = {
        "q": q or "",
        "archived": "1" if show_archived else "",
        "used": used or "",
        "library": library or "",
        "project": project or "",
    }
    return ui.render(
        "models",
        models=models,
        total=len(rows),
        page=page,
        pages=pages,
        filters=filters,
        libraries=libraries,
        projects=projects,
    )


@get("/models/{model:str}", name="ui-model")
async def model_page(ui: PageDep, model: FromPath[str]) -> Template:
    runtime, served, who = ui.shown()
    manifest = readable_model(runtime, served, who, model)
    info = model_dict(runtime, served, manifest, full=True, viewer=who.api)
    versions = visibility.versions(served, manifest, who.api)
    by_number = {v.version: v for v in versions}
    pointers = pointer_rows(runtime, served, model, who.api)
    histories = await anyio.to_thread.run_sync(
        pointer_histories, runtime.registry, served, model, [p.tag for p in served.pointers[model]]
    )
    histories = {
        tag: [h for h in states if not hides_state(served, manifest, who, h)]
        for tag, states in histories.items()
    }
    latest = info["latest"]
    latest_version = by_number.get(latest["version"]) if latest else None
    base = str(ui.request.base_url).rstrip("/")
    curl = None
    if latest:
        width = None
        if latest_version is not None:
            width = await anyio.to_thread.run_sync(
                artifact_width, runtime, served, model, latest_version
            )
        # Every value is shell-quoted: the example comes from a manifest, the base from Host.
        url = f"{base}/v1/models/{model}/invoke?modelId={latest['id']}"
        curl = (
            f"curl -s -X POST {shlex.quote(url)}"
            " -H 'Content-Type: application/json'"
            + ("" if manifest.is_public else ' -H "Authorization: Bearer $MREG_TOKEN"')
            + f" -d {shlex.quote(example_input(latest_version, width))}"
        )
    tags_of: dict[int, list[str]] = {}
    for row in pointers:
        if row.get("resolves_to"):
            tags_of.setdefault(row["resolves_to"]["version"], []).append(row["tag"])
    return ui.render(
        "model",
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
        example=example_input(latest_version),
    )


@get("/models/{model:str}/versions/{n:int}", name="ui-version")
async def version_page(ui: PageDep, model: FromPath[str], n: FromPath[int]) -> Template:
    runtime, served, who = ui.shown()
    manifest = readable_model(runtime, served, who, model)
    version = visibility.version(served, manifest, n, who.api)
    info = model_dict(runtime, served, manifest, full=False, viewer=who.api)
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
    width = await anyio.to_thread.run_sync(artifact_width, runtime, served, model, version)
    return ui.render(
        "version",
        model=info,
        manifest=manifest,
        version=version,
        infos=infos,
        named_by=named_by,
        example=example_input(version, width),
        invoke_url=f"/v1/models/{model}/invoke?modelId={version.id}",
    )


@get("/diff", name="ui-diff", dependencies={"ui": Provide(anywhere, sync_to_thread=False)})
async def diff_page(
    ui: PageDep,
    base: FromQuery[str | None] = None,
    head: FromQuery[str | None] = None,
) -> Template:
    runtime, who = ui.runtime, ui.viewer()
    head = head or runtime.served.revision
    for value in (base, head):
        if value and value.startswith("-"):
            raise BadRequest(f"invalid revision {value!r}")
    if not base:
        # By default: the newest commit that changed the registry, against its parent.
        newest = await anyio.to_thread.run_sync(lambda: runtime.registry.log(rev=head, limit=1))
        base = f"{newest[0].commit[:12]}~1" if newest else head
    diff = await anyio.to_thread.run_sync(visible_diff, runtime, who, base, head)
    return ui.render("diff", diff=diff, base=base, head=head)


@get("/token", name="ui-token", dependencies={"ui": Provide(anywhere, sync_to_thread=False)})
async def token_page(
    ui: PageDep,
    next: FromQuery[str | None] = None,
) -> Template:
    return ui.render("token", next=_safe_next(next), error=None)


@post("/token", name="ui-token-set", status_code=303)
async def token_set(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    origin = request.headers.get("origin")
    if origin and urlparse(origin).netloc != request.headers.get("host"):
        # Another site's form must not swap the token this browser uses here.
        raise Forbidden("the token form only accepts posts from this page")
    target = _safe_next(data.get("next"))
    token = (data.get("token") or "").strip()
    if data.get("action") == "forget" or not token:
        response: Response[Any] = Redirect(target, status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/ui")
        return response
    try:
        runtime.auth.viewer(f"Bearer {token}")
    except Unauthorized as exc:
        return Page(request, runtime, None).render("token", 401, next=target, error=exc.message)
    response = Redirect(target, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
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
            INTERNAL_MESSAGE,
        )
    page = Page(request, request.app.state.runtime, None)
    return page.render("error", status, code=code, message=message)


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect("/ui/")


ui_router = Router(
    path="/ui",
    route_handlers=[models_page, model_page, version_page, diff_page, token_page, token_set],
    include_in_schema=False,
    exception_handlers={RegistryError: _error_page, HTTPException: _error_page},
    dependencies={"ui": Provide(at_revision)},
)

UI_ROUTES: list[ControllerRouterHandler] = [
    root,
    ui_router,
    create_static_files_router(path="/ui/static", directories=[HERE / "static"]),
]
