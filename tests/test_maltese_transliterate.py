"""Maltese -> Arabic script transliteration and the etymology-routed pipelines."""

from __future__ import annotations

import unicodedata

import pytest

from dsbuild.errors import ConfigError, InputError
from dsbuild.maltese.pipelines import PipelineStats, builtin_pipelines, get_pipeline
from dsbuild.maltese.readers import MERGED_LABELS
from dsbuild.maltese.transliterate import Transliterator, TransliterationStats, join


@pytest.fixture(scope="module")
def det():
    return Transliterator("deterministic")


@pytest.fixture(scope="module")
def nondet():
    return Transliterator("non_deterministic")


def test_closed_class_tables_come_first_and_plus_attaches(det):
    il = det.transliterate("il-")
    assert (il.text, il.attach_next, il.source) == ("ال", True, "table")
    assert det("ta'") == "تاع"
    assert det.transliterate("Kien").source == "table"  # lowercase lookup
    kelb = det.transliterate("kelb")
    assert kelb.source == "rules" and not kelb.attach_next
    assert join([il, kelb]) == "ال" + kelb.text
    assert join([kelb, kelb]) == kelb.text + " " + kelb.text


def test_character_rewriting_order(det):
    assert det("għar") == "عار"          # digraph għ before g + ħ
    assert det("ktieb") == "كتاب"        # digraph ie
    assert det("ħobż") == "حوبز"         # single characters, ż
    assert det("ċaw") == "تشاو"          # ċ -> two letters
    keep_marks = Transliterator("deterministic", dediacritise=False, use_word_tables=False)
    assert keep_marks("qalb") == "قالب"
    assert keep_marks("ħabbat") == "حابّات"  # doubled consonant -> shadda, kept without dediacritisation
    assert det("ħabbat") == "حابات"          # ... removed by diacritic removal
    short = Transliterator("deterministic", vowels="short", use_word_tables=False)
    assert short("kiteb") == "كتب"           # short-vowel marks, then removed


def test_unmapped_characters_pass_through_and_are_counted(det):
    t = det.transliterate("kelb☃ω")
    assert t.text.endswith("☃ω")
    assert t.unmapped == ("☃", "ω") or t.unmapped == ("☃",)  # ω is in the "other chars" table
    stats = TransliterationStats()
    det.transliterate_tokens(["☃", "kelb", "☃☃"], stats)
    assert stats.unmapped_chars["☃"] == 3 and stats.tokens == 3


def test_accented_vowels_and_combining_forms(det):
    assert det.transliterate("università").unmapped == ()
    for word in ("ċirasa", "ġnien", "żiemel", "Ħobż", "ħaġa"):
        nfd = unicodedata.normalize("NFD", word)
        assert nfd != word or word == "Ħobż"
        assert det(nfd) == det(word)
    assert Transliterator("non_deterministic").alternatives(unicodedata.normalize("NFD", "ġnien"), 3) == \
        Transliterator("non_deterministic").alternatives("ġnien", 3)


def test_ranked_alternatives(nondet):
    alts = nondet.alternatives("kelma", 4)
    assert 1 < len(alts) <= 4
    scores = [s for _, s in alts]
    assert scores == sorted(scores, reverse=True)
    assert len({a for a, _ in alts}) == len(alts)
    assert "كلمة" in [a for a, _ in alts[:2]]  # the n-gram model prefers the Arabic spelling with ta marbuta
    assert nondet.transliterate("kelma").text == alts[0][0]
    assert nondet.alternatives("il-") == [("ال", 0.0)]  # a table hit is the only alternative
    assert nondet.alternatives("kelma", 4) == Transliterator("non_deterministic").alternatives("kelma", 4)


def test_bad_mode():
    with pytest.raises(ConfigError):
        Transliterator("random")  # type: ignore[arg-type]


# -- pipelines ------------------------------------------------------------------------------------

TOKENS = ["Il-", "Prim", "Ministru", "Robert", "Abela", "qal", "li", "l-", "weekend", "kien", "cool", "."]
LABELS = ["Arabic", "Non-Arabic", "Non-Arabic", "Name", "Name", "Arabic", "Arabic", "Arabic", "Code-Switching",
          "Arabic", "Code-Switching", "Symbol"]


@pytest.mark.parametrize("name", sorted(builtin_pipelines()))
def test_every_pipeline_keeps_one_slot_per_token(name):
    p = get_pipeline(name)
    out = p.process(TOKENS, LABELS)
    assert len(out.tokens) == len(out.actions) == len(out.attach_next) == len(TOKENS)
    assert all(t.strip() for t in out.tokens)
    for tok, new, label, action in zip(TOKENS, out.tokens, LABELS, out.actions):
        assert action == p.routing[label]
        if action == "keep":
            assert new == tok


def test_routing_of_selective_pipelines():
    out = get_pipeline("transliterate_arabic").process(TOKENS, LABELS)
    assert out.tokens[5] == "قال" and out.tokens[1] == "Prim" and out.tokens[3] == "Robert"
    assert out.attach_next[0] and out.text().startswith("الPrim")
    mixed = get_pipeline("transliterate_arabic_translate_en").process(TOKENS, LABELS)
    assert mixed.tokens[5] == "قال"
    assert mixed.tokens[2] != "Ministru" and mixed.actions[2] == "translate:mt-en"
    assert mixed.tokens[3] == "Robert" and mixed.tokens[-1] == "."
    raw = get_pipeline("raw").process(TOKENS, LABELS)
    assert raw.tokens == TOKENS and not get_pipeline("raw").needs_etymology


def test_translation_missing_from_table_is_kept_and_counted():
    stats = PipelineStats()
    out = get_pipeline("translate_all_en").process(["ħelliequ-xyz", "qal"], ["Arabic", "Arabic"], stats)
    assert out.tokens[0] == "ħelliequ-xyz"
    assert stats.untranslated["mt-en"] == 1 and stats.actions["translate:mt-en"] == 2


def test_multiword_translation_keeps_one_slot():
    from dsbuild.maltese import resources

    table = resources.translation_table("mt-en")
    word = next(k for k, v in table.items() if len(v.split()) > 1 and k.isalpha())
    out = get_pipeline("translate_all_en").process([word, "."], ["Non-Arabic", "Symbol"])
    assert len(out.tokens) == 2 and " " in out.tokens[0]


def test_pipeline_errors():
    with pytest.raises(InputError, match="2 tokens but 1"):
        get_pipeline("raw").process(["a", "b"], ["Arabic"])
    with pytest.raises(InputError, match="unknown etymology label"):
        get_pipeline("raw").process(["a"], ["Latin"])
    with pytest.raises(ConfigError, match="Did you mean"):
        get_pipeline("transliterate_arabik")
    with pytest.raises(ConfigError, match="no action"):
        get_pipeline("custom", {"Arabic": "keep"})
    with pytest.raises(ConfigError, match="unknown action"):
        get_pipeline("custom", {label: "shout" for label in MERGED_LABELS})


def test_one_pass_rewriting_matches_position_by_position_reference(maltese_sentences):
    words = {t for s in maltese_sentences for t in s.tokens} | {"kelb☃ω", "ħħaġa", "għżż", "-il", "☃"}
    for kw in ({}, {"vowels": "short"}, {"dediacritise": False}):
        t = Transliterator("deterministic", **kw)
        for w in words:
            assert t._rewrite(t._encode(w)) == t._rewrite_reference(t._encode(w)), (kw, w)
