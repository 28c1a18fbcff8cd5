"""Event schema I/O, validation and bad input (issue 6)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from dsbuild.errors import InputError
from dsbuild.events.formats import (
    group_segments, read_events, record_from_dict, record_to_normalised, record_to_raw, write_events,
)
from dsbuild.events.markup import load_markup_records, parse_markup
from dsbuild.events.schema import DATA_DIR, load_schema
from dsbuild.events.validate import apply_policy, validate_record

EXAMPLES = DATA_DIR / "examples.yaml"


@pytest.fixture(scope="module")
def shipped():
    return load_markup_records(yaml.safe_load(EXAMPLES.read_text(encoding="utf-8")), "en", "eu")


def raw_record(**overrides):
    rec = {
        "id": "r1",
        "tokens": ["John", "Smith", "was", "killed", "in", "Baghdad", "."],
        "entities": {"E1": {"type": "PERSON", "start": "0", "end": "10", "text": "John Smith"},
                     "E2": {"type": "GEO", "start": "25", "end": "32", "text": "Baghdad"}},
        "triggers": {"T1": {"type": "Life_Die", "start": "15", "end": "21"}},
        "arguments": [{"trigger": "T1", "argument": "E1", "role": "Victim"},
                      {"trigger": "T1", "argument": "E2", "role": "Place"}],
    }
    rec.update(overrides)
    return rec


def test_schema_inventories():
    schema = load_schema()
    assert len(schema.event_types) == 16 and len(schema.roles) == 23 and len(schema.entity_types) == 11
    assert schema.eusie_to_mee["GPE"] == "GEO" and schema.eusie_to_mee["OBJ"] is None


def test_shipped_examples_cover_every_event_type_and_validate(shipped):
    sources, targets = shipped
    schema = load_schema()
    assert {ev.event_type for r in sources for ev in r.events} == set(schema.event_types)
    assert any(ev.trigger.discontinuous for r in sources for ev in r.events)
    shared = [r for r in sources if len({a.entity_id for ev in r.events for a in ev.arguments}) <
              sum(len(ev.arguments) for ev in r.events)]
    assert shared, "some entity must be an argument of two events"
    for rec in sources + targets:
        assert validate_record(rec, schema) == [], rec.id


def test_raw_round_trip_keeps_discontinuous_spans(shipped):
    for rec in shipped[0]:
        again = record_from_dict(record_to_raw(rec))
        assert again == rec


def test_normalised_round_trip_and_recorded_loss(shipped):
    sources = shipped[0]
    for rec in sources:
        losses = []
        norm = record_to_normalised(rec, losses=losses)
        back = record_from_dict(norm)
        assert [(e.id, e.type, e.start, e.end) for e in back.entities] == [(e.id, e.type, e.start, e.end) for e in rec.entities]
        assert len(losses) == sum(m.discontinuous for m in [*rec.entities, *(ev.trigger for ev in rec.events)])
    rec17 = next(r for r in sources if r.id == "ev-017")
    losses = []
    record_to_normalised(rec17, losses=losses)
    assert [l.kind for l in losses] == ["discontinuous-span"] and losses[0].item_id == "T1"


def test_eusie_codes_round_trip(tmp_path, shipped):
    path = tmp_path / "eu.jsonl"
    losses = write_events(shipped[1], path, form="eusie")
    assert losses == []
    line = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert line["entity_mentions"][0]["entity_type"] in {"ORG", "PER", "GPE", "FAC"}
    back = read_events(path)
    assert [e.type for e in back[0].entities] == [e.type for e in shipped[1][0].entities]


def test_segments_of_five(shipped):
    recs = shipped[0][:12]
    for r in recs:
        r.meta["doc_id"] = "doc"
    segs = group_segments(recs, 5)
    assert [len(s.meta["sent_ids"]) for s in segs] == [5, 5, 2]
    assert sum(len(s.tokens) for s in segs) == sum(len(r.tokens) for r in recs)
    seg = segs[1]
    for ev in seg.events:  # arguments still point at entities of the segment
        for a in ev.arguments:
            assert seg.entity(a.entity_id) is not None
    first = recs[5]
    e = seg.entities[0]
    assert seg.tokens[e.start:e.end] == first.tokens[first.entities[0].start:first.entities[0].end]


def test_type_spellings_are_normalised_and_logged(caplog):
    caplog.set_level(logging.INFO)
    rec = record_from_dict(raw_record(triggers={"T1": {"type": "Life:Die", "start": "15", "end": "21"}},
                                      arguments=[{"trigger": "T1", "argument": "E1", "role": "victim"}]))
    assert rec.events[0].event_type == "Life_Die" and rec.events[0].arguments[0].role == "Victim"
    assert "Life:Die" in caplog.text and "victim" in caplog.text
    per = record_from_dict({"id": "x", "tokens": ["Ana", "ran"], "entity_mentions": [
        {"id": "E1", "entity_type": "PER", "start": 0, "end": 1}], "event_mentions": []})
    assert per.entities[0].type == "PERSON"


def test_misspelled_key_is_read_and_logged(caplog):
    caplog.set_level(logging.WARNING)
    rec = record_from_dict({"id": "x", "tokens": ["Ana", "died"],
                            "entity_mentions": [{"id": "E1", "entity_type": "PERSON", "start": 0, "end": 1}],
                            "event_mentinos": [{"id": "T1", "event_type": "Life_Die", "trigger": {"start": 1, "end": 2},
                                                "arguments": [{"entity_id": "E1", "role": "Victim"}]}]})
    assert len(rec.events) == 1 and "event_mentinos" in caplog.text


@pytest.mark.parametrize("overrides, message", [
    ({"entities": {"E1": {"type": "PERSON", "start": "0", "end": "9"}}}, "do not match token boundaries"),
    ({"entities": {"E1": {"type": "PERSON", "start": "0", "end": "4", "text": "Jane"}}}, "does not match the tokens"),
    ({"entities": {"E1": {"type": "PERSON", "start": "zero", "end": "4"}}}, "unreadable offsets"),
    ({"arguments": [{"trigger": "T9", "argument": "E1", "role": "Victim"}]}, "trigger 'T9'"),
    ({"tokens": []}, "non-empty list"),
])
def test_bad_raw_records(overrides, message):
    with pytest.raises(InputError, match=message) as err:
        record_from_dict(raw_record(**overrides))
    assert "r1" in str(err.value)


def test_duplicate_ids_name_file_and_line(tmp_path):
    path = tmp_path / "dup.jsonl"
    rec = record_to_normalised(record_from_dict(raw_record()))
    rec["entity_mentions"].append(dict(rec["entity_mentions"][0]))
    path.write_text(json.dumps(record_to_normalised(record_from_dict(raw_record()))) + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(InputError, match=r"dup.jsonl:2.*duplicate entity id 'E1'"):
        read_events(path)
    path.write_text(json.dumps(raw_record()) + "\n" + json.dumps(raw_record()) + "\n")
    with pytest.raises(InputError, match="duplicate record id 'r1'"):
        read_events(path)


def test_validation_reports_every_violation_and_policies():
    rec = record_from_dict(raw_record(
        triggers={"T1": {"type": "Life_Die", "start": "15", "end": "21"}, "T2": {"type": "Life_Explode", "start": "25", "end": "32"}},
        arguments=[{"trigger": "T1", "argument": "E2", "role": "Victim"},      # GEO cannot be a Victim
                   {"trigger": "T1", "argument": "E1", "role": "Buyer"},       # role not allowed for Life_Die
                   {"trigger": "T1", "argument": "E7", "role": "Agent"},       # missing entity
                   {"trigger": "T1", "argument": "E1", "role": "Kicker"}]))    # unknown role
    codes = sorted(v.code for v in validate_record(rec))
    assert codes == ["entity-type-not-allowed", "missing-entity", "role-not-allowed", "unknown-event-type", "unknown-role"]
    violations = validate_record(rec)
    assert apply_policy(rec, violations, "strict") is False
    assert apply_policy(rec, violations, "lenient") is True and len(rec.meta["violations"]) == 5


def test_markup_errors():
    with pytest.raises(InputError, match="no type"):
        parse_markup("m", "[Ana|E1] ran")
    with pytest.raises(InputError, match="used twice"):
        parse_markup("m", "[Ana|E1:PERSON] and [Jon|E1:PERSON]")
    with pytest.raises(InputError, match="unparsed markup"):
        parse_markup("m", "[Ana E1:PERSON] ran")


def test_plain_tokens_strip_markup_and_match_the_parsed_tokens(shipped):
    from dsbuild.events.markup import plain_tokens

    items = yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))
    for item, gold in zip(items, shipped[1]):
        assert plain_tokens(item["eu"]) == gold.tokens
    assert plain_tokens("[Called|T1:Contact_Phone-Write] [him|E1:PERSON] [up|T1+] .") == ["Called", "him", "up", "."]
