"""Tokenisers keep character offsets into the original text."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsbuild.errors import InputError
from dsbuild.registry import tokenizers
from dsbuild.tokenize import get_tokenizer, tokenize_example
from dsbuild.tokenize.base import locate_tokens

TEXT = "¿Qué tal, Sr.  Pérez? It's \"U.S.A.\" (a-b) 3,5 %."


@pytest.mark.parametrize("name", ["whitespace", "spacy", "moses"])
def test_offsets_point_at_token_text(name):
    tok = tokenizers.get(name)(lang="es")
    tokens = tok.tokenize(TEXT)
    assert tokens, name
    for t in tokens:
        assert TEXT[t.start : t.end] == t.text
        assert t.text.strip() == t.text and t.text
    assert [t.start for t in tokens] == sorted(t.start for t in tokens)


def test_registered_names_and_language_fallback():
    assert {"whitespace", "spacy", "moses"} <= set(tokenizers.names())
    tok = get_tokenizer("spacy", "zz")  # no spaCy rules for 'zz': the multi-language pipeline
    assert tok.pipeline == "xx"
    assert [t.text for t in tok.tokenize("Hola, mundo.")] == ["Hola", ",", "mundo", "."]
    assert [t.text for t in get_tokenizer("moses", "es").tokenize("Hola, mundo.")] == ["Hola", ",", "mundo", "."]


def test_tokenize_example_builds_valid_example():
    ex = tokenize_example("x1", TEXT, get_tokenizer("moses", "en"))
    ex.validate()
    assert ex.id == "x1" and ex.text == TEXT


def test_locate_tokens_refuses_rewritten_text():
    with pytest.raises(InputError, match="not the next text"):
        locate_tokens("a &amp; b", ["a", "&", "b"], tokenizer="test")


_TOKENIZERS = {}


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab É.,'-()\u00a0\t\n1")), max_size=40))
def test_offsets_property(text):
    for name in ("whitespace", "spacy", "moses"):
        tok = _TOKENIZERS.get(name) or _TOKENIZERS.setdefault(name, get_tokenizer(name, "en"))
        try:
            tokens = tok.tokenize(text)
        except InputError:
            assert name == "moses"  # moses may rewrite odd input; that must be a clear error
            continue
        for t in tokens:
            assert text[t.start : t.end] == t.text and t.text.strip()


def test_moses_keeps_zero_width_non_joiner_inside_its_word():
    from dsbuild.tokenize.moses import MosesTokenizer

    text = "من می\u200cخواهم بروم ."
    tok = MosesTokenizer("fa")
    assert [t.text for t in tok.tokenize(text)] == ["من", "می\u200cخواهم", "بروم", "."]
    assert tok.tokenize_words(text) == ["من", "می\u200cخواهم", "بروم", "."]
    assert all(text[t.start:t.end] == t.text for t in tok.tokenize(text))
