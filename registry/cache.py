"""Parsed manifests, cached by git blob id.

A blob id names content, so an entry can never be stale: reading the same
revision twice, or a revision that differs in a few files, parses only what
changed. Entries live in memory and, when a path is given, in a SQLite file
outside the work tree (``.git/mreg/cache.sqlite``) so that a new process
starts warm.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


@contextmanager
def bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while many long-lived objects are built.

    Manifests are loaded by the hundred thousand on a large registry, and kept;
    with the collector on, each new generation of them makes it rescan all the
    older ones (measured: 23 us a manifest instead of 5 at 10,000 x 10).
    Afterwards the survivors are frozen (`gc.freeze`), so later collections skip them.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # What was built is kept (the cache holds it) and holds no cycles: move it
        # out of the collector's sight for good instead of rescanning it later.
        gc.freeze()
        if enabled:
            gc.enable()


class ManifestCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.parses = 0
        """How many manifests were parsed from text (cache misses); tests count these."""
        self._memory: dict[tuple[str, str], BaseModel] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        # ids indexes (tree -> revision, data), oldest first, when there is no SQLite file
        self._indexes: dict[str, tuple[str, bytes]] = {}

    def _conn(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False, timeout=5)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS manifests"
                    " (kind TEXT, blob TEXT, data BLOB, PRIMARY KEY (kind, blob))"
                )
                db.execute("CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY)")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS version_ids"
                    " (tree TEXT PRIMARY KEY, revision TEXT, made INTEGER, data BLOB)"
                )
            except sqlite3.Error:
                # A cache that cannot be opened is only slower, never wrong.
                self.path = None
                return None
            self._db = db
        return self._db

    def get_many(self, kind: type[M], blobs: Iterable[str]) -> dict[str, M]:
        name = kind.__name__
        found: dict[str, M] = {}
        missing: list[str] = []
        with self._lock, bulk_allocation():
            for blob in blobs:
                hit = self._memory.get((name, blob))
                if hit is not None:
                    found[blob] = hit  # type: ignore[assignment]
                else:
                    missing.append(blob)
            db = self._conn()
            if db is None or not missing:
                return found
            try:
                for blob, data in _stored(db, name, missing):
                    manifest = kind.model_validate_json(data)
                    self._memory[(name, blob)] = manifest
                    found[blob] = manifest
            except (sqlite3.Error, ValueError):
                pass
        return found

    def get_json(self, kind: str, blobs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cached manifests of `kind` (a class name) as plain dicts, without pydantic.

        What `put_many` stored: `model_dump_json()` of a manifest that was validated,
        keyed by blob id, so it is the exact content of that blob. For readers that
        need a few fields fast (registry/quick.py); absent blobs are left out.
        """
        wanted = list(dict.fromkeys(blobs))
        db = self._conn() if self.path is not None and self.path.is_file() else None
        found: dict[str, dict[str, Any]] = {}
        if db is None:
            return found
        with self._lock:
            try:
                found.update((blob, json.loads(data)) for blob, data in _stored(db, kind, wanted))
            except (sqlite3.Error, ValueError):
                return {}
        return found

    def put_many(self, kind: type[M], parsed: Mapping[str, M]) -> None:
        if not parsed:
            return
        name = kind.__name__
        with self._lock:
            for blob, manifest in parsed.items():
                self._memory[(name, blob)] = manifest
            db = self._conn()
            if db is None:
                return
            try:
                with db:
                    db.executemany(
                        "INSERT OR REPLACE INTO manifests (kind, blob, data) VALUES (?, ?, ?)",
                        [(name, b, m.model_dump_json()) for b, m in parsed.items()],
                    )
            except sqlite3.Error:
                pass

    def remembers(self, fact: str) -> bool:
        """Whether `fact` was recorded; facts are about content (a commit sha), so never stale."""
        db = self._conn()
        if db is None:
            return False
        with self._lock:
            try:
                row = db.execute("SELECT 1 FROM facts WHERE key = ?", (fact,)).fetchone()
            except sqlite3.Error:
                return False
        return row is not None

    def remember(self, fact: str) -> None:
        db = self._conn()
        if db is None:
            return
        with self._lock:
            try:
                with db:
                    db.execute("INSERT OR IGNORE INTO facts (key) VALUES (?)", (fact,))
            except sqlite3.Error:
                pass

    # -- the ids index (registry/ids.py): one compressed map per models/ tree id --

    def get_index(self, tree: str) -> bytes | None:
        db = self._conn()
        if db is None:
            return self._indexes[tree][1] if tree in self._indexes else None
        with self._lock:
            try:
                row = db.execute("SELECT data FROM version_ids WHERE tree = ?", (tree,)).fetchone()
            except sqlite3.Error:
                return None
        return bytes(row[0]) if row is not None else None

    def recent_indexes(self) -> list[tuple[str, str]]:
        """(tree, revision) of the stored indexes, the most recently made first."""
        db = self._conn()
        if db is None:
            return [(t, rev) for t, (rev, _) in reversed(self._indexes.items())]
        with self._lock:
            try:
                rows = db.execute(
                    "SELECT tree, revision FROM version_ids ORDER BY made DESC"
                ).fetchall()
            except sqlite3.Error:
                return []
        return [(str(t), str(r)) for t, r in rows]

    def put_index(self, tree: str, revision: str, data: bytes, keep: int) -> None:
        """Store the index of a tree, keeping only the `keep` most recent ones."""
        db = self._conn()
        if db is None:
            self._indexes.pop(tree, None)
            self._indexes[tree] = (revision, data)
            while len(self._indexes) > keep:
                del self._indexes[next(iter(self._indexes))]
            return
        with self._lock:
            try:
                with db:
                    made = db.execute(
                        "SELECT COALESCE(MAX(made), 0) + 1 FROM version_ids"
                    ).fetchone()
                    db.execute(
                        "INSERT OR REPLACE INTO version_ids (tree, revision, made, data)"
                        " VALUES (?, ?, ?, ?)",
                        (tree, revision, made[0], data),
                    )
                    db.execute(
                        "DELETE FROM version_ids WHERE tree NOT IN"
                        " (SELECT tree FROM version_ids ORDER BY made DESC LIMIT ?)",
                        (keep,),
                    )
            except sqlite3.Error:
                pass

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()


def _stored(db: sqlite3.Connection, kind: str, blobs: list[str]) -> Iterator[tuple[str, bytes]]:
    """The stored (blob, data) rows of `kind` among `blobs`, queried 500 ids at a time."""
    for start in range(0, len(blobs), 500):
        chunk = blobs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        yield from db.execute(
            f"SELECT blob, data FROM manifests WHERE kind = ? AND blob IN ({marks})",
            [kind, *chunk],
        ).fetchall()


def summary_key(versions: Mapping[str, str], ids: Mapping[str, str]) -> str:
    """The cache key of a model's versions summary: its version files (name -> path) and their
    blob ids, so a summary is reused exactly as long as none of those files changes."""
    digest = hashlib.sha1()
    for fname in sorted(versions):
        digest.update(f"{fname}={ids.get(versions[fname])}\n".encode())
    return digest.hexdigest()
