"""Webhooks: configured outside Git (like tokens), and how a delivery is signed.

A webhooks file (YAML or JSON) is a list, or a map with a ``webhooks`` list, of::

    - name: ci                           # optional; default: the URL
      url: https://ci.example.com/mreg   # http or https
      events: [model_version.created, pointer.moved]   # optional; default (or "*"): all
      secret: a-long-random-string       # signs every delivery
      retry_window: 3600                 # optional: seconds a failing delivery is retried
      timeout: 10                        # optional: seconds one attempt may take

A delivery is a POST of the event's JSON payload with the headers
``X-Mreg-Event``, ``X-Mreg-Delivery-Id``, ``X-Mreg-Timestamp`` (Unix seconds)
and ``X-Mreg-Signature: v1,<base64 HMAC-SHA256 of "<timestamp>.<body>">``, the
secret as the key (MLflow's format, without the delivery id in the signed text).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

from registry import EVENT_TYPES
from server.runtime.config_file import ConfigError, config_entries, read_config

SIGNATURE_HEADER = "X-Mreg-Signature"
TIMESTAMP_HEADER = "X-Mreg-Timestamp"
DELIVERY_HEADER = "X-Mreg-Delivery-Id"
EVENT_HEADER = "X-Mreg-Event"
SIGNATURE_VERSION = "v1"

DEFAULT_RETRY_WINDOW = 3600.0
DEFAULT_TIMEOUT = 10.0
KEYS = {"name", "url", "events", "secret", "retry_window", "timeout"}
ALL = ("*", "all")


class WebhookConfigError(ConfigError):
    code = "invalid_webhooks"


@dataclass(frozen=True)
class Webhook:
    """Where events go: `events` None means every event type."""

    name: str
    url: str
    secret: str
    events: frozenset[str] | None = None
    retry_window: float = DEFAULT_RETRY_WINDOW
    timeout: float = DEFAULT_TIMEOUT

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events

    def to_dict(self) -> dict[str, Any]:
        """What the delivery log shows of it (never the secret)."""
        return {
            "name": self.name,
            "url": self.url,
            "events": sorted(self.events) if self.events is not None else ["*"],
            "retry_window": self.retry_window,
        }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Mreg-Signature value: `v1,` and the base64 HMAC-SHA256 of `timestamp.body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac.digest()).decode()}"


def _seconds(entry: dict[str, Any], key: str, default: float, where: str) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise WebhookConfigError(f"{where}: {key} must be a number of seconds above 0")
    return float(value)


def _events(value: Any, where: str) -> frozenset[str] | None:
    if value is None or value in ALL or value == list(ALL[:1]):
        return None
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        raise WebhookConfigError(f"{where}: events must be a non-empty list of event types, or '*'")
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise WebhookConfigError(
            f"{where}: unknown event {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})"
        )
    return frozenset(value)


def _webhook(entry: Any, i: int, where: str) -> Webhook:
    if not isinstance(entry, dict):
        raise WebhookConfigError(f"{where}: webhook #{i} is not a map")
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise WebhookConfigError(f"{where}: webhook #{i}: unknown key {unknown[0]!r}")
    url = entry.get("url")
    parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WebhookConfigError(f"{where}: webhook #{i}: url must be an http:// or https:// URL")
    assert isinstance(url, str)
    name = entry.get("name", url)
    if not isinstance(name, str) or not name:
        raise WebhookConfigError(f"{where}: webhook #{i}: name must be a non-empty string")
    label = f"{where}: webhook {name!r}"
    secret = entry.get("secret")
    if not isinstance(secret, str) or not secret:
        raise WebhookConfigError(
            f"{label}: secret must be a non-empty string (it signs deliveries)"
        )
    return Webhook(
        name=name,
        url=url,
        secret=secret,
        events=_events(entry.get("events"), label),
        retry_window=_seconds(entry, "retry_window", DEFAULT_RETRY_WINDOW, label),
        timeout=_seconds(entry, "timeout", DEFAULT_TIMEOUT, label),
    )


def parse_webhooks(data: Any, where: str) -> list[Webhook]:
    entries = config_entries(data, "webhooks", where, WebhookConfigError)
    hooks = [_webhook(entry, i, where) for i, entry in enumerate(entries, start=1)]
    names = [h.name for h in hooks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise WebhookConfigError(f"{where}: two webhooks are named {twice[0]!r}")
    return hooks


def load_webhooks(path: str | os.PathLike[str] | None) -> list[Webhook]:
    """The webhooks of a YAML or JSON file (none without a file)."""
    if path is None:
        return []
    return parse_webhooks(*read_config(path, "webhooks", WebhookConfigError))
