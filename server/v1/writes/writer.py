"""The write path: one `writer` dependency runs a core write as the caller and serves its commit.

By default a write commits to the branch the server serves (the checked-out
branch) and the server swaps to the new commit before it answers; with
`?branch=NAME`, or when the server runs with `write_mode="branch"`, the commit
goes to a new branch for a pull request and the served revision stays as it
is. Writes need a token with the `write` scope (the `may_write` guard) and are
authored as the token's name. Blocking git and DVC work runs in worker threads.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec

from registry import Registry, RegistryError, WriteResult, check_write_format, named_format
from server.http.auth import may_write, runtime_of
from server.http.errors import STATUS_MEANINGS, ErrorBody
from server.runtime import Runtime
from server.runtime.errors import ReadOnlyRevision
from server.v1.writes.bodies import WriteInfo

T = TypeVar("T")
Action = Callable[[Registry, str | None], WriteResult[T]]

WRITE_MODES = ("commit", "branch")
DEFAULT_MAX_UPLOAD = 1 << 30  # 1 GiB
DEFAULT_MAX_UPLOAD_TOTAL = 4 << 30  # 4 GiB
WRITE_MEANINGS = {
    400: "Invalid request, name, field or value",
    401: "No token, or an unknown one",
    403: "The token lacks the write scope",
    404: "No such model, version or pointer",
    409: "Conflicts with the registry (exists, immutable, status, protected pointer)",
    413: "The upload is larger than the server's --max-upload",
    422: "The change would leave an invalid manifest or pointer",
    500: STATUS_MEANINGS[500],
    503: "The DVC remote cannot be reached",
    507: "The uploads in progress would exceed the server's --max-upload-total",
}


def write_errors(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        s: ResponseSpec(
            data_container=ErrorBody, description=WRITE_MEANINGS[s], generate_examples=False
        )
        for s in sorted({*statuses, 500})
    }


WRITE_ERRORS = write_errors(400, 401, 403, 404, 409, 422)
UPLOAD_ERRORS = write_errors(400, 401, 403, 404, 409, 413, 422, 503, 507)
# What every write route says: its status, tag, guard (the write scope) and errors.
WRITES: dict[str, Any] = {
    "status_code": 200,
    "tags": ["writes"],
    "guards": [may_write],
    "responses": WRITE_ERRORS,
}
CREATES: dict[str, Any] = {**WRITES, "status_code": 201}
UPLOADS: dict[str, Any] = {**WRITES, "responses": UPLOAD_ERRORS}
CREATES_WITH_UPLOAD: dict[str, Any] = {**UPLOADS, "status_code": 201}


@dataclass(frozen=True)
class WriteSettings:
    """How this server writes: straight to the served branch (commit) or to new branches."""

    mode: str = "commit"
    max_upload: int = DEFAULT_MAX_UPLOAD
    max_upload_total: int = DEFAULT_MAX_UPLOAD_TOTAL
    """The bound on the bytes of all uploads in progress together (507 beyond it)."""
    # Code-running formats (registry.format_policy) may be uploaded, on a branch only.
    allow_code_formats: bool = False


def check_settings(
    mode: str,
    max_upload: int,
    max_upload_total: int = DEFAULT_MAX_UPLOAD_TOTAL,
    allow_code_formats: bool = False,
) -> WriteSettings:
    if mode not in WRITE_MODES:
        raise RegistryError(f"unknown write mode {mode!r}: use {' or '.join(WRITE_MODES)}")
    if max_upload < 1:
        raise RegistryError("max_upload must be at least 1 byte")
    if max_upload_total < 1:
        raise RegistryError("max_upload_total must be at least 1 byte")
    return WriteSettings(mode, max_upload, max_upload_total, allow_code_formats)


@dataclass(frozen=True)
class Writer:
    """A caller allowed to write (the guard checked), and how this server writes."""

    runtime: Runtime
    who: str
    settings: WriteSettings

    @property
    def registry(self) -> Registry:
        return self.runtime.registry

    async def commit(
        self,
        model: str,
        branch: str | None,
        action: Action[T],
        *,
        check: Callable[[Registry, str | None], None] | None = None,
    ) -> tuple[T, WriteInfo]:
        """Run `action` in a worker thread as the caller (after `check`, given the registry and
        the branch); serve its commit when it lands here."""
        if branch is None and self.settings.mode == "branch":
            branch = f"mreg/{model}-{secrets.token_hex(4)}"
        runtime, who = self.runtime, self.who

        def run() -> WriteResult[T]:
            if branch is None and not runtime.serves_checked_out():
                raise ReadOnlyRevision(
                    f"this server serves {runtime.rev}, not the checked-out branch:"
                    " write to a new branch with ?branch=NAME"
                )
            if check is not None:
                check(runtime.registry, branch)
            with runtime.registry.authored_as(who, f"{who}@mreg.invalid"):
                return action(runtime.registry, branch)

        result = await anyio.to_thread.run_sync(run)
        if result.branch is None and result.commit is not None:
            await runtime.reload()
        info = WriteInfo(
            subject=result.subject,
            commit=result.commit,
            branch=result.branch,
            tag=result.tag,
            paths=list(result.paths),
            revision=runtime.served.revision,
        )
        return result.value, info

    def trusted_format(
        self, fmt: str | None, filename: str
    ) -> Callable[[Registry, str | None], None]:
        """The check of an uploaded artifact's format: registry.format_policy's rule for HTTP."""
        allow = self.settings.allow_code_formats

        def check(reg: Registry, branch: str | None) -> None:
            named = named_format(fmt, filename)
            if named is not None:
                trusted = reg.snapshot("HEAD", models=[]).settings().trusted_formats
                check_write_format(named, trusted, branch=branch, allow_code_formats=allow)

        return check

    async def unchanged(self, read: Callable[[Registry], T]) -> tuple[T, WriteInfo]:
        """An empty patch changes nothing: answer with what is there, and no commit."""
        value = await anyio.to_thread.run_sync(read, self.registry)
        return value, WriteInfo("no change", None, None, None, [], self.runtime.served.revision)


def writer(request: Request[Any, Any, Any]) -> Writer:
    runtime = runtime_of(request)
    settings = getattr(request.app.state, "writes", None)
    who = runtime.auth.viewer(request.headers.get("authorization")).who
    return Writer(
        runtime, who, settings if isinstance(settings, WriteSettings) else WriteSettings()
    )


WRITER = {"writer": Provide(writer, sync_to_thread=False)}
WriterDep = NamedDependency[Writer]
