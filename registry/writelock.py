"""The write lock: one writer of a repository at a time, served first come, first served.

`flock` alone is not fair: when it is released, whichever waiter polls
first wins, so a process that retries quickly (a server thread) starves the
others (CLI writers waited up to 30 s behind 8 HTTP writers). Here each
writer draws a ticket: under a short flock on `queue.lock` it takes the next
number from `queue.counter` and creates `queue/<number>` holding an flock on
it for as long as it waits or writes. It then waits for its predecessor (the
highest number below its own) to release that file, and so on until none is
left: tickets are served in the order they were drawn.

A writer killed while waiting or writing releases its flock with its
process: its successor takes the lock, sees the file is still there and
removes it. `write.lock` is taken last, so mreg versions without the queue
still exclude each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from registry.errors import ConflictError

QUEUE = "queue"
POLL = 0.01
"""Seconds between checks of the predecessor's lock (only the predecessor is polled)."""


class LockTimeoutError(ConflictError):
    """The write lock was not granted in time."""


@contextlib.contextmanager
def write_lock(state_dir: Path, timeout: float = 60.0) -> Iterator[None]:
    """Hold the repository's write lock; waiters are served in arrival order (processes, threads).

    Raises LockTimeoutError, saying how long it waited and behind how many
    writers, when the lock is not granted within `timeout` seconds.
    """
    started = time.monotonic()
    deadline = started + timeout
    queue = state_dir / QUEUE
    queue.mkdir(parents=True, exist_ok=True)
    number, ticket_fd = _draw(state_dir, queue)
    ticket = queue / f"{number:012d}"
    fd = -1
    try:
        ahead = _wait_turn(queue, number, deadline, started)
        fd = os.open(state_dir / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
        _flock(fd, deadline, lambda: _timeout(started, ahead, "an older mreg version's write"))
        yield
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            ticket.unlink()
        os.close(ticket_fd)  # the successor's wait ends here


def _draw(state_dir: Path, queue: Path) -> tuple[int, int]:
    """The next ticket number, and the fd holding the flock on its file."""
    guard = os.open(state_dir / "queue.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)  # held for a few file operations only
        counter = state_dir / "queue.counter"
        try:
            number = int(counter.read_text() or 0) + 1
        except (FileNotFoundError, ValueError):
            number = 1
        # Never behind a ticket left by a counter that was lost or reset.
        existing = [int(p.name) for p in queue.iterdir() if p.name.isdigit()]
        number = max([number, *(n + 1 for n in existing)])
        counter.write_text(str(number))
        fd = os.open(queue / f"{number:012d}", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return number, fd
    finally:
        os.close(guard)


def _wait_turn(queue: Path, number: int, deadline: float, started: float) -> int:
    """Wait until no ticket below `number` is held; the number of writers that were ahead."""
    ahead = sum(1 for p in queue.iterdir() if p.name.isdigit() and int(p.name) < number)
    while True:
        earlier = sorted(int(p.name) for p in queue.iterdir() if p.name.isdigit())
        earlier = [n for n in earlier if n < number]
        if not earlier:
            return ahead
        predecessor = queue / f"{earlier[-1]:012d}"
        try:
            fd = os.open(predecessor, os.O_RDONLY)
        except FileNotFoundError:
            continue  # it finished meanwhile
        try:
            _flock(fd, deadline, lambda: _timeout(started, ahead, f"{ahead} earlier writes"))
            # Granted: its writer finished (and removed it) or died (and left it).
            with contextlib.suppress(FileNotFoundError):
                predecessor.unlink()
        finally:
            os.close(fd)


def _flock(fd: int, deadline: float, error: Callable[[], Exception]) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise error() from None
            time.sleep(POLL)


def _timeout(started: float, ahead: int, behind: str) -> LockTimeoutError:
    waited = time.monotonic() - started
    return LockTimeoutError(
        f"another mreg write is still running on this registry: waited {waited:.0f} s"
        f" for the write lock behind {behind}: retry later",
        detail={"waited_seconds": round(waited, 1), "ahead": ahead},
    )
