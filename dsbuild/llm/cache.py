"""A disk cache of LLM answers, so that a killed or repeated build does not ask the model again.

Key: SHA-256 of (backend, model, revision or server model id, sampling parameters, choices,
JSON schema, messages). Value: the answer texts (and whether the prompt was truncated). Only
successful answers are stored: a failed item is asked again on the next run.

Storage is the SQLite store of the translation cache (WAL mode, one transaction per batch,
safe under concurrent processes and threads), in its own file ``llm.sqlite``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dsbuild.llm.base import Completion
from dsbuild.translate.cache import TranslationCache

FORMAT = 1
"""Bumped when the stored value format changes (part of every key)."""


def default_cache_dir() -> Path:
    """``$DSBUILD_CACHE/llm``, else ``$XDG_CACHE_HOME/dsbuild/llm`` (``~/.cache/dsbuild/llm``)."""
    from dsbuild.cachedir import cache_root

    return cache_root("llm")


def cache_key(namespace: Mapping[str, Any], sampling: Mapping[str, Any], choices: Sequence[str] | None,
              json_schema: Mapping[str, Any] | None, messages: Sequence[Mapping[str, str]]) -> str:
    """The key of one request: everything that decides the answer, canonically serialised."""
    blob = json.dumps({"format": FORMAT, "ns": dict(namespace), "sampling": dict(sampling),
                       "choices": list(choices) if choices is not None else None,
                       "json_schema": json_schema, "messages": [dict(m) for m in messages]},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LLMCache:
    """key -> Completion store in ``<cache_dir>/llm.sqlite``, shared by processes and threads."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._store = TranslationCache(self.dir / "llm.sqlite")
        self._lock = threading.Lock()  # one sqlite connection: serialise threads

    def __getstate__(self) -> dict[str, Any]:
        return {"dir": self.dir}

    def __setstate__(self, state: dict[str, Any]) -> None:  # a worker process reopens the file
        self.__init__(state["dir"])  # type: ignore[misc]

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        """Cached completions (``cached=True``) of those keys that are present."""
        with self._lock:
            raw = self._store.get_many(keys)
        out = {}
        for key, value in raw.items():
            data = json.loads(value)
            out[key] = Completion(texts=list(data["texts"]), cached=True, truncated=bool(data.get("truncated")))
        return out

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> None:
        """Store successful completions in one transaction."""
        rows = [(k, json.dumps({"texts": c.texts, "truncated": c.truncated}, ensure_ascii=False))
                for k, c in items if c.error is None]
        if rows:
            with self._lock:
                self._store.put_many(rows)

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    def close(self) -> None:
        """Close the connection (the file stays)."""
        with self._lock:
            self._store.close()
