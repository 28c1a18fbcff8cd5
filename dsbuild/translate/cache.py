"""A disk cache of translations (SQLite), so that a killed build resumes without re-translating.

Keys are SHA-256 hashes of (model id, model revision, generation parameters, languages, text);
values are the translations. Each batch is committed in one transaction, so a kill loses at
most the batch in flight and never leaves a half-written entry.

Several processes may share one file: the database is in WAL mode (readers never wait for a
writer), writers take the write lock up front (``BEGIN IMMEDIATE``) and wait for it (busy
timeout), and the lock errors SQLite reports without waiting (as when several processes open a
new file and switch it to WAL together) are retried until :data:`LOCK_TIMEOUT`. The
same key written by two processes holds one complete value (``INSERT OR REPLACE``; a key's
value depends only on the key's inputs). A pickled cache (sent to a worker process or a Ray
actor) and a forked one reopen the file in the new process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 60.0
"""Seconds a reader or writer waits for another process's lock before giving up."""

_T = TypeVar("_T")

# Connections inherited through fork(), left open on purpose: SQLite forbids using a connection
# in a forked child, closing it included (close runs lock and WAL cleanup for the parent's file).
_inherited: list[sqlite3.Connection] = []


def default_cache_dir() -> Path:
    """``$DSBUILD_CACHE/translations``, else ``$XDG_CACHE_HOME/dsbuild/translations`` (``~/.cache``)."""
    from dsbuild.cachedir import cache_root

    return cache_root("translations")


def cache_key(namespace: Mapping[str, Any], text: str) -> str:
    """The key of one text under a namespace (model, revision, parameters, languages)."""
    blob = json.dumps([namespace, text], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _is_lock_error(err: sqlite3.OperationalError) -> bool:
    return "locked" in str(err) or "busy" in str(err)


def _retry_locked(action: Callable[[], _T], what: str, timeout: float = LOCK_TIMEOUT) -> _T:
    """``action()``, retried with jittered backoff while SQLite says the database is locked.

    The busy timeout makes SQLite itself wait in most cases, but not all: where waiting could
    deadlock it fails at once with ``database is locked`` (seen when several processes open a new
    file and switch it to WAL together: without retries, 5 of 10 such races failed one process).
    Retrying is safe: a failed attempt is rolled back whole.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as err:
            if not _is_lock_error(err) or time.monotonic() >= deadline:
                raise
            log.debug("%s: %s; retrying", what, err)
        time.sleep(delay * (0.5 + random.random()))  # jitter: waiting processes do not retry in lockstep
        delay = min(delay * 2, 0.25)


class TranslationCache:
    """A key -> translation store in one SQLite file, safe to share between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        """Open the file in WAL mode with the table in place (retried while another process sets it up)."""
        self._pid = os.getpid()
        db = sqlite3.connect(str(self.path), timeout=LOCK_TIMEOUT, isolation_level=None)
        try:
            mode = _retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL").fetchone()[0], "enabling WAL")
            if str(mode).lower() != "wal":  # e.g. a network file system without shared memory
                log.warning("translation cache %s: journal mode %s, not WAL; writers will block readers", self.path, mode)
            _retry_locked(lambda: db.execute(
                "CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, value TEXT NOT NULL)"), "creating the table")
        except BaseException:
            db.close()
            raise
        return db

    @property
    def _conn(self) -> sqlite3.Connection:
        # A connection must not cross fork(): SQLite's locks belong to the process that took them.
        if self._pid != os.getpid():
            _inherited.append(self._db)
            self._db = self._connect()
        return self._db

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self._db = self._connect()

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """The cached values of those ``keys`` that are present."""
        out: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            sql = f"SELECT key, value FROM translations WHERE key IN ({','.join('?' * len(chunk))})"
            out.update(_retry_locked(lambda: self._conn.execute(sql, chunk).fetchall(), "reading"))
        return out

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Store ``(key, value)`` pairs in one transaction."""
        items = list(items)
        if items:
            _retry_locked(lambda: self._write(items), "writing")

    def _write(self, items: list[tuple[str, str]]) -> None:
        """One write transaction; rolled back whole on any error (a retry starts from scratch)."""
        db = self._conn
        db.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through the batch
        try:
            db.executemany("INSERT OR REPLACE INTO translations (key, value) VALUES (?, ?)", items)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back already; a second ROLLBACK would hide the error
                db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return int(_retry_locked(lambda: self._conn.execute("SELECT COUNT(*) FROM translations").fetchone()[0], "counting"))

    def close(self) -> None:
        """Close the connection (the file stays)."""
        if self._pid == os.getpid():  # an inherited connection is left alone (see _inherited)
            self._db.close()
