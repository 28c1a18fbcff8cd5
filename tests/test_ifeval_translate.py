"""ifeval-translate: IFEval / Multi-IF readers (double-encoded kwargs), the contradicting prompt (key 1174),
instructions kept, dropped or rejected per target script, kwargs strings translated consistently and verified,
ids aligned, every item in = kept + rejected, given translations and the tiny MT model, determinism, the offline
build without a translator."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dsbuild.config import resolve_options
from dsbuild.executor import build
from dsbuild.registry import builders
from dsbuild.translate_dataset.ifeval import (Instruction, contradictions, decode_kwargs, new_instructions,
                                              read_ifeval, read_multi_if, script_profile, uncheckable,
                                              unsupported_reason, value_strings)
from dsbuild.translate_dataset.protect import mask, unmask

SHIPPED = Path(__file__).resolve().parent.parent / "builders" / "data" / "ifeval_translate" / "input_data.jsonl"
N_SHIPPED = 541
LANGUAGE_BOUND = {"change_case:english_capital", "change_case:english_lowercase", "language:response_language",
                  "detectable_format:constrained_response"}


# ---------------------------------------------------------------------- helpers
def run(out: Path, **options: Any) -> Path:
    cls = builders.get("ifeval-translate")
    return Path(build(cls(resolve_options(cls.Options, options)), out, progress=False).path)


def rows(dataset: Path, config: str) -> list[dict[str, Any]]:
    return [r for f in sorted((dataset / config).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def rejects(dataset: Path) -> list[dict[str, Any]]:
    return pq.read_table(dataset / "rejects.parquet").to_pylist()


def counts(dataset: Path) -> dict[str, dict[str, int]]:
    return {c: s["train"] for c, s in json.loads((dataset / "provenance.json").read_text())["counts"].items()}


def protected_patterns() -> Any:
    cls = builders.get("ifeval-translate")
    return cls(resolve_options(cls.Options, {"translations": "unused.jsonl"})).spec().protect


def pseudo(lang: str, text: str, patterns: Any) -> str:
    """A deterministic stand-in translation that keeps substrings (case-insensitively) and protected matches:
    ``de`` reverses each word, ``am`` writes each Latin letter as an Ethiopic syllable (a caseless script)."""
    masked, originals = mask(text, patterns)
    if lang == "am":
        out = re.sub(r"(<x\d+>)|[A-Za-z]", lambda m: m.group(1) or chr(0x1200 + 8 * (ord(m.group(0).lower()) - 97)),
                     masked)
    else:
        out = re.sub(r"(<x\d+>)|[A-Za-z]{2,}", lambda m: m.group(1) or m.group(0)[::-1], masked)
    return unmask(out, originals)


def write_given(path: Path, items: list[Any], lang: str, patterns: Any, *, skip: set[str] = frozenset(),
                wrong_keyword: set[str] = frozenset()) -> None:
    """Given translations of IFEval items (wide: id, lang, prompt, kwarg_values)."""
    with path.open("w", encoding="utf-8") as fh:
        for it in items:
            if it.id in skip:
                continue
            values = value_strings_of(it)
            row: dict[str, Any] = {"id": it.id, "lang": lang, "prompt": pseudo(lang, it.turns[0].prompt, patterns)}
            if values:
                row["kwarg_values"] = [pseudo(lang, v, patterns) + ("zz" if it.id in wrong_keyword else "")
                                       for v in values]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def value_strings_of(it: Any) -> list[str]:
    out: list[str] = []
    for ins in it.turns[0].instructions:
        out += [v for v in value_strings(ins.kwargs) if v not in out]
    return out


# ---------------------------------------------------------------------- readers and checks on the source
def test_shipped_ifeval_reader_and_the_contradicting_prompt() -> None:
    items = list(read_ifeval(SHIPPED))
    assert len(items) == N_SHIPPED and not [it for it in items if it.problem]
    assert sum(len(it.turns[0].instructions) for it in items) == 834  # the README's count
    found = {it.id: contradictions(it.turns[0].prompt, it.turns[0].instructions) for it in items}
    found = {k: v for k, v in found.items() if v}
    assert list(found) == ["1174"]  # "at least 6 times" with let_relation "less than"; no false alarm elsewhere
    assert "less than" in found["1174"][0][1] and "at least" in found["1174"][0][1]
    # every kwargs string the prompt writes is in it (the README: verbatim, case-insensitive)
    lower = {it.id: it.turns[0].prompt.lower() for it in items}
    assert all(v.lower() in lower[it.id] for it in items for v in value_strings_of(it))


def test_multi_if_double_encoded_kwargs_and_bad_records(tmp_path: Path) -> None:
    kwargs = [{}, {"num_highlights": 3}, {"keywords": ["Athens"]}]
    doubly = json.dumps([json.dumps(k) for k in kwargs])  # Multi-IF: a JSON list of JSON strings
    assert decode_kwargs(doubly, 3, "turn_1_kwargs") == kwargs
    assert decode_kwargs(json.dumps(doubly), 3, "k") == kwargs  # one more layer: still read
    assert decode_kwargs([{"keywords": None, "num_words": 5}], 1, "k") == [{"num_words": 5}]  # Hub nulls dropped
    path = tmp_path / "multi.csv"
    good = multi_if_record("1000:1:en", [("the dog .", ["punctuation:no_comma"], [{}]),
                                         ("the cat .", ["punctuation:no_comma", "keywords:existence"],
                                          [{}, {"keywords": ["cat"]}])])
    short = dict(good, key="1001:1:en", turn_1_kwargs=json.dumps([]))
    not_list = {"key": "1002:1:en", "turns": "{\"prompt\": \"x\"}"}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=sorted({k for r in (good, short, not_list) for k in r}))
        w.writeheader()
        for r in (good, short, not_list):
            w.writerow(r)
    items = {it.id: it for it in read_multi_if(path)}
    g = items["1000:1:en"]
    assert g.problem is None and [len(t.instructions) for t in g.turns] == [1, 2]
    assert g.turns[1].instructions[1] == Instruction("keywords:existence", {"keywords": ["cat"]})
    assert new_instructions(g.turns, 1) == [1]  # cumulative lists: turn 2 adds one instruction
    assert items["1001:1:en"].problem[0] == "bad-field" and "turn_1_kwargs" in items["1001:1:en"].problem[1]
    assert items["1002:1:en"].problem[0] == "not-a-list" and "turns" in items["1002:1:en"].problem[1]


def test_unsupported_instructions_by_script() -> None:
    de, am, zh, qsy = (script_profile(x) for x in ("de", "am", "zh", "qsy"))
    caps = Instruction("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"})
    assert unsupported_reason(caps, de) is None and unsupported_reason(caps, am) == "script-without-case"
    assert unsupported_reason(Instruction("keywords:letter_frequency", {"letter": "o"}), am) == "letter-not-in-script"
    assert unsupported_reason(Instruction("length_constraints:number_words", {}), zh) == "words-not-spaced"
    assert unsupported_reason(Instruction("language:response_language", {"language": "hi"}), de) == "response-language"
    assert unsupported_reason(Instruction("change_case:english_lowercase", {}), de) == "needs-english"
    assert not qsy.known and script_profile("qsy", "Ethi").cased is False  # a script option overrides
    hashes = Instruction("keywords:letter_frequency", {"letter": "#", "let_frequency": 4, "let_relation": "at least"})
    assert unsupported_reason(hashes, am) is None  # '#' is no letter of any script: not a script problem...
    assert uncheckable([hashes]) and not uncheckable([Instruction("keywords:letter_frequency", {"letter": "o"})])


# ---------------------------------------------------------------------- the shipped IFEval, given translations
@pytest.fixture(scope="module")
def given_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("ifeval")
    items = list(read_ifeval(SHIPPED))
    patterns = protected_patterns()
    with_values = [it.id for it in items if value_strings_of(it) and it.id != "1174"]
    skipped, wrong = {items[5].id}, {with_values[0]}
    write_given(d / "given-de.jsonl", items, "de", patterns, skip=skipped, wrong_keyword=wrong)
    write_given(d / "given-am.jsonl", items, "am", patterns)
    opts = dict(target_langs=["de", "am"], translations=str(d / "given-{lang}.jsonl"))
    return {"out": run(d / "a", **opts), "items": {it.id: it for it in items},
            "skipped": skipped, "wrong": wrong, "dir": d}


def test_given_counts_ids_aligned_and_rejects(given_build: dict[str, Any]) -> None:
    out = given_build["out"]
    c = counts(out)
    assert set(c) == {"en", "de", "am"}
    for config, n in c.items():
        assert n["in"] == N_SHIPPED == n["out"] + n["rejected"], config  # in = kept + rejected
        assert len(rows(out, config)) == n["out"]
    by_config = {cfg: [r for r in rejects(out) if r["config"] == cfg] for cfg in c}
    assert len(by_config["de"]) == c["de"]["rejected"]
    for cfg in c:  # the contradicting prompt is a reject in every config, naming the item
        r = next(r for r in by_config[cfg] if r["id"] == "1174")
        assert r["reason"] == "kwargs-contradict-prompt" and "'1174'" in r["detail"]
    skipped = next(r for r in by_config["de"] if r["id"] in given_build["skipped"])
    assert skipped["reason"] == "no-translation" and "'prompt'" in skipped["detail"]
    en_ids = [r["id"] for r in rows(out, "en")]
    for cfg in ("de", "am"):
        ids = [r["id"] for r in rows(out, cfg)]
        assert ids == [i for i in en_ids if i in set(ids)]  # same ids, same order
    # prompts left with no instruction after dropping the language-bound ones are rejects with the reasons
    gone = [r for r in by_config["de"] if r["reason"] == "no-instructions-left"]
    expect = [i for i, it in given_build["items"].items() if i not in given_build["skipped"] and i != "1174" and
              all(ins.id in LANGUAGE_BOUND for ins in it.turns[0].instructions)]
    assert sorted(r["id"] for r in gone) == sorted(expect) and expect
    assert all("response-language" in r["detail"] or "needs-english" in r["detail"] or
               "fixed-english-answers" in r["detail"] for r in gone)


def test_given_instruction_ids_kept_or_dropped_with_reason(given_build: dict[str, Any]) -> None:
    out, items = given_build["out"], given_build["items"]
    for r in rows(out, "en"):  # the source config: ids and kwargs exactly as read
        src = items[r["id"]].turns[0].instructions
        assert r["instruction_id_list"] == [i.id for i in src]
        assert [json.loads(k) for k in r["kwargs"]] == [i.kwargs for i in src]
        assert r["dropped_instructions"] == [] and r["translation_method"] == "source"
    reasons: dict[str, Counter[str]] = {}
    for cfg in ("de", "am"):
        reasons[cfg] = Counter()
        for r in rows(out, cfg):
            src = [i.id for i in items[r["id"]].turns[0].instructions]
            dropped = [d["instruction_id"] for d in r["dropped_instructions"]]
            kept = iter(r["instruction_id_list"])
            # kept + dropped = the source's ids, and the kept ones keep their order
            assert sorted(r["instruction_id_list"] + dropped) == sorted(src)
            assert all(i in kept for i in [x for x in src if x not in dropped])
            assert len(r["kwargs"]) == len(r["instruction_id_list"])
            for d in r["dropped_instructions"]:
                reasons[cfg][d["reason"]] += 1
                assert d["turn"] == 1 and d["reason"]
    assert {"needs-english", "response-language"} <= set(reasons["de"])
    # constrained_response is every such prompt's only instruction: those prompts are rejects naming the reason
    assert any("fixed-english-answers" in r["detail"] for r in rejects(out) if r["config"] == "de")
    assert "script-without-case" not in reasons["de"] and "letter-not-in-script" not in reasons["de"]
    assert reasons["am"]["script-without-case"] > 0 and reasons["am"]["letter-not-in-script"] > 0
    de = rows(out, "de")
    assert any("change_case:capital_word_frequency" in r["instruction_id_list"] for r in de)  # cased: kept
    assert not any("change_case:capital_word_frequency" in r["instruction_id_list"] for r in rows(out, "am"))
    assert not any(set(r["instruction_id_list"]) & LANGUAGE_BOUND for r in de + rows(out, "am"))
    # ...but IFEval's checker cannot count '#' (key 1122) or '!' (1129): kept, flagged, noted, in every config
    for cfg in ("en", "de", "am"):
        by_id = {r["id"]: r for r in rows(out, cfg)}
        flagged = sorted(i for i, r in by_id.items() if "kwarg-not-checkable" in r["qc_flags"])
        assert flagged == ["1122", "1129"], cfg
        assert "substitutes a random letter" in by_id["1122"]["notes"][0]
        assert "keywords:letter_frequency" in by_id["1122"]["instruction_id_list"]


def test_given_kwargs_translated_consistently_and_verified(given_build: dict[str, Any]) -> None:
    out, items, wrong = given_build["out"], given_build["items"], given_build["wrong"]
    patterns = protected_patterns()
    checked = 0
    for cfg in ("de", "am"):
        for r in rows(out, cfg):
            profile = script_profile(cfg)
            kept = [i for i in items[r["id"]].turns[0].instructions if unsupported_reason(i, profile) is None]
            assert [i.id for i in kept] == r["instruction_id_list"]  # by position (an id can occur twice)
            for ins, kw in zip(kept, r["kwargs"]):
                kw, src = json.loads(kw), {ins.id: ins.kwargs}
                iid = ins.id
                for key in ("keywords", "forbidden_words", "keyword", "end_phrase", "first_word", "prompt_to_repeat"):
                    if key not in kw:
                        continue
                    values = kw[key] if isinstance(kw[key], list) else [kw[key]]
                    source = src[iid][key] if isinstance(src[iid][key], list) else [src[iid][key]]
                    tail = "zz" if cfg == "de" and r["id"] in wrong else ""
                    assert values == [pseudo(cfg, v, patterns) + tail for v in source], (cfg, r["id"], key)
                    checked += len(values)
                    for v in values:  # found in the translated prompt, or flagged and listed
                        if v.casefold() not in r["prompt"].casefold():
                            assert "kwarg-not-found" in r["qc_flags"] and any(v in m for m in r["kwargs_missing"])
                # numbers and other kwargs unchanged
                assert {k: v for k, v in kw.items() if not isinstance(v, (str, list))} == \
                    {k: v for k, v in src[iid].items() if not isinstance(v, (str, list))}
    assert checked > 300
    de = {r["id"]: r for r in rows(out, "de")}
    bad = next(iter(wrong))
    assert "kwarg-not-found" in de[bad]["qc_flags"] and de[bad]["kwargs_missing"]
    flagged = [i for i, r in de.items() if "kwarg-not-found" in r["qc_flags"]]
    assert flagged == [bad]  # consistent pseudo-translations are all found
    facts = json.loads((out / "provenance.json").read_text())["facts"]["translate_dataset"]["recipe"]
    assert facts["per_config"]["de"]["kwargs_checked"]["missing"] == 1
    card = (out / "README.md").read_text()
    assert "#### Instructions" in card and "| `am` |" in card and "script-without-case" in card


def test_options_reject_unsupported_flag_contradictions_deterministic(given_build: dict[str, Any], tmp_path: Path) -> None:
    d = given_build["dir"]
    opts = dict(target_langs=["am"], translations=str(d / "given-{lang}.jsonl"), max_items=60, unsupported="reject",
                contradictions="flag")
    out, again = run(tmp_path / "o", **opts), run(tmp_path / "p", **opts)
    for rel in ("en/train-00000-of-00001.parquet", "am/train-00000-of-00001.parquet", "rejects.parquet", "README.md"):
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel  # same options, same bytes
    items = given_build["items"]
    am, rej = {r["id"]: r for r in rows(out, "am")}, [r for r in rejects(out) if r["config"] == "am"]
    assert len(am) + len(rej) == 60
    assert all(not r["dropped_instructions"] for r in am.values())
    unsupported = [r for r in rej if r["reason"] == "unsupported-instruction"]
    expect = [i for i in list(items)[:60] if any(unsupported_reason(ins, script_profile("am"))
                                                 for ins in items[i].turns[0].instructions)]
    assert sorted(r["id"] for r in unsupported) == sorted(expect)
    assert all(f"'{r['id']}'" in r["detail"] and "cannot hold in am" in r["detail"] for r in unsupported)
    # key 1174 (item 34): kept, flagged, the contradiction noted
    en = {r["id"]: r for r in rows(out, "en")}
    assert "kwargs-contradict-prompt" in en["1174"]["qc_flags"] and "less than" in en["1174"]["notes"][0]


# ---------------------------------------------------------------------- Multi-IF with the tiny MT model
def multi_if_record(key: str, turns: list[tuple[str, list[str], list[dict[str, Any]]]]) -> dict[str, Any]:
    """A Multi-IF CSV row: JSON-encoded messages and id lists, doubly encoded kwargs."""
    rec: dict[str, Any] = {"key": key, "language": "English"}
    for k, (prompt, ids, kwargs) in enumerate(turns, 1):
        rec[f"turn_{k}_prompt"] = json.dumps({"role": "user", "content": prompt})
        rec[f"turn_{k}_instruction_id_list"] = json.dumps(ids)
        rec[f"turn_{k}_kwargs"] = json.dumps([json.dumps(x) for x in kwargs])
    return rec


MULTI_IF = [
    # prompts are sentences of the synthetic grammar (what the tiny model translates); keywords are entity names
    ("1:1:en", [("Elena Baker writes the child in Athens .", ["punctuation:no_comma", "keywords:existence"],
                 [{}, {"keywords": ["Athens"]}]),
                ("this dog buys Thomas in Lake Victoria today .",
                 ["punctuation:no_comma", "keywords:existence", "keywords:forbidden_words"],
                 [{}, {"keywords": ["Athens"]}, {"forbidden_words": ["Thomas"]}]),
                ("National Museum of Art helps the train .",
                 ["punctuation:no_comma", "keywords:existence", "keywords:forbidden_words", "language:response_language"],
                 [{}, {"keywords": ["Athens"]}, {"forbidden_words": ["Thomas"]}, {"language": "hi"}])]),
    ("2:1:en", [("the car leaves Acme Corporation quickly .", ["change_case:capital_word_frequency"],
                 [{"capital_frequency": 2, "capital_relation": "at least"}]),
                ("Elena Baker writes the child in Athens .",
                 ["change_case:capital_word_frequency", "startend:end_checker"],
                 [{"capital_frequency": 2, "capital_relation": "at least"}, {"end_phrase": "Athens"}])]),
    ("3:1:en", [("this car buys a strange dog in Athens today .", ["change_case:english_lowercase"], [{}])]),
]


@pytest.fixture(scope="module")
def multi_if_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("multiif") / "multi_if.csv"
    recs = [multi_if_record(k, t) for k, t in MULTI_IF] + [{"key": "4:1:en", "turn_1_prompt": "the dog .",
                                                            "turn_1_instruction_id_list": '{"a": 1}',
                                                            "turn_1_kwargs": "[]"},
                                                           {"key": "5:1:en", "turn_1_prompt": json.dumps({"role": "user"}),
                                                            "turn_1_instruction_id_list": "[]", "turn_1_kwargs": "[]"}]
    names = sorted({k for r in recs for k in r})
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        w.writerows(recs)
    return path


def test_multi_if_tiny_model_end_to_end(tmp_path: Path, multi_if_file: Path, phrase_marian_path: Path) -> None:
    opts = dict(source=str(multi_if_file), target_langs=["qsy"], model=str(phrase_marian_path), beam_size=1,
                cache_dir=str(tmp_path / "cache"), translator_options={"threads": 1, "progress": False},
                scripts={"qsy": "Latn"})
    out = run(tmp_path / "a", **opts)
    c = counts(out)
    assert c["qsy"]["in"] == c["en"]["in"] == 5 and all(n["in"] == n["out"] + n["rejected"] for n in c.values())
    rej = {(r["config"], r["id"]): r for r in rejects(out)}
    assert rej[("qsy", "5:1:en")]["reason"] == "bad-field" and "turn_1_prompt" in rej[("qsy", "5:1:en")]["detail"]
    assert rej[("qsy", "4:1:en")]["reason"] == "bad-field"  # an id list that is not a list: named
    assert "turn_1_instruction_id_list" in rej[("qsy", "4:1:en")]["detail"]
    # item 3 has only a language-bound instruction: no instruction left, rejected with the reason
    assert rej[("qsy", "3:1:en")]["reason"] == "no-instructions-left" and "needs-english" in rej[("qsy", "3:1:en")]["detail"]
    qsy, en = {r["id"]: r for r in rows(out, "qsy")}, {r["id"]: r for r in rows(out, "en")}
    assert list(qsy) == ["1:1:en", "2:1:en"] and list(en) == ["1:1:en", "2:1:en", "3:1:en"]
    one = qsy["1:1:en"]
    assert one["translation_method"] == "machine" and one["translator_revision"].startswith("sha256:")
    assert one["turn_1_prompt"] == "en Atens Elena Baker infano skribas ."  # the model's translation
    assert en["1:1:en"]["turn_1_prompt"] == "Elena Baker writes the child in Athens ."
    # instruction ids kept turn by turn (cumulative), the response-language one dropped in turn 3 with the reason
    assert one["turn_1_instruction_id_list"] == ["punctuation:no_comma", "keywords:existence"]
    assert one["turn_3_instruction_id_list"] == ["punctuation:no_comma", "keywords:existence", "keywords:forbidden_words"]
    assert [(d["turn"], d["instruction_id"], d["reason"]) for d in one["dropped_instructions"]] == \
        [(3, "language:response_language", "response-language")]
    # kwargs strings translated on their own, consistently across turns, and found in the translated prompts
    kw = [json.loads(x) for x in one["turn_3_kwargs"]]
    assert kw[1] == {"keywords": ["Atens"]} and kw[2] == {"forbidden_words": ["Tomas"]}
    assert one["turn_1_kwarg_values"] == ["Atens"] and one["kwargs_missing"] == []
    assert "kwarg-not-found" not in one["qc_flags"]
    two = qsy["2:1:en"]  # a cased (Latn) target keeps the capital-word instruction; the end phrase translated
    assert two["turn_2_instruction_id_list"] == ["change_case:capital_word_frequency", "startend:end_checker"]
    assert json.loads(two["turn_2_kwargs"][1]) == {"end_phrase": "Atens"}
    assert two["turn_3_prompt"] is None and en["2:1:en"]["turn_3_prompt"] is None  # two-turn record
    # caseless script by option, reject policy: the capital-word item is rejected, naming the instruction
    out2 = run(tmp_path / "b", **dict(opts, scripts={"qsy": "Ethi"}, unsupported="reject"))
    rej2 = {r["id"]: r for r in rejects(out2) if r["config"] == "qsy"}
    assert rej2["2:1:en"]["reason"] == "unsupported-instruction"
    assert "change_case:capital_word_frequency" in rej2["2:1:en"]["detail"]
    assert rej2["1:1:en"]["reason"] == "unsupported-instruction"  # response language in turn 3
    # same options, same bytes (translation cache warm or not)
    out3 = run(tmp_path / "c", **opts)
    for rel in ("qsy/train-00000-of-00001.parquet", "en/train-00000-of-00001.parquet", "rejects.parquet"):
        assert (out / rel).read_bytes() == (out3 / rel).read_bytes(), rel


# ---------------------------------------------------------------------- offline without a translator
def test_without_model_or_translations_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dsbuild.cli import app

    result = CliRunner().invoke(app, ["build", "ifeval-translate", "--out", str(tmp_path)])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)  # no traceback
    lines = [x for x in result.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert "--set model=" in lines[0] and "--set translations=" in lines[0]
    assert not list(tmp_path.rglob("*.parquet"))  # stopped before any work
