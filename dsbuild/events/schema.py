"""The MEE / EusIE event schema: records, inventories, and spelling normalisation.

One in-memory form, :class:`EventRecord`, uses token offsets (end exclusive), like the normalised
MEE form: ``entity_mentions[{id, entity_type, start, end}]`` and ``event_mentions[{id,
event_type, trigger{start, end}, arguments[{entity_id, role}]}]``. A mention may keep
``fragments`` (token ranges of a discontinuous span, as in raw MEE); formats that cannot hold
them record the loss (see :mod:`dsbuild.events.formats`).

Inventories (event types, roles, entity types, EusIE codes) come from the files shipped in
``builders/data/events`` (TextEE valid patterns, Apache-2.0; GrAL code map).
"""

from __future__ import annotations

import csv
import difflib
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[2] / "builders" / "data" / "events"


@dataclass(frozen=True)
class Schema:
    """Event types with their allowed roles, roles with their allowed entity types, EusIE codes."""

    roles_by_event: dict[str, tuple[str, ...]]
    entity_types_by_role: dict[str, tuple[str, ...]]
    eusie_to_mee: dict[str, str | None]

    @property
    def event_types(self) -> list[str]:
        return sorted(self.roles_by_event)

    @property
    def roles(self) -> list[str]:
        return sorted(self.entity_types_by_role)

    @property
    def entity_types(self) -> list[str]:
        return sorted({t for ts in self.entity_types_by_role.values() for t in ts} |
                      {t for t in self.eusie_to_mee.values() if t})

    @property
    def mee_to_eusie(self) -> dict[str, str]:
        return {mee: code for code, mee in self.eusie_to_mee.items() if mee}


@lru_cache(maxsize=4)
def load_schema(data_dir: str | Path = DATA_DIR) -> Schema:
    """Load the schema files (``mee_event_type_to_roles.json``, ``mee_role_to_entity_types.json``,
    ``entity_type_code_map.csv``) from ``data_dir``."""
    data_dir = Path(data_dir)
    roles = json.loads((data_dir / "mee_event_type_to_roles.json").read_text(encoding="utf-8"))
    types = json.loads((data_dir / "mee_role_to_entity_types.json").read_text(encoding="utf-8"))
    codes: dict[str, str | None] = {}
    with (data_dir / "entity_type_code_map.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label = row["mee_bio_label"].strip()
            codes[row["eusie_code"].strip()] = None if label.startswith("(") else label
    return Schema({k: tuple(v) for k, v in roles.items()}, {k: tuple(v) for k, v in types.items()}, codes)


@dataclass
class Mention:
    """An entity mention or an event trigger: type and token range ``[start, end)``.

    ``fragments`` lists the token ranges of a discontinuous mention (empty when contiguous);
    ``start``/``end`` then span the first to the last fragment.
    """

    id: str
    type: str
    start: int
    end: int
    text: str = ""
    fragments: tuple[tuple[int, int], ...] = ()

    @property
    def discontinuous(self) -> bool:
        return len(self.fragments) > 1


@dataclass
class Argument:
    entity_id: str
    role: str


@dataclass
class Event:
    id: str
    event_type: str
    trigger: Mention
    arguments: list[Argument] = field(default_factory=list)


@dataclass
class EventRecord:
    """One annotated sentence or segment."""

    id: str
    tokens: list[str]
    entities: list[Mention] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    lang: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def entity(self, entity_id: str) -> Mention | None:
        return next((e for e in self.entities if e.id == entity_id), None)

    def counts(self) -> dict[str, int]:
        return {"entities": len(self.entities), "triggers": len(self.events),
                "arguments": sum(len(ev.arguments) for ev in self.events)}


def normalise_event_type(name: str, schema: Schema, *, where: str = "") -> str:
    """Map spelling variants (``Conflict:Attack``, ``conflict_attack``, ``Conflict.Attack``) to the
    schema's ``Conflict_Attack``; a change is logged. Unknown types are returned unchanged (the
    validator reports them)."""
    if name in schema.roles_by_event:
        return name
    candidates = {_key(t): t for t in schema.roles_by_event}
    fixed = candidates.get(_key(name))
    if fixed is not None:
        log.info("%snormalised event type %r -> %r", f"{where}: " if where else "", name, fixed)
        return fixed
    return name


def normalise_role(name: str, schema: Schema, *, where: str = "") -> str:
    """``attacker`` / ``ATTACKER`` -> ``Attacker``; logged."""
    if name in schema.entity_types_by_role:
        return name
    fixed = {r.lower(): r for r in schema.entity_types_by_role}.get(name.lower())
    if fixed is not None:
        log.info("%snormalised role %r -> %r", f"{where}: " if where else "", name, fixed)
        return fixed
    return name


def normalise_entity_type(name: str, schema: Schema, *, where: str = "") -> str:
    """EusIE codes (``PER``) and case variants map to MEE names (``PERSON``); logged."""
    known = schema.entity_types
    if name in known:
        return name
    fixed = schema.eusie_to_mee.get(name.upper()) or {t.lower(): t for t in known}.get(name.lower())
    if fixed:
        log.info("%snormalised entity type %r -> %r", f"{where}: " if where else "", name, fixed)
        return fixed
    return name


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def fix_key(key: str, expected: list[str], *, where: str = "") -> str:
    """Map a misspelled record key (``event_mentoins``) to the expected one, logged; else unchanged."""
    if key in expected:
        return key
    close = difflib.get_close_matches(key, expected, n=1, cutoff=0.8)
    if close:
        log.warning("%skey %r read as %r (misspelled in the file)", f"{where}: " if where else "", key, close[0])
        return close[0]
    return key
