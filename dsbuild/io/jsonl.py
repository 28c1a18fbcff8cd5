"""Token JSONL: one JSON object per line.

Accepted line shapes (the first matching one wins):

* ``{"id", "tokens", "tags"}`` (or ``"ner_tags"``) with string tags in the given scheme, or
  integer tags when ``label_names`` is given;
* ``{"id", "tokens", "spans": [{"token_start", "token_end", "label"}]}``;
* the full form written by :meth:`Example.to_dict` (``text``, ``token_offsets`` and ``spans`` with
  character offsets).

A missing ``id`` becomes ``FILESTEM-N``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dsbuild.errors import InputError
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
    path = Path(path)
    _check_scheme(scheme)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    examples: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                raise InputError(f"invalid JSON ({err.msg} at column {err.colno})", source=path, line=lineno,
                                 hint="each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise InputError("line is not a JSON object", source=path, line=lineno, hint="each line must be one JSON object")
            try:
                examples.append(_example(obj, f"{path.stem}-{len(examples)}", scheme, label_names, tokens_key, tags_key,
                                         {"source": str(path), "line": lineno}, allow_overlap))
            except InputError as err:
                raise InputError(err.message, source=path, line=lineno, example_id=err.example_id, hint=err.hint) from None
    return examples


def _example(obj: dict[str, Any], default_id: str, scheme: Scheme, label_names: Sequence[str] | None,
             tokens_key: str, tags_key: str | None, meta: dict[str, Any], allow_overlap: bool) -> Example:
    ex_id = str(obj.get("id", default_id))
    meta = {**meta, **(obj.get("meta") or {})}
    if "token_offsets" in obj and "text" in obj:
        tokens = [Token(w, s, e) for w, (s, e) in zip(obj["tokens"], obj["token_offsets"])]
        return Example.from_text(ex_id, obj["text"], tokens, [(s["start"], s["end"], s["label"]) for s in obj.get("spans", [])],
                                 meta=meta, allow_overlap=allow_overlap)
    words = obj.get(tokens_key)
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise InputError(f"missing or invalid {tokens_key!r}: expected a list of strings", example_id=ex_id,
                         hint=f"give the tokens as \"{tokens_key}\": [\"word\", ...]")
    key = tags_key or next((k for k in ("tags", "ner_tags", "labels") if k in obj), None)
    if key is not None and key in obj:
        tags = obj[key]
        if tags and all(isinstance(t, int) for t in tags):
            if label_names is None:
                raise InputError(f"{key!r} holds integers but no label names were given", example_id=ex_id,
                                 hint="pass label_names (the ClassLabel names) or store tag strings")
            try:
                tags = [label_names[t] for t in tags]
            except IndexError:
                raise InputError(f"tag id out of range for {len(label_names)} label names", example_id=ex_id) from None
        return Example.from_words(ex_id, words, tags=tags, scheme=scheme, meta=meta, allow_overlap=allow_overlap)
    spans = obj.get("spans", [])
    return Example.from_words(ex_id, words, token_spans=[(s["token_start"], s["token_end"], s["label"]) for s in spans],
                              meta=meta, allow_overlap=allow_overlap)


def write_jsonl(examples: Sequence[Example], path: str | Path) -> None:
    """Write examples in the full form of :meth:`Example.to_dict`."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
