"""Reading a teacher's raw answer as label(s) of the schema, or saying why not.

Tolerated: case, spacing, surrounding quotes or backticks, a trailing full stop, a ``Topic:``
prefix, Markdown code fences, JSON wrappers (``{"topic": "sport"}``, ``{"label": ...}``,
``["sport"]``), ``&`` for ``and``, a plural ``s``, and a sentence naming exactly one label
(``The topic is sport.``). Anything else is refused with a reason:

- ``unparseable``: empty, JSON without a usable value (no known key, truncated JSON), a number...
- ``out-of-schema``: a label-like answer that is not one of the schema's labels (or several labels
  in single-label mode).

The raw answer is always kept, so a reject can be inspected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dsbuild.annotate.schema import LabelSchema, normalise_label

#: JSON keys read as the answer, in this order (case-insensitive)
ANSWER_KEYS = ("topic", "topics", "label", "labels", "category", "categories", "answer", "class")
UNPARSEABLE = "unparseable"
OUT_OF_SCHEMA = "out-of-schema"

_FENCE = re.compile(r"^```[a-zA-Z]*\s*(.*?)\s*```$", re.S)
_PREFIX = re.compile(r"^(?:topic|topics|label|labels|category|answer)\s*[:=-]\s*", re.I)
_QUOTES = "\"'`“”‘’«»"


@dataclass(frozen=True)
class ParseResult:
    """Labels read from one answer (schema spelling), or the reason there are none."""

    labels: tuple[str, ...]
    reason: str | None
    raw: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def parse_answer(raw: str, schema: LabelSchema, *, multi_label: bool = False) -> ParseResult:
    """Label(s) of ``schema`` named by the answer ``raw``, or a reason (``unparseable``, ``out-of-schema``)."""
    text = (raw or "").strip()
    fence = _FENCE.match(text)
    if fence:
        text = fence.group(1).strip()
    if not text:
        return ParseResult((), UNPARSEABLE, raw, "empty answer")
    value, problem = _json_value(text)
    if problem:
        return ParseResult((), UNPARSEABLE, raw, problem)
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) for v in items):
        return ParseResult((), UNPARSEABLE, raw, f"answer value {value!r:.60} is not a label name")
    if not multi_label and len(items) > 1:
        return ParseResult((), OUT_OF_SCHEMA, raw, f"{len(items)} labels in single-label mode")
    labels: list[str] = []
    for item in items:
        found = _labels_in(item, schema, multi_label)
        if not found:
            return ParseResult((), OUT_OF_SCHEMA, raw, f"{_clean(item)!r:.80} is not a label of the schema")
        if not multi_label and len(found) > 1:
            return ParseResult((), OUT_OF_SCHEMA, raw, f"several labels ({', '.join(found)}) in single-label mode")
        labels += [f for f in found if f not in labels]
    ordered = tuple(n for n in schema.names if n in labels)  # schema order: the same set, the same tuple
    return ParseResult(ordered, None, raw)


def _json_value(text: str) -> tuple[Any, str]:
    """The answer's value: from JSON when it looks like JSON, else the text itself; or a problem."""
    if not text.startswith(("{", "[")):
        return text, ""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return _salvage(text)
    if isinstance(data, dict):
        return _from_mapping(data)
    return data, ""


def _from_mapping(data: dict[str, Any]) -> tuple[Any, str]:
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    for key in ANSWER_KEYS:
        if key in lowered:
            return lowered[key], ""
    if len(data) == 1:  # {"whatever": "sport"}: one value, read it
        return next(iter(data.values())), ""
    return None, f"JSON object without a known answer key ({', '.join(ANSWER_KEYS[:4])}...)"


def _salvage(text: str) -> tuple[Any, str]:
    """Truncated or malformed JSON: accept only a complete quoted value of a known key."""
    keys = "|".join(ANSWER_KEYS)
    match = re.search(rf'"(?:{keys})"\s*:\s*"([^"]+)"', text, re.I)
    if match:
        return match.group(1), ""
    return None, "malformed or truncated JSON"


def _clean(item: str) -> str:
    text = item.strip().strip(_QUOTES).strip()
    text = _PREFIX.sub("", text).strip().strip(_QUOTES).strip()
    return text.rstrip(".!").strip().strip(_QUOTES).strip()


def _labels_in(item: str, schema: LabelSchema, multi_label: bool) -> list[str]:
    """Schema labels named by one answer string (several only in multi-label mode)."""
    text = _clean(item)
    exact = _match_one(text, schema)
    if exact:
        return [exact]
    if multi_label:
        parts = [p for p in re.split(r"[;|\n]+", text) if p.strip()]
        if len(parts) > 1:
            found = [_match_one(_clean(p), schema) for p in parts]
            return [f for f in found if f] if all(found) else []
        comma = _comma_labels(text, schema)
        if comma:
            return comma
    return _mentioned(text, schema)


def _match_one(text: str, schema: LabelSchema) -> str | None:
    """Exact (normalised) match, allowing a plural or singular ``s``."""
    hit = schema.lookup(text)
    if hit:
        return hit
    norm = normalise_label(text)
    return schema.lookup(norm[:-1]) if norm.endswith("s") else schema.lookup(norm + "s")


def _comma_labels(text: str, schema: LabelSchema) -> list[str]:
    """``a, b, c`` where label names may hold commas themselves: longest matches first, all or nothing."""
    pieces = [p.strip() for p in text.split(",")]
    out, i = [], 0
    while i < len(pieces):
        for j in range(len(pieces), i, -1):
            hit = _match_one(", ".join(pieces[i:j]), schema)
            if hit:
                out.append(hit)
                i = j
                break
        else:
            return []
    return out if len(out) > 1 else []


def _mentioned(text: str, schema: LabelSchema) -> list[str]:
    """Labels named as whole words inside a longer answer; used only when exactly one is named."""
    norm = normalise_label(text)
    found = [name for name in schema.names
             if re.search(rf"(?<!\w){re.escape(normalise_label(name))}s?(?!\w)", norm)]
    # a label whose name is part of another found label's name ("sport" in "sport and leisure") is not separate
    found = [f for f in found if not any(f != g and normalise_label(f) in normalise_label(g) for g in found)]
    return found if len(found) == 1 else (found if len(found) > 1 else [])


__all__ = ["ANSWER_KEYS", "OUT_OF_SCHEMA", "UNPARSEABLE", "ParseResult", "parse_answer"]
