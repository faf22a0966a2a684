"""Delivering events to webhooks, off the request path (started and stopped with the Runtime).

The Runtime calls `revision_changed(old, new)` when it swaps to a new revision;
that only queues the pair. A background task derives the events from the
revision diff (`registry.events_between`, in a worker thread) and gives each
webhook that wants them a delivery. One sender task per webhook posts its
deliveries in order, signed, and retries a failing one with exponential
backoff until its webhook's retry window has passed (each delivery gets at
least one attempt). Queues are bounded: revisions beyond `MAX_RANGES` are
merged into one range (the diff of the merged range says what changed), and
a webhook's backlog beyond `MAX_PENDING` drops its oldest delivery, marked
`dropped` in the delivery log. Deliveries in memory are lost when the server stops.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import anyio.to_thread

from registry import Event, Registry, RegistryError, events_between, rfc3339
from server.runtime.webhook_config import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Webhook,
    sign,
)

log = logging.getLogger("mreg.server.webhooks")

MAX_RANGES = 64
"""Revision changes waiting for their events; beyond this they are merged into one range."""
MAX_PENDING = 1000
"""Deliveries one webhook may have waiting; beyond this the oldest is dropped."""
MAX_LOG = 1000
"""Deliveries the log keeps (the newest)."""
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 300.0


class DeliveryStatus(Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Attempt:
    """One POST: when, the receiver's status code (None: no answer) or why it failed."""

    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": rfc3339(self.at),
            "status_code": self.status_code,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass
class Delivery:
    """One event for one webhook, with every attempt made so far."""

    webhook: Webhook
    event: Event
    body: bytes
    id: str = field(default_factory=lambda: "dlv_" + uuid.uuid4().hex[:20])
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.monotonic)
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: list[Attempt] = field(default_factory=list)
    next_attempt: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        due = self.next_attempt - time.monotonic()
        return {
            "id": self.id,
            "webhook": self.webhook.name,
            "url": self.webhook.url,
            "event": self.event.type,
            "event_id": self.event.id,
            "revision": self.event.revision,
            "status": self.status.value,
            "created_at": rfc3339(self.created_at),
            "attempts": [a.to_dict() for a in self.attempts],
            "next_attempt_in": round(max(due, 0.0), 1)
            if self.status is DeliveryStatus.PENDING
            else None,
        }


def _no_redirects() -> urllib.request.OpenerDirector:
    class Refuse(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # a redirect is the receiver's answer (3xx), never followed with the body

    return urllib.request.build_opener(Refuse)


_OPENER = _no_redirects()


def post(delivery: Delivery) -> Attempt:
    """One signed POST of the delivery (blocking: runs in a worker thread)."""
    hook = delivery.webhook
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        hook.url,
        data=delivery.body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "mreg-webhooks",
            EVENT_HEADER: delivery.event.type,
            DELIVERY_HEADER: delivery.id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(hook.secret, timestamp, delivery.body),
        },
    )
    at, start = datetime.now(UTC), time.monotonic()
    code: int | None = None
    error: str | None = None
    try:
        with _OPENER.open(request, timeout=hook.timeout) as response:
            code = response.status
            response.read(65536)
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        error = str(getattr(exc, "reason", exc)) or type(exc).__name__
    return Attempt(at, code, error, (time.monotonic() - start) * 1000)


class Webhooks:
    """The webhooks a server delivers to, their queues and the delivery log."""

    def __init__(self, registry: Registry, hooks: list[Webhook]) -> None:
        self.registry = registry
        self.hooks = hooks
        self.log: deque[Delivery] = deque(maxlen=MAX_LOG)
        self.dropped = 0
        self._ranges: deque[tuple[str, str]] = deque()
        self._pending: dict[str, deque[Delivery]] = {h.name: deque() for h in hooks}
        self._wake: dict[str, asyncio.Event] = {}
        self._changed: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self.hooks:
            return
        self._changed = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._derive_loop()))
        for hook in self.hooks:
            self._wake[hook.name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._send_loop(hook)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def revision_changed(self, old: str, new: str) -> None:
        """The server swapped from commit `old` to `new`: queue their events (never blocks)."""
        if not self.hooks or old == new:
            return
        if len(self._ranges) >= MAX_RANGES:
            first, _ = self._ranges.pop()
            old = first  # one range from the last queued base to `new`
        self._ranges.append((old, new))
        if self._changed is not None:
            self._changed.set()

    def deliveries(self, limit: int, status: str | None = None) -> list[dict[str, Any]]:
        """The newest deliveries first."""
        shown = [d for d in reversed(self.log) if status is None or d.status.value == status]
        return [d.to_dict() for d in shown[:limit]]

    def pending(self) -> int:
        return sum(len(q) for q in self._pending.values())

    # -- the background tasks ------------------------------------------------------

    async def _derive_loop(self) -> None:
        assert self._changed is not None
        while True:
            await self._changed.wait()
            self._changed.clear()
            while self._ranges:
                old, new = self._ranges.popleft()
                try:
                    events = await anyio.to_thread.run_sync(events_between, self.registry, old, new)
                except RegistryError as exc:
                    log.warning("no events for %s..%s: %s", old[:12], new[:12], exc)
                    continue
                except Exception:  # this task must outlive any one diff; the error is logged
                    log.exception("no events for %s..%s", old[:12], new[:12])
                    continue
                self._enqueue(events)

    def _enqueue(self, events: list[Event]) -> None:
        stamp = rfc3339(datetime.now(UTC))
        for event in events:
            body = json.dumps(event.payload(stamp), sort_keys=True).encode()
            for hook in self.hooks:
                if not hook.wants(event.type):
                    continue
                delivery = Delivery(hook, event, body)
                queue = self._pending[hook.name]
                if len(queue) >= MAX_PENDING:
                    queue.popleft().status = DeliveryStatus.DROPPED
                    self.dropped += 1
                queue.append(delivery)
                self.log.append(delivery)
                self._wake[hook.name].set()

    async def _send_loop(self, hook: Webhook) -> None:
        queue, wake = self._pending[hook.name], self._wake[hook.name]
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            delivery = queue[0]
            wait = delivery.next_attempt - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            # A receiver that hangs must not hold up the server's shutdown: the thread may end later.
            try:
                attempt = await anyio.to_thread.run_sync(post, delivery, abandon_on_cancel=True)
            except Exception as exc:  # a failed attempt, shown in the log; the sender goes on
                log.exception("webhook %s: attempt failed", hook.name)
                attempt = Attempt(datetime.now(UTC), None, repr(exc), 0.0)
            delivery.attempts.append(attempt)
            if queue and queue[0] is not delivery:
                continue  # dropped from the backlog while it was in flight
            ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
            if ok or time.monotonic() - delivery.started >= hook.retry_window:
                delivery.status = DeliveryStatus.DELIVERED if ok else DeliveryStatus.FAILED
                queue.popleft()
                if not ok:
                    log.warning(
                        "webhook %s: gave up on %s after %d attempts: %s",
                        hook.name,
                        delivery.event.type,
                        len(delivery.attempts),
                        attempt.error,
                    )
                continue
            backoff = min(FIRST_BACKOFF * 2 ** (len(delivery.attempts) - 1), MAX_BACKOFF)
            left = hook.retry_window - (time.monotonic() - delivery.started)
            delivery.next_attempt = time.monotonic() + min(backoff, left)  # the last at the edge
