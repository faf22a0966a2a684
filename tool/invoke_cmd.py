"""`mreg invoke`: call a model on a running server."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click

from registry import RegistryError, parse_ref
from tool.base import cli, fail


@cli.command()
@click.argument("ref")
@click.option(
    "--data", "data", help="One input as JSON (e.g. '[5.1, 3.5, 1.4, 0.2]'); @FILE reads a file."
)
@click.option("--inputs", "inputs", help="A batch as a JSON list of inputs; @FILE reads a file.")
@click.option(
    "--url",
    envvar="MREG_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The server's base URL (default: the MREG_URL variable, else this).",
)
@click.option(
    "--token", envvar="MREG_TOKEN", help="Bearer token (default: the MREG_TOKEN variable)."
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait.")
def invoke(
    ref: str, data: str | None, inputs: str | None, url: str, token: str | None, timeout: float
) -> None:
    """Call a running mreg server with one input or a batch, and print its JSON answer.

    REF is MODEL, MODEL:TAG (a pointer, v<n> or latest) or a version id.
    Without --data or --inputs, one input is read as JSON from stdin.

    \b
    Examples:
        mreg invoke iris --data '[5.1, 3.5, 1.4, 0.2]'
        mreg invoke iris:prod --inputs '[[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]'
        mreg invoke mv_3f9c2a1b7d4e5f60 --data @row.json --url http://models:8000
    """
    parsed = parse_ref(ref)
    if data is not None and inputs is not None:
        fail("give --data or --inputs, not both")
    body: dict[str, Any]
    if inputs is not None:
        body = {"inputs": _json_arg(inputs, "--inputs")}
    else:
        body = {"data": _json_arg(data if data is not None else "@-", "--data")}
    base = url.rstrip("/")
    if parsed.version_id is not None:
        endpoint = f"{base}/v1/runs"
        body["pipeline"] = parsed.version_id
    else:
        assert parsed.model is not None
        endpoint = f"{base}/v1/models/{urllib.parse.quote(parsed.model)}/invoke"
        if parsed.tag:
            endpoint += "?" + urllib.parse.urlencode({"pointer": parsed.tag})
    request = urllib.request.Request(
        endpoint,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        fail(f"{exc.code} {_error_message(exc.read())}")
        return
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        fail(f"cannot reach {base}: {reason}")
        return
    click.echo(json.dumps(answer, indent=2))


def _json_arg(text: str, option: str) -> Any:
    if text.startswith("@"):
        name = text[1:]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            raise RegistryError(f"{option}: cannot read {name}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RegistryError(f"{option} is not valid JSON: {exc}") from None


def _error_message(raw: bytes) -> str:
    try:
        error = json.loads(raw)["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:200]
