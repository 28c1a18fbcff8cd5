"""Maltese readers: no lost rows, clear errors on bad input, one spelling of ċ ġ ħ ż."""

from __future__ import annotations

import csv
import json
import unicodedata

import pytest

from dsbuild.errors import InputError
from dsbuild.maltese import resources
from dsbuild.maltese.readers import (
    FINE_TO_MERGED, MERGED_LABELS, MalteseExample, check_example, read_conllu, read_etymology_tsv, read_text_csv,
    read_token_jsonl,
)
from dsbuild.maltese.tokenizer import tokenize

HEADER = "id\ttoken\tcategory\tcategory_merged\n"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_annotations_keep_every_row_that_default_csv_quoting_loses(maltese_sentences):
    path = resources.annotations_path()
    n_lines = sum(1 for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip())
    assert sum(len(s.tokens) for s in maltese_sentences) == n_lines == 8851
    assert len(maltese_sentences) == 395
    # the trap the README warns about: default quoting merges rows at '"' tokens
    with path.open(encoding="utf-8", newline="") as fh:
        naive = list(csv.reader(fh, delimiter="\t"))[1:]
    assert len(naive) < n_lines
    assert sum(t == '"' for s in maltese_sentences for t in s.tokens) >= 10


def test_quote_tokens_small_file(tmp_path):
    rows = ['0\t"\tSymbol\tSymbol', "0\tqal\tArabic\tArabic", '0\t"\tSymbol\tSymbol', "0\tta'\tArabic\tArabic",
            '1\t"iva\tSymbol\tSymbol', "1\t.\tSymbol\tSymbol"]
    p = _write(tmp_path / "q.tsv", HEADER + "\n".join(rows) + "\n")
    sents = read_etymology_tsv(p)
    assert [s.tokens for s in sents] == [['"', "qal", '"', "ta'"], ['"iva', "."]]
    assert sents[0].fine_labels == ["Symbol", "Arabic", "Symbol", "Arabic"]


def test_fine_only_column_is_merged(tmp_path):
    p = _write(tmp_path / "f.tsv", "id\ttoken\tcategory\n0\tMiriam\tName (Arabic)\n0\tiddikjarat\tMixed\n")
    (s,) = read_etymology_tsv(p)
    assert s.labels == ["Name", "Non-Arabic"]


@pytest.mark.parametrize("text, message, line", [
    ("id\ttoken\n0\tqal\n", "no label column", 1),
    ("token\tcategory_merged\nqal\tArabic\n", "no 'id' column", 1),
    (HEADER + "0\tqal\tArabic\n", "row has 3 columns, header has 4", 2),
    (HEADER + "0\tqal\tArabic\tArabic\n0\t \tArabic\tArabic\n", "empty token", 3),
    (HEADER + "0\tqal\tArabik\tArabic\n", "unknown label 'Arabik'", 2),
    (HEADER + "0\tqal\tArabic\tLatin\n", "unknown label 'Latin'", 2),
    (HEADER + "0\tqal\tMixed\tArabic\n", "labels disagree", 2),
    (HEADER + "0\tqal\tArabic\tArabic\n1\tu\tArabic\tArabic\n0\tiva\tArabic\tArabic\n", "appears again", 4),
    (HEADER, "no token rows", None),
])
def test_bad_tsv_errors_name_file_and_line(tmp_path, text, message, line):
    p = _write(tmp_path / "bad.tsv", text)
    with pytest.raises(InputError) as err:
        read_etymology_tsv(p)
    assert message in str(err.value)
    assert str(p) in str(err.value)
    assert err.value.line == line
    assert "Fix:" in str(err.value)


def test_unlabelled_file_allowed_when_labels_not_required(tmp_path):
    p = _write(tmp_path / "u.tsv", "id\ttoken\n0\tqal\n0\t.\n")
    (s,) = read_etymology_tsv(p, require_labels=False)
    assert s.tokens == ["qal", "."] and s.labels == ["", ""]


def test_mixed_normalisation_reads_as_one_spelling(tmp_path):
    precomposed = "ċaqlaq ġurnata ħobż żiemel"
    combining = unicodedata.normalize("NFD", precomposed)
    assert combining != precomposed
    p = _write(tmp_path / "n.tsv", HEADER + "".join(f"0\t{w}\tArabic\tArabic\n" for w in combining.split()))
    (s,) = read_etymology_tsv(p)
    assert s.tokens == precomposed.split()
    assert tokenize(combining) == tokenize(precomposed) == precomposed.split()


def test_labels_merge_table_is_complete():
    assert set(FINE_TO_MERGED.values()) == set(MERGED_LABELS)


