"""Given translations keyed by item id **and field** (human translations, another system's output).

The per-sentence :class:`dsbuild.translate.given.GivenTranslator` looks one text up by its source
or id; a translated dataset item has several fields (a question and its options, three turns), so
here a translation is looked up by ``(item id, field)`` and may be a list (``translate_each``
fields). Two file layouts (JSONL, CSV/TSV or Parquet, read by the same reader as ``given``):

* **wide**: one row per item, an ``id`` column and one column per translated field
  (``{"id": "q1", "question": "...", "options": ["...", "..."]}``; in CSV a list field is a JSON
  list string);
* **long**: one row per item and field: ``id``, ``field``, ``target`` (a list field's target is a
  JSON list, or one row per element with field ``options[0]``, ``options[1]``...).

A ``lang`` (or ``tgt_lang``) column keeps only the rows of the requested language.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dsbuild.errors import ConfigError, InputError

#: what :meth:`GivenFields.get` returns for an item or field with no translation
MISSING: Any = object()
_ELEMENT = re.compile(r"^(?P<field>.+)\[(?P<i>\d+)\]$")
_LANG_COLUMNS = ("tgt_lang", "lang", "language")


class GivenFields:
    """Translations looked up by ``(item id, field)``; values are strings or lists of strings.

    Args:
        table: ``{(item_id, field): translation}``.
        name: what rows and the card call this translator (``translator_model``), e.g. the file's
            portable path or "human translators (Alhanai et al. 2024)".
        revision: its version; default: a SHA-256 of the table's content.
    """

    def __init__(self, table: Mapping[tuple[str, str], Any], *, name: str = "given translations",
                 revision: str | None = None) -> None:
        self.table: dict[tuple[str, str], Any] = {(str(i), str(f)): v for (i, f), v in table.items()}
        self.name = name
        self.fields: set[str] = {f for _, f in self.table}
        blob = json.dumps(sorted(([i, f, v] for (i, f), v in self.table.items()), key=lambda x: (x[0], x[1])),
                          ensure_ascii=False)
        self.revision = revision or f"sha256:{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_file(cls, path: str | Path, *, lang: str | None = None, id_column: str = "id",
                  name: str | None = None) -> GivenFields:
        """Read a wide or long file (see the module docstring); ``lang`` filters a language column."""
        from dsbuild.builder import BuildContext
        from dsbuild.translate.given import _read_rows

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"given translations file {path} not found (option translations)")
        rows = _read_rows(path)
        if not rows:
            raise InputError("the given translations file is empty", source=path.name,
                             hint="give one row per item (wide) or per item and field (long)")
        table: dict[tuple[str, str], Any] = {}
        long = all("field" in row and "target" in row for _, row in rows[:1])
        for line, row in rows:
            if id_column not in row:
                raise InputError(f"row has no {id_column!r} column (columns: {', '.join(sorted(row))})",
                                 source=path.name, line=line, hint="name the item id column 'id'")
            row_lang = next((str(row[c]) for c in _LANG_COLUMNS if row.get(c) not in (None, "")), None)
            if lang is not None and row_lang is not None and row_lang != lang:
                continue
            item = str(row[id_column])
            pairs = [(str(row["field"]), row["target"])] if long else \
                [(k, v) for k, v in row.items() if k != id_column and k not in _LANG_COLUMNS]
            for field, value in pairs:
                if value is None:
                    continue  # a null translation counts as missing
                _put(table, item, field, value, path.name, line)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return cls(table, name=name or f"given:{BuildContext.portable_path(path)}", revision=f"sha256:{sha}")

    # ----------------------------------------------------------------- lookup
    def get(self, item_id: str, field: str, *, as_list: bool = False) -> Any:
        """The translation of ``field`` of item ``item_id`` (a list when ``as_list``), or :data:`MISSING`."""
        value = self.table.get((item_id, field), MISSING)
        if value is MISSING:
            return MISSING
        if not as_list:
            return value if isinstance(value, str) else MISSING
        if isinstance(value, str):  # a JSON list in a CSV cell
            try:
                value = json.loads(value)
            except ValueError:
                return MISSING
        if not isinstance(value, list) or any(v is None for v in value):
            return MISSING  # an element of ``options[i]`` rows is missing
        return [str(v) for v in value]

    def check_fields(self, fields: Iterable[str], where: str) -> None:
        """One ConfigError line when a whole field has no translation in the table."""
        for field in fields:
            if field not in self.fields:
                raise ConfigError(f"{where}: given translations ({self.name}) have no field {field!r} at all "
                                  f"(fields: {', '.join(sorted(self.fields)) or 'none'}); add it or fix the spec")

    def describe(self) -> dict[str, Any]:
        return {"name": "given", "model": self.name, "revision": self.revision, "entries": len(self.table)}


def _put(table: dict[tuple[str, str], Any], item: str, field: str, value: Any, source: str, line: int) -> None:
    """Store one value; ``field[i]`` rows build a list; a conflicting duplicate is an InputError."""
    m = _ELEMENT.match(field)
    if m:
        current = table.setdefault((item, m["field"]), [])
        if not isinstance(current, list):
            raise InputError(f"item {item!r}: field {m['field']!r} given both whole and by element",
                             source=source, line=line, hint="give a list field either whole or element by element")
        i = int(m["i"])
        current.extend([None] * (i + 1 - len(current)))
        current[i] = str(value)
        return
    if isinstance(value, (list, tuple)):
        value = [str(v) for v in value]
    elif not isinstance(value, str):
        value = str(value)
    old = table.get((item, field), MISSING)
    if old is not MISSING and old != value:
        raise InputError(f"two different translations for item {item!r} field {field!r}", source=source, line=line,
                         hint="keep one translation per item, field and language")
    table[(item, field)] = value


__all__ = ["GivenFields", "MISSING"]
