"""Token JSONL: one JSON object per line.

Accepted line shapes (the first matching one wins):

* ``{"id", "tokens", "tags"}`` (or ``"ner_tags"``) with string tags in the given scheme, or
  integer tags when ``label_names`` is given;
* ``{"id", "tokens", "spans": [{"token_start", "token_end", "label"}]}``;
* the full form written by :meth:`Example.to_dict` (``text``, ``token_offsets`` and ``spans`` with
  character offsets).

A missing ``id`` becomes ``FILESTEM-N``; an ``id`` must be a string or an integer. Tokens must be
JSON strings and tags all strings or all integers: a number or ``null`` among them is an error
naming the file, line and position (it is never turned into the text ``"3"`` or ``"None"``).
Each example's ``meta`` holds ``source`` (the file *name*, not the local folder) and ``line``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dsbuild.errors import InputError
from dsbuild.io.conll import _numbered_lines
from dsbuild.spans import Example, Scheme, Token, _check_scheme


def read_jsonl(
    path: str | Path,
    *,
    scheme: Scheme = "IOB2",
    label_names: Sequence[str] | None = None,
    tokens_key: str = "tokens",
    tags_key: str | None = None,
    allow_overlap: bool = False,
) -> list[Example]:
    """Read token JSONL into :class:`Example` s; errors name the file and line."""
    return list(iter_jsonl(path, scheme=scheme, label_names=label_names, tokens_key=tokens_key, tags_key=tags_key,
                           allow_overlap=allow_overlap))


def iter_jsonl(
    path: str | Path,
    *,
    scheme: Scheme = "IOB2",
    label_names: Sequence[str] | None = None,
    tokens_key: str = "tokens",
    tags_key: str | None = None,
    allow_overlap: bool = False,
) -> Iterator[Example]:
    """Lazy version of :func:`read_jsonl` (one line in memory at a time)."""
    path = Path(path)
    _check_scheme(scheme)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    for n, (lineno, obj) in enumerate(iter_json_objects(path)):
        try:
            yield _example(obj, f"{path.stem}-{n}", scheme, label_names, tokens_key, tags_key,
                           {"source": path.name, "line": lineno}, allow_overlap)
        except InputError as err:
            raise InputError(err.message, source=path, line=lineno, example_id=err.example_id, hint=err.hint) from None


def iter_json_objects(path: str | Path, *, hint: str = "each line must be one JSON object",
                      objects_only: bool = True) -> Iterator[tuple[int, Any]]:
    """``(line number, object)`` for each non-blank line of a JSONL file.

    Invalid UTF-8, invalid JSON and lines that are not objects raise :class:`InputError` naming
    the file and line; ``hint`` says what a line should hold. ``objects_only=False`` yields any
    JSON value, for readers that record a non-object line as a reject of their own.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    for lineno, raw in _numbered_lines(path):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise InputError(f"invalid JSON ({err.msg} at column {err.colno})", source=path, line=lineno, hint=hint) from None
        if objects_only and not isinstance(obj, dict):
            raise InputError("line is not a JSON object", source=path, line=lineno, hint=hint)
        yield lineno, obj


