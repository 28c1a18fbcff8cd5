"""Dataset features and rows for event records and their derived views.

* ``events``: the full structure (nested, with ClassLabel types), plus losses and QC.
* ``entities-bio`` / ``triggers-bio``: one row per record, IOB2 tags over entity / event types.
  Tags cannot hold overlapping or discontinuous mentions: such a mention is tagged by its first
  fragment / left out where it overlaps an earlier one, and counted in ``untagged`` (never silent).
* ``arguments``: one row per trigger, the trigger marked in the tokens, IOB2 role tags over the
  argument entities.
"""

from __future__ import annotations

from typing import Any

import datasets

from dsbuild.events.formats import Loss
from dsbuild.events.schema import Event, EventRecord, Schema
from dsbuild.spans import spans_to_tags, tag_names

TRIGGER_OPEN, TRIGGER_CLOSE = "<trigger>", "</trigger>"


def _loss_feature() -> dict[str, datasets.Value]:
    return {"item_id": datasets.Value("string"), "kind": datasets.Value("string"), "detail": datasets.Value("string")}


def events_features(schema: Schema) -> datasets.Features:
    span = {"start": datasets.Value("int32"), "end": datasets.Value("int32"), "text": datasets.Value("string")}
    return datasets.Features({
        "id": datasets.Value("string"),
        "lang": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        "entity_mentions": datasets.List({"id": datasets.Value("string"),
                                          "entity_type": datasets.ClassLabel(names=schema.entity_types), **span}),
        "event_mentions": datasets.List({
            "id": datasets.Value("string"),
            "event_type": datasets.ClassLabel(names=schema.event_types),
            "trigger": span,
            "arguments": datasets.List({"entity_id": datasets.Value("string"),
                                        "role": datasets.ClassLabel(names=schema.roles),
                                        "text": datasets.Value("string")}),
        }),
        "source_tokens": datasets.List(datasets.Value("string")),
        "losses": datasets.List(_loss_feature()),
        "violations": datasets.List({"item_id": datasets.Value("string"), "code": datasets.Value("string"),
                                     "detail": datasets.Value("string")}),
    })


def events_row(rec: EventRecord, *, source: EventRecord | None = None, losses: list[Loss] = ()) -> dict[str, Any]:
    def span(m: Any) -> dict[str, Any]:
        return {"start": m.start, "end": m.end, "text": " ".join(rec.tokens[m.start:m.end])}

    texts = {e.id: " ".join(rec.tokens[e.start:e.end]) for e in rec.entities}
    return {
        "id": rec.id, "lang": rec.lang, "tokens": rec.tokens,
        "entity_mentions": [{"id": e.id, "entity_type": e.type, **span(e)} for e in rec.entities],
        "event_mentions": [{"id": ev.id, "event_type": ev.event_type, "trigger": span(ev.trigger),
                            "arguments": [{"entity_id": a.entity_id, "role": a.role, "text": texts.get(a.entity_id, "")}
                                          for a in ev.arguments]} for ev in rec.events],
        "source_tokens": source.tokens if source is not None else [],
        "losses": [{"item_id": l.item_id, "kind": l.kind, "detail": l.detail} for l in losses],
        "violations": [{k: v[k] for k in ("item_id", "code", "detail")} for v in rec.meta.get("violations", [])],
    }


def bio_features(labels: list[str], column: str) -> datasets.Features:
    return datasets.Features({
        "id": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        column: datasets.List(datasets.ClassLabel(names=tag_names(labels))),
        "untagged": datasets.List(datasets.Value("string")),
    })


def _tags(n: int, mentions: list[tuple[str, int, int, str]]) -> tuple[list[str], list[str]]:
    """IOB2 tags for ``(id, start, end, label)`` mentions; those that would overlap are returned apart."""
    taken: list[tuple[int, int, str]] = []
    untagged: list[str] = []
    for mid, start, end, label in sorted(mentions, key=lambda m: (m[1], -(m[2] - m[1]))):
        if any(start < e and s < end for s, e, _ in taken):
            untagged.append(mid)
        else:
            taken.append((start, end, label))
    return spans_to_tags(taken, n), untagged


def entities_bio_row(rec: EventRecord) -> dict[str, Any]:
    mentions = [(e.id, *(e.fragments[0] if e.fragments else (e.start, e.end)), e.type) for e in rec.entities]
    tags, untagged = _tags(len(rec.tokens), mentions)
    untagged += [f"{e.id} (fragments after the first)" for e in rec.entities if e.discontinuous]
    return {"id": rec.id, "tokens": rec.tokens, "ner_tags": tags, "untagged": untagged}


def triggers_bio_row(rec: EventRecord) -> dict[str, Any]:
    mentions = [(ev.id, *(ev.trigger.fragments[0] if ev.trigger.fragments else (ev.trigger.start, ev.trigger.end)),
                 ev.event_type) for ev in rec.events]
    tags, untagged = _tags(len(rec.tokens), mentions)
    untagged += [f"{ev.id} (fragments after the first)" for ev in rec.events if ev.trigger.discontinuous]
    return {"id": rec.id, "tokens": rec.tokens, "trigger_tags": tags, "untagged": untagged}


def arguments_features(schema: Schema) -> datasets.Features:
    return datasets.Features({
        "id": datasets.Value("string"),
        "record_id": datasets.Value("string"),
        "event_type": datasets.ClassLabel(names=schema.event_types),
        "tokens": datasets.List(datasets.Value("string")),
        "trigger_start": datasets.Value("int32"),
        "trigger_end": datasets.Value("int32"),
        "role_tags": datasets.List(datasets.ClassLabel(names=tag_names(schema.roles))),
        "untagged": datasets.List(datasets.Value("string")),
    })


def argument_rows(rec: EventRecord) -> list[dict[str, Any]]:
    """One argument-extraction instance per trigger: trigger wrapped in marker tokens, role tags."""
    entities = {e.id: e for e in rec.entities}
    rows = []
    for ev in rec.events:
        rows.append(_argument_row(rec, ev, entities))
    return rows


def _argument_row(rec: EventRecord, ev: Event, entities: dict[str, Any]) -> dict[str, Any]:
    ts, te = ev.trigger.start, ev.trigger.end
    tokens = rec.tokens[:ts] + [TRIGGER_OPEN] + rec.tokens[ts:te] + [TRIGGER_CLOSE] + rec.tokens[te:]

    def shift(i: int) -> int:  # token index after inserting the two markers
        return i + (1 if i >= ts else 0) + (1 if i >= te else 0)

    mentions = []
    for a in ev.arguments:
        e = entities[a.entity_id]
        start, end = e.fragments[0] if e.fragments else (e.start, e.end)
        mentions.append((f"{a.entity_id}:{a.role}", shift(start), shift(end - 1) + 1, a.role))
    tags, untagged = _tags(len(tokens), mentions)
    return {"id": f"{rec.id}:{ev.id}", "record_id": rec.id, "event_type": ev.event_type, "tokens": tokens,
            "trigger_start": ts + 1, "trigger_end": te + 1, "role_tags": tags, "untagged": untagged}
