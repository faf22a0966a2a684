"""Who calls: one `caller` dependency (the Authorization header, or the web page's cookie), and
guards for the scopes a whole resource needs (admin, write).

Read and invoke permissions depend on the model (public models need no token),
so they are checked where the model is known: in the runtime's invoker and
visibility rules, not here.

Every guard and dependency of the server is async or `sync_to_thread=False`:
Litestar runs a plain sync guard in its thread pool, a thread hop on every
request (tests/test_code_layout.py checks it). The dependencies form one chain
(runtime -> caller -> invoker -> a V2 target), so Litestar resolves them one by
one: dependencies of the same depth it resolves in an anyio task group, a task
spawned for each, which cost more than the dependencies themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler

from registry import ModelManifest, VersionManifest
from server.http.errors import mark_invoked
from server.http.params import ModelName
from server.runtime import Call, InvokeResponse, Pin, Runtime, Served, Viewer, visibility
from server.runtime.errors import WritesDisabled

ROUTE_KEY_HEADER = "X-Mreg-Route-Key"  # a weighted pointer's arm is sticky per routing key
TOKEN_COOKIE = "mreg_token"  # set by the web page's token form (HttpOnly, SameSite=Strict, /ui)

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def authorization(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The Authorization header, else the page's token cookie as a bearer token."""
    header = connection.headers.get("authorization")
    if header:
        return header
    token = connection.cookies.get(TOKEN_COOKIE)
    return f"Bearer {token}" if token else None


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


def caller(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Viewer:
    """Who the caller is and what it may see; 401 for a malformed or unknown token."""
    return runtime.auth.viewer(authorization(request))


def requires(scope: str) -> Guard:
    """A guard: 401 or 403 unless the caller's token holds `scope` (any caller without tokens)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        auth = runtime_of(connection).auth
        auth.check(auth.viewer(connection.headers.get("authorization")), scope)

    return guard


async def may_write(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Writes need a token with the `write` scope, always.

    A server without tokens is open for reads and invokes on loopback, but never
    for writes: any web page a developer opens could otherwise post a form to
    http://127.0.0.1:8000/v1/models/iris/archive, which needs no CORS preflight.
    """
    auth = runtime_of(connection).auth
    if not auth.enabled:
        raise WritesDisabled(
            "writes over HTTP need a token with the 'write' scope:"
            " start mreg serve with --tokens FILE (or MREG_TOKENS)"
        )
    auth.check(auth.viewer(connection.headers.get("authorization")), "write")


def runtime(request: Request[Any, Any, Any]) -> Runtime:
    return runtime_of(request)


# What handlers declare: `runtime: RuntimeDep`, `caller: Caller`.
RuntimeDep = NamedDependency[Runtime]
Caller = NamedDependency[Viewer]


@dataclass(frozen=True)
class Invocation:
    """The invoker, for this request and its caller: what an inference handler calls."""

    request: Request[Any, Any, Any]
    runtime: Runtime
    caller: Viewer

    async def __call__(
        self,
        call: Call,
        model: str,
        pin: Pin,
        inputs: list[Any] | Callable[[VersionManifest], list[Any]],
        *,
        agree: Sequence[Pin] = (),
        route_key: str | None = None,
    ) -> tuple[InvokeResponse, str]:
        """Invoke as the caller; the routing key is the body's (`route_key`), else the header's."""
        mark_invoked(self.request)  # from here on the invoker records the call, however it ends
        invoker = self.runtime.invoker
        key = route_key if route_key is not None else self.request.headers.get(ROUTE_KEY_HEADER)
        return await invoker.invoke(
            call, model, pin, inputs, self.caller, agree=agree, route_key=key
        )


def invocation(request: Request[Any, Any, Any], runtime: RuntimeDep, caller: Caller) -> Invocation:
    return Invocation(request, runtime, caller)


Invoker = NamedDependency[Invocation]


@dataclass(frozen=True)
class Seen:
    """The model a read's `{model}` names, as the caller may see it (hidden: not found)."""

    runtime: Runtime
    served: Served
    model: ModelManifest
    caller: Viewer


def seen_model(runtime: RuntimeDep, caller: Caller, model: ModelName) -> Seen:
    served = runtime.served
    return Seen(runtime, served, visibility.model(served, model, caller), caller)


SeenModel = NamedDependency[Seen]

DEPENDENCIES = {
    "runtime": Provide(runtime, sync_to_thread=False),
    "caller": Provide(caller, sync_to_thread=False),
    "invoker": Provide(invocation, sync_to_thread=False),
    "seen": Provide(seen_model, sync_to_thread=False),
}
