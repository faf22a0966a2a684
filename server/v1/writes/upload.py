"""Bodies read by hand: an artifact streamed to a file of its own (md5-checked, bounded), and a
new version's JSON fields (the same route takes an artifact), with their OpenAPI."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import msgspec
from litestar import Request
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import HeaderParameter

from registry import Registry, receive_upload
from server.http import DEFAULT_MAX_BODY
from server.http.openapi import JSON, OCTET_STREAM, bytes_body, struct_body
from server.runtime.errors import BadRequest, BodyTooLarge, Md5Mismatch
from server.v1.writes.bodies import VersionCreate
from server.v1.writes.writer import WriteSettings

MD5_PATTERN = r"^([A-Za-z0-9+/]{22}==|[0-9a-fA-F]{32})?$"


def md5_header(description: str) -> Any:
    return HeaderParameter(
        name="Content-MD5", description=description, pattern=MD5_PATTERN, required=False
    )


def expected_md5(header: str | None) -> str | None:
    """Content-MD5 as RFC 1864 says (base64 of the digest), or as 32 hex digits."""
    if header is None:
        return None
    text = header.strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise BadRequest(
            "invalid Content-MD5: expected the base64 of the 16-byte md5 digest (or 32 hex digits)"
        )
    return raw.hex()


@contextlib.asynccontextmanager
async def received(
    request: Request[Any, Any, Any],
    reg: Registry,
    filename: str,
    content_md5: str,
    settings: WriteSettings,
) -> AsyncIterator[Path]:
    """The request body streamed to a file of its own (md5-checked, at most `max_upload` bytes,
    all uploads in progress at most `max_upload_total`: 507 beyond).

    The spool (registry.receive_upload) is removed when the block ends, however it ends:
    an interrupted or refused upload leaves nothing behind.
    """
    expected = expected_md5(content_md5 or None)
    limit = settings.max_upload
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the upload is larger than {limit} bytes")
    total = settings.max_upload_total
    with receive_upload(reg.state_dir, total, request.content_length) as spool:
        path = spool.folder / filename
        digest = hashlib.md5()
        size = 0
        # Unbuffered: what was received is on disk (the spool counts it, a crash leaves it whole).
        async with await anyio.open_file(path, "wb", buffering=0) as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"the upload is larger than {limit} bytes")
                spool.check(size)
                digest.update(chunk)
                await out.write(chunk)
        if size == 0:
            raise BadRequest("the upload is empty: send the artifact's bytes")
        if expected is not None and digest.hexdigest() != expected:
            raise Md5Mismatch(
                f"the body's md5 is {digest.hexdigest()}, Content-MD5 says {expected}:"
                " the upload was damaged, send it again"
            )
        yield path


@dataclass
class UploadOperation(Operation):
    """The upload's body is raw bytes, streamed: Litestar cannot infer that from the handler."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={OCTET_STREAM: bytes_body()},
            description="The artifact's bytes (streamed to disk, never held in memory)",
            required=True,
        )


@dataclass
class CreateVersionOperation(Operation):
    """A new version comes as JSON fields (untrained) or as the artifact's bytes (trained)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={JSON: struct_body(VersionCreate), OCTET_STREAM: bytes_body()},
            description="Version fields (an untrained version), or the artifact's bytes"
            " (a trained version, streamed to disk; see filename and format)",
            required=True,
        )


async def json_fields(request: Request[Any, Any, Any]) -> VersionCreate:
    """The JSON body, bounded by the app's body limit (the route lifts it for artifacts)."""
    limit = getattr(request.app, "request_max_body_size", None) or DEFAULT_MAX_BODY
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
    try:
        return msgspec.json.decode(bytes(body) or b"{}", type=VersionCreate)
    except msgspec.DecodeError as exc:
        raise BadRequest(
            f"invalid request: {exc}; expected a JSON body of version fields"
            ' (e.g. {"input_info": {...}}) or the artifact as application/octet-stream'
        ) from None
