"""The challenge generation engine: lexicons, templates, agreement, seeding, dedup, bad input."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from dsbuild.challenge import generate, load_banks
from dsbuild.challenge.generate import render
from dsbuild.challenge.quality import contiguous, label_balance, overlap_rate
from dsbuild.challenge.template_builder import challenge_data
from dsbuild.errors import InputError

DATA = challenge_data()
HANS = ("entailment", "non-entailment")
FRAGMENTS = ("entailment", "neutral", "contradiction")


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


LEX = """\
    language: xx
    features: {gender: [m, f], number: [sg, pl]}
    lexicons:
      noun:
        features: [gender, number]
        entries:
          - {text: gato, gender: m, number: sg}
          - {text: gata, lemma: gato, gender: f, number: sg}
          - {text: perros, lemma: perro, gender: m, number: pl}
      det:
        features: [gender, number]
        entries:
          - {text: el, gender: m, number: sg}
          - {text: la, gender: f, number: sg}
          - {text: los, gender: m, number: pl}
          - {text: las, gender: f, number: pl}
      verb:
        features: []
        forms: {past: [number]}
        entries:
          - {text: dormir, past: {sg: durmió, pl: durmieron}}
    """


def template(body: str) -> str:
    return "language: xx\ntemplates:\n" + textwrap.indent(textwrap.dedent(body), "  ")


GOOD = """\
- id: t1
  group: g
  label: entailment
  slots: {a: noun, v: verb}
  premise: "{det|a} {a} {v.past|a}."
  hypothesis: "{det|a} {a} no {v.past|a}."
"""


@pytest.mark.parametrize("lang", ["en", "es", "zh"])
@pytest.mark.parametrize("kind,labels", [("hans", HANS), ("fragments", FRAGMENTS)])
def test_shipped_templates_load_and_every_template_fills(lang: str, kind: str, labels: tuple[str, ...]) -> None:
    bank = load_banks([DATA / "lexicons" / f"{lang}.yaml", DATA / kind / f"{lang}.yaml"], labels=labels)[lang]
    cands = list(generate(bank, per_template=5, seed=1))
    kept = [c for c in cands if c.reject is None]
    assert {c.filled.template.id for c in kept} == {t.id for t in bank.templates}
    assert all(c.reject != "unfilled-slot" and c.reject != "agreement-mismatch" for c in cands)
    for c in kept:
        assert "{" not in c.filled.premise + c.filled.hypothesis
        assert c.filled.premise[0] == c.filled.premise[0].upper()


def test_spanish_agreement_is_independently_correct() -> None:
    """Every article + person noun bigram in the Spanish output matches a lexicon entry's gender/number."""
    banks = load_banks([DATA / "lexicons" / "es.yaml", DATA / "hans" / "es.yaml", DATA / "fragments" / "es.yaml"])
    bank = banks["es"]
    nouns: dict[str, set[tuple[str, str]]] = {}
    for e in bank.lexicons["person"].entries:
        nouns.setdefault(e.text, set()).add((e.features["gender"], e.features["number"]))
    articles = {"el": ("m", "sg"), "la": ("f", "sg"), "los": ("m", "pl"), "las": ("f", "pl"), "al": ("m", "sg")}
    passive = {"fue": "sg", "fueron": "pl"}
    checked = 0
    for c in generate(bank, per_template=20, seed=3):
        assert c.reject is None, (c.reject, c.detail)
        for sentence in (c.filled.premise, c.filled.hypothesis):
            words = re.findall(r"\w+", sentence.lower())
            for art, noun in zip(words, words[1:]):
                if art in articles and noun in nouns:
                    assert articles[art] in nouns[noun], sentence
                    checked += 1
            for i, w in enumerate(words):  # "X fue visto/vista por", "X fueron vistos/vistas por"
                if w in passive and i >= 2 and words[i - 1] in nouns and words[i - 2] in articles:
                    gender, number = articles[words[i - 2]]  # the article disambiguates epicene nouns (la artista)
                    assert passive[w] == number, sentence
                    part = words[i + 1]
                    assert part.endswith({("m", "sg"): "o", ("f", "sg"): "a", ("m", "pl"): "os", ("f", "pl"): "as"}[(gender, number)]), sentence
    assert checked > 500


