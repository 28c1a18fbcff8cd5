"""Readers for Maltese data: etymology annotations (TSV), CoNLL-U, token JSONL, CSV text classification.

Every reader NFC-normalises tokens (precomposed and combining ċ ġ ħ ż are one spelling) and
reads CSV/TSV with quoting disabled or explicitly handled: tokens such as ``"`` and ``ta'`` are
data, and default CSV quoting silently merges rows (the MLRS README warns about it).

Structural problems (missing columns, wrong column counts, empty tokens, unknown labels) raise
:class:`~dsbuild.errors.InputError` naming the file, line and fix. Readers for datasets a builder
converts return :class:`MalteseExample` s whose ``problem`` is set instead of raising, so the
builder can record a reject and carry on.

Files are read as UTF-8 through :mod:`dsbuild.io.conll`'s line reader: a file in another encoding
is an InputError naming the file, line and the ``iconv`` command that re-encodes it. What ends up
in rejects (``problem`` details, ``raw``) names the file by its *name* only, never the local folder.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsbuild.errors import InputError
from dsbuild.io.conll import _numbered_lines, read_utf8_text
from dsbuild.maltese.resources import nfc
from dsbuild.maltese.tokenizer import tokenize

log = logging.getLogger(__name__)

#: the labels a classifier predicts
MERGED_LABELS = ("Arabic", "Non-Arabic", "Code-Switching", "Symbol", "Name")
#: the annotators' labels, and what each merges to
FINE_TO_MERGED = {
    "Arabic": "Arabic", "Non-Arabic": "Non-Arabic", "Mixed": "Non-Arabic", "Code-Switching": "Code-Switching",
    "Symbol": "Symbol", "Name (Arabic)": "Name", "Name (Non-Arabic)": "Name",
}
ETYMOLOGY_HEADER = ("id", "token", "category", "category_merged")


@dataclass
class AnnotatedSentence:
    """One sentence of the etymology annotations: tokens with merged (and fine) labels."""

    id: str
    tokens: list[str]
    labels: list[str]
    fine_labels: list[str] | None = None
    line: int = 0  # 1-based line of the first token in the source file


def read_etymology_tsv(path: str | Path, *, require_labels: bool = True) -> list[AnnotatedSentence]:
    """Read a TSV in the MLRS etymology format (header ``id token category category_merged``).

    ``category`` (fine) or ``category_merged`` may be missing, not both (unless
    ``require_labels`` is false: then labels are empty strings). Sentences are the runs of
    rows sharing an ``id``; an id that reappears after another id is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    rows = list(csv.reader(io.StringIO(read_utf8_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise InputError("empty file", source=path, hint=f"a header line {' '.join(ETYMOLOGY_HEADER)} is required")
    header = [h.strip() for h in rows[0]]
    for required in ("id", "token"):
        if required not in header:
            raise InputError(f"header has no {required!r} column (found {header})", source=path, line=1,
                             hint=f"use the tab-separated header: {chr(9).join(ETYMOLOGY_HEADER)}")
    has_fine, has_merged = "category" in header, "category_merged" in header
    if require_labels and not (has_fine or has_merged):
        raise InputError(f"no label column: header {header} has neither 'category' nor 'category_merged'",
                         source=path, line=1, hint="add a category_merged column with one of " + ", ".join(MERGED_LABELS))
    col = {name: i for i, name in enumerate(header)}
    sentences: list[AnnotatedSentence] = []
    closed: set[str] = set()
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line between sentences is harmless
        if len(row) != len(header):
            raise InputError(f"row has {len(row)} columns, header has {len(header)}", source=path, line=lineno,
                             hint="separate columns with exactly one tab; tokens must not contain tabs")
        sid, token = row[col["id"]].strip(), nfc(row[col["token"]])
        if not token.strip():
            raise InputError("empty token", source=path, line=lineno, hint="remove the row or fill in the token")
        if not sid:
            raise InputError("empty sentence id", source=path, line=lineno, hint="give every row its sentence id")
        fine = row[col["category"]].strip() if has_fine else None
        merged = row[col["category_merged"]].strip() if has_merged else None
        if fine is not None and fine not in FINE_TO_MERGED:
            raise InputError(f"unknown label {fine!r} in column 'category'", source=path, line=lineno,
                             hint="use one of " + ", ".join(FINE_TO_MERGED))
        if merged is not None and merged not in MERGED_LABELS:
            raise InputError(f"unknown label {merged!r} in column 'category_merged'", source=path, line=lineno,
                             hint="use one of " + ", ".join(MERGED_LABELS))
        if fine is not None and merged is not None and FINE_TO_MERGED[fine] != merged:
            raise InputError(f"labels disagree: category {fine!r} merges to {FINE_TO_MERGED[fine]!r}, "
                             f"not {merged!r}", source=path, line=lineno, hint="correct one of the two columns")
        label = merged if merged is not None else (FINE_TO_MERGED[fine] if fine is not None else "")
        if not sentences or sentences[-1].id != sid:
            if sid in closed:
                raise InputError(f"sentence id {sid!r} appears again after other sentences", source=path, line=lineno,
                                 hint="keep the rows of one sentence together, or give each sentence its own id")
            if sentences:
                closed.add(sentences[-1].id)
            sentences.append(AnnotatedSentence(sid, [], [], [] if has_fine else None, line=lineno))
        s = sentences[-1]
        s.tokens.append(token)
        s.labels.append(label)
        if s.fine_labels is not None and fine is not None:
            s.fine_labels.append(fine)
    if not sentences:
        raise InputError("no token rows after the header", source=path, hint="the file holds no annotations")
    return sentences


def write_etymology_tsv(sentences: Iterable[AnnotatedSentence], path: str | Path) -> None:
    """Write sentences in the MLRS TSV format (no quoting; tokens must not contain tabs)."""
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(ETYMOLOGY_HEADER) + "\n")
        for s in sentences:
            fine = s.fine_labels or [""] * len(s.tokens)
            for tok, lab, fl in zip(s.tokens, s.labels, fine):
                fh.write(f"{s.id}\t{tok}\t{fl or lab}\t{lab}\n")


# -- datasets the builder converts ----------------------------------------------------------------

@dataclass
class MalteseExample:
    """One input example for the ``maltese`` builder.

    Attributes:
        id: example id.
        tokens: the tokens (NFC).
        token_labels: token-level label columns (``upos``, ``ner_tags`` ...), each as long as
            ``tokens`` when the example is well formed.
        label: a sentence-level label (text classification), or ``None``.
        text: the original text, when the source had one.
        problem: why the example cannot be used (``(reason, detail)``), or ``None``.
        raw: the input as read, for the rejects table.
    """

    id: str
    tokens: list[str]
    token_labels: dict[str, list[str]] = field(default_factory=dict)
    label: str | None = None
    text: str | None = None
    problem: tuple[str, str] | None = None
    raw: dict[str, Any] | None = None


def check_example(ex: MalteseExample, label_columns: Sequence[str], label_names: Sequence[str] | None = None) -> MalteseExample:
    """Set ``ex.problem`` when tokens are empty or label columns are missing/of the wrong length."""
    if ex.problem is not None:
        return ex
    if not ex.tokens:
        ex.problem = ("empty-sentence", "the example has no tokens")
    elif any(not t.strip() for t in ex.tokens):
        i = next(i for i, t in enumerate(ex.tokens) if not t.strip())
        ex.problem = ("empty-token", f"token {i} is empty or whitespace")
    else:
        for name in label_columns:
            labels = ex.token_labels.get(name)
            if labels is None:
                ex.problem = ("missing-labels", f"label column {name!r} is missing")
                break
            if len(labels) != len(ex.tokens):
                ex.problem = ("label-length-mismatch", f"{name!r} has {len(labels)} labels for {len(ex.tokens)} tokens")
                break
            if label_names is not None:
                bad = sorted({str(x) for x in labels} - set(label_names))
                if bad:
                    ex.problem = ("unknown-label", f"{name!r} has labels {bad} not in {list(label_names)}")
                    break
    return ex


CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
CONLLU_LABELS = ("lemma", "upos", "xpos", "feats", "head", "deprel")


def read_conllu(path: str | Path) -> Iterator[MalteseExample]:
    """Read a CoNLL-U file (UD treebank): one example per sentence, labels lemma/upos/xpos/feats/head/deprel.

    Multiword-token lines (``1-2``) and empty nodes (``1.1``) are skipped: the syntactic words are
    the tokens, as in the Maltese UD treebank. A line without 10 tab-separated columns makes the
    sentence a reject (``malformed-line``), not a crash.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    sent_id: str | None = None
    text: str | None = None
    tokens: list[str] = []
    labels: dict[str, list[str]] = {k: [] for k in CONLLU_LABELS}
    problem: tuple[str, str] | None = None
    start = 0
    count = 0

    def flush() -> MalteseExample | None:
        nonlocal sent_id, text, tokens, labels, problem, count
        if not tokens and problem is None:
            return None
        ex = MalteseExample(sent_id or f"{path.stem}-{count}", tokens, labels, text=text, problem=problem,
                            raw={"source": path.name, "line": start, "tokens": tokens, "text": text})
        count += 1
        sent_id, text, tokens, problem = None, None, [], None
        labels = {k: [] for k in CONLLU_LABELS}
        return ex

    for lineno, raw in _numbered_lines(path):
        line = raw.rstrip("\n").rstrip("\r")
        if not line.strip():
            ex = flush()
            if ex:
                yield ex
            continue
        if not tokens and problem is None and sent_id is None and text is None:
            start = lineno
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            if key.strip() == "sent_id":
                sent_id = value.strip()
            elif key.strip() == "text":
                text = nfc(value.strip())
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            problem = problem or ("malformed-line", f"{path.name}:{lineno}: {len(cols)} columns, CoNLL-U needs 10")
            continue
        if "-" in cols[0] or "." in cols[0]:
            continue
        tokens.append(nfc(cols[1]))
        for k in CONLLU_LABELS:
            labels[k].append(cols[CONLLU_COLUMNS.index(k)])
    ex = flush()
    if ex:
        yield ex


def read_token_jsonl(path: str | Path, *, tokens_field: str = "tokens", label_fields: Sequence[str] = ("ner_tags",),
                     id_field: str = "id", label_names: Sequence[str] | None = None) -> Iterator[MalteseExample]:
    """Read token-level JSONL (one object per line, e.g. MAPA NER: ``{"tokens": [...], "ner_tags": [...]}``).

    Integer labels are mapped through ``label_names`` when given. A line that is not JSON, or an
    object without the tokens field, is an example with a ``problem`` (recorded as a reject).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    for lineno, raw in _numbered_lines(path):
        if not raw.strip():
            continue
        default_id = f"{path.stem}-{lineno}"
        where = f"{path.name}:{lineno}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            yield MalteseExample(default_id, [], problem=("malformed-json", f"{where}: {err}"),
                                 raw={"line": lineno, "text": raw[:2000]})
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get(tokens_field), list):
            yield MalteseExample(default_id, [], problem=("missing-tokens", f"{where}: no list field {tokens_field!r}"),
                                 raw={"line": lineno, "object": obj})
            continue
        ex = example_from_record(obj, tokens_field=tokens_field, label_fields=label_fields, id_field=id_field,
                                 default_id=default_id, label_names=label_names)
        if ex.problem is not None:
            ex.problem = (ex.problem[0], f"{where}: {ex.problem[1]}")
        yield ex


