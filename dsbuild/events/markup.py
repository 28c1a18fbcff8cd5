"""A compact inline markup for writing event records by hand (tests, shipped examples).

A sentence is space-separated tokens; a bracketed group marks a mention::

    [Rebels|E1:ORGANIZATION] [attacked|T1:Conflict_Attack] [the convoy|E2:VEHICLE] .

``[words|ID:TYPE]`` opens a mention; ``[words|ID]`` reuses the type given for ``ID`` elsewhere
(for a translation of the same record); ``[words|ID+]`` adds a fragment to ``ID`` (a
discontinuous mention). IDs starting with ``T`` are triggers, others entities. Arguments are
given separately as ``{"T1": ["Attacker E1", "Place E3"]}``.
"""

from __future__ import annotations

import re
from typing import Any

from dsbuild.errors import InputError
from dsbuild.events.schema import Argument, Event, EventRecord, Mention

_GROUP = re.compile(r"\[([^\[\]|]+)\|([A-Za-z0-9_]+)(\+?)(?::([A-Za-z_\-:]+))?\]")


def parse_markup(record_id: str, sentence: str, arguments: dict[str, list[str]] | None = None, *,
                 types: dict[str, str] | None = None, lang: str = "") -> EventRecord:
    """Parse one marked-up sentence into an :class:`EventRecord`.

    ``types`` supplies the type of ids written without one (``[hil|T1]``), e.g. from the source side.
    """
    types = dict(types or {})
    tokens: list[str] = []
    fragments: dict[str, list[tuple[int, int]]] = {}
    pos = 0
    for match in _GROUP.finditer(sentence):
        tokens += sentence[pos:match.start()].split()
        words, mid, more, mtype = match.group(1).split(), match.group(2), match.group(3), match.group(4)
        if mtype:
            types[mid] = mtype
        if more and mid not in fragments:
            raise InputError(f"fragment {mid}+ comes before {mid} is opened", example_id=record_id)
        if not more and mid in fragments:
            raise InputError(f"mention id {mid!r} used twice (write {mid}+ for another fragment)", example_id=record_id)
        fragments.setdefault(mid, []).append((len(tokens), len(tokens) + len(words)))
        tokens += words
        pos = match.end()
    tokens += sentence[pos:].split()
    if any(ch in t for t in tokens for ch in "[]|"):
        raise InputError(f"unparsed markup in {sentence!r}", example_id=record_id, hint="write [words|ID:TYPE]")
    missing = sorted(set(fragments) - set(types))
    if missing:
        raise InputError(f"no type for {missing}", example_id=record_id, hint="give the type once, as [words|ID:TYPE]")

    def mention(mid: str) -> Mention:
        frags = fragments[mid]
        text = " ".join(" ".join(tokens[a:b]) for a, b in frags)
        return Mention(mid, types[mid], frags[0][0], frags[-1][1], text, tuple(frags) if len(frags) > 1 else ())

    entities = [mention(m) for m in fragments if not m.startswith("T")]
    events = [Event(m, types[m], mention(m)) for m in fragments if m.startswith("T")]
    by_id = {ev.id: ev for ev in events}
    for trig, args in (arguments or {}).items():
        if trig not in by_id:
            continue  # the trigger is absent in this sentence (e.g. not translated): no arguments
        for arg in args:
            role, entity_id = arg.split()
            if entity_id in fragments:
                by_id[trig].arguments.append(Argument(entity_id, role))
    return EventRecord(record_id, tokens, entities, events, lang=lang)


def plain_tokens(sentence: str) -> list[str]:
    """The tokens of a marked-up sentence with the markup removed."""
    return _GROUP.sub(lambda m: m.group(1), sentence).split()


def mention_types(rec: EventRecord) -> dict[str, str]:
    """``{id: type}`` for every mention of a record (to parse its translation with ``types=``)."""
    out = {e.id: e.type for e in rec.entities}
    out.update({ev.id: ev.event_type for ev in rec.events})
    return out


def load_markup_records(items: list[dict[str, Any]], source_lang: str, target_lang: str | None = None
                        ) -> tuple[list[EventRecord], list[EventRecord]]:
    """Parse ``[{id, <source_lang>: markup, <target_lang>: markup, args}]`` into source records and
    (when ``target_lang`` is given) their gold translations."""
    sources, targets = [], []
    for item in items:
        src = parse_markup(item["id"], item[source_lang], item.get("args"), lang=source_lang)
        sources.append(src)
        if target_lang:
            targets.append(parse_markup(item["id"], item[target_lang], item.get("args"),
                                        types=mention_types(src), lang=target_lang))
    return sources, targets
