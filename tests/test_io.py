"""CoNLL and token-JSONL readers: formats they accept, and errors that name file, line and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsbuild.errors import InputError
from dsbuild.io import read_conll, read_jsonl, write_conll, write_jsonl
from dsbuild.spans import Example


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_conll_any_tag_column_docstart_and_blank_lines(tmp_path):
    path = write(tmp_path, "c.conll", "-DOCSTART- -X- O O\n\nAna NNP B-NP B-PER\nruns VBZ B-VP O\n\n\n"
                                      "-DOCSTART- -X- O O\nin IN B-PP O\nParis NNP B-NP B-LOC\n")
    exs = read_conll(path)
    assert [e.words for e in exs] == [["Ana", "runs"], ["in", "Paris"]]
    assert [e.tags() for e in exs] == [["B-PER", "O"], ["O", "B-LOC"]]
    assert [(e.meta["line"], e.meta["doc"]) for e in exs] == [(3, 1), (8, 2)]
    assert [e.id for e in exs] == ["c-0", "c-1"]
    chunks = read_conll(path, tag_column=2, scheme="IOB2")
    assert chunks[0].tags() == ["B-NP", "B-VP"]


def test_conll_word_in_a_column_of_tags_is_a_token_split_by_a_space(tmp_path):
    # same column count as the rest of the file, so only the content of the POS column tells
    bad = write(tmp_path, "b.conll", "Ana NNP B-PER\nlives VBZ O\nin IN O\nNew York B-LOC\n. . O\n")
    with pytest.raises(InputError, match=r"b.conll:4: column 2 holds 'York'.*'New York' one token"):
        read_conll(bad)
    # a column of lemmas holds words everywhere: not a tag column, nothing to report
    lemmas = write(tmp_path, "l.conll", "Ana Ana B-PER\nlives live O\nin in O\nRome Rome B-LOC\n. . O\n3 3 O\n")
    assert read_conll(lemmas)[0].words == ["Ana", "lives", "in", "Rome", ".", "3"]
    # the tag column itself is read, whatever its case; tabs make a space part of the token
    tabbed = write(tmp_path, "t.tsv", "Ana\tNNP\tB-PER\nNew York\tNNP\tB-LOC\nis\tVBZ\tO\nbig\tJJ\tO\n")
    assert read_conll(tabbed, separator="\t")[0].words == ["Ana", "New York", "is", "big"]


def test_conll_tab_separator_keeps_spaces_in_tokens(tmp_path):
    path = write(tmp_path, "t.tsv", "-DOCSTART-\tO\n\nNew York\tB-LOC\nis\tO\nbig\tO\n")
    (ex,) = read_conll(path, separator="\t")
    assert ex.words == ["New York", "is", "big"]
    assert ex.text == "New York is big"
    assert ex.span_text(ex.spans[0]) == "New York"


def test_conll_bom_and_crlf(tmp_path):
    path = write(tmp_path, "b.conll", "\ufeffAna\tB-PER\r\nruns\tO\r\n")
    (ex,) = read_conll(path)
    assert ex.words == ["Ana", "runs"] and ex.tags() == ["B-PER", "O"]


def test_conll_iob1_and_bioes(tmp_path):
    path = write(tmp_path, "i.conll", "Ana I-PER\nBob B-PER\nx O\n")
    assert [(s.token_start, s.token_end) for s in read_conll(path, scheme="IOB1")[0].spans] == [(0, 1), (1, 2)]
    path = write(tmp_path, "s.conll", "New B-LOC\nYork E-LOC\nAna S-PER\n")
    assert read_conll(path, scheme="BIOES")[0].tags("IOB2") == ["B-LOC", "I-LOC", "B-PER"]


@pytest.mark.parametrize("content, line, message", [
    ("Ana B-PER\nruns O\n\nthe O\nsun I-LOC\n", 5, "continues a span that was not opened"),   # I- without B-
    ("Ana B-PER\nruns\n", 2, "single column"),                                                 # malformed line
    ("Ana B-PER\nruns Q-X\n", 2, "not valid IOB2"),                                             # invalid tag
])
def test_conll_errors_name_file_and_line(tmp_path, content, line, message):
    path = write(tmp_path, "bad.conll", content)
    with pytest.raises(InputError) as err:
        read_conll(path)
    assert err.value.source == str(path) and err.value.line == line
    assert message in str(err.value) and f"bad.conll:{line}" in str(err.value) and "Fix:" in str(err.value)


def test_conll_other_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_conll(tmp_path / "missing.conll")
    with pytest.raises(InputError, match="unknown tag scheme"):
        read_conll(write(tmp_path, "x.conll", "a O\n"), scheme="BILOU")
    with pytest.raises(InputError, match=r"x.conll:1.*column"):
        read_conll(write(tmp_path, "x.conll", "a O\n"), tag_column=5)
    with pytest.raises(InputError, match=r"t.tsv:2.*empty token"):
        read_conll(write(tmp_path, "t.tsv", "a\tO\n \tO\n"), separator="\t")
    with pytest.raises(InputError, match=r"l1.conll:2.*UTF-8"):
        read_conll(write(tmp_path, "l1.conll", "a O\n" .encode() + "Müller B-PER\n".encode("latin-1")))


def test_conll_write_read_round_trip(tmp_path):
    exs = [Example.from_words("a", ["New York", "is", "big"], tags=["B-LOC", "O", "O"]),
           Example.from_words("b", ["Ana", "Bob"], tags=["B-PER", "B-PER"])]
    for scheme in ("IOB1", "IOB2", "BIOES"):
        write_conll(exs, tmp_path / "out.conll", scheme=scheme)
        back = read_conll(tmp_path / "out.conll", scheme=scheme, separator="\t")
        assert [(b.words, b.spans) for b in back] == [(e.words, e.spans) for e in exs]


def test_jsonl_shapes_and_round_trip(tmp_path):
    lines = [
        {"id": "s1", "tokens": ["Ana", "runs"], "tags": ["B-PER", "O"]},
        {"tokens": ["in", "Paris"], "ner_tags": [0, 1]},
        {"id": "s3", "tokens": ["Bob", "Smith"], "spans": [{"token_start": 0, "token_end": 2, "label": "PER"}]},
    ]
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    exs = read_jsonl(path, label_names=["O", "B-LOC", "I-LOC", "B-PER", "I-PER"])
    assert [e.id for e in exs] == ["s1", "d-1", "s3"]
    assert [e.tags() for e in exs] == [["B-PER", "O"], ["O", "B-LOC"], ["B-PER", "I-PER"]]
    write_jsonl(exs, tmp_path / "full.jsonl")
    back = read_jsonl(tmp_path / "full.jsonl")
    assert [(b.id, b.text, b.tokens, b.spans) for b in back] == [(e.id, e.text, e.tokens, e.spans) for e in exs]


@pytest.mark.parametrize("obj, message", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "not a JSON object"),
    ({"id": "x", "tags": ["O"]}, "missing or invalid 'tokens'"),
    ({"id": "x", "tokens": ["a", 3], "tags": ["O", "O"]}, "missing or invalid 'tokens'"),
    ({"id": "x", "tokens": ["a"], "tags": [0]}, "holds integers but no label names"),
    ({"id": "x", "tokens": ["a", "b"], "tags": ["O", 1]}, "mixes types"),
    ({"id": "x", "tokens": ["a"], "tags": "O"}, "must be a list"),
    ({"id": "x", "tokens": ["a", "b"], "tags": ["O"]}, "2 tokens but 1 tags"),
    ({"id": "x", "tokens": ["a"], "tags": ["I-PER"]}, "not opened"),
    ({"id": "x", "tokens": ["a"], "spans": [{"token_start": 0, "label": "PER"}]}, "span 0 must be an object"),
    ({"id": "x", "tokens": ["a"], "spans": [{"token_start": 0, "token_end": 3, "label": "PER"}]}, "covers tokens [0, 3)"),
    ({"id": "x", "text": "ab", "tokens": ["a", "b"], "token_offsets": [[0, 1]]}, "one [start, end] pair"),
    ({"id": "x", "text": "a b", "tokens": ["a", "b"], "token_offsets": [[0, 1], [2, 3]],
      "spans": [{"start": 0, "end": 2, "label": "P"}]}, "not on token boundaries"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, obj, message):
    bad = obj if isinstance(obj, str) else json.dumps(obj)
    path = write(tmp_path, "bad.jsonl", json.dumps({"id": "ok", "tokens": ["fine"], "tags": ["O"]}) + "\n" + bad + "\n")
    with pytest.raises(InputError) as err:
        read_jsonl(path)
    assert err.value.line == 2 and f"bad.jsonl:2" in str(err.value)
    assert message in str(err.value)


def test_jsonl_tag_id_out_of_range(tmp_path):
    path = write(tmp_path, "ids.jsonl", json.dumps({"tokens": ["a", "b"], "tags": [0, -1]}) + "\n")
    with pytest.raises(InputError, match="tag id -1 is out of range"):
        read_jsonl(path, label_names=["O", "B-X", "I-X"])


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.tuples(st.text(alphabet="abcXYZé.-'", min_size=1, max_size=5),
                                   st.sampled_from(["O", "B-PER", "I-PER", "B-LOC"])), min_size=1, max_size=8),
                min_size=1, max_size=5),
       st.sampled_from(["IOB1", "IOB2", "BIOES"]))
def test_write_then_read_conll_keeps_every_example(tmp_path_factory, sentences, scheme):
    exs = []
    for i, sent in enumerate(sentences):
        tags = [t for _, t in sent]
        tags = [("B" + t[1:]) if t.startswith("I-") and (j == 0 or tags[j - 1][2:] != t[2:]) else t  # valid IOB2
                for j, t in enumerate(tags)]
        exs.append(Example.from_words(f"x-{i}", [w for w, _ in sent], tags=tags))
    path = tmp_path_factory.mktemp("rt") / "x.conll"
    write_conll(exs, path, scheme=scheme)
    back = read_conll(path, scheme=scheme, id_prefix="x")
    assert [(b.id, b.words, b.spans) for b in back] == [(e.id, e.words, e.spans) for e in exs]