def example_from_record(obj: dict[str, Any], *, tokens_field: str = "tokens", label_fields: Sequence[str] = (),
                        id_field: str = "id", default_id: str = "", label_names: Sequence[str] | None = None,
                        label_field: str | None = None) -> MalteseExample:
    """A :class:`MalteseExample` from a dict row (JSONL line or Hub dataset row).

    A token that is not a string (``3``, ``null``) or a token label that is ``null``, a boolean
    or a container makes the example a reject (``invalid-token`` / ``invalid-label``): it is never
    turned into the text ``"3"`` or ``"None"``.
    """
    values = obj.get(tokens_field)
    values = values if isinstance(values, (list, tuple)) else []
    tokens = [nfc(t) for t in values if isinstance(t, str)]  # with a non-string token the example is a reject
    token_labels: dict[str, list[str]] = {}
    for name in label_fields:
        if name not in obj or obj[name] is None:
            continue
        labels = obj[name] if isinstance(obj[name], list) else [obj[name]]
        token_labels[name] = [_label_name(v, label_names) for v in labels]
    label = None
    if label_field is not None and obj.get(label_field) is not None:
        label = _label_name(obj[label_field], label_names)
    ex_id = str(obj.get(id_field, default_id) if obj.get(id_field) is not None else default_id)
    problem = _value_problem(obj.get(tokens_field), obj, label_fields)
    return MalteseExample(ex_id, tokens, token_labels, label=label, raw=_json_safe(obj), problem=problem)


