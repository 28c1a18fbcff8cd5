"""Challenge-set builders end to end through dsbuild.executor.build (offline, shipped data)."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dsbuild.cards import parse_front_matter, validate_metadata
from dsbuild.challenge.nli_data import load_nli
from dsbuild.challenge.word_pairs import load_word_pairs
from dsbuild.errors import ConfigError, InputError
from dsbuild.executor import build
from dsbuild.registry import builders
from tests.plugins.challenge import CHALLENGE_BUILDERS


def rows(result: object, config: str) -> list[dict]:
    path = Path(result.path)  # type: ignore[attr-defined]
    return [r for f in sorted((path / config).glob("test-*.parquet")) for r in pq.read_table(f).to_pylist()]


def label_names(result: object, config: str, column: str = "label") -> list[str]:
    from datasets import Features

    path = Path(result.path)  # type: ignore[attr-defined]
    f = next((path / config).glob("test-*.parquet"))
    feats = Features.from_arrow_schema(pq.read_schema(f))
    feat = feats[column]
    return (feat.feature if hasattr(feat, "feature") else feat).names


# ------------------------------------------------------------------------------- every builder
@pytest.mark.parametrize("name", CHALLENGE_BUILDERS)
def test_builder_runs_offline_on_embedded_default_with_card(challenge_builds: dict, name: str) -> None:
    res = challenge_builds[name]
    path = Path(res.path)
    for cfg, splits in res.counts.items():
        c = splits["test"]
        assert c["in"] == c["out"] + c["rejected"]
    assert sum(s["test"]["out"] for s in res.counts.values()) > 0
    card = (path / "README.md").read_text(encoding="utf-8")
    meta, body = parse_front_matter(card)
    assert validate_metadata(meta) == []
    assert "## Quality" in body and "### Method" in body
    assert "{{" not in body and "{%" not in body
    prov = json.loads((path / "provenance.json").read_text())
    assert prov["seeds"] and prov["inputs"]
    from dsbuild.validate import validate_dataset

    assert validate_dataset(path) == []  # layout, features, accounting, card metadata


def test_hans_rows_counts_and_card(challenge_builds: dict) -> None:
    res = challenge_builds["nli-hans"]
    assert set(res.counts) == {"en", "es", "zh"}
    names = label_names(res, "en")
    assert names == ["entailment", "non-entailment"]
    for lang in ("en", "es", "zh"):
        rs = rows(res, lang)
        per_group = Counter((r["group"], names[r["label"]]) for r in rs)
        for group in ("lexical_overlap", "subsequence", "constituent"):
            assert per_group[(group, "entailment")] == per_group[(group, "non-entailment")] > 0
        assert len({(r["premise"], r["hypothesis"]) for r in rs}) == len(rs)
        assert all(r["heuristic_agrees"] == (names[r["label"]] == "entailment") for r in rs)
        r = rs[0]
        assert r["template_id"] and r["fillers"] and r["test_type"] == "MFT" and r["expectation"].startswith("predict")
        assert all(r["language"] == lang for r in rs)
    q = json.loads((Path(res.path) / "quality.json").read_text())
    assert q["es"]["agreement_checks"] > 1000 and q["es"]["agreement_failures"] == 0
    assert q["es"]["surface_agreement_pairs_checked"] > 1000 and q["es"]["surface_agreement_violations"] == 0
    assert all(q[lang]["all_groups_balanced"] and q[lang]["unfilled_slots"] == 0 and q[lang]["duplicate_pairs_in_output"] == 0
               for lang in ("en", "es", "zh"))
    card = (Path(res.path) / "README.md").read_text(encoding="utf-8")
    assert "| es | subsequence |" in card and "{det\\|a}" in card  # counts table; template pipes escaped


def test_fragments_have_every_category_and_three_balanced_labels(challenge_builds: dict) -> None:
    res = challenge_builds["nli-fragments"]
    names = label_names(res, "zh")
    for lang in ("en", "es", "zh"):
        per = Counter((r["group"], names[r["label"]]) for r in rows(res, lang))
        groups = {g for g, _ in per}
        assert groups == {"negation", "boolean", "quantifier", "counting", "conditional", "comparative"}
        for g in groups:
            assert len({per[(g, l)] for l in names}) == 1


def test_stress_rows_keep_seed_and_record_condition(challenge_builds: dict) -> None:
    res = challenge_builds["nli-stress"]
    names = label_names(res, "antonym")
    ant = rows(res, "antonym")
    assert ant and all(names[r["label"]] == "contradiction" and r["test_type"] == "DIR" for r in ant)
    for r in ant:
        cond = json.loads(r["condition"])
        assert r["hypothesis"][cond["char_start"]:cond["char_end"]] == cond["replacement"]
        assert r["premise"] == r["seed_premise"] and r["seed_id"].startswith("seed-") and r["source"].endswith("seed_nli.jsonl")
    zh_spelling = [r for r in rows(res, "spelling") if r["language"] == "zh"]
    assert zh_spelling and all(json.loads(r["condition"])["operation"] == "same-sound-character" for r in zh_spelling)
    for r in rows(res, "distraction-hypothesis"):
        assert r["label"] == r["seed_label"] and r["hypothesis"] != r["seed_hypothesis"] and r["test_type"] == "INV"
    num = rows(res, "numerical")
    assert num and all(json.loads(r["condition"])["old_value"] != json.loads(r["condition"])["new_value"] for r in num)
    bound = rows(res, "numerical-bound")
    assert bound and all(names[r["label"]] == "entailment" for r in bound)
    assert {"Más de dos niños comen helado.", "不止两个孩子在吃冰淇淋。", "More than two children are eating ice cream."} <= {
        r["hypothesis"] for r in bound}
    rej = pq.read_table(Path(res.path) / "rejects.parquet").to_pylist()
    assert {r["reason"] for r in rej} <= {"not-applicable"} and rej


def test_ner_invariance_spans_cover_the_right_characters(challenge_builds: dict) -> None:
    res = challenge_builds["ner-invariance"]
    swaps = rows(res, "swap-entities")
    assert len(swaps) > 100
    for r in swaps:
        cond = json.loads(r["condition"])
        by_start = {s["start"]: s for s in r["spans"]}
        for sw in cond["swaps"]:
            span = by_start[sw["new_start"]]
            assert r["text"][span["start"]:span["end"]] == sw["replacement"] == span["text"]
            assert span["label"] == sw["label"]
        words = r["text"].split(" ")
        assert words == r["tokens"]
    for r in rows(res, "typos"):
        orig = [s for s in r["spans"]]
        assert all(r["text"][s["start"]:s["end"]] == s["text"] for s in orig)
        assert r["text"] != r["original_text"] and r["test_type"] == "INV"
    q = json.loads((Path(res.path) / "quality.json").read_text())["span_checks"]
    assert all(v["all_spans_verified"] and v["spans_checked"] > 0 for v in q.values())


def test_bilingual_words_tasks(challenge_builds: dict) -> None:
    res = challenge_builds["bilingual-words"]
    same = rows(res, "same-meaning")
    names = label_names(res, "same-meaning")
    by_word = {(r["word_a"], r["word_b"]): names[r["label"]] for r in same}
    assert by_word[("embarrassed", "embarazada")] == "no" and by_word[("hospital", "hospital")] == "yes"
    assert by_word[("dog", "perro")] == "yes" and by_word[("pie", "pie")] == "no"
    choice = rows(res, "meaning-choice")
    assert len(choice) == 2 * len(same)
    pie_es = next(r for r in choice if r["word"] == "pie" and r["language"] == "es")
    assert pie_es["choices"][pie_es["answer"]] == "foot" and pie_es["distractor_gloss"] == "a baked dish with a pastry crust"
    assert Counter(r["answer"] for r in choice)[0] == len(choice) // 2


# ------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name,options", [
    ("nli-hans", {"per_template": 6}), ("nli-fragments", {"per_template": 6}), ("nli-stress", {}),
    ("ner-invariance", {"max_examples": 150}), ("bilingual-words", {}),
])
def test_build_twice_gives_identical_parquet_bytes(tmp_path: Path, name: str, options: dict) -> None:
    cls = builders.get(name)
    a = build(cls(cls.Options(**options)), tmp_path / "a")
    b = build(cls(cls.Options(**options)), tmp_path / "b")
    files_a = sorted(p.relative_to(a.path) for p in Path(a.path).rglob("*.parquet"))
    assert files_a == sorted(p.relative_to(b.path) for p in Path(b.path).rglob("*.parquet"))
    for rel in files_a:
        assert (Path(a.path) / rel).read_bytes() == (Path(b.path) / rel).read_bytes(), rel
    assert (Path(a.path) / "README.md").read_bytes() == (Path(b.path) / "README.md").read_bytes()


def test_killed_build_resumes_with_complete_quality_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = builders.get("nli-fragments")
    original = cls.generate

    def dies_on_zh(self, config, split, ctx):  # type: ignore[no-untyped-def]
        if config.name == "zh":
            raise KeyboardInterrupt("simulated kill")
        yield from original(self, config, split, ctx)

    monkeypatch.setattr(cls, "generate", dies_on_zh)
    opts = cls.Options(per_template=4)
    with pytest.raises(KeyboardInterrupt):
        build(cls(opts), tmp_path / "out")
    monkeypatch.setattr(cls, "generate", original)
    res = build(cls(opts), tmp_path / "out")
    fresh = build(cls(opts), tmp_path / "fresh")
    q = json.loads((Path(res.path) / "quality.json").read_text())
    assert set(q) == {"en", "es", "zh"} and q == json.loads((Path(fresh.path) / "quality.json").read_text())
    for lang in ("en", "es", "zh"):
        a = Path(res.path) / lang / "test-00000-of-00001.parquet"
        assert a.read_bytes() == (Path(fresh.path) / lang / "test-00000-of-00001.parquet").read_bytes()


def test_other_seed_gives_other_rows(tmp_path: Path) -> None:
    cls = builders.get("nli-hans")
    a = build(cls(cls.Options(per_template=3, languages=["en"], seed=1)), tmp_path / "a")
    b = build(cls(cls.Options(per_template=3, languages=["en"], seed=2)), tmp_path / "b")
    assert [r["premise"] for r in rows(a, "en")] != [r["premise"] for r in rows(b, "en")]


# ------------------------------------------------------------------------------- user data and bad input
def test_hans_extra_file_adds_a_template_and_a_language(tmp_path: Path) -> None:
    extra = tmp_path / "de.yaml"
    extra.write_text(textwrap.dedent("""\
        language: de
        lexicons:
          person:
            features: []
            entries: [Arzt, Anwalt, Lehrer]
        templates:
          - id: ln_swap
            group: lexical_overlap
            label: non-entailment
            slots: {a: person, b: {lexicon: person, distinct: [a]}}
            premise: "der {a} sah den {b}."
            hypothesis: "der {b} sah den {a}."
        """), encoding="utf-8")
    cls = builders.get("nli-hans")
    res = build(cls(cls.Options(languages=["de"], extra_files=[str(extra)], per_template=4)), tmp_path / "out")
    rs = rows(res, "de")
    assert len(rs) == 4 and rs[0]["premise"].startswith("Der ") and rs[0]["template_id"] == "ln_swap"
    q = json.loads((Path(res.path) / "quality.json").read_text())
    assert q["de"]["all_groups_balanced"] is False  # only non-entailment: reported, not hidden


def test_unknown_language_is_a_config_error(tmp_path: Path) -> None:
    cls = builders.get("nli-fragments")
    with pytest.raises(ConfigError, match="no templates for language 'fr'.*extra_files"):
        build(cls(cls.Options(languages=["fr"])), tmp_path)


def snli_like(tmp_path: Path) -> Path:
    p = tmp_path / "snli_like.tsv"
    p.write_text("gold_label\tsentence1\tsentence2\tpairID\n"
                 "entailment\tTwo tall men are walking.\tMen are walking.\tp1\n"
                 "-\tA small dog runs.\tAn animal is asleep.\tp2\n"
                 "contradiction\tThree happy kids play.\tNobody plays.\tp3\n", encoding="utf-8")
    return p


def test_nli_file_with_unknown_label_fails_at_load_naming_file_and_line(tmp_path: Path) -> None:
    src = snli_like(tmp_path)
    with pytest.raises(InputError, match=r"snli_like.tsv:3: unknown NLI label '-'.*drop_unknown_labels=true"):
        load_nli(src)
    cls = builders.get("nli-stress")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="unknown NLI label"):
        build(cls(cls.Options(source=str(src))), out)
    assert not list(out.rglob("*.parquet"))  # failed before generating anything


def test_unknown_labels_can_be_dropped_as_recorded_rejects(tmp_path: Path) -> None:
    cls = builders.get("nli-stress")
    res = build(cls(cls.Options(source=str(snli_like(tmp_path)), drop_unknown_labels=True)), tmp_path / "out")
    rej = pq.read_table(Path(res.path) / "rejects.parquet").to_pylist()
    unknown = [r for r in rej if r["reason"] == "unknown-label"]
    assert len(unknown) == len(res.counts) and all(json.loads(r["example"])["id"] == "p2" for r in unknown)
    ant = rows(res, "antonym")
    assert {r["seed_id"] for r in ant} == {"p1", "p3"} and all(r["source"].endswith("snli_like.tsv") for r in ant)


def test_nli_loads_csv_jsonl_and_a_dataset_folder_through_load_dataset(tmp_path: Path) -> None:
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text('premise,hypothesis,label\n"A man, tall, sings.",A man sings.,0\n', encoding="utf-8")
    [p] = load_nli(csv_path)
    assert p.premise == "A man, tall, sings." and p.label == "entailment" and p.id == "pairs-0"
    folder = tmp_path / "hubish"
    folder.mkdir()
    (folder / "test.jsonl").write_text(json.dumps({"premise": "Dos perros corren.", "hypothesis": "Hay perros.",
                                                   "label": 2, "idx": 7}) + "\n", encoding="utf-8")
    [h] = load_nli(str(folder), split="test", language="es")
    assert h.label == "contradiction" and h.id == "7" and h.language == "es"
    dup = tmp_path / "dup.jsonl"
    dup.write_text("\n".join(json.dumps({"id": "a", "premise": "P.", "hypothesis": "H.", "label": "neutral"}) for _ in range(2)),
                   encoding="utf-8")
    with pytest.raises(InputError, match=r"dup.jsonl:2: pair id 'a' repeats \(first at line 1\)"):
        load_nli(dup)
    with pytest.raises(InputError, match="cannot load Hub dataset 'no-such-org/no-such-nli'"):
        load_nli("no-such-org/no-such-nli")
    with pytest.raises(InputError, match="file not found"):
        load_nli(str(tmp_path / "missing.jsonl"))


def test_pair_file_errors_name_the_line(tmp_path: Path) -> None:
    header = "en\tes\tcategory\tgloss_en\tgloss_es\n"
    cases = {
        "missing gloss": (header + "pie\tpie\tfalse_cognate\ta baked dish\t\n", r":2: missing gloss_es for 'pie'"),
        "cognate glosses differ": (header + "idea\tidea\tcognate\ta thought\tan idea\n", r":2: cognate pair .* different glosses"),
        "false cognate same gloss": (header + "red\tred\tfalse_cognate\tnet\tnet\n", r":2: false_cognate pair .* same gloss"),
        "bad category": (header + "red\tred\tfalse_friend\tcolour\tnet\n", r":2: unknown category 'false_friend'"),
        "bad header": ("en\tes\tkind\n", r":1: bad header"),
        "duplicate": (header + "red\tred\tfalse_cognate\tcolour\tnet\n" * 2, r":3: pair 'red'/'red' repeats line 2"),
    }
    for name, (text, pattern) in cases.items():
        p = tmp_path / f"{name.replace(' ', '_')}.tsv"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=pattern):
            load_word_pairs(p)
    cls = builders.get("bilingual-words")
    with pytest.raises(InputError, match="missing gloss_es"):
        build(cls(cls.Options(pair_file=str(tmp_path / "missing_gloss.tsv"))), tmp_path / "out")


def test_ner_invariance_on_user_jsonl_with_multiword_swaps(tmp_path: Path) -> None:
    data = tmp_path / "tiny.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in [
        {"id": "s1", "tokens": ["Ana", "met", "Bo", "in", "Paris", "on", "12", "May", "2001", "."],
         "tags": ["B-PER", "O", "B-PER", "O", "B-LOC", "O", "O", "O", "O", "O"]},
        {"id": "s2", "tokens": ["Nothing", "here", "."], "tags": ["O", "O", "O"]},
    ]) + "\n", encoding="utf-8")
    names = tmp_path / "names.yaml"
    names.write_text("xx:\n  PER: [Maria del Carmen Ruiz, Li Wei]\n  LOC: [New South Wales]\n", encoding="utf-8")
    cls = builders.get("ner-invariance")
    res = build(cls(cls.Options(language="xx", source_path=str(data), extra_name_files=[str(names)])), tmp_path / "out")
    [r] = rows(res, "swap-entities")
    assert [(s["label"], s["text"]) for s in r["spans"]][2] == ("LOC", "New South Wales")
    assert all(r["text"][s["start"]:s["end"]] == s["text"] for s in r["spans"])
    assert r["ner_tags"][r["tokens"].index("New"):r["tokens"].index("New") + 3] == [
        label_names(res, "swap-entities", "ner_tags").index(t) for t in ("B-LOC", "I-LOC", "I-LOC")]
    [n] = rows(res, "change-numbers")
    cond = json.loads(n["condition"])
    assert [c["original"] for c in cond["changes"]] == ["12", "2001"] and n["spans"][2]["text"] == "Paris"
    assert res.counts["change-numbers"]["test"] == {"in": 2, "out": 1, "rejected": 1}  # s2 has no number
    assert res.counts["swap-entities"]["test"] == {"in": 2, "out": 1, "rejected": 1}  # s2 has no entity
    [t2] = rows(res, "typos")  # s1 has no word of 4+ letters outside its entities: recorded as not-applicable
    assert t2["seed_id"] == "s2" and t2["spans"] == [] and t2["text"] != "Nothing here ."
    dup = tmp_path / "dup.jsonl"
    dup.write_text(data.read_text(encoding="utf-8").replace('"s2"', '"s1"'), encoding="utf-8")
    with pytest.raises(InputError, match=r"dup.jsonl:2: example id 's1' repeats"):
        build(cls(cls.Options(language="xx", source_path=str(dup), extra_name_files=[str(names)])), tmp_path / "out3")
    empty = tmp_path / "empty_names.yaml"
    empty.write_text("xx:\n  PER: []\n", encoding="utf-8")
    with pytest.raises(InputError, match="name list is empty"):
        build(cls(cls.Options(language="xx", source_path=str(data), extra_name_files=[str(empty)])), tmp_path / "out2")
