"""Structure-level scores of projected event records against gold target records.

Matching is exact on token boundaries and types: an entity is ``(start, end, type)``, a trigger
``(start, end, event_type)``, an argument ``(trigger start, trigger end, event_type, role, entity
start, entity end)``, so an argument counts only when its trigger, role and entity all match.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from dsbuild.errors import InputError
from dsbuild.evaluate import PRF
from dsbuild.events.schema import EventRecord


def _structure(rec: EventRecord) -> dict[str, Counter]:
    entities = {e.id: e for e in rec.entities}
    return {
        "entities": Counter((e.start, e.end, e.type) for e in rec.entities),
        "triggers": Counter((ev.trigger.start, ev.trigger.end, ev.event_type) for ev in rec.events),
        "arguments": Counter((ev.trigger.start, ev.trigger.end, ev.event_type, a.role,
                              entities[a.entity_id].start, entities[a.entity_id].end)
                             for ev in rec.events for a in ev.arguments if a.entity_id in entities),
    }


def structure_prf(predicted: Sequence[EventRecord], gold: Sequence[EventRecord]) -> dict[str, PRF]:
    """P/R/F1 for entities, triggers and arguments over records paired by position."""
    if len(predicted) != len(gold):
        raise InputError(f"{len(predicted)} predicted records but {len(gold)} gold records")
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for p, g in zip(predicted, gold):
        if p.tokens != g.tokens:
            raise InputError("predicted and gold tokens differ", example_id=p.id,
                             hint="score projections against gold written on the same tokenisation")
        ps, gs = _structure(p), _structure(g)
        for kind in ps:
            n_pred[kind] += sum(ps[kind].values())
            n_gold[kind] += sum(gs[kind].values())
            tp[kind] += sum((ps[kind] & gs[kind]).values())
    return {kind: PRF(tp[kind], n_pred[kind], n_gold[kind]) for kind in ("entities", "triggers", "arguments")}


def scores_to_dict(scores: dict[str, PRF]) -> dict[str, Any]:
    return {kind: prf.to_dict() for kind, prf in scores.items()}
