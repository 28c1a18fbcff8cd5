"""``tokenizer="stanza"``: the adapter on Stanza Documents built here (no model can be downloaded)."""

from __future__ import annotations

import pytest

pytest.importorskip("stanza")

from stanza.models.common.doc import Document  # noqa: E402

from dsbuild.errors import ConfigError  # noqa: E402
from dsbuild.registry import tokenizers  # noqa: E402
from dsbuild.tokenize.base import get_tokenizer  # noqa: E402
from dsbuild.tokenize.stanza_tokenizer import StanzaTokenizer, sentences_from_document  # noqa: E402

MT_TEXT = "Il-kelb ta' Marija  rqad.  Mar id-dar!"


def _tok(i, text, start=None, end=None):
    entry = {"id": i, "text": text}
    if start is not None:
        entry.update(start_char=start, end_char=end)
    return entry


def mt_document() -> Document:
    """What Stanza's Maltese tokenizer gives for MT_TEXT (two sentences, offsets into the text)."""
    return Document([[_tok(1, "Il-kelb", 0, 7), _tok(2, "ta'", 8, 11), _tok(3, "Marija", 12, 18),
                      _tok(4, "rqad", 20, 24), _tok(5, ".", 24, 25)],
                     [_tok(1, "Mar", 27, 30), _tok(2, "id-dar", 31, 37), _tok(3, "!", 37, 38)]], text=MT_TEXT)


class FakePipeline:
    """Stands in for ``stanza.Pipeline``: returns a prepared Document and records the texts."""

    def __init__(self, doc: Document) -> None:
        self.doc, self.calls = doc, []

    def __call__(self, text: str) -> Document:
        self.calls.append(text)
        return self.doc


def test_registered_and_offsets_point_into_the_text():
    assert tokenizers.get("stanza") is StanzaTokenizer
    pipe = FakePipeline(mt_document())
    tok = get_tokenizer("stanza", "mt", pipeline=pipe)
    tokens = tok.tokenize(MT_TEXT)
    assert [t.text for t in tokens] == ["Il-kelb", "ta'", "Marija", "rqad", ".", "Mar", "id-dar", "!"]
    assert all(MT_TEXT[t.start:t.end] == t.text for t in tokens)
    assert pipe.calls == [MT_TEXT]
    sentences = tok.sentences(MT_TEXT)
    assert [[t.text for t in s] for s in sentences] == [["Il-kelb", "ta'", "Marija", "rqad", "."], ["Mar", "id-dar", "!"]]
    assert tok.split_sentences(MT_TEXT) == [(0, 25), (27, 38)]
    assert MT_TEXT[27:38] == "Mar id-dar!"
    assert tok.describe()["lang"] == "mt" and tok.tokenize("   ") == []


def test_multi_word_tokens_stay_surface_tokens():
    text = "Vengo del mar."
    doc = Document([[_tok(1, "Vengo", 0, 5), _tok((2, 3), "del", 6, 9), _tok(2, "de"), _tok(3, "el"),
                     _tok(4, "mar", 10, 13), _tok(5, ".", 13, 14)]], text=text)
    [sentence] = sentences_from_document(doc, text)
    assert [(t.text, t.start, t.end) for t in sentence] == [("Vengo", 0, 5), ("del", 6, 9), ("mar", 10, 13), (".", 13, 14)]


def test_tokens_without_offsets_are_located_in_order():
    text = "Kaixo, mundua!"
    doc = Document([[_tok(1, "Kaixo"), _tok(2, ","), _tok(3, "mundua"), _tok(4, "!")]], text=text)
    [sentence] = sentences_from_document(doc, text)
    assert [(t.text, t.start, t.end) for t in sentence] == [("Kaixo", 0, 5), (",", 5, 6), ("mundua", 7, 13), ("!", 13, 14)]


def test_missing_model_is_one_line_naming_stanza_download(tmp_path):
    with pytest.raises(ConfigError) as err:
        StanzaTokenizer("mt", model_dir=str(tmp_path / "empty"))  # the real stanza.Pipeline loading
    message = str(err.value)
    assert "stanza.download('mt')" in message and "\n" not in message
