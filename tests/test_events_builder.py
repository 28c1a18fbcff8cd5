"""The events builder and structure projection (issue 6)."""

from __future__ import annotations

import json

import datasets
import pyarrow.parquet as pq
import pytest
import yaml

from dsbuild.align.base import Alignment
from dsbuild.config import resolve_options
from dsbuild.errors import ConfigError
from dsbuild.events.evaluate import structure_prf
from dsbuild.events.formats import record_to_raw
from dsbuild.events.markup import load_markup_records
from dsbuild.events.project import project_records
from dsbuild.events.schema import DATA_DIR
from dsbuild.executor import build
from dsbuild.registry import builders, projectors


@pytest.fixture(scope="module")
def pairs():
    items = yaml.safe_load((DATA_DIR / "examples.yaml").read_text(encoding="utf-8"))
    return load_markup_records(items, "en", "eu")


class GoldMentionAligner:
    """Links each source token of a mention to every target token of the same mention id (gold)."""

    name = "gold-mentions"

    def __init__(self, sources, targets):
        self.links = {}
        for s, t in zip(sources, targets):
            src = {m.id: m for m in [*s.entities, *(ev.trigger for ev in s.events)]}
            tgt = {m.id: m for m in [*t.entities, *(ev.trigger for ev in t.events)]}
            links = set()
            for mid, m in src.items():
                if mid in tgt:
                    for a, b in m.fragments or ((m.start, m.end),):
                        links |= {(i, j) for i in range(a, b) for j in range(tgt[mid].start, tgt[mid].end)}
            self.links[tuple(s.tokens)] = tuple(sorted(links))

    def align(self, src, tgt):
        return [Alignment(self.links[tuple(s)]) for s in src]

    def describe(self):
        return {"name": self.name}


def make(**options):
    builder_cls = builders.get("events")
    return builder_cls(resolve_options(builder_cls.Options, options))


def test_projection_with_gold_links_rebuilds_the_gold_structure(pairs):
    sources, gold = pairs
    projector = projectors.get("alignment")(aligner=GoldMentionAligner(sources, gold))
    projected = project_records(sources, [g.tokens for g in gold], projector, src_lang="en", tgt_lang="eu")
    scores = structure_prf([p.target for p in projected], gold)
    assert scores["entities"].f1 == 1.0 and scores["triggers"].f1 == 1.0 and scores["arguments"].f1 == 1.0
    # "him" has no Basque counterpart (pro-drop): its entity and the argument pointing at it are recorded
    ev19 = next(p for p in projected if p.source.id == "ev-019")
    assert sorted(l.kind for l in ev19.losses) == ["argument-entity-lost", "unprojected-entity"]
    for p in projected:  # arguments point only at projected entities
        ids = {e.id for e in p.target.entities}
        assert all(a.entity_id in ids for ev in p.target.events for a in ev.arguments)


def test_default_build_runs_offline_and_accounts_for_everything(tmp_path):
    result = build(make(), tmp_path)
    assert set(result.counts) == {"events", "entities-bio", "triggers-bio", "arguments"}
    c = result.counts["events"]["test"]
    assert c == {"in": 24, "out": 24, "rejected": 0}
    rows = datasets.load_dataset(str(result.path), "events", split="test")
    facts = result.provenance["facts"]
    for kind in ("entities", "triggers", "arguments"):
        lost = sum(1 for r in rows for l in r["losses"]
                   if (l["kind"] == f"unprojected-{kind[:-1] if kind != 'entities' else 'entity'}") or
                   (kind == "arguments" and l["kind"].startswith("argument-")))
        assert facts["structure_out"][kind] + lost == facts["structure_in"][kind]
    args = result.counts["arguments"]["test"]
    assert args["in"] == facts["structure_in"]["triggers"] and args["out"] == facts["structure_out"]["triggers"]
    card = (result.path / "README.md").read_text()
    assert "Conflict_Attack" in card
    features = rows.features
    assert isinstance(features["event_mentions"].feature["event_type"], datasets.ClassLabel)


def test_strict_rejects_and_lenient_flags_schema_violations(tmp_path, pairs):
    raw = [record_to_raw(r) for r in pairs[0][:3]]
    raw[1]["arguments"][0]["role"] = "Buyer"  # not a role of Business_START-ORG
    src = tmp_path / "mee.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in raw) + "\n")
    tr = tmp_path / "tr.jsonl"
    tr.write_text("\n".join(json.dumps({"id": g.id, "translation": " ".join(g.tokens)}) for g in pairs[1][:3]) + "\n")
    strict = build(make(source_path=str(src), translations_path=str(tr), validation="strict", parallel="none"), tmp_path / "s")
    assert strict.counts["events"]["test"] == {"in": 3, "out": 2, "rejected": 1}
    rejects = [r for r in pq.read_table(strict.path / "rejects.parquet").to_pylist() if r["config"] == "events"]
    assert {r["reason"] for r in rejects} == {"schema-violation"} and "Buyer" in rejects[0]["detail"]
    lenient = build(make(source_path=str(src), translations_path=str(tr), parallel="none"), tmp_path / "l")
    rows = datasets.load_dataset(str(lenient.path), "events", split="test")
    assert [len(r["violations"]) for r in rows] == [0, 1, 0]


