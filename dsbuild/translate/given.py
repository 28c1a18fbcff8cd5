"""The "given" translator: translations the user already has (human, or from another system).

Translations come from a dict, or from a file (JSONL, CSV/TSV, Parquet) with a source-text
column and a target column, or an id column and a target column::

    translators.get("given")({"The cat sleeps.": "El gato duerme."})
    translators.get("given")(path="es.jsonl", key="id")    # rows {"id": ..., "target": ...}

Lookup is by source text (``key="source"``) or by example id (``key="id"``, pass ``ids=`` to
:meth:`GivenTranslator.translate`). When the file has a language column (``tgt_lang`` or
``lang``), only rows of the requested target language are used. A missing translation is an
:class:`~dsbuild.errors.InputError` that counts and lists the missing entries;
:meth:`GivenTranslator.lookup` returns ``None`` for them instead, for builders that record a
reject. Empty source texts translate to ``""``.
"""

from __future__ import annotations

import csv
import io
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from dsbuild.errors import ConfigError, InputError
from dsbuild.io.jsonl import iter_json_objects
from dsbuild.registry import translators

_LANG_COLUMNS = ("tgt_lang", "lang", "language")


@translators.register("given")
class GivenTranslator:
    """Translations looked up by source text or by example id.

    Args:
        translations: a mapping key -> translation (key is the source text or the id).
        path: a JSONL, CSV, TSV or Parquet file instead of ``translations``.
        key: ``source`` (look up by source text) or ``id``.
        source_column, id_column, target_column: column names in the file.
    """

    name = "given"

    def __init__(
        self,
        translations: Mapping[str, str] | None = None,
        *,
        path: str | Path | None = None,
        key: Literal["source", "id"] = "source",
        source_column: str = "source",
        id_column: str = "id",
        target_column: str = "target",
    ) -> None:
        if key not in ("source", "id"):
            raise ConfigError(f"given translator: key must be 'source' or 'id', not {key!r}")
        if (translations is None) == (path is None):
            raise ConfigError("given translator: pass either a mapping of translations or path=FILE")
        self.key = key
        self.path = Path(path) if path is not None else None
        self._by_lang: dict[str | None, dict[str, str]] = {}
        if translations is not None:
            self._by_lang[None] = {str(k): str(v) for k, v in translations.items()}
            self.sha256 = hashlib.sha256(json.dumps(self._by_lang[None], sort_keys=True).encode()).hexdigest()
        else:
            self._load(self.path, source_column if key == "source" else id_column, target_column)  # type: ignore[arg-type]
        self.stats = {"found": 0, "missing": 0, "empty": 0}

    def _load(self, path: Path, key_column: str, target_column: str) -> None:
        if not path.is_file():
            raise ConfigError(f"given translator: translations file {path} does not exist")
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        rows = list(_read_rows(path))
        if not rows:
            raise InputError("the translations file is empty", source=path, hint="give one row per translated sentence")
        for line, row in rows:
            if key_column not in row or target_column not in row:
                raise InputError(
                    f"row has no {key_column!r} or {target_column!r} column (columns: {', '.join(sorted(row))})",
                    source=path, line=line,
                    hint=f"the file needs a {key_column!r} column (the lookup key) and a {target_column!r} column "
                         f"(the translation): rename its columns")
            lang = next((str(row[c]) for c in _LANG_COLUMNS if row.get(c) not in (None, "")), None)
            table = self._by_lang.setdefault(lang, {})
            k, v = str(row[key_column]), row[target_column]
            if v is None:
                continue  # a null translation counts as missing
            if k in table and table[k] != v:
                raise InputError(f"two different translations for {k[:60]!r}", source=path, line=line,
                                 hint="keep one translation per key and language")
            table[k] = str(v)

    def _table(self, tgt_lang: str) -> dict[str, str]:
        if None in self._by_lang and len(self._by_lang) == 1:
            return self._by_lang[None]
        if tgt_lang in self._by_lang:
            return self._by_lang[tgt_lang]
        langs = sorted(k for k in self._by_lang if k)
        raise ConfigError(f"given translator: no translations into {tgt_lang!r}"
                          + (f" (the file has {', '.join(langs)})" if langs else ""))

    def lookup(self, texts: Sequence[str], src_lang: str, tgt_lang: str, *, ids: Sequence[str] | None = None) -> list[str | None]:
        """The translation of each text (or id), ``None`` when missing; ``""`` for empty texts."""
        table = self._table(tgt_lang)
        if self.key == "id":
            if ids is None or len(ids) != len(texts):
                raise ConfigError("given translator with key='id' needs ids=[...] (one per text)")
            keys = list(ids)
        else:
            keys = list(texts)
        out: list[str | None] = []
        for text, k in zip(texts, keys):
            if not str(text).strip():
                out.append("")
                self.stats["empty"] += 1
            elif k in table:
                out.append(table[k])
                self.stats["found"] += 1
            else:
                out.append(None)
                self.stats["missing"] += 1
        return out

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str, *, ids: Sequence[str] | None = None) -> list[str]:
        """The given translations; raises InputError listing the entries that have none."""
        found = self.lookup(texts, src_lang, tgt_lang, ids=ids)
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            keys = list(ids) if self.key == "id" and ids is not None else list(texts)
            shown = ", ".join(repr(str(keys[i])[:60]) for i in missing[:5])
            raise InputError(
                f"{len(missing)} of {len(texts)} inputs have no given {tgt_lang!r} translation "
                f"(looked up by {self.key}): {shown}{' ...' if len(missing) > 5 else ''}",
                source=self.path, hint="add the missing translations, or let the builder reject those examples")
        return [f or "" for f in found]

    def score(self, sources: Sequence[str], targets: Sequence[str], src_lang: str, tgt_lang: str) -> list[list[float]]:
        raise ConfigError("the 'given' translator has no model and cannot score translations; "
                          "use a model translator (hf-seq2seq) for methods that need scores (constrained)")

    def describe(self) -> dict[str, Any]:
        n = sum(len(t) for t in self._by_lang.values())
        return {"name": self.name, "model": "given translations", "revision": f"sha256:{self.sha256[:16]}",
                "path": str(self.path) if self.path else None, "key": self.key, "entries": n}


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line, row)`` pairs from JSONL, CSV, TSV or Parquet."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return list(iter_json_objects(path, hint="one JSON object per line, with the key and target columns"))
    if suffix in (".csv", ".tsv"):
        from dsbuild.io.conll import read_utf8_text  # invalid UTF-8: one line naming file, line and the fix

        text = read_utf8_text(path)
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        return [(n + 2, dict(row)) for n, row in enumerate(reader)]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(n + 1, row) for n, row in enumerate(pq.read_table(path).to_pylist())]
    raise ConfigError(f"given translator: cannot read {path} (use .jsonl, .csv, .tsv or .parquet)")