def iter_csv_dicts(path: str | Path, *, delimiter: str = ",") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` for each row of a CSV/TSV file with a header, streamed.

    The line number is the row's last line (a quoted cell may span lines). Invalid UTF-8 raises
    :class:`InputError` naming the file and line, as every reader of UTF-8 text here does.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    reader = csv.DictReader((line for _, line in _numbered_lines(path)), delimiter=delimiter)
    for row in reader:
        yield reader.line_num, row


def _example(obj: dict[str, Any], default_id: str, scheme: Scheme, label_names: Sequence[str] | None,
             tokens_key: str, tags_key: str | None, meta: dict[str, Any], allow_overlap: bool) -> Example:
    ex_id = _example_id(obj, default_id)
    meta = {**meta, **_object_meta(obj, ex_id)}
    words = _tokens(obj, tokens_key, ex_id)
    if "token_offsets" in obj and "text" in obj:
        offsets = obj["token_offsets"]
        if not isinstance(obj["text"], str):
            raise InputError("'text' must be a string", example_id=ex_id)
        if not isinstance(offsets, list) or len(offsets) != len(words) or not all(
                isinstance(o, list) and len(o) == 2 and all(isinstance(x, int) for x in o) for o in offsets):
            raise InputError(f"'token_offsets' must hold one [start, end] pair of integers per token ({len(words)} tokens)",
                             example_id=ex_id, hint="write the file with dsbuild.io.write_jsonl, or drop token_offsets")
        tokens = [Token(w, s, e) for w, (s, e) in zip(words, offsets)]
        spans = _span_dicts(obj, ("start", "end", "label"), ex_id)
        return Example.from_text(ex_id, obj["text"], tokens, [(s["start"], s["end"], s["label"]) for s in spans],
                                 meta=meta, allow_overlap=allow_overlap)
    key = tags_key or next((k for k in ("tags", "ner_tags", "labels") if k in obj), None)
    if key is not None and key in obj:
        tags = obj[key]
        if not isinstance(tags, list):
            raise InputError(f"{key!r} must be a list of tags, got {type(tags).__name__}", example_id=ex_id)
        if tags and all(isinstance(t, int) and not isinstance(t, bool) for t in tags):
            if label_names is None:
                raise InputError(f"{key!r} holds integers but no label names were given", example_id=ex_id,
                                 hint="pass label_names (the ClassLabel names) or store tag strings")
            bad = [t for t in tags if not 0 <= t < len(label_names)]
            if bad:
                raise InputError(f"tag id {bad[0]} is out of range for {len(label_names)} label names", example_id=ex_id,
                                 hint="check that label_names are the ClassLabel names the ids refer to")
            tags = [label_names[t] for t in tags]
        elif not all(isinstance(t, str) for t in tags):
            i, bad = next((i, t) for i, t in enumerate(tags) if not isinstance(t, str))
            raise InputError(f"{key!r} mixes types: expected all strings (B-PER) or all integers (ids); tag {i} is "
                             f"{_json_value(bad)}", example_id=ex_id, hint="give every tag as a string such as \"O\"")
        return Example.from_words(ex_id, words, tags=tags, scheme=scheme, meta=meta, allow_overlap=allow_overlap)
    spans = _span_dicts(obj, ("token_start", "token_end", "label"), ex_id)
    return Example.from_words(ex_id, words, token_spans=[(s["token_start"], s["token_end"], s["label"]) for s in spans],
                              meta=meta, allow_overlap=allow_overlap)


def _example_id(obj: dict[str, Any], default_id: str) -> str:
    """The line's ``id`` (a string, or an integer written as one), or ``default_id`` when absent."""
    if "id" not in obj:
        return default_id
    value = obj["id"]
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InputError(f"'id' is {_json_value(value)}; expected a non-empty string or an integer", example_id=default_id,
                     hint="give each line a string id, or leave 'id' out (ids are then FILESTEM-N)")


def _object_meta(obj: dict[str, Any], ex_id: str) -> dict[str, Any]:
    """The line's ``meta`` object (``{}`` when absent)."""
    meta = obj.get("meta")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise InputError(f"'meta' is {_json_value(meta)}; expected a JSON object", example_id=ex_id)
    return meta


def _tokens(obj: dict[str, Any], tokens_key: str, ex_id: str) -> list[str]:
    """The token list, checked to hold strings only (``3`` or ``null`` never become ``"3"``/``"None"``)."""
    words = obj.get(tokens_key)
    hint = f"give the tokens as \"{tokens_key}\": [\"word\", ...]"
    if not isinstance(words, list):
        got = "missing" if tokens_key not in obj else _json_value(words)
        raise InputError(f"missing or invalid {tokens_key!r}: expected a list of strings, got {got}",
                         example_id=ex_id, hint=hint)
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise InputError(f"missing or invalid {tokens_key!r}: expected a list of strings, but token {i} is "
                             f"{_json_value(w)}", example_id=ex_id, hint=hint + " (every token a JSON string)")
    return words


def _json_value(value: Any) -> str:
    """``value`` as it looks in the JSON line, with its JSON type: ``3 (a number)``, ``null``."""
    if value is None:
        return "null"
    kind = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
    return f"{json.dumps(value, ensure_ascii=False)[:60]} ({kind})"


def _span_dicts(obj: dict[str, Any], keys: tuple[str, str, str], ex_id: str) -> list[dict[str, Any]]:
    """The ``spans`` list, checked to hold objects with integer offsets and a string label."""
    spans = obj.get("spans", [])
    if not isinstance(spans, list):
        raise InputError("'spans' must be a list of objects", example_id=ex_id)
    for i, s in enumerate(spans):
        if not isinstance(s, dict) or not all(k in s for k in keys) or not isinstance(s[keys[2]], str) \
                or not all(isinstance(s[k], int) and not isinstance(s[k], bool) for k in keys[:2]):
            raise InputError(f"span {i} must be an object with integer {keys[0]!r}, {keys[1]!r} and a string {keys[2]!r}",
                             example_id=ex_id, hint=f"got {json.dumps(s)[:80]}")
    return spans


def write_jsonl(examples: Sequence[Example], path: str | Path) -> None:
    """Write examples in the full form of :meth:`Example.to_dict`."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
