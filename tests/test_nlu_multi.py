"""nlu-multi: NLU++ reader, conflicting duplicates, slot projection (given translations and the tiny MT model)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dsbuild.config import resolve_options
from dsbuild.errors import ConfigError
from dsbuild.executor import build
from dsbuild.registry import builders, tokenizers
from dsbuild.synthetic import TGT_LANG, generate_pairs
from dsbuild.translate_dataset.nlu import (cut_tokens, mark_conflicting_duplicates, parse_record, read_domain,
                                           slot_layers, source_example)

SHIPPED = Path(__file__).resolve().parent.parent / "builders" / "data" / "nlu_multi"
SLOT_NAMES = {"PER": "person_name", "ORG": "company_name", "LOC": "location"}


# ---------------------------------------------------------------------- the shipped NLU++ data
def test_shipped_nlupp_reader_counts_conflicts_and_period_slots():
    banking = read_domain(SHIPPED, "banking")
    hotels = read_domain(SHIPPED, "hotels")
    assert (len(banking), len(hotels)) == (2071, 1009)  # the README's counts
    conflicts = [it for it in banking + hotels if it.problem]
    assert {it.problem[0] for it in conflicts} == {"conflicting-duplicate"}
    # 8 texts with conflicting copies (4 per domain), every copy rejected under the default policy
    assert len({(it.domain, it.text) for it in conflicts}) == 8 and len(conflicts) == 16
    periods = [s for it in banking + hotels for s in it.slots if s.name in ("date_period", "time_period")]
    assert len(periods) == 298 and {s.value_key for s in periods} == {"values"}
    mentions = [s for it in banking + hotels for s in it.slots]
    assert len(mentions) == 1987 and all(it.text[s.start:s.end] == s.text for it in banking + hotels for s in it.slots)
    # keep-first: one copy of each conflicting text survives
    again = read_domain(SHIPPED, "hotels", duplicates="keep-first")
    assert sum(1 for it in again if it.problem) == 4


def test_nested_slots_and_span_inside_a_word():
    tok = tokenizers.get("moses")(lang="en")
    hotels = {it.text: it for it in read_domain(SHIPPED, "hotels")}
    nested = hotels["only today"]
    assert len(slot_layers(nested.slots)) == 2  # date_period "only today" holds date "today"
    banking = {it.text: it for it in read_domain(SHIPPED, "banking")}
    ish = banking["is there something free at 5ish?"]
    ex = source_example(ish, tok)
    assert [ex.span_text(s) for s in ex.spans] == ["5"] and "ish" in ex.words
    assert [t.text for t in cut_tokens("at 5ish", tok.tokenize("at 5ish"), [3, 4])] == ["at", "5", "ish"]


def test_bad_records_are_problems_not_tracebacks():
    bad_span = parse_record({"text": "hi bob", "slots": {"person_name": {"text": "bob", "span": [0, 2], "value": "bob"}}},
                            domain="d", fold=0, index=0)
    assert bad_span.problem[0] == "slot-span-mismatch"
    no_value = parse_record({"text": "hi bob", "slots": {"person_name": {"text": "bob", "span": [3, 6]}}},
                            domain="d", fold=0, index=1)
    assert no_value.problem[0] == "slot-without-value"
    dupes = [parse_record({"text": "x", "intents": ["a", "b"]}, domain="d", fold=0, index=0),
             parse_record({"text": "x", "intents": ["b", "a"]}, domain="d", fold=1, index=0),  # same set: agree
             parse_record({"text": "y", "intents": ["a"]}, domain="d", fold=0, index=1),
             parse_record({"text": "y", "intents": ["a", "handoff"]}, domain="d", fold=2, index=0)]
    stats = mark_conflicting_duplicates(dupes)
    assert stats == {"duplicate_texts": 2, "conflicting_texts": 1, "conflicting_items_marked": 2}
    assert [d.problem is None for d in dupes] == [True, True, False, False]


# ---------------------------------------------------------------------- a small synthetic NLU set
def nlu_record(pair, *, period: bool = False) -> dict:
    """An NLU++-style record from a synthetic pair: entity spans as slots (one per slot type)."""
    ex = pair.source
    slots: dict = {}
    for s in ex.spans:
        name = SLOT_NAMES[s.label]
        if period and s.label == "LOC":
            name = "date_period"  # a period slot: 'values' instead of 'value'
        if name not in slots:
            key = "values" if name == "date_period" else "value"
            slots[name] = {"text": ex.span_text(s), "span": [s.start, s.end], key: {"v": ex.span_text(s).lower()}}
    verbs = {"buys": "transfer_payment_deposit", "sees": "request_info", "calls": "handoff"}
    rec: dict = {"text": ex.text}
    intents = sorted({verbs[w] for w in ex.words if w in verbs})
    if intents:
        rec["intents"] = intents
    if slots:
        rec["slots"] = slots
    return rec


def gold_slots(pair, rec) -> dict[str, str]:
    """Slot name -> the gold target text of its span (synthetic gold alignment)."""
    out = {}
    by_start = {s.start: i for i, s in enumerate(pair.source.spans)}
    for name, slot in (rec.get("slots") or {}).items():
        i = by_start[slot["span"][0]]
        out[name] = pair.target.span_text(pair.target.spans[pair.span_map[i]])
    return out


def write_nlu_folder(root: Path, pairs) -> dict:
    """Two domains, two folds each, one conflicting duplicate pair in 'banking'. Returns id -> (pair, record)."""
    recs = [nlu_record(p, period=i % 5 == 0) for i, p in enumerate(pairs)]
    half = len(recs) // 2
    layout = {"banking": [recs[:half // 2], recs[half // 2:half]], "hotels": [recs[half:half + half // 2],
                                                                              recs[half + half // 2:]]}
    conflict = dict(recs[0], intents=["greet"])  # same text as banking fold0 record 0, other intents
    layout["banking"][1] = layout["banking"][1] + [conflict]
    index = {}
    offsets = {"banking": 0, "hotels": half}
    for domain, folds in layout.items():
        (root / domain).mkdir(parents=True, exist_ok=True)
        n = offsets[domain]
        for f, chunk in enumerate(folds):
            (root / domain / f"fold{f}.json").write_text(json.dumps(chunk, ensure_ascii=False))
            for i, rec in enumerate(chunk):
                if rec is not conflict:
                    index[f"{domain}-fold{f}-{i:04d}"] = (pairs[n], rec)
                    n += 1
    return index


@pytest.fixture(scope="module")
def nlu_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("nlu")
    pairs = [p for p in generate_pairs(80, seed=77, unique=True) if p.source.spans][:24]
    index = write_nlu_folder(d / "src", pairs)
    # given translations: the gold synthetic target and each slot's gold target text, in slot order
    with (d / "given.jsonl").open("w") as fh:
        for item_id, (pair, rec) in index.items():
            gold = gold_slots(pair, rec)
            order = sorted(rec.get("slots", {}), key=lambda k: (rec["slots"][k]["span"][0], rec["slots"][k]["span"][1], k))
            row = {"id": item_id, "lang": TGT_LANG, "text": pair.target.text}
            if order:
                row["slot_values"] = [gold[k] for k in order]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    extra = generate_pairs(500, seed=31, id_prefix="extra")
    for side, attr in (("src", "source"), ("tgt", "target")):
        with gzip.open(d / f"extra.{side}.gz", "wt") as fh:
            fh.write("\n".join(getattr(p, attr).text for p in extra) + "\n")
    return {"dir": d, "src": d / "src", "given": d / "given.jsonl", "index": index,
            "aligner": {"extra_src": str(d / "extra.src.gz"), "extra_tgt": str(d / "extra.tgt.gz"), "seed": 1}}


def run(out: Path, overwrite: bool = False, **options):
    cls = builders.get("nlu-multi")
    return build(cls(resolve_options(cls.Options, options)), out, overwrite=overwrite)


def rows(result, config: str) -> list[dict]:
    return pq.read_table(result.path / config / "train-00000-of-00001.parquet").to_pylist()


def slot_accuracy(out_rows, index) -> float:
    """Share of source slots whose projected text is the gold target text of the span."""
    ok = total = 0
    for r in out_rows:
        pair, rec = index[r["id"]]
        gold = gold_slots(pair, rec)
        for s in r["slots"]:
            total += 1
            ok += s["text"] == gold[s["slot"]]
    return ok / max(1, total)


def given_options(inputs, **extra):
    opts = dict(source=str(inputs["src"]), target_langs=[TGT_LANG], translations=str(inputs["given"]),
                projector_options={"aligner_options": inputs["aligner"], "target_tokenizer": "whitespace"})
    opts.update(extra)
    return opts


def test_given_translations_end_to_end(tmp_path, nlu_inputs):
    result = run(tmp_path / "a", **given_options(nlu_inputs))
    index = nlu_inputs["index"]
    for domain in ("banking", "hotels"):
        c_src, c_tgt = result.counts[f"{domain}-en"]["train"], result.counts[f"{domain}-{TGT_LANG}"]["train"]
        assert c_src["in"] == c_src["out"] + c_src["rejected"] == c_tgt["in"] == c_tgt["out"] + c_tgt["rejected"]
    rejects = pq.read_table(result.path / "rejects.parquet").to_pylist()
    conflicting = sorted({(r["config"], r["id"]) for r in rejects if r["reason"] == "conflicting-duplicate"})
    assert [c for c, _ in conflicting] == ["banking-en", "banking-en", f"banking-{TGT_LANG}", f"banking-{TGT_LANG}"]
    assert {i for _, i in conflicting} == {"banking-fold0-0000", f"banking-fold1-{len(index) // 4:04d}"}
    src, tgt = rows(result, "banking-en"), rows(result, f"banking-{TGT_LANG}")
    assert [r["id"] for r in src] == [r["id"] for r in tgt]  # item-aligned
    for s, t in zip(src, tgt):
        assert (s["intents"], s["fold"]) == (t["intents"], t["fold"])  # labels and folds carried over
        assert [x["value"] for x in s["slots"]] == [x["value"] for x in t["slots"]]
        assert [x["value_key"] for x in s["slots"]] == [x["value_key"] for x in t["slots"]]
        for x in t["slots"]:  # character offsets into the translation
            assert x["text"] is None or t["text"][x["start"]:x["end"]] == x["text"]
    assert any(x["value_key"] == "values" for r in tgt for x in r["slots"])  # a period slot went through
    assert slot_accuracy(tgt + rows(result, f"hotels-{TGT_LANG}"), index) >= 0.8
    # the slot values' given translations are the gold target texts: found, and the projection agrees
    facts = json.loads((result.path / "provenance.json").read_text())["facts"]["translate_dataset"]["recipe"]
    assert facts["slots"][f"banking-{TGT_LANG}"]["value_found_rate"] == 1.0
    assert facts["slots"][f"banking-{TGT_LANG}"]["agree_rate"] >= 0.8
    card = (result.path / "README.md").read_text()
    assert "Slot projection" in card and "conflicting-duplicate" in card
    # determinism: a second build gives the same bytes
    again = run(tmp_path / "b", **given_options(nlu_inputs))
    for config in ("banking-en", f"hotels-{TGT_LANG}"):
        a = (result.path / config / "train-00000-of-00001.parquet").read_bytes()
        assert a == (again.path / config / "train-00000-of-00001.parquet").read_bytes()
    assert (result.path / "README.md").read_text() == (again.path / "README.md").read_text()


def test_given_file_missing_items_and_fields(tmp_path, nlu_inputs):
    lines = nlu_inputs["given"].read_text().splitlines()
    dropped = json.loads(lines[1])["id"]
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    result = run(tmp_path / "a", **given_options(nlu_inputs, translations=str(partial), domains=["banking"]))
    rejects = pq.read_table(result.path / "rejects.parquet").to_pylist()
    missing = [r for r in rejects if r["reason"] == "no-translation"]
    assert [r["id"] for r in missing] == [dropped] and "'text'" in missing[0]["detail"]
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text("\n".join(json.dumps({"id": json.loads(x)["id"], "lang": TGT_LANG, "other": "x"})
                                 for x in lines) + "\n")
    with pytest.raises(ConfigError, match="no field 'text'"):
        run(tmp_path / "b", **given_options(nlu_inputs, translations=str(no_text)))


def test_without_model_or_translations_one_line(tmp_path):
    from typer.testing import CliRunner

    from dsbuild.cli import app

    result = CliRunner().invoke(app, ["build", "nlu-multi", "--out", str(tmp_path)])  # in-process: no interpreter start
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)  # no traceback
    lines = [x for x in result.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "--set model=" in lines[0] and "--set translations=" in lines[0], result.output
    with pytest.raises(ConfigError, match="projector markers translates with a model"):
        run(tmp_path / "x", translations="x.jsonl", projector="markers")


def test_tiny_model_end_to_end(tmp_path, nlu_inputs, tiny_marian_path):
    opts = dict(source=str(nlu_inputs["src"]), target_langs=[TGT_LANG], model=str(tiny_marian_path), beam_size=1,
                cache_dir=str(tmp_path / "cache"), translator_options={"threads": 1, "progress": False},
                projector="markers", domains=["hotels"])
    result = run(tmp_path / "a", **opts)
    c = result.counts[f"hotels-{TGT_LANG}"]["train"]
    assert c["in"] == c["out"] + c["rejected"] == result.counts["hotels-en"]["train"]["in"]
    out = rows(result, f"hotels-{TGT_LANG}")
    assert all("[" not in r["text"] and r["translation_method"] == "machine" for r in out)
    assert all(x["value_translation"] for r in out for x in r["slots"])  # each slot text translated on its own
    assert slot_accuracy(out, nlu_inputs["index"]) >= 0.7
    facts = json.loads((result.path / "provenance.json").read_text())["facts"]["translate_dataset"]
    assert facts["recipe"]["slots"][f"hotels-{TGT_LANG}"]["projected_rate"] >= 0.8
    assert out[0]["translator_revision"].startswith("sha256:")  # the model's weights hash, per row