def test_same_seed_same_output_and_other_seed_differs() -> None:
    paths = [DATA / "lexicons" / "en.yaml", DATA / "hans" / "en.yaml"]

    def run(seed: int) -> list[tuple[str, str, str]]:
        bank = load_banks(paths)["en"]
        return [(c.id, c.filled.premise, c.filled.hypothesis) for c in generate(bank, per_template=8, seed=seed)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_adding_a_template_does_not_change_other_templates(tmp_path: Path) -> None:
    base = [DATA / "lexicons" / "en.yaml", DATA / "hans" / "en.yaml"]
    extra = write(tmp_path, "extra.yaml", """\
        language: en
        templates:
          - id: my_extra
            group: lexical_overlap
            label: non-entailment
            slots: {a: person, b: {lexicon: person, distinct: [a]}}
            premise: "the {a} met the {b}."
            hypothesis: "the {b} met the {a}."
        """)
    before = {c.id: c.filled.premise for c in generate(load_banks(base)["en"], per_template=5, seed=2)}
    after = {c.id: c.filled.premise for c in generate(load_banks(base + [extra])["en"], per_template=5, seed=2)}
    assert {k: v for k, v in after.items() if "my_extra" not in k} == before
    assert any("my_extra" in k for k in after)


def test_user_file_extends_a_shipped_lexicon(tmp_path: Path) -> None:
    extra = write(tmp_path, "more.yaml", """\
        language: en
        lexicons:
          person:
            entries:
              - {text: plumber, pl: plumbers}
        """)
    bank = load_banks([DATA / "lexicons" / "en.yaml", extra])["en"]
    assert "plumber" in [e.text for e in bank.lexicons["person"].entries]


def test_duplicates_across_templates_are_rejected_with_reason(tmp_path: Path) -> None:
    lex = write(tmp_path, "lex.yaml", LEX)
    tpl = write(tmp_path, "t.yaml", template(GOOD + GOOD.replace("id: t1", "id: t2") +
                                             GOOD.replace("id: t1", "id: t3").replace("label: entailment", "label: neutral")))
    cands = list(generate(load_banks([lex, tpl])["xx"], per_template=3, seed=0))
    kept = [c for c in cands if c.reject is None]
    assert len(kept) == 3  # only 3 distinct fillings exist, all taken by t1
    assert {c.filled.template.id for c in kept} == {"t1"}
    reasons = {c.reject for c in cands if c.reject}
    assert reasons == {"duplicate-pair", "label-conflict"}
    pairs = [(c.filled.premise, c.filled.hypothesis) for c in kept]
    assert len(set(pairs)) == len(pairs)
    assert ("El gato durmió.", "El gato no durmió.") in pairs and ("Los perros durmieron.", "Los perros no durmieron.") in pairs


def test_property_requirement_rejects_non_contiguous_pairs(tmp_path: Path) -> None:
    lex = write(tmp_path, "lex.yaml", LEX)
    tpl = write(tmp_path, "t.yaml", template(GOOD.replace("label: entailment", "label: entailment\n  requires: [contiguous]")))
    cands = list(generate(load_banks([lex, tpl])["xx"], per_template=2, seed=0))
    assert cands and all(c.reject == "property-violated" for c in cands)


def test_sentences_are_capitalised_in_any_cased_script() -> None:
    from dsbuild.challenge.generate import capitalize_sentences

    assert capitalize_sentences("¿el médico bailó? ñandú corre. ωμέγα. 医生跑了。") == "¿El médico bailó? Ñandú corre. Ωμέγα. 医生跑了。"


def test_overlap_and_contiguity_measures() -> None:
    assert overlap_rate("The doctor saw the lawyer.", "The lawyer saw the doctor.", "en") == 1.0
    assert contiguous("The doctor near the lawyer danced.", "The lawyer danced.", "en")
    assert not contiguous("The famous doctor danced.", "The doctor danced.", "en")
    assert contiguous("医生以为律师跳舞了。", "律师跳舞了。", "zh")
    bal = label_balance(["a", "a", "b"], ["a", "b"], 0.1)
    assert bal["counts"] == {"a": 2, "b": 1} and not bal["balanced"]
    assert label_balance(["a", "b"], ["a", "b"], 0.0)["balanced"]


# ------------------------------------------------------------------------------- bad input
BAD_CASES = {
    "missing lexicon": (GOOD.replace("{a: noun, v: verb}", "{a: nouns, v: verb}"), r"slot 'a' names lexicon 'nouns'.*not defined"),
    "missing feature in where": (GOOD.replace("{a: noun, v: verb}", "{a: {lexicon: noun, where: {animacy: x}}, v: verb}"),
                                 r"'where' names feature 'animacy'"),
    "bad feature value": (GOOD.replace("{a: noun, v: verb}", "{a: {lexicon: noun, where: {gender: n}}, v: verb}"),
                          r"gender='n' is not one of"),
    "agree on missing feature": (GOOD.replace("{a: noun, v: verb}", "{a: noun, v: {lexicon: verb, agree: {gender: a}}}"),
                                 r"agrees on 'gender'"),
    "unknown form": (GOOD.replace("{v.past|a}.\"\n  hypothesis", "{v.future|a}.\"\n  hypothesis"), r"has no form 'future'"),
    "unknown placeholder": (GOOD.replace("{det|a} {a} {v.past|a}.\"\n  hypothesis", "{det|a} {x}.\"\n  hypothesis"),
                            r"placeholder \{x\} names neither a slot"),
    "inflected form without controller": (GOOD.replace("{v.past|a}.\"\n  hypothesis", "{v.past}.\"\n  hypothesis"),
                                          r"lacks feature\(s\) \['number'\]"),
    "unknown label": (GOOD.replace("label: entailment", "label: maybe"), r"label 'maybe' is not one of"),
    "bad constraint": (GOOD.replace("  premise", "  constraints: ['a.gender ~ m']\n  premise"), r"constraint .* is not"),
    "unknown slot key": (GOOD.replace("{a: noun, v: verb}", "{a: {lexicon: noun, wehre: {gender: m}}, v: verb}"),
                         r"unknown key\(s\) \['wehre'\]"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_template_fails_at_load_with_file_template_and_fix(tmp_path: Path, case: str) -> None:
    body, pattern = BAD_CASES[case]
    lex = write(tmp_path, "lex.yaml", LEX)
    tpl = write(tmp_path, "bad.yaml", template(body))
    with pytest.raises(InputError, match=pattern) as err:
        load_banks([lex, tpl], labels=FRAGMENTS)
    assert "bad.yaml" in str(err.value) and "'t1'" in str(err.value)


LEX_BAD = {
    "empty lexicon": (LEX.replace("""      verb:
        features: []
        forms: {past: [number]}
        entries:
          - {text: dormir, past: {sg: durmió, pl: durmieron}}""", """      verb:
        features: []
        entries: []"""), r"lexicon 'verb': no entries \(the lexicon is empty\)"),
    "entry missing feature": (LEX.replace("{text: gato, gender: m, number: sg}", "{text: gato, gender: m}"),
                              r"missing feature 'number'"),
    "form missing a cell": (LEX.replace("{sg: durmió, pl: durmieron}", "{sg: durmió}"), r"lacks cell\(s\) \['pl'\]"),
    "typo in entry key": (LEX.replace("{text: gato, gender: m, number: sg}", "{text: gato, gender: m, number: sg, gendr: m}"),
                          r"unknown key\(s\) \['gendr'\]"),
    "undeclared feature": (LEX.replace("features: [gender, number]\n        entries:\n          - {text: gato",
                                       "features: [gender, number, case]\n        entries:\n          - {text: gato"),
                           r"feature 'case' is not in this language's feature inventory"),
}


@pytest.mark.parametrize("case", sorted(LEX_BAD))
def test_bad_lexicon_fails_at_load(tmp_path: Path, case: str) -> None:
    text, pattern = LEX_BAD[case]
    lex = write(tmp_path, "lex.yaml", text)
    with pytest.raises(InputError, match=pattern) as err:
        load_banks([lex])
    assert "lex.yaml" in str(err.value) and "lexicon 'noun'" in str(err.value) or "lexicon 'verb'" in str(err.value)


def test_function_word_without_an_agreeing_entry_fails_at_load(tmp_path: Path) -> None:
    lex = write(tmp_path, "lex.yaml", LEX.replace("          - {text: las, gender: f, number: pl}\n", ""))
    tpl = write(tmp_path, "t.yaml", template(GOOD))
    bank_ok = load_banks([write(tmp_path, "lex2.yaml", LEX), tpl])  # with 'las' it loads
    assert bank_ok["xx"].templates
    extra = write(tmp_path, "fpl.yaml", """\
        language: xx
        lexicons:
          noun:
            entries:
              - {text: gatas, lemma: gato, gender: f, number: pl}
        """)
    with pytest.raises(InputError, match=r"no entry of lexicon 'det' agrees with 'a'='gatas'"):
        load_banks([lex, extra, tpl])


def test_surface_agreement_recheck_catches_a_hard_coded_wrong_article(tmp_path: Path) -> None:
    from dsbuild.challenge.quality import adjacent_agreement, agreement_index

    bank = load_banks([write(tmp_path, "lex.yaml", LEX), write(tmp_path, "t.yaml", template(GOOD))])["xx"]
    index = agreement_index(bank)
    assert adjacent_agreement("El gato durmió. La gata durmió.", index) == (2, [])
    assert adjacent_agreement("La gato durmió, los gata durmió.", index) == (2, ["la gato", "los gata"])
    assert adjacent_agreement("Durmió el. La. Perros", index) == (0, [])  # no pair across punctuation


def test_render_records_agreement_checks(tmp_path: Path) -> None:
    bank = load_banks([write(tmp_path, "lex.yaml", LEX), write(tmp_path, "t.yaml", template(GOOD))])["xx"]
    tpl = bank.templates[0]
    fill = {"a": bank.lexicons["noun"].entries[2], "v": bank.lexicons["verb"].entries[0]}
    out = render(tpl, bank, fill)
    assert out.premise == "Los perros durmieron."
    assert out.agreement_checks == 4 and not out.agreement_failures
