"""Span model: exact round trips between spans and IOB1/IOB2/BIOES tags, and every bad-input case."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsbuild.errors import InputError
from dsbuild.spans import (SCHEMES, Example, Span, TagError, Token, convert_tags, spans_to_tags, tag_names,
                           tags_to_spans)

LABELS = ["PER", "LOC", "ORG"]


@st.composite
def span_layouts(draw: st.DrawFn) -> tuple[int, list[tuple[int, int, str]]]:
    """A sentence length and non-overlapping (start, end, label) spans, adjacent spans included."""
    n = draw(st.integers(min_value=0, max_value=14))
    spans, i = [], 0
    while i < n:
        if draw(st.booleans()):
            length = draw(st.integers(min_value=1, max_value=min(4, n - i)))
            spans.append((i, i + length, draw(st.sampled_from(LABELS))))
            i += length
        else:
            i += 1
    return n, spans


@settings(max_examples=120, deadline=None)
@given(span_layouts(), st.sampled_from(SCHEMES))
def test_spans_to_tags_to_spans_is_exact(layout, scheme):
    n, spans = layout
    tags = spans_to_tags(spans, n, scheme)
    assert len(tags) == n
    assert tags_to_spans(tags, scheme) == spans


@settings(max_examples=120, deadline=None)
@given(span_layouts(), st.sampled_from(SCHEMES))
def test_canonical_tags_to_spans_to_tags_is_exact(layout, scheme):
    n, spans = layout
    tags = spans_to_tags(spans, n, scheme)  # canonical by construction
    assert spans_to_tags(tags_to_spans(tags, scheme), n, scheme) == tags


@settings(max_examples=80, deadline=None)
@given(span_layouts(), st.sampled_from(SCHEMES), st.sampled_from(SCHEMES))
def test_convert_tags_between_schemes(layout, source, target):
    n, spans = layout
    converted = convert_tags(spans_to_tags(spans, n, source), source, target)
    assert converted == spans_to_tags(spans, n, target)
    assert convert_tags(converted, target, source) == spans_to_tags(spans, n, source)


@settings(max_examples=60, deadline=None)
@given(span_layouts(), st.lists(st.text(alphabet="abcdé-'", min_size=1, max_size=6), min_size=14, max_size=14))
def test_example_round_trip_through_dict_and_tags(layout, words):
    n, spans = layout
    ex = Example.from_words("x", words[:n], token_spans=spans)
    assert [(s.token_start, s.token_end, s.label) for s in ex.spans] == spans
    for s in ex.spans:  # character offsets agree with token indices
        assert ex.span_text(s) == " ".join(words[s.token_start:s.token_end])
    assert Example.from_dict(ex.to_dict()) == ex
    for scheme in SCHEMES:
        again = Example.from_words("x", words[:n], tags=ex.tags(scheme), scheme=scheme)
        assert again.spans == ex.spans


def test_known_sequences():
    assert spans_to_tags([(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")], 5, "IOB1") == ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    assert spans_to_tags([(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")], 5, "IOB2") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert spans_to_tags([(0, 3, "PER"), (4, 5, "LOC")], 5, "BIOES") == ["B-PER", "I-PER", "E-PER", "O", "S-LOC"]
    assert tags_to_spans(["I-PER", "I-LOC"], "IOB1") == [(0, 1, "PER"), (1, 2, "LOC")]
    assert tag_names(["PER", "LOC"], "BIOES") == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("tags, scheme, index", [
    (["O", "I-PER"], "IOB2", 1),                  # I- without B-
    (["B-PER", "I-LOC"], "IOB2", 1),              # I- continuing another type
    (["B-PER", "O"], "BIOES", 1),                 # B- not closed by E-
    (["B-PER"], "BIOES", 0),                      # open at the end of the sentence
    (["E-PER"], "BIOES", 0),                      # E- without B-
    (["I-PER", "E-PER", "S-PER", "I-PER"], "BIOES", 0),
    (["X-PER"], "IOB2", 0),                       # invalid prefix
    (["S-PER"], "IOB2", 0),                       # BIOES prefix in IOB2
    (["B-"], "IOB1", 0),                          # no type
    (["PER"], "IOB2", 0),                         # no prefix
    (["O", "o"], "IOB2", 1),                      # lowercase outside tag
    (["B-PER "], "IOB2", 0),                      # whitespace inside a tag
])
def test_invalid_tag_sequences_name_the_token(tags, scheme, index):
    with pytest.raises(TagError) as err:
        tags_to_spans(tags, scheme, example_id="s1")
    assert err.value.token_index == index
    assert "s1" in str(err.value) and "Fix:" in str(err.value)


def test_unknown_scheme():
    for call in (lambda: tags_to_spans(["O"], "BILOU"), lambda: spans_to_tags([], 1, "BIO"), lambda: tag_names(["A"], "IO")):
        with pytest.raises(InputError, match="unknown tag scheme"):
            call()


def test_spans_out_of_range_and_overlapping_in_tags():
    with pytest.raises(InputError, match="out of range"):
        spans_to_tags([(2, 4, "PER")], 3)
    with pytest.raises(InputError, match="out of range"):
        spans_to_tags([(1, 1, "PER")], 3)  # empty span
    with pytest.raises(InputError, match="overlap"):
        spans_to_tags([(0, 2, "PER"), (1, 3, "LOC")], 3)
    with pytest.raises(InputError, match="labels must be non-empty"):
        spans_to_tags([(0, 1, "")], 3)


def test_example_span_errors():
    ex = Example.from_words("e1", ["Ana", "lives", "in", "New", "York"])
    with pytest.raises(InputError, match=r"e1.*covers tokens \[4, 6\)"):
        ex.span_from_tokens(4, 6, "LOC")
    with pytest.raises(InputError, match="out of range"):
        ex.span_from_chars(20, 40, "LOC")
    with pytest.raises(InputError, match="not on token boundaries"):
        ex.span_from_chars(1, 3, "PER")  # inside "Ana"
    assert ex.span_from_chars(13, 21, "LOC") == Span("LOC", 13, 21, 3, 5)
    with pytest.raises(InputError, match="overlap"):
        Example.from_words("e2", ["a", "b", "c"], token_spans=[(0, 2, "A"), (1, 3, "B")])
    overlapping = Example.from_words("e3", ["a", "b", "c"], token_spans=[(0, 2, "A"), (1, 3, "B")], allow_overlap=True)
    assert len(overlapping.spans) == 2
    with pytest.raises(InputError, match="overlap"):
        overlapping.tags()


def test_example_token_errors():
    with pytest.raises(InputError, match="token 1 is empty"):
        Example.from_words("e", ["a", "", "c"])
    with pytest.raises(InputError, match="token 1 is empty"):
        Example.from_words("e", ["a", "  "])
    with pytest.raises(InputError, match="3 tokens but 2 tags"):
        Example.from_words("e", ["a", "b", "c"], tags=["O", "O"])
    with pytest.raises(InputError, match="does not match the text"):
        Example.from_text("e", "Hello world", [Token("Hello", 0, 5), Token("word", 6, 10)])
    with pytest.raises(InputError, match="out of order or outside"):
        Example.from_text("e", "Hello world", [Token("world", 6, 11), Token("Hello", 0, 5)])
    with pytest.raises(InputError, match="has characters"):
        Example("e", "a b", [Token("a", 0, 1), Token("b", 2, 3)], [Span("X", 0, 1, 0, 2)]).validate()
    with pytest.raises(InputError, match="no label"):
        Example("e", "a b", [Token("a", 0, 1), Token("b", 2, 3)], [Span("", 0, 1, 0, 1)]).validate()


def test_from_text_with_char_spans_and_unicode():
    text = "Zürich  und Genève"  # two spaces: offsets are the truth, not word joins
    tokens = [Token("Zürich", 0, 6), Token("und", 8, 11), Token("Genève", 12, 18)]
    ex = Example.from_text("u", text, tokens, [(0, 6, "LOC"), (12, 18, "LOC")])
    assert ex.tags() == ["B-LOC", "O", "B-LOC"]
    assert [ex.span_text(s) for s in ex.spans] == ["Zürich", "Genève"]
