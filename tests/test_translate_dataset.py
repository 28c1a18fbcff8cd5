"""translate-dataset: structure kept, ids aligned, in = kept + rejected, QC columns, protected patterns,
given and tiny-model translators, determinism, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dsbuild.config import resolve_options
from dsbuild.errors import ConfigError
from dsbuild.executor import build
from dsbuild.registry import builders
from dsbuild.translate_dataset import BUILTIN_PATTERNS, DatasetSpec, GivenFields, patterns_from
from dsbuild.translate_dataset.protect import mask, protected_flags, unmask

ITEMS = [
    {"id": "q1", "question": "Sarah was a better surgeon than Maria so _ got the easier cases.",
     "options": ["Sarah", "Maria"], "answer": "2", "topic": "wino"},
    {"id": "q2", "question": "Read https://example.org/a about {name} before noon.", "options": ["yes", "no"],
     "answer": "1", "topic": "url"},
    {"id": "q3", "question": "Options here are not a list.", "options": "Sarah", "answer": "1", "topic": "bad"},
    {"id": "q4", "question": "The answer key points outside.", "options": ["a", "b"], "answer": "3", "topic": "bad"},
    {"id": "q5", "question": "Anna gave the book to Clara because _ had finished it.", "options": ["Anna", "Clara"],
     "answer": "1", "topic": "wino"},
    {"id": "q6", "question": "Which colour is the sky on a clear day?", "options": ["blue", "green"],
     "answer": "A", "topic": "mmlu"},
]
GIVEN_XX = [  # q1 glues the blank (_o), q5 loses it, q6 collapses its options; q2 keeps url and placeholder
    {"id": "q1", "question": "Sarah wa dokta bora kuliko Maria hivyo _o alipata kesi rahisi.", "options": ["Sarah", "Maria"]},
    {"id": "q2", "question": "Soma https://example.org/a kuhusu {name} kabla ya saa sita.", "options": ["ndiyo", "hapana"]},
    {"id": "q4", "question": "Ufunguo wa jibu unaelekeza nje.", "options": ["a", "b"]},
    {"id": "q5", "question": "Anna alimpa Clara kitabu kwa sababu alikuwa amekimaliza.", "options": ["Anna", "Clara"]},
    {"id": "q6", "question": "Anga lina rangi gani siku safi?", "options": ["bluu", "bluu"]},
]
FIELDS = {"question": "translate", "options": "translate_each",
          "answer": {"kind": "keep", "answer_for": "options"}, "topic": "keep"}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _builder(**options: Any) -> Any:
    cls = builders.get("translate-dataset")
    return cls(resolve_options(cls.Options, options))


def _rows(dataset: Path, config: str) -> list[dict[str, Any]]:
    return [r for f in sorted((dataset / config).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _rejects(dataset: Path) -> list[dict[str, Any]]:
    return pq.read_table(dataset / "rejects.parquet").to_pylist()


@pytest.fixture
def given_build(tmp_path: Path) -> Path:
    src = _jsonl(tmp_path / "items.jsonl", ITEMS)
    _jsonl(tmp_path / "given-sw.jsonl", GIVEN_XX)
    b = _builder(source=str(src), fields=FIELDS, protect=["winogrande-blank", "urls", "placeholders"],
                 target_langs=["sw"], translations=str(tmp_path / "given-{lang}.jsonl"), method="human")
    return Path(build(b, tmp_path / "out", progress=False).path)


def test_structure_ids_and_accounting(given_build: Path) -> None:
    en, sw = _rows(given_build, "en"), _rows(given_build, "sw")
    rejects = _rejects(given_build)
    for config, rows in (("en", en), ("sw", sw)):
        rejected = [r for r in rejects if r["config"] == config]
        assert len(rows) + len(rejected) == len(ITEMS), config  # in = kept + rejected
    assert {r["id"] for r in sw} <= {r["id"] for r in en}  # item-aligned by the source id
    by_id = {r["id"]: r for r in en}
    assert by_id["q1"]["options"] == ["Sarah", "Maria"] and by_id["q1"]["topic"] == "wino"
    row = next(r for r in sw if r["id"] == "q2")
    assert row["options"] == ["ndiyo", "hapana"] and row["answer"] == "1" and row["topic"] == "url"
    assert row["translation_method"] == "human" and row["translator_model"] == "given:given-sw.jsonl"
    assert row["translator_revision"].startswith("sha256:") and row["qc_flags"] == []
    assert all(r["translation_method"] == "source" for r in en)


def test_bad_items_are_rejects_naming_item_and_field(given_build: Path) -> None:
    rejects = {(r["config"], r["id"]): r for r in _rejects(given_build)}
    assert rejects[("en", "q3")]["reason"] == "not-a-list" and "'options'" in rejects[("en", "q3")]["detail"]
    assert rejects[("en", "q4")]["reason"] == "answer-outside-options"
    assert "'q4'" in rejects[("en", "q4")]["detail"] and "'answer'" in rejects[("en", "q4")]["detail"]


def test_qc_catches_glued_and_lost_blank_and_collapsed_options(given_build: Path) -> None:
    sw = {r["id"]: r for r in _rows(given_build, "sw")}
    rejects = {r["id"]: r for r in _rejects(given_build) if r["config"] == "sw"}
    assert "protected-glued" in sw["q1"]["qc_flags"]  # `_o`: kept (a flag), not lost
    assert rejects["q5"]["reason"] == "protected-lost"  # reject_on default
    assert rejects["q6"]["reason"] == "options-collapsed"
    assert 0.3 < sw["q1"]["qc_length_ratio"] < 3


def test_given_file_missing_item_is_a_reject_and_missing_field_one_line(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "items.jsonl", ITEMS[:2])
    _jsonl(tmp_path / "de.jsonl", [{"id": "q1", "question": "Sarah war _ besser.", "options": ["Sarah", "Maria"]}])
    b = _builder(source=str(src), fields=FIELDS, target_langs=["de"], translations=str(tmp_path / "de.jsonl"))
    out = Path(build(b, tmp_path / "out", progress=False).path)
    reject = next(r for r in _rejects(out) if r["config"] == "de")
    assert reject["id"] == "q2" and reject["reason"] == "no-translation"
    assert "'q2'" in reject["detail"] and "'question'" in reject["detail"]
    _jsonl(tmp_path / "fr.jsonl", [{"id": "q1", "question": "Sarah était _ meilleure."}])
    b = _builder(source=str(src), fields=FIELDS, target_langs=["fr"], translations=str(tmp_path / "fr.jsonl"))
    with pytest.raises(ConfigError, match="no field 'options'"):
        build(b, tmp_path / "out2", progress=False)


def test_spec_naming_a_missing_field_is_one_line(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "items.jsonl", ITEMS[:2])
    _jsonl(tmp_path / "sw.jsonl", GIVEN_XX[:2])
    b = _builder(source=str(src), fields={"question": "translate", "choices": "translate_each"},
                 target_langs=["sw"], translations=str(tmp_path / "sw.jsonl"))
    with pytest.raises(ConfigError, match=r"field 'choices' but source items\.jsonl") as err:
        build(b, tmp_path / "out", progress=False)
    assert "\n" not in str(err.value)


def test_invalid_regex_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"protect_regex 'ticker'.*not a valid regular expression"):
        patterns_from([], {"ticker": "[A-Z"})
    src = _jsonl(tmp_path / "items.jsonl", ITEMS[:2])
    b = _builder(source=str(src), fields=FIELDS, protect_regex={"ticker": "[A-Z"}, target_langs=["sw"],
                 translations=str(src))
    with pytest.raises(ConfigError, match=r"protect_regex 'ticker'.*not a valid regular expression") as err:
        build(b, tmp_path / "out", progress=False)  # through the builder: before any work
    assert "\n" not in str(err.value) and not list(tmp_path.rglob("*.parquet"))
    with pytest.raises(ConfigError, match="unknown protected pattern 'url'"):
        patterns_from(["url"], {})
    with pytest.raises(ConfigError, match="unknown kind"):
        DatasetSpec.from_mapping({"fields": {"q": "translat"}})


def test_protected_patterns_mask_unmask_and_flags() -> None:
    pats = patterns_from(["urls", "placeholders", "numbers", "emails", "code"], {})
    text = "Mail a@b.org or see https://x.org/p?q=1 for {name}, `x = 2` and 42 items."
    masked, originals = mask(text, pats)
    assert "https" not in masked and "{name}" not in masked and "42" not in masked and "a@b.org" not in masked
    assert unmask(masked, originals) == text
    assert unmask(masked.replace("<x1>", "< x1 >"), originals) == text  # spaces the model put inside
    blank = [BUILTIN_PATTERNS["winogrande-blank"]]
    assert protected_flags("so _ got", "hivyo _ alipata", blank) == []
    assert protected_flags("so _ got", "hivyo _o alipata", blank) == ["protected-glued"]  # Sesotho-style glue
    assert protected_flags("so _ got", "hivyo alipata", blank) == ["protected-lost"]  # Amharic BT-style loss
    assert protected_flags("so _ got", "_ hivyo _ alipata", blank) == ["protected-added"]


def test_given_fields_long_format(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "long.jsonl", [{"id": "a", "field": "question", "target": "Swali"},
                                            {"id": "a", "field": "options[1]", "target": "B"},
                                            {"id": "a", "field": "options[0]", "target": "A"}])
    given = GivenFields.from_file(path)
    assert given.get("a", "question") == "Swali" and given.get("a", "options", as_list=True) == ["A", "B"]


def test_determinism_two_builds(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "items.jsonl", ITEMS)
    _jsonl(tmp_path / "given-sw.jsonl", GIVEN_XX)
    outs = []
    for n in (1, 2):
        b = _builder(source=str(src), fields=FIELDS, protect=["winogrande-blank"], target_langs=["sw"],
                     translations=str(tmp_path / "given-{lang}.jsonl"))
        outs.append(Path(build(b, tmp_path / f"out{n}", progress=False).path))
    for rel in ("en/train-00000-of-00001.parquet", "sw/train-00000-of-00001.parquet", "rejects.parquet"):
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel


def test_tiny_marian_translator_and_spans(tmp_path: Path, tiny_marian_path: Path) -> None:
    items = [{"id": "s1", "text": "John Smith met Mary Walker in Paris .",
              "ents": [{"start": 0, "end": 10, "label": "PER"}, {"start": 30, "end": 35, "label": "LOC"}]},
             {"id": "s2", "text": "The farmer saw Anna Baker in London .", "ents": [{"start": 15, "end": 25, "label": "PER"}]},
             {"id": "s3", "text": "Peter visited {place} in Berlin .", "ents": []}]
    src = _jsonl(tmp_path / "ner.jsonl", items)
    b = _builder(source=str(src), fields={"text": "translate", "ents": {"kind": "spans", "of": "text"}},
                 protect=["placeholders"], src_lang="en", target_langs=["qsy"], translator="hf-seq2seq",
                 model=str(tiny_marian_path), translator_options={"threads": 1, "beam_size": 1, "cache": None},
                 reject_on=[])
    out = Path(build(b, tmp_path / "out", progress=False).path)
    qsy = {r["id"]: r for r in _rows(out, "qsy")}
    assert set(qsy) == {"s1", "s2", "s3"}
    assert all(r["translation_method"] == "machine" and r["translator_model"] == tiny_marian_path.name for r in qsy.values())
    assert qsy["s1"]["text"] and qsy["s1"]["text"] != items[0]["text"]
    for r in qsy.values():  # projected spans are char offsets into the translation
        assert all(r["text"][s["start"]:s["end"]] == s["text"] for s in r["ents"])
    en = {r["id"]: r for r in _rows(out, "en")}
    assert en["s1"]["ents"][0] == {"label": "PER", "start": 0, "end": 10, "text": "John Smith"}
    # the tiny model drops the masked placeholder: the QC must say so
    assert "{place}" in qsy["s3"]["text"] or "protected-lost" in qsy["s3"]["qc_flags"]


def test_kept_field_types_inferred_then_a_later_item_of_another_type_is_a_reject(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsbuild.translate_dataset import base

    monkeypatch.setattr(base, "INFER_ITEMS", 3)  # types from the first 3 items (1000 by default)
    items = [{"id": f"i{n}", "question": f"Question number {n} here?", "level": n} for n in range(3)]
    items += [{"id": "i3", "question": "A later question here?", "level": "hard"},  # str where int was inferred
              {"id": "i4", "question": "Another question here?", "level": [1]},
              {"id": "i5", "question": "The last question here?", "level": 5}]
    src = _jsonl(tmp_path / "items.jsonl", items)
    _jsonl(tmp_path / "sw.jsonl", [{"id": it["id"], "question": f"Swali {n}?"} for n, it in enumerate(items)])
    fields = {"question": "translate", "level": "keep"}
    b = _builder(source=str(src), fields=fields, target_langs=["sw"], translations=str(tmp_path / "sw.jsonl"))
    out = Path(build(b, tmp_path / "out", progress=False).path)
    for config in ("en", "sw"):
        kept = {r["id"]: r["level"] for r in _rows(out, config)}
        rejected = {r["id"]: r for r in _rejects(out) if r["config"] == config}
        assert kept == {"i0": 0, "i1": 1, "i2": 2, "i5": 5} and set(rejected) == {"i3", "i4"}
        assert rejected["i3"]["reason"] == "wrong-type" and "'i3'" in rejected["i3"]["detail"]
        assert "'level'" in rejected["i3"]["detail"] and "int64" in rejected["i3"]["detail"]
    # mixed types within the sampled items: one line naming the field
    _jsonl(tmp_path / "mixed.jsonl", [items[0], items[3], items[1]])
    b = _builder(source=str(tmp_path / "mixed.jsonl"), fields=fields, target_langs=["sw"],
                 translations=str(tmp_path / "sw.jsonl"))
    with pytest.raises(ConfigError, match="kept field 'level' mixes value types") as err:
        build(b, tmp_path / "out2", progress=False)
    assert "\n" not in str(err.value)


def test_backtranslation_qc_with_the_reverse_tiny_model(tmp_path: Path, phrase_marian_reverse_path: Path) -> None:
    from dsbuild.synthetic import TGT_LANG, generate_pairs

    pairs = [p for p in generate_pairs(40, seed=4243, unique=True) if len(p.source.spans) >= 1][:8]
    items, given = [], []
    for n, p in enumerate(pairs):
        names = [p.source.span_text(s) for s in p.source.spans]
        gold_names = [p.target.span_text(p.target.spans[p.span_map[k]]) for k in range(len(p.source.spans))]
        items.append({"id": f"s{n}", "text": p.source.text, "names": names})
        # s0 gets another sentence's translation: its back-translation cannot match the source
        text = pairs[-1].target.text if n == 0 else p.target.text
        given.append({"id": f"s{n}", "text": text, "names": gold_names})
    src = _jsonl(tmp_path / "items.jsonl", items)
    _jsonl(tmp_path / "given.jsonl", given)
    b = _builder(source=str(src), fields={"text": "translate", "names": "translate_each"}, target_langs=[TGT_LANG],
                 translations=str(tmp_path / "given.jsonl"), backtranslation_model=str(phrase_marian_reverse_path),
                 backtranslation_options={"threads": 1, "beam_size": 1, "cache": None}, min_backtranslation_chrf=50,
                 reject_on=["protected-lost", "backtranslation-low-chrf"])
    out = Path(build(b, tmp_path / "out", progress=False).path)
    rows = {r["id"]: r for r in _rows(out, TGT_LANG)}
    rejected = {r["id"]: r for r in _rejects(out) if r["config"] == TGT_LANG}
    assert set(rejected) == {"s0"} and rejected["s0"]["reason"] == "backtranslation-low-chrf"
    assert len(rows) == len(items) - 1
    scores = [r["qc_backtranslation_chrf"] for r in rows.values()]
    assert min(scores) >= 90 and all("backtranslation-low-chrf" not in r["qc_flags"] for r in rows.values())
    assert all(r["qc_backtranslation_chrf"] is None for r in _rows(out, "en"))  # the source is not back-translated
    prov = json.loads((out / "provenance.json").read_text())
    pc = prov["facts"]["translate_dataset"]["per_config"][TGT_LANG]
    assert pc["chrf_backtranslation"] is not None and 50 < pc["chrf_backtranslation"] <= 100
    assert pc["flags"]["backtranslation-low-chrf"] == 1
    assert {"name": phrase_marian_reverse_path.name, "kind": "back-translation (QC)"}.items() <= \
        next(m for m in prov["models"] if m["kind"] == "back-translation (QC)").items()
    card = (out / "README.md").read_text()
    assert "Back-translation QC" in card and f"`{TGT_LANG}` {pc['chrf_backtranslation']:.2f}" in card
