"""Marker projection (EasyProject style): reading markers back, assigning labels, rejects."""

from __future__ import annotations

import pytest

from dsbuild.errors import ConfigError
from dsbuild.project.markers import MarkerParseError, MarkerProjector, parse_marked
from dsbuild.registry import projectors
from dsbuild.spans import Example


class FakeTranslator:
    """Canned translations (what a marker-aware MT model could output), identity otherwise."""

    name = "fake"

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def translate(self, texts, src_lang, tgt_lang):
        self.calls.append(list(texts))
        return [self.table.get(t, t) for t in texts]

    def score(self, sources, targets, src_lang, tgt_lang):
        raise NotImplementedError

    def describe(self):
        return {"name": self.name}


def ex(id_, words, spans):
    return Example.from_words(id_, words.split(), token_spans=spans)


def run(table, sources, **kw):
    proj = MarkerProjector(FakeTranslator(table), **kw)
    out = proj.project(sources, src_lang="en", tgt_lang="qsy")
    for p in out:  # nothing lost: every source span is mapped or unprojected
        assert len(p.mapping) + len({id(u.span) for u in p.unprojected}) == len(p.source.spans)
    return out


def labelled(p):
    return [(s.label, p.target.span_text(s)) for s in p.target.spans]


# ---------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "text, clean, spans",
    [
        ("Jon [ Smit ] vidas [ Paris ] .", "Jon Smit vidas Paris .", ["Smit", "Paris"]),
        ("Jon [Smit] vidas [Paris].", "Jon Smit vidas Paris.", ["Smit", "Paris"]),  # no spaces
        ("[[ Jon Smit ]] vidas", "Jon Smit vidas", ["Jon Smit"]),  # doubled
        ("[ [ Jon ] ] vidas", "Jon vidas", ["Jon"]),  # doubled with spaces
        ("［ Jon ］ vidas 【Paris】", "Jon vidas Paris", ["Jon", "Paris"]),  # fullwidth / lenticular
        ("  [  Jon   Smit ]  vidas ", "Jon   Smit vidas", ["Jon   Smit"]),  # odd spacing kept inside
        ("no markers here", "no markers here", []),
    ],
)
def test_parse_marker_variants(text, clean, spans):
    out, found = parse_marked(text)
    assert out == clean
    assert [s.text for s in found] == spans
    assert [out[s.start : s.end] for s in found] == spans


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Jon ] vidas", "markers_unbalanced"),
        ("[ Jon vidas", "markers_unbalanced"),
        ("[ Jon [ Smit ] vidas", "markers_unbalanced"),
        ("Jon [ ] vidas", "empty_marked_span"),
    ],
)
def test_parse_unresolvable_markers(text, reason):
    with pytest.raises(MarkerParseError) as err:
        parse_marked(text)
    assert err.value.reason == reason


# ---------------------------------------------------------------------------- assignment
def test_order_when_unambiguous_single_span():
    src = ex("1", "John visits Paris", [(2, 3, "LOC")])
    out = run({"John visits [ Paris ]": "Jon [ Pariz ] vizitas"}, [src])[0]
    assert out.rejected is None
    assert labelled(out) == [("LOC", "Pariz")]
    assert out.target.text == "Jon Pariz vizitas"
    assert out.qc["assignment"] == "order"


def test_similarity_handles_reordering():
    src = ex("1", "John Smith visits Paris", [(0, 2, "PER"), (3, 4, "LOC")])
    out = run({"[ John Smith ] visits [ Paris ]": "en [ Paris ] [ Jon Smit ] vizitas"}, [src])[0]
    assert out.rejected is None
    assert sorted(labelled(out)) == [("LOC", "Paris"), ("PER", "Jon Smit")]
    assert out.mapping == {0: 1, 1: 0}  # source PER -> second target span


