"""Where uploaded artifacts wait while they arrive: `.git/mreg/uploads/`, bounded and self-cleaning.

Each upload gets a folder of its own and holds an flock on its `.owner`
file while it lives. A process killed mid-upload leaves its folder, but the
kernel drops its lock: `clean_uploads` (run when a server starts) removes exactly the
folders nobody holds, never one another worker is still receiving. The bytes
of every live upload together stay under a total bound, so that killed or
concurrent uploads cannot fill the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from registry.errors import RegistryError

UPLOADS = "uploads"
OWNER = ".owner"
ORPHAN_SECONDS = 60.0
"""A folder without an owner file this old was made by a process killed before it took it."""


class UploadSpaceError(RegistryError):
    """The uploads waiting on this server would exceed their total bound."""

    code = "insufficient_storage"
    status = 507


class Upload:
    """One upload's folder; `check(size)` refuses it once the total bound would be exceeded."""

    def __init__(self, folder: Path, room: int, total: int) -> None:
        self.folder = folder
        self.room = room
        """Bytes this upload may take: the bound less what the other uploads held at its start."""
        self.total = total

    def check(self, size: int) -> None:
        if size > self.room:
            raise UploadSpaceError(
                f"the uploads in progress on this server would exceed {self.total} bytes"
                f" (--max-upload-total; {self.total - self.room} in use): retry later"
            )


def uploads_dir(state_dir: Path) -> Path:
    return state_dir / UPLOADS


def clean_uploads(state_dir: Path) -> list[Path]:
    """Remove the folders of uploads whose process is gone; the folders removed."""
    root = uploads_dir(state_dir)
    if not root.is_dir():
        return []
    removed = []
    for entry in root.iterdir():
        if entry.is_dir() and not _held(entry):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        elif not entry.is_dir():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
            removed.append(entry)
    return removed


def in_use(state_dir: Path) -> int:
    """Bytes held by the uploads in progress (or left by killed ones not cleaned yet)."""
    root = uploads_dir(state_dir)
    total = 0
    if root.is_dir():
        for dirpath, _, files in os.walk(root):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(dirpath, name)).st_size
    return total


@contextlib.contextmanager
def receive_upload(state_dir: Path, total: int, expected: int | None = None) -> Iterator[Upload]:
    """A folder for one upload, removed when the block ends, however it ends.

    `expected` (the Content-Length, when given) is refused up front when it
    would not fit beside the uploads in progress.
    """
    root = uploads_dir(state_dir)
    root.mkdir(parents=True, exist_ok=True)
    room = max(total - in_use(state_dir), 0)
    if expected is not None:
        Upload(root, room, total).check(expected)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=root))
    fd = os.open(folder / OWNER, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield Upload(folder, room, total)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def _held(folder: Path) -> bool:
    """True while a live process holds the folder's owner lock."""
    try:
        fd = os.open(folder / OWNER, os.O_RDONLY)
    except FileNotFoundError:
        # Its maker was killed between creating it and taking the lock, or is in between now.
        try:
            return time.time() - folder.stat().st_mtime < ORPHAN_SECONDS
        except FileNotFoundError:
            return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
