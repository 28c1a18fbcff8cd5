"""A disk cache of translations (SQLite), so that a killed build resumes without re-translating.

Keys are SHA-256 hashes of (model id, model revision, generation parameters, languages, text);
values are the translations. Each batch is committed in one transaction, so a kill loses at
most the batch in flight and never leaves a half-written entry. Several processes may share one
file (SQLite locks it).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    """``$DSBUILD_CACHE/translations``, else ``$XDG_CACHE_HOME/dsbuild/translations`` (``~/.cache``)."""
    base = os.environ.get("DSBUILD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "dsbuild")
    return Path(base) / "translations"


def cache_key(namespace: Mapping[str, Any], text: str) -> str:
    """The key of one text under a namespace (model, revision, parameters, languages)."""
    blob = json.dumps([namespace, text], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class TranslationCache:
    """A key -> translation store in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """The cached values of those ``keys`` that are present."""
        out: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            rows = self._db.execute(
                f"SELECT key, value FROM translations WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            out.update(rows.fetchall())
        return out

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Store ``(key, value)`` pairs in one transaction."""
        items = list(items)
        if not items:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO translations (key, value) VALUES (?, ?)", items)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0])

    def close(self) -> None:
        self._db.close()