def test_separate_span_translation_and_elimination():
    src = ex("1", "the farmer sees Mary", [(1, 2, "PER"), (3, 4, "LOC")])
    table = {
        "the [ farmer ] sees [ Mary ]": "[ Qwxz ] vidas [ kampa ulo ]",
        "farmer": "kampa ulo",  # the separate translation matches the marked text exactly
    }
    out = run(table, [src])[0]
    assert out.rejected is None
    assert sorted(labelled(out)) == [("LOC", "Qwxz"), ("PER", "kampa ulo")]
    assert "exact" in out.qc["assignment"] and "elimination" in out.qc["assignment"]


def test_same_labels_use_order():
    src = ex("1", "Anna and Clara", [(0, 1, "PER"), (2, 3, "PER")])
    out = run({"[ Anna ] and [ Clara ]": "[ X ] kaj [ Y ]"}, [src])[0]
    assert labelled(out) == [("PER", "X"), ("PER", "Y")]


def test_ambiguous_labels_are_rejected_with_reason():
    src = ex("1", "Anna visits Paris", [(0, 1, "PER"), (2, 3, "LOC")])
    out = run({"[ Anna ] visits [ Paris ]": "[ qqq ] vidas [ zzz ]", "Anna": "w", "Paris": "v"}, [src])[0]
    assert out.rejected == "labels_ambiguous"
    assert {u.reason for u in out.unprojected} == {"labels_ambiguous"}


def test_count_mismatch_rejects_or_keeps_partial():
    src = ex("1", "John visits Paris", [(0, 1, "PER"), (2, 3, "LOC")])
    table = {"[ John ] visits [ Paris ]": "[ Jon ] vizitas Paris"}
    out = run(table, [src])[0]
    assert out.rejected == "marker_count_mismatch" and not out.target.spans
    assert len(out.unprojected) == 2
    partial = run(table, [src], policy="keep-partial")[0]
    assert partial.rejected is None
    assert labelled(partial) == [("PER", "Jon")]
    assert [u.reason for u in partial.unprojected] == ["marker_count_mismatch"]


def test_unbalanced_output_is_a_reject_with_clean_text():
    src = ex("1", "John visits Paris", [(0, 1, "PER")])
    out = run({"[ John ] visits Paris": "[ Jon vizitas Paris"}, [src])[0]
    assert out.rejected == "markers_unbalanced"
    assert out.target.text == "Jon vizitas Paris"
    assert out.unprojected[0].reason == "markers_unbalanced"


# ---------------------------------------------------------------------------- bad input
def test_marker_already_in_source_is_rejected():
    src = ex("1", "John [ sic ] visits Paris", [(0, 1, "PER")])
    tr = FakeTranslator({})
    out = MarkerProjector(tr).project([src], src_lang="en", tgt_lang="qsy")[0]
    assert out.rejected == "marker_in_source"
    assert tr.calls == []  # nothing sent to the model


def test_overlapping_source_spans_are_rejected():
    src = Example.from_words("1", "New York City".split(), token_spans=[(0, 2, "LOC"), (1, 3, "LOC")], allow_overlap=True)
    out = run({}, [src])[0]
    assert out.rejected == "overlapping_spans"
    assert len(out.unprojected) == 2


def test_empty_source_and_empty_translation():
    empty = Example(id="e", text="", tokens=[])
    src = ex("1", "John visits Paris", [(0, 1, "PER")])
    out = run({"[ John ] visits Paris": ""}, [empty, src])
    assert out[0].rejected == "empty_source"
    assert out[1].rejected == "empty_target"


def test_sentence_without_spans_is_translated_plainly():
    src = ex("1", "the dog sees a car", [])
    out = run({"the dog sees a car": "hundo vidas un auto"}, [src])[0]
    assert out.rejected is None and out.target.text == "hundo vidas un auto" and not out.target.spans


def test_bad_config_and_registry():
    with pytest.raises(ConfigError):
        MarkerProjector(None)
    with pytest.raises(ConfigError):
        MarkerProjector(FakeTranslator({}), markers=("|", "|"))
    assert projectors.get("markers") is MarkerProjector
