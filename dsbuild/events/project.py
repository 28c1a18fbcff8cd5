"""Carry event structure across a translation: project entities and triggers, rebuild arguments.

Each entity mention and trigger (each fragment of a discontinuous one) becomes one source span of
a :class:`dsbuild.spans.Example`; any registered projector (alignment, markers, constrained)
moves the spans onto the translation. The record is then rebuilt on the target tokens:

* an entity or trigger whose span did not project is recorded as a :class:`Loss`
  (``unprojected-entity`` / ``unprojected-trigger``) with the projector's reason;
* an argument is kept only if both its trigger and its entity projected, else recorded
  (``argument-entity-lost`` / ``argument-trigger-lost``);
* so for every record: output + recorded losses = input, for entities, triggers and arguments
  (:func:`check_accounting` asserts it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dsbuild.events.formats import Loss, group_segments
from dsbuild.events.schema import Argument, Event, EventRecord, Mention
from dsbuild.project.base import Projection, Projector
from dsbuild.spans import Example, tokens_from_words

ENTITY, TRIGGER = "entity", "trigger"


@dataclass
class ProjectedRecord:
    """A source record, its projection onto the translation, and what could not be carried."""

    source: EventRecord
    target: EventRecord
    losses: list[Loss] = field(default_factory=list)
    qc: dict[str, Any] = field(default_factory=dict)


def record_to_example(rec: EventRecord) -> tuple[Example, list[tuple[str, str]]]:
    """An Example with one span per mention fragment, and ``[(kind, mention_id)]`` per span."""
    ex = Example(id=rec.id, text=" ".join(rec.tokens), tokens=tokens_from_words(rec.tokens, example_id=rec.id))
    owners: list[tuple[str, str]] = []
    spans = []
    for kind, mention in [(ENTITY, e) for e in rec.entities] + [(TRIGGER, ev.trigger) for ev in rec.events]:
        for start, end in mention.fragments or ((mention.start, mention.end),):
            spans.append(ex.span_from_tokens(start, end, mention.type))
            owners.append((kind, mention.id))
    ex.spans = spans
    return ex, owners


def project_records(records: Sequence[EventRecord], translations: Sequence[str | Sequence[str]], projector: Projector,
                    *, src_lang: str, tgt_lang: str) -> list[ProjectedRecord]:
    """Project every record onto its translation with ``projector``."""
    pairs = [record_to_example(r) for r in records]
    projections = projector.project([ex for ex, _ in pairs], list(translations), src_lang=src_lang, tgt_lang=tgt_lang)
    return [rebuild(rec, owners, proj, tgt_lang) for rec, (_, owners), proj in zip(records, pairs, projections)]


def rebuild(rec: EventRecord, owners: list[tuple[str, str]], proj: Projection, tgt_lang: str) -> ProjectedRecord:
    """Rebuild ``rec`` on the projected target from span-level results."""
    target_spans = proj.target.spans
    unprojected = {(u.span.token_start, u.span.token_end, u.span.label): u for u in proj.unprojected}
    fragments: dict[tuple[str, str], list[tuple[int, int, float | None]]] = {}
    reasons: dict[tuple[str, str], str] = {}
    for i, owner in enumerate(owners):
        j = proj.mapping.get(i)
        if j is not None:
            s = target_spans[j]
            fragments.setdefault(owner, []).append((s.token_start, s.token_end, s.score))
        else:
            src_span = proj.source.spans[i]
            u = unprojected.get((src_span.token_start, src_span.token_end, src_span.label))
            reasons.setdefault(owner, u.reason if u else (proj.rejected or "unprojected"))

    tokens = [t.text for t in proj.target.tokens]
    losses: list[Loss] = []

    def target_mention(kind: str, m: Mention) -> Mention | None:
        frags = fragments.get((kind, m.id))
        if not frags:
            losses.append(Loss(rec.id, m.id, f"unprojected-{kind}", reasons.get((kind, m.id), "unprojected")))
            return None
        ranges = _merge(sorted((a, b) for a, b, _ in frags))
        text = " ".join(" ".join(tokens[a:b]) for a, b in ranges)
        return Mention(m.id, m.type, ranges[0][0], ranges[-1][1], text, tuple(ranges) if len(ranges) > 1 else ())

    entities = [t for e in rec.entities if (t := target_mention(ENTITY, e)) is not None]
    kept_entities = {e.id for e in entities}
    events = []
    for ev in rec.events:
        trigger = target_mention(TRIGGER, ev.trigger)
        if trigger is None:
            for a in ev.arguments:
                losses.append(Loss(rec.id, f"{ev.id}/{a.entity_id}", "argument-trigger-lost",
                                   f"{a.role} argument of {ev.id} dropped: its trigger did not project"))
            continue
        args = []
        for a in ev.arguments:
            if a.entity_id in kept_entities:
                args.append(Argument(a.entity_id, a.role))
            else:
                losses.append(Loss(rec.id, f"{ev.id}/{a.entity_id}", "argument-entity-lost",
                                   f"{a.role} argument of {ev.id} dropped: entity {a.entity_id} did not project"))
        events.append(Event(ev.id, ev.event_type, trigger, args))
    target = EventRecord(rec.id, tokens, entities, events, lang=tgt_lang, meta=dict(rec.meta))
    result = ProjectedRecord(rec, target, losses, qc=dict(proj.qc))
    check_accounting(result)
    return result


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or adjacent token ranges."""
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def check_accounting(result: ProjectedRecord) -> None:
    """Output + recorded losses = input for entities, triggers and arguments, or raise."""
    lost = {"entities": 0, "triggers": 0, "arguments": 0}
    for loss in result.losses:
        if loss.kind == "unprojected-entity":
            lost["entities"] += 1
        elif loss.kind == "unprojected-trigger":
            lost["triggers"] += 1
        elif loss.kind.startswith("argument-"):
            lost["arguments"] += 1
    before, after = result.source.counts(), result.target.counts()
    for key in before:
        if after[key] + lost[key] != before[key]:
            raise AssertionError(f"record {result.source.id}: {key} in={before[key]} out={after[key]} lost={lost[key]}")


def group_projected(projected: Sequence[ProjectedRecord], size: int) -> list[ProjectedRecord]:
    """Group sentence-level results into segments of ``size`` sentences (EusIE style).

    Translation and projection work per sentence; segments are formed afterwards on both sides
    with the same grouping, and the sentences' losses travel with their segment.
    """
    sources = group_segments([p.source for p in projected], size)
    targets = group_segments([p.target for p in projected], size)
    losses = {p.source.id: p.losses for p in projected}
    out = []
    for src, tgt in zip(sources, targets):
        merged = [Loss(src.id, f"{sid}:{l.item_id}", l.kind, l.detail) for sid in src.meta["sent_ids"] for l in losses[sid]]
        result = ProjectedRecord(src, tgt, merged, qc={"sentences": len(src.meta["sent_ids"])})
        check_accounting(result)
        out.append(result)
    return out
