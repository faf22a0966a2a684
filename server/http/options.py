"""OPTIONS that lists every method of a path.

Litestar's own OPTIONS handler keeps the methods of the first handler registered
on a path; a Controller whose paths several handlers share declares this one
first (`options = allowed_methods(...)` at the top of the class), so it answers
for all of them.
"""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Request, Response, route
from litestar.handlers import HTTPRouteHandler


def allowed_methods(*paths: str) -> HTTPRouteHandler:
    """An OPTIONS handler for a Controller's `paths` (relative to its own path)."""

    def options(self: Any, request: Request[Any, Any, Any]) -> Response[None]:
        template = request.scope.get("path_template")
        methods = next(
            (r.methods for r in request.app.routes if template in (r.path, r.path_format)),
            {"OPTIONS"},
        )
        return Response(None, status_code=204, headers={"Allow": ", ".join(sorted(methods))})

    handler = route(
        list(paths), http_method=[HttpMethod.OPTIONS], include_in_schema=False, sync_to_thread=False
    )
    return handler(options)