def _value_problem(tokens: Any, obj: dict[str, Any], label_fields: Sequence[str]) -> tuple[str, str] | None:
    """``(reason, detail)`` for a non-string token or a null / non-scalar token label, else ``None``."""
    if tokens is not None and not isinstance(tokens, (list, tuple)):
        return "invalid-token", f"the tokens field is {type(tokens).__name__}, not a list of token strings"
    for i, t in enumerate(tokens or []):
        if not isinstance(t, str):
            return "invalid-token", f"token {i} is {json.dumps(t, default=str)}, not a string"
    for name in label_fields:
        labels = obj.get(name)
        for i, v in enumerate(labels if isinstance(labels, list) else []):
            if v is None or isinstance(v, (bool, list, dict)):
                return "invalid-label", f"{name!r} label {i} is {json.dumps(v, default=str)}, not a label"
    return None


def _label_name(v: Any, names: Sequence[str] | None) -> str:
    if names is not None and isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(names):
        return names[v]
    return str(v)


def _json_safe(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(obj, ensure_ascii=False, default=str))


def read_text_csv(path: str | Path, *, text_column: str = "text", label_column: str | None = "label",
                  delimiter: str = ",") -> Iterator[MalteseExample]:
    """Read a text-classification CSV (header with a text column and a label column).

    Quoting is handled explicitly: a field is quoted only if it *starts* with ``"`` and its
    closing ``""``-escaped quote is followed by the delimiter or the line end. A stray ``"``
    inside an unquoted field (inch marks, ``"`` tokens) or an opening quote that never closes on
    its line is data, never the start of a quoted field that swallows the following rows (what
    ``csv.reader`` with default quoting does). One record per non-blank line: quoted fields do
    not span lines. A row with the wrong number of fields becomes an example with a ``problem``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path")
    records = _split_csv(path, delimiter)
    try:
        header_line, header = next(records)
    except StopIteration:
        raise InputError("empty file", source=path, hint=f"a header with a {text_column!r} column is required") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    if text_column not in header:
        raise InputError(f"no {text_column!r} column in header {header}", source=path, line=header_line,
                         hint="name the text column with --set text_column=NAME")
    if label_column is not None and label_column not in header:
        raise InputError(f"no {label_column!r} column in header {header}", source=path, line=header_line,
                         hint="name the label column with --set label_column=NAME, or leave it empty")
    ti = header.index(text_column)
    li = header.index(label_column) if label_column is not None else None
    for n, (lineno, fields) in enumerate(records):
        ex_id = f"{path.stem}-{n}"
        raw = {"line": lineno, "fields": fields}
        if len(fields) != len(header):
            yield MalteseExample(ex_id, [], problem=("malformed-row", f"{path.name}:{lineno}: {len(fields)} fields, header has {len(header)}"),
                                 raw=raw)
            continue
        text = nfc(fields[ti])
        label = fields[li].strip() if li is not None else None
        ex = MalteseExample(ex_id, tokenize(text), label=label, text=text, raw=raw)
        if li is not None and not label:
            ex.problem = ("missing-labels", f"{path.name}:{lineno}: empty {label_column!r}")
        yield ex


def _split_csv(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) per non-blank line, with the quoting rule of :func:`read_text_csv`.

    One record per line, always: a quoted field must close on its own line (``""`` escapes a
    quote), otherwise its opening quote is data. So the record count is the line count.
    """
    lines = read_utf8_text(path).splitlines()
    for lineno, line in enumerate(lines, start=1):
        if line.strip():
            yield lineno, _split_line(line, delimiter)


def _split_line(line: str, delimiter: str) -> list[str]:
    fields: list[str] = []
    pos = 0
    while True:
        quoted = _quoted_field(line, pos, delimiter) if line.startswith('"', pos) else None
        if quoted is not None:
            value, pos = quoted
        else:
            end = line.find(delimiter, pos)
            end = len(line) if end == -1 else end
            value, pos = line[pos:end], end
        fields.append(value)
        if pos >= len(line):
            return fields
        pos += len(delimiter)
        if pos == len(line):
            fields.append("")
            return fields


def _quoted_field(line: str, pos: int, delimiter: str) -> tuple[str, int] | None:
    """``(value, end)`` of the quoted field starting at ``pos``, or ``None`` if it never closes
    before the delimiter / line end (then the quote is data)."""
    buf, j = [], pos + 1
    while True:
        k = line.find('"', j)
        if k == -1:
            return None
        if line.startswith('""', k):
            buf.append(line[j:k] + '"')
            j = k + 2
            continue
        if k + 1 == len(line) or line.startswith(delimiter, k + 1):
            buf.append(line[j:k])
            return "".join(buf), k + 1
        buf.append(line[j:k + 1])  # a quote inside the field that does not close it
        j = k + 1
