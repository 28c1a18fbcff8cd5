"""Read and write the three event formats.

* **raw MEE**: ``{"id", "tokens", "entities": {ID: {"type", "start", "end", "text"?}}, "triggers":
  {ID: {"type", "start", "end"}}, "arguments": [{"trigger", "argument", "role"}]}`` with character
  offsets into ``" ".join(tokens)`` stored as strings; ``"end": "12;20 25"`` marks a
  discontinuous span (fragments ``[start, 12)`` and ``[20, 25)``, brat style, end exclusive).
* **normalised** (token offsets, end exclusive): ``{"id", "tokens", "entity_mentions": [{"id",
  "entity_type", "start", "end", "text"}], "event_mentions": [{"id", "event_type", "trigger":
  {"start", "end", "text"}, "arguments": [{"entity_id", "role", "text"}]}]}``. Contiguous only.
* **EusIE**: the normalised form with EusIE entity codes (``PER``, ``GPE``...) and 5-sentence
  segments (see :func:`group_segments`).

Readers normalise spellings (``Conflict:Attack``, misspelled keys) with a log line, and raise
:class:`InputError` naming file, line and record id for what cannot be read. Conversions that
cannot keep something (a discontinuous span written to a contiguous-only format, an EusIE
``OBJ`` entity with no MEE type) append a :class:`Loss` instead of dropping it silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsbuild.errors import InputError
from dsbuild.io.jsonl import iter_json_objects
from dsbuild.events.schema import (
    Argument, Event, EventRecord, Mention, Schema, fix_key, load_schema, normalise_entity_type,
    normalise_event_type, normalise_role,
)

RAW_KEYS = ["id", "tokens", "entities", "triggers", "arguments", "lang", "doc_id"]
NORMALISED_KEYS = ["id", "tokens", "entity_mentions", "event_mentions", "lang", "doc_id", "sent_ids"]


@dataclass
class Loss:
    """Something a conversion could not carry, with the record and item it belongs to."""

    record_id: str
    item_id: str
    kind: str  # "discontinuous-span" | "unmapped-entity-type" | ...
    detail: str


# --------------------------------------------------------------------------- files
def iter_json_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, object) pairs from a JSONL file, or from a JSON file holding a list."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    if _first_char(path) == "[":  # a JSON list must be read whole; JSONL is read line by line
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"invalid JSON ({err.msg})", source=path, line=err.lineno) from None
        for obj in data:
            yield 0, obj
        return
    yield from iter_json_objects(path, hint="one event record (a JSON object) per line")


def _first_char(path: Path) -> str:
    """The first non-whitespace character of a text file ("" when there is none)."""
    with path.open(encoding="utf-8", errors="replace") as fh:  # bad bytes are reported by the reader, by line
        for chunk in iter(lambda: fh.read(1 << 16), ""):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0]
    return ""


def read_events(path: str | Path, *, schema: Schema | None = None, lang: str = "") -> list[EventRecord]:
    """Read raw MEE, normalised or EusIE records (detected per record) from JSON/JSONL."""
    return list(iter_events(path, schema=schema, lang=lang))


def iter_events(path: str | Path, *, schema: Schema | None = None, lang: str = "") -> Iterator[EventRecord]:
    """Like :func:`read_events`, one record at a time (JSONL is read lazily; a JSON list is read whole).

    Record ids must be unique in the file: a repeated id is an error at the record that repeats it.
    """
    schema = schema or load_schema()
    seen: set[str] = set()
    for lineno, obj in iter_json_records(path):
        if not isinstance(obj, dict):
            raise InputError("record is not a JSON object", source=path, line=lineno or None)
        try:
            rec = record_from_dict(obj, schema=schema, lang=lang, where=f"{path}:{lineno}")
        except InputError as err:
            raise InputError(err.message, source=path, line=lineno or None, example_id=err.example_id, hint=err.hint) from None
        if rec.id in seen:
            raise InputError(f"duplicate record id {rec.id!r}", source=path, line=lineno or None,
                             hint="give every record a unique id")
        seen.add(rec.id)
        yield rec


def record_from_dict(obj: dict[str, Any], *, schema: Schema | None = None, lang: str = "", where: str = "") -> EventRecord:
    """Parse one record in any of the three forms."""
    schema = schema or load_schema()
    keys = {fix_key(k, RAW_KEYS + NORMALISED_KEYS, where=where): v for k, v in obj.items()}
    if "entities" in keys or "triggers" in keys:
        return _from_raw(keys, schema, lang, where)
    if "entity_mentions" in keys or "event_mentions" in keys:
        return _from_normalised(keys, schema, lang, where)
    raise InputError(f"record has none of the keys entities/triggers (raw MEE) or entity_mentions/event_mentions "
                     f"(normalised); keys are {sorted(obj)}", example_id=str(obj.get("id", "?")),
                     hint="check the file format")


def _tokens(obj: dict[str, Any], rid: str) -> list[str]:
    tokens = obj.get("tokens")
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
        raise InputError("'tokens' must be a non-empty list of non-empty strings", example_id=rid)
    return tokens


# --------------------------------------------------------------------------- raw MEE
def _char_to_token(tokens: list[str]) -> tuple[dict[int, int], dict[int, int]]:
    starts, ends, pos = {}, {}, 0
    for i, tok in enumerate(tokens):
        starts[pos] = i
        ends[pos + len(tok)] = i + 1
        pos += len(tok) + 1
    return starts, ends


def parse_offsets(start: Any, end: Any) -> list[tuple[int, int]]:
    """``("10", "15;20 25")`` -> ``[(10, 15), (20, 25)]`` (character fragments, end exclusive)."""
    text = f"{start} {end}".strip()
    frags = []
    for part in text.split(";"):
        a, b = part.split()
        frags.append((int(a), int(b)))
    return frags


def _raw_mention(mid: str, m: dict[str, Any], tokens: list[str], rid: str, kind: str, schema: Schema, where: str) -> Mention:
    starts, ends = _char_to_token(tokens)
    joined = " ".join(tokens)
    try:
        frags = parse_offsets(m["start"], m["end"])
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{kind} {mid!r} has unreadable offsets start={m.get('start')!r} end={m.get('end')!r}",
                         example_id=rid, hint="offsets are character positions as strings, e.g. \"start\": \"0\", \"end\": \"5\"") from None
    token_frags = []
    for a, b in frags:
        if a not in starts or b not in ends or b <= a:
            raise InputError(f"{kind} {mid!r} offsets [{a}, {b}) ({joined[a:b]!r}) do not match token boundaries",
                             example_id=rid, hint="offsets index the tokens joined by single spaces, end exclusive")
        token_frags.append((starts[a], ends[b]))
    text = " ".join(joined[a:b] for a, b in frags)
    given = m.get("text")
    if given is not None and given.replace(" ", "") != text.replace(" ", ""):
        raise InputError(f"{kind} {mid!r} text {given!r} does not match the tokens at its offsets ({text!r})",
                         example_id=rid, hint="fix the offsets or the text")
    mtype = m.get("type") or m.get("entity_type") or m.get("event_type") or ""
    mtype = normalise_entity_type(mtype, schema, where=where) if kind == "entity" else normalise_event_type(mtype, schema, where=where)
    return Mention(mid, mtype, token_frags[0][0], token_frags[-1][1], text,
                   tuple(token_frags) if len(token_frags) > 1 else ())


def _from_raw(obj: dict[str, Any], schema: Schema, lang: str, where: str) -> EventRecord:
    rid = str(obj.get("id", ""))
    tokens = _tokens(obj, rid)
    entities = [_raw_mention(str(k), v, tokens, rid, "entity", schema, where) for k, v in (obj.get("entities") or {}).items()]
    events = {str(k): Event(str(k), m.type, m) for k, v in (obj.get("triggers") or {}).items()
              for m in [_raw_mention(str(k), v, tokens, rid, "trigger", schema, where)]}
    for arg in obj.get("arguments") or []:
        trig = str(arg.get("trigger"))
        if trig not in events:
            raise InputError(f"argument refers to trigger {trig!r}, which the record does not have", example_id=rid,
                             hint="every argument's trigger must be a key of 'triggers'")
        events[trig].arguments.append(Argument(str(arg.get("argument")), normalise_role(str(arg.get("role")), schema, where=where)))
    rec = EventRecord(rid, tokens, entities, list(events.values()), lang=obj.get("lang", lang),
                      meta={k: obj[k] for k in ("doc_id",) if k in obj})
    _check_record_ids(rec)
    return rec


def record_to_raw(rec: EventRecord) -> dict[str, Any]:
    """Write the raw MEE form (character offsets as strings; fragments kept)."""
    offsets = [0]
    for tok in rec.tokens:
        offsets.append(offsets[-1] + len(tok) + 1)

    def off(m: Mention) -> dict[str, str]:
        frags = m.fragments or ((m.start, m.end),)
        chars = [(offsets[a], offsets[b] - 1) for a, b in frags]
        end = ";".join([str(chars[0][1])] + [f"{a} {b}" for a, b in chars[1:]])
        return {"start": str(chars[0][0]), "end": end}

    out: dict[str, Any] = {"id": rec.id, "tokens": rec.tokens,
                           "entities": {e.id: {"type": e.type, **off(e), "text": e.text} for e in rec.entities},
                           "triggers": {ev.id: {"type": ev.event_type, **off(ev.trigger), "text": ev.trigger.text} for ev in rec.events},
                           "arguments": [{"trigger": ev.id, "argument": a.entity_id, "role": a.role} for ev in rec.events for a in ev.arguments]}
    if rec.lang:
        out["lang"] = rec.lang
    return out


# --------------------------------------------------------------------------- normalised / EusIE
def _span(m: dict[str, Any], n: int, rid: str, what: str) -> tuple[int, int]:
    try:
        start, end = int(m["start"]), int(m["end"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{what} has no integer start/end", example_id=rid) from None
    if not 0 <= start < end <= n:
        raise InputError(f"{what} token span [{start}, {end}) is out of range for {n} tokens", example_id=rid,
                         hint="token offsets are 0-based, end exclusive")
    return start, end


def _from_normalised(obj: dict[str, Any], schema: Schema, lang: str, where: str) -> EventRecord:
    rid = str(obj.get("id", ""))
    tokens = _tokens(obj, rid)
    entities = []
    for m in obj.get("entity_mentions") or []:
        mid = str(m.get("id"))
        s, e = _span(m, len(tokens), rid, f"entity {mid!r}")
        etype = normalise_entity_type(str(m.get("entity_type", m.get("type", ""))), schema, where=where)
        entities.append(Mention(mid, etype, s, e, " ".join(tokens[s:e])))
    events = []
    for ev in obj.get("event_mentions") or []:
        eid = str(ev.get("id"))
        trig = ev.get("trigger") or {}
        s, e = _span(trig, len(tokens), rid, f"trigger of event {eid!r}")
        etype = normalise_event_type(str(ev.get("event_type", "")), schema, where=where)
        args = [Argument(str(a.get("entity_id")), normalise_role(str(a.get("role")), schema, where=where))
                for a in ev.get("arguments") or []]
        events.append(Event(eid, etype, Mention(eid, etype, s, e, " ".join(tokens[s:e])), args))
    rec = EventRecord(rid, tokens, entities, events, lang=obj.get("lang", lang),
                      meta={k: obj[k] for k in ("doc_id", "sent_ids") if k in obj})
    _check_record_ids(rec)
    return rec


def record_to_normalised(rec: EventRecord, *, losses: list[Loss] | None = None, eusie_codes: bool = False,
                         schema: Schema | None = None) -> dict[str, Any]:
    """Write the normalised (or, with ``eusie_codes``, EusIE) form. Discontinuous mentions become
    their first-to-last token range and a :class:`Loss` is appended to ``losses``."""
    schema = schema or load_schema()
    to_code = schema.mee_to_eusie

    def contiguous(m: Mention, what: str) -> dict[str, Any]:
        if m.discontinuous and losses is not None:
            losses.append(Loss(rec.id, m.id, "discontinuous-span",
                               f"{what} {m.id!r} fragments {list(m.fragments)} written as [{m.start}, {m.end})"))
        return {"start": m.start, "end": m.end, "text": " ".join(rec.tokens[m.start:m.end])}

    entities = []
    for e in rec.entities:
        etype = e.type
        if eusie_codes:
            if e.type not in to_code:
                if losses is not None:
                    losses.append(Loss(rec.id, e.id, "unmapped-entity-type", f"entity type {e.type!r} has no EusIE code"))
            else:
                etype = to_code[e.type]
        entities.append({"id": e.id, "entity_type": etype, **contiguous(e, "entity")})
    texts = {e.id: " ".join(rec.tokens[e.start:e.end]) for e in rec.entities}
    out: dict[str, Any] = {
        "id": rec.id, "tokens": rec.tokens, "entity_mentions": entities,
        "event_mentions": [{"id": ev.id, "event_type": ev.event_type, "trigger": contiguous(ev.trigger, "trigger"),
                            "arguments": [{"entity_id": a.entity_id, "role": a.role, "text": texts.get(a.entity_id, "")}
                                          for a in ev.arguments]} for ev in rec.events],
    }
    if rec.lang:
        out["lang"] = rec.lang
    out.update({k: v for k, v in rec.meta.items() if k in ("doc_id", "sent_ids")})
    return out


def write_events(records: Iterable[EventRecord], path: str | Path, *, form: str = "normalised") -> list[Loss]:
    """Write records as JSONL in ``form`` (``raw``, ``normalised`` or ``eusie``); returns the losses."""
    losses: list[Loss] = []
    lines = []
    for rec in records:
        if form == "raw":
            obj = record_to_raw(rec)
        elif form in ("normalised", "eusie"):
            obj = record_to_normalised(rec, losses=losses, eusie_codes=form == "eusie")
        else:
            raise ValueError(f"unknown form {form!r}: use raw, normalised or eusie")
        lines.append(json.dumps(obj, ensure_ascii=False))
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return losses


def group_segments(records: list[EventRecord], size: int = 5) -> list[EventRecord]:
    """Join consecutive sentences of the same document into segments of ``size`` sentences (EusIE
    style). Token offsets are shifted; ids are prefixed with the sentence id so they stay unique."""
    segments: list[EventRecord] = []
    by_doc: dict[str, list[EventRecord]] = {}
    for rec in records:
        # records without a document id are taken as one document, in file order
        by_doc.setdefault(str(rec.meta.get("doc_id", "doc")), []).append(rec)
    for doc_id, recs in by_doc.items():
        for k in range(0, len(recs), size):
            chunk = recs[k:k + size]
            seg = EventRecord(f"{doc_id}-seg{k // size}", [], lang=chunk[0].lang,
                              meta={"doc_id": doc_id, "sent_ids": [r.id for r in chunk]})
            for rec in chunk:
                shift = len(seg.tokens)
                seg.tokens.extend(rec.tokens)
                rename = {e.id: f"{rec.id}:{e.id}" for e in rec.entities}
                seg.entities += [_shifted(e, shift, rename[e.id]) for e in rec.entities]
                seg.events += [Event(f"{rec.id}:{ev.id}", ev.event_type, _shifted(ev.trigger, shift, f"{rec.id}:{ev.id}"),
                                     [Argument(rename.get(a.entity_id, a.entity_id), a.role) for a in ev.arguments])
                               for ev in rec.events]
            segments.append(seg)
    return segments


def _shifted(m: Mention, shift: int, new_id: str) -> Mention:
    return Mention(new_id, m.type, m.start + shift, m.end + shift, m.text,
                   tuple((a + shift, b + shift) for a, b in m.fragments))


# --------------------------------------------------------------------------- id checks
def _check_unique_ids(ids: list[str], what: str, *, source: str | None = None, example_id: str | None = None) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise InputError(f"duplicate {what} id {i!r}", source=source, example_id=example_id,
                             hint=f"give every {what} a unique id")
        seen.add(i)


def _check_record_ids(rec: EventRecord) -> None:
    _check_unique_ids([e.id for e in rec.entities], "entity", example_id=rec.id)
    _check_unique_ids([ev.id for ev in rec.events], "event", example_id=rec.id)
