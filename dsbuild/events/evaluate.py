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


KINDS = ("entities", "triggers", "arguments")


def record_counts(predicted: EventRecord, gold: EventRecord) -> dict[str, dict[str, int]]:
    """``{kind: {tp, predicted, gold}}`` for one record against its gold (same tokens required)."""
    if predicted.tokens != gold.tokens:
        raise InputError("predicted and gold tokens differ", example_id=predicted.id,
                         hint="score projections against gold written on the same tokenisation")
    ps, gs = _structure(predicted), _structure(gold)
    return {kind: {"tp": sum((ps[kind] & gs[kind]).values()), "predicted": sum(ps[kind].values()),
                   "gold": sum(gs[kind].values())} for kind in KINDS}


def prf_from_counts(counts: dict[str, dict[str, int]]) -> dict[str, PRF]:
    """P/R/F1 per kind from summed :func:`record_counts` (as a build sums them over blocks)."""
    return {kind: PRF(int(c.get("tp", 0)), int(c.get("predicted", 0)), int(c.get("gold", 0)))
            for kind, c in ((k, counts.get(k, {})) for k in KINDS)}


def structure_prf(predicted: Sequence[EventRecord], gold: Sequence[EventRecord]) -> dict[str, PRF]:
    """P/R/F1 for entities, triggers and arguments over records paired by position."""
    if len(predicted) != len(gold):
        raise InputError(f"{len(predicted)} predicted records but {len(gold)} gold records")
    total: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    for p, g in zip(predicted, gold):
        for kind, c in record_counts(p, g).items():
            total[kind].update(c)
    return prf_from_counts({k: dict(v) for k, v in total.items()})


def scores_to_dict(scores: dict[str, PRF]) -> dict[str, Any]:
    return {kind: prf.to_dict() for kind, prf in scores.items()}
