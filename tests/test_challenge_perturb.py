"""Perturbation operators: conditions match the text, spans move exactly (property-based for NER)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsbuild.challenge.ner_perturb import change_numbers, swap_entities, typo_outside, verify_spans
from dsbuild.challenge.perturb import append_distractor, load_resources, rewrite_number, spelling_noise, substitute
from dsbuild.challenge.template_builder import challenge_data
from dsbuild.errors import InputError
from dsbuild.spans import Example

RES = load_resources(sorted((challenge_data() / "stress").glob("*.yaml")))

word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFG", min_size=1, max_size=9)
token = st.one_of(word, st.integers(0, 99999).map(str), st.sampled_from([",", ".", "'"]))


@st.composite
def ner_examples(draw: st.DrawFn) -> Example:
    words = draw(st.lists(token, min_size=1, max_size=25))
    spans, i = [], 0
    while i < len(words):
        if draw(st.booleans()) and draw(st.integers(0, 3)) == 0:
            width = draw(st.integers(1, min(3, len(words) - i)))
            spans.append((i, i + width, draw(st.sampled_from(["PER", "LOC", "ORG"]))))
            i += width + draw(st.integers(0, 2))
        else:
            i += 1
    return Example.from_words("ex", words, token_spans=spans)


NAMES = {"PER": {"*": ["Ana García", "Li", "Maria del Carmen Ruiz"]}, "LOC": {"*": ["New South Wales", "Oslo"]},
         "ORG": {"bare": ["NATO", "OECD"]}}


@settings(max_examples=150, deadline=None)
@given(ner_examples(), st.integers(0, 10**6))
def test_ner_operators_move_spans_exactly(ex: Example, seed: int) -> None:
    for op in (lambda r: swap_entities(ex, NAMES, r, "new"), lambda r: change_numbers(ex, r, "new"),
               lambda r: typo_outside(ex, r, "new")):
        p = op(random.Random(seed))
        if p is None:
            continue
        assert verify_spans(p) is None
        assert [s.label for s in p.example.spans] == [s.label for s in ex.spans]
        for sw in p.condition.get("swaps", []):
            assert p.example.text[sw["new_start"]:sw["new_end"]] == sw["replacement"]
            assert ex.text[sw["old_start"]:sw["old_end"]] == sw["original"]
            assert sw["original"] != sw["replacement"]
        for ch in p.condition.get("changes", []):
            assert p.example.tokens[ch["token"]].text == ch["replacement"] != ch["original"]


def test_grouped_names_swap_only_within_their_class() -> None:
    ex = Example.from_words("e", ["NATO", "and", "the", "Commission", "met", "ACME"],
                            token_spans=[(0, 1, "ORG"), (3, 4, "ORG"), (5, 6, "ORG")])
    names = {"ORG": {"bare": ["NATO", "OECD"], "with_the": ["Commission", "Council"]}}
    p = swap_entities(ex, names, random.Random(0), "n")
    assert p is not None and verify_spans(p) is None
    assert p.example.words == ["OECD", "and", "the", "Council", "met", "ACME"]
    assert p.condition["kept"] == [{"label": "ORG", "text": "ACME", "why": "not in any name class of this type"}]


@pytest.mark.parametrize("lang,text", [("en", "An old woman is walking her dog."), ("es", "La mujer alta lee un periódico."),
                                       ("zh", "那个高个子女人在看报纸。")])
def test_text_operators_record_where_they_changed(lang: str, text: str) -> None:
    res = RES[lang]
    for fn in (lambda r: substitute(text, res.antonyms, res, r, "antonym"), lambda r: substitute(text, res.synonyms, res, r, "synonym"),
               lambda r: spelling_noise(text, res, r), lambda r: rewrite_number(text, res, r)):
        p = fn(random.Random(3))
        if p is None:
            continue
        c = p.condition
        assert p.text[c["char_start"]:c["char_end"]] == c["replacement"] and p.text != text
    d = append_distractor(text, res, random.Random(0))
    assert d is not None and d.condition["distractor"] in d.text and d.text[-1] in ".。"


def test_english_article_follows_the_new_word() -> None:
    p = substitute("An old woman waves.", {"old": "young"}, RES["en"], random.Random(0), "antonym")
    assert p is not None and p.text == "A young woman waves."
    p = substitute("A new house.", {"new": "old"}, RES["en"], random.Random(0), "antonym")
    assert p is not None and p.text == "An old house." and p.text[p.condition["char_start"]:p.condition["char_end"]] == "old"


def test_zh_spelling_uses_a_same_sound_character() -> None:
    p = spelling_noise("他在家里吃饭。", RES["zh"], random.Random(1))
    assert p is not None and p.condition["operation"] == "same-sound-character"
    assert p.condition["replacement"] in RES["zh"].homophones[p.condition["original"]]


def test_numbers_keep_their_kind() -> None:
    p = rewrite_number("Three men and 12 dogs.", RES["en"], random.Random(5))
    assert p is not None
    c = p.condition
    assert c["new_value"] != c["old_value"]
    assert c["replacement"].isdigit() == c["original"].isdigit()


def test_lower_bound_needs_a_word_for_n_minus_one() -> None:
    from dsbuild.challenge.perturb import lower_bound

    assert lower_bound("Two women walk.", RES["en"], random.Random(0)) is None  # no number word for 1
    p = lower_bound("Two women and 7 men walk.", RES["en"], random.Random(0))
    assert p is not None and p.text == "Two women and more than 6 men walk."


def test_bad_resource_files_fail_at_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("language: en\nantonyms:\n  - [hot]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.yaml: antonyms item 1 .* is not a pair"):
        load_resources([bad])
    bad.write_text("language: zh\nhomophones:\n  在: [在]\n", encoding="utf-8")
    with pytest.raises(InputError, match="must be other, non-empty characters"):
        load_resources([bad])
    bad.write_text("language: en\nantonymz: []\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown key\(s\) \['antonymz'\]"):
        load_resources([bad])


def test_stress_on_a_new_language_with_a_user_resource_file(tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    from dsbuild.executor import build
    from dsbuild.registry import builders

    data = tmp_path / "de.jsonl"
    data.write_text(json.dumps({"id": "d1", "premise": "Ein großer Hund schläft.", "hypothesis": "Ein Tier schläft.",
                                "label": "entailment"}) + "\n", encoding="utf-8")
    res_file = tmp_path / "de.yaml"
    res_file.write_text("language: de\ndistractors: [und wahr ist wahr]\nantonyms:\n  - [großer, kleiner]\n", encoding="utf-8")
    cls = builders.get("nli-stress")
    out = build(cls(cls.Options(source=str(data), language="de", extra_resource_files=[str(res_file)],
                                operators=["antonym", "distraction-premise", "numerical"])), tmp_path / "out")
    [ant] = pq.read_table(Path(out.path) / "antonym" / "test-00000-of-00001.parquet").to_pylist()
    assert ant["hypothesis"] == "Ein kleiner Hund schläft." and ant["language"] == "de"
    assert out.counts["numerical"]["test"] == {"in": 1, "out": 0, "rejected": 1}