# -- CSV ------------------------------------------------------------------------------------------

CSV_LINES = [
    "text,label",
    'Il-film kien tajjeb ħafna,positive',
    '"Qal ""iva"" u telaq, imma",neutral',
    'Rajt 12" TV ġdid,positive',
    '"Dan mhux sew,negative',
    'Xi ħsara!,negative',
    '"L-aħħar ""kelma""",positive',
]


def test_csv_reader_keeps_every_row(tmp_path):
    p = _write(tmp_path / "s.csv", "\n".join(CSV_LINES) + "\n")
    exs = list(read_text_csv(p))
    assert len(exs) == len(CSV_LINES) - 1  # one example per data line, whatever the quotes
    assert [e.label for e in exs] == ["positive", "neutral", "positive", "negative", "negative", "positive"]
    assert exs[1].text == 'Qal "iva" u telaq, imma'
    assert exs[2].text == 'Rajt 12" TV ġdid'
    assert exs[3].text == '"Dan mhux sew'  # an opening quote that never closes is data
    assert exs[5].text == 'L-aħħar "kelma"'
    assert all(e.problem is None for e in exs)
    with p.open(encoding="utf-8", newline="") as fh:  # default quoting swallows rows here
        assert len(list(csv.reader(fh))) - 1 < len(exs)


def test_csv_bad_rows_become_problems_not_crashes(tmp_path):
    p = _write(tmp_path / "b.csv", "text,label\nWieħed,positive\nTnejn\nTlieta,\n")
    exs = list(read_text_csv(p))
    assert [e.problem[0] if e.problem else None for e in exs] == [None, "malformed-row", "missing-labels"]
    with pytest.raises(InputError, match="no 'label' column"):
        list(read_text_csv(_write(tmp_path / "h.csv", "text,sentiment\nx,y\n")))


# -- token JSONL and CoNLL-U ----------------------------------------------------------------------

def test_token_jsonl_problems(tmp_path):
    lines = [
        {"id": "a", "tokens": ["Il-", "Prim", "Ministru"], "ner_tags": ["O", "B-PER", "I-PER"]},
        {"id": "b", "tokens": ["Wieħed", "tnejn"], "ner_tags": ["O"]},
        {"id": "c", "tokens": ["Ħadd"]},
        {"id": "d", "tokens": ["", "x"], "ner_tags": ["O", "O"]},
        {"id": "e", "tokens": [], "ner_tags": []},
        {"id": "f", "tokens": ["x"], "ner_tags": ["B-FOO"]},
    ]
    p = _write(tmp_path / "m.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{not json\n")
    exs = [check_example(e, ["ner_tags"], ["O", "B-PER", "I-PER"]) for e in read_token_jsonl(p)]
    assert [e.problem[0] if e.problem else None for e in exs] == [
        None, "label-length-mismatch", "missing-labels", "empty-token", "empty-sentence", "unknown-label",
        "malformed-json"]


def test_conllu_reader(tmp_path):
    text = ("# sent_id = s1\n# text = Il-kelb qabeż.\n"
            "1\tIl-\til-\tDET\tDEFART\t_\t2\tdet\t_\t_\n2\tkelb\tkelb\tNOUN\tNN\t_\t3\tnsubj\t_\t_\n"
            "3-4\tqabeż.\t_\t_\t_\t_\t_\t_\t_\t_\n"
            "3\tqabeż\tqabeż\tVERB\tVV\t_\t0\troot\t_\t_\n4\t.\t.\tPUNCT\tX.PUN\t_\t3\tpunct\t_\t_\n\n"
            "# sent_id = s2\n1\tbad line\n\n")
    exs = list(read_conllu(_write(tmp_path / "t.conllu", text)))
    assert exs[0].id == "s1" and exs[0].tokens == ["Il-", "kelb", "qabeż", "."]
    assert exs[0].token_labels["upos"] == ["DET", "NOUN", "VERB", "PUNCT"]
    assert exs[0].token_labels["head"] == ["2", "3", "0", "3"]
    assert exs[1].problem and exs[1].problem[0] == "malformed-line"


def test_check_example_passes_good_examples():
    ex = check_example(MalteseExample("x", ["a", "b"], {"upos": ["X", "Y"]}), ["upos"])
    assert ex.problem is None


def test_tokenizer_follows_treebank_conventions():
    assert tokenize("Il-kontra-proposta ta' l-Gvern, fil-31/12 tal-mużew (2.5%).") == [
        "Il-", "kontra-proposta", "ta'", "l-", "Gvern", ",", "fil-", "31/12", "tal-", "mużew", "(", "2.5", "%", ")", "."]
    assert tokenize("") == []