def test_budget_subsample_is_seeded_and_recorded(tmp_path):
    a = build(make(budget=10, parallel="none"), tmp_path / "a")
    b = build(make(budget=10, parallel="none"), tmp_path / "b")
    rows = datasets.load_dataset(str(a.path), "events", split="test")
    assert sum(len(r["event_mentions"]) + sum(l["kind"] == "unprojected-trigger" for l in r["losses"]) for r in rows) <= 10
    c = a.counts["events"]["test"]
    assert c["in"] == 24 and c["out"] + c["rejected"] == 24 and c["rejected"] > 0
    assert (a.path / "events" / "test-00000-of-00001.parquet").read_bytes() == \
           (b.path / "events" / "test-00000-of-00001.parquet").read_bytes()
    reasons = {r["reason"] for r in pq.read_table(a.path / "rejects.parquet").to_pylist() if r["config"] == "events"}
    assert reasons == {"over-budget"}


def test_segments_option(tmp_path):
    result = build(make(segment_size=5), tmp_path)
    assert result.counts["events"]["test"] == {"in": 5, "out": 5, "rejected": 0}  # 24 sentences, one document
    rows = datasets.load_dataset(str(result.path), "events", split="test")
    assert max(len(r["tokens"]) for r in rows) > 30


def test_missing_given_translation_is_a_recorded_reject(tmp_path, pairs):
    tr = tmp_path / "tr.jsonl"
    tr.write_text(json.dumps({"id": "ev-001", "translation": " ".join(pairs[1][0].tokens)}) + "\n")
    result = build(make(translations_path=str(tr), parallel="none"), tmp_path / "o")
    assert result.counts["events"]["test"] == {"in": 24, "out": 1, "rejected": 23}
    rejects = [r for r in pq.read_table(result.path / "rejects.parquet").to_pylist() if r["config"] == "events"]
    assert {r["reason"] for r in rejects} == {"no-translation"} and len(rejects) == 23


def test_bad_options_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="strict or lenient"):
        build(make(validation="lax"), tmp_path)
    with pytest.raises(ConfigError, match="budget must be >= 0"):
        build(make(budget=-3), tmp_path)


def test_unknown_event_type_is_a_reject_under_either_policy(tmp_path, pairs):
    raw = [record_to_raw(r) for r in pairs[0][:3]]
    first_trigger = next(iter(raw[1]["triggers"]))
    raw[1]["triggers"][first_trigger]["type"] = "Alien_Landing"
    src = tmp_path / "mee.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in raw) + "\n")
    tr = tmp_path / "tr.jsonl"
    tr.write_text("\n".join(json.dumps({"id": g.id, "translation": " ".join(g.tokens)}) for g in pairs[1][:3]) + "\n")
    for policy in ("lenient", "strict"):
        result = build(make(source_path=str(src), translations_path=str(tr), validation=policy, parallel="none"),
                       tmp_path / policy)
        assert result.counts["events"]["test"] == {"in": 3, "out": 2, "rejected": 1}
        rejects = [r for r in pq.read_table(result.path / "rejects.parquet").to_pylist() if r["config"] == "events"]
        assert [r["reason"] for r in rejects] == ["unknown-type"] and "Alien_Landing" in rejects[0]["detail"]


SYNTHETIC_TYPES = {"PER": "PERSON", "ORG": "ORGANIZATION", "LOC": "GEO"}


def synthetic_event_records(pairs):
    """MEE records on the synthetic language pair: names are entities, the verb a Contact_Meet trigger."""
    from dsbuild.synthetic import VERBS

    records = []
    for pair in pairs:
        words = pair.source.words
        verb = next((i for i, w in enumerate(words) if w in VERBS), None)
        if verb is None or not pair.source.spans:
            continue
        entities = {f"E{k}": {"type": SYNTHETIC_TYPES[s.label], "start": str(s.start), "end": str(s.end)}
                    for k, s in enumerate(pair.source.spans)}
        start = pair.source.tokens[verb].start
        records.append({"id": pair.id, "tokens": words, "entities": entities,
                        "triggers": {"T1": {"type": "Contact_Meet", "start": str(start), "end": str(start + len(words[verb]))}},
                        "arguments": [{"trigger": "T1", "argument": eid, "role": "Place" if e["type"] == "GEO" else "Entity"}
                                      for eid, e in entities.items()]})
    return records


def test_build_with_the_tiny_mt_model(tmp_path, tiny_marian_path, synthetic_pairs):
    records = synthetic_event_records(synthetic_pairs[:20])
    src = tmp_path / "syn.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    options = dict(source_path=str(src), target_lang="qsy", translator="hf-seq2seq",
                   translator_options={"model": str(tiny_marian_path), "cache": str(tmp_path / "mt-cache"), "progress": False})
    result = build(make(**options), tmp_path / "o")
    assert result.counts["events"]["test"] == {"in": len(records), "out": len(records), "rejected": 0}
    models = {m["name"]: m for m in result.provenance["models"]}
    assert models["hf-seq2seq"]["revision"]  # the MT model is recorded with its revision
    rows = datasets.load_dataset(str(result.path), "events", split="test")
    facts = result.provenance["facts"]
    assert facts["structure_out"]["entities"] + facts["losses_by_kind"].get("unprojected-entity", 0) == facts["structure_in"]["entities"]
    # names are copied by the synthetic language: most entity mentions survive translation and projection
    assert facts["structure_out"]["entities"] >= 0.7 * facts["structure_in"]["entities"]
    assert all(r["source_tokens"] for r in rows)
