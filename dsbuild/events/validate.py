"""Validate event records against the MEE constraints (roles per event type, entity types per role).

``validate_record`` returns every :class:`Violation`; ``apply_policy`` decides what happens:
``strict`` rejects a record with any violation, ``lenient`` keeps it and flags the violations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from dsbuild.events.schema import EventRecord, Schema, load_schema

Policy = Literal["strict", "lenient"]


@dataclass(frozen=True)
class Violation:
    record_id: str
    item_id: str
    code: str  # unknown-event-type | unknown-role | unknown-entity-type | role-not-allowed | entity-type-not-allowed | missing-entity | overlapping-trigger
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def validate_record(rec: EventRecord, schema: Schema | None = None) -> list[Violation]:
    """All constraint violations of one record."""
    schema = schema or load_schema()
    out: list[Violation] = []
    known_entity_types = set(schema.entity_types)
    entities = {e.id: e for e in rec.entities}
    for e in rec.entities:
        if e.type not in known_entity_types:
            out.append(Violation(rec.id, e.id, "unknown-entity-type", f"entity type {e.type!r} is not one of {sorted(known_entity_types)}"))
    for ev in rec.events:
        allowed_roles = schema.roles_by_event.get(ev.event_type)
        if allowed_roles is None:
            out.append(Violation(rec.id, ev.id, "unknown-event-type", f"event type {ev.event_type!r} is not in the schema"))
        for arg in ev.arguments:
            where = f"{ev.id}/{arg.entity_id}"
            if arg.role not in schema.entity_types_by_role:
                out.append(Violation(rec.id, where, "unknown-role", f"role {arg.role!r} is not in the schema"))
            elif allowed_roles is not None and arg.role not in allowed_roles:
                out.append(Violation(rec.id, where, "role-not-allowed",
                                     f"role {arg.role!r} is not allowed for {ev.event_type} (allowed: {', '.join(allowed_roles)})"))
            entity = entities.get(arg.entity_id)
            if entity is None:
                out.append(Violation(rec.id, where, "missing-entity", f"argument points at entity {arg.entity_id!r}, which the record does not have"))
            elif arg.role in schema.entity_types_by_role and entity.type not in schema.entity_types_by_role[arg.role]:
                out.append(Violation(rec.id, where, "entity-type-not-allowed",
                                     f"role {arg.role!r} takes {', '.join(schema.entity_types_by_role[arg.role])}, not {entity.type!r}"))
    return out


def apply_policy(rec: EventRecord, violations: list[Violation], policy: Policy) -> bool:
    """True when the record is kept. Lenient keeps it and stores the violations in ``rec.meta``."""
    if policy not in ("strict", "lenient"):
        raise ValueError(f"unknown validation policy {policy!r}: use strict or lenient")
    if violations and policy == "strict":
        return False
    rec.meta["violations"] = [v.to_dict() for v in violations]
    return True
