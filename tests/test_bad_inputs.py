"""Bad inputs get a clear error or a recorded reject (issue 14).

The table-driven part runs every case of ``tests/data/bad_inputs/cases.yaml`` (format: the
README.md in that folder): API cases assert the exception class (or the reject reason) and message
fragments; CLI cases run ``dsbuild.cli.app`` and assert exit code 2, one ``error:`` line holding
the fragments, and no traceback. The tests below the table cover what is not an error: format
characters that belong to words are projected, and readers record file names, not local folders.
"""

from __future__ import annotations

import builtins
import importlib
import json
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import dsbuild.errors
import dsbuild.spans
from dsbuild.align.checks import disallowed_characters, token_problem
from dsbuild.errors import InputError
from dsbuild.io import read_conll, read_jsonl
from dsbuild.maltese.readers import read_conllu, read_token_jsonl
from dsbuild.spans import ArgumentTypeError, Example

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))["cases"]
CASE_KEYS = {"id", "class", "file", "call", "args", "kwargs", "cli", "error", "reject", "exit_code", "message",
             "requires", "note"}


# ----------------------------------------------------------------------------- the corpus
def test_cases_are_well_formed() -> None:
    """Every case has a unique id, known keys, one way to run, an expectation and its input file."""
    ids = [c.get("id") for c in CASES]
    assert len(ids) == len(set(ids)) and all(ids), "case ids must be unique and non-empty"
    for case in CASES:
        assert set(case) <= CASE_KEYS, f"{case['id']}: unknown keys {set(case) - CASE_KEYS}"
        assert ("call" in case) != ("cli" in case), f"{case['id']}: give exactly one of call / cli"
        assert case.get("message"), f"{case['id']}: give the message fragment(s) to look for"
        if "call" in case:
            assert ("error" in case) != ("reject" in case), f"{case['id']}: give exactly one of error / reject"
        if isinstance(case.get("file"), str):
            assert (CORPUS / case["file"]).is_file(), f"{case['id']}: no input file {case['file']}"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case: dict[str, Any], tmp_path: Path) -> None:
    for module in case.get("requires", []):
        pytest.importorskip(module)
    values = {"{data}": str(CORPUS), "{tmp}": str(tmp_path)}
    if "file" in case:
        values["{file}"] = str(input_file(case["file"], tmp_path))
    if "cli" in case:
        run_cli_case(case, values)
    elif "error" in case:
        run_error_case(case, values)
    else:
        run_reject_case(case, values)


def input_file(spec: str | dict[str, Any], tmp_path: Path) -> Path:
    """The case's input: a file of the corpus, or one written from ``rows`` (Parquet) / ``text``."""
    if isinstance(spec, str):
        return CORPUS / spec
    path = tmp_path / spec["name"]
    if "rows" in spec:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(spec["rows"]), path)
    else:
        path.write_text(spec["text"], encoding="utf-8")
    return path


def fragments(case: dict[str, Any]) -> list[str]:
    message = case["message"]
    return [message] if isinstance(message, str) else list(message)


def resolve(value: Any, values: dict[str, str]) -> Any:
    """Placeholders replaced (``{file}``, ``{data}``, ``{tmp}``) and ``$`` constructors built."""
    if isinstance(value, str):
        for key, replacement in values.items():
            value = value.replace(key, replacement)
        return value
    if isinstance(value, list):
        return [resolve(v, values) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            (name, arg), = value.items()
            return CONSTRUCTORS[name](resolve(arg, values))
        return {k: resolve(v, values) for k, v in value.items()}
    return value


CONSTRUCTORS: dict[str, Callable[[Any], Any]] = {
    "$example": lambda kw: Example.from_words(kw["id"], kw["words"], **{k: v for k, v in kw.items()
                                                                       if k not in ("id", "words")}),
    "$path": Path,
}


def dotted(name: str) -> Any:
    """The object a dotted name points at: ``dsbuild.io.read_conll``, ``dsbuild.spans.Example.from_words``."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"cannot import {name}")


def error_class(name: str) -> type[BaseException]:
    """An exception class by name: a dotted name, or one of dsbuild.errors / dsbuild.spans / builtins."""
    if "." in name:
        return dotted(name)
    for module in (dsbuild.errors, dsbuild.spans, builtins):
        if isinstance(getattr(module, name, None), type):
            return getattr(module, name)
    raise AssertionError(f"unknown error class {name!r}")


def call(case: dict[str, Any], values: dict[str, str]) -> Any:
    """Call the case's function; a lazy result (iterator) is read to the end."""
    args = resolve(case.get("args", ["{file}"] if "file" in case else []), values)
    result = dotted(case["call"])(*args, **resolve(case.get("kwargs", {}), values))
    return list(result) if isinstance(result, Iterator) else result


def run_error_case(case: dict[str, Any], values: dict[str, str]) -> None:
    with pytest.raises(error_class(case["error"])) as err:
        call(case, values)
    for fragment in fragments(case):
        assert fragment in str(err.value), f"{case['id']}: {fragment!r} not in {str(err.value)!r}"


def run_reject_case(case: dict[str, Any], values: dict[str, str]) -> None:
    """The call returns items (MalteseExample, Projection...): one is rejected with the reason."""
    items = list(call(case, values))
    rejects = [reject_of(item) for item in items]
    details = [detail for reason, detail in rejects if reason == case["reject"]]
    assert details, f"{case['id']}: no item rejected as {case['reject']!r}: {rejects}"
    for fragment in fragments(case):
        assert any(fragment in d for d in details), f"{case['id']}: {fragment!r} not in {details}"


def reject_of(item: Any) -> tuple[str | None, str]:
    """``(reason, detail)`` of a reader example with a ``problem`` or a rejected ``Projection``."""
    problem = getattr(item, "problem", None)
    if problem is not None:
        return problem[0], problem[1]
    return getattr(item, "rejected", None), str(getattr(item, "qc", {}).get("reject_detail", ""))


def run_cli_case(case: dict[str, Any], values: dict[str, str]) -> None:
    from dsbuild.cli import app

    result = CliRunner().invoke(app, [str(a) for a in resolve(case["cli"], values)])
    output = result.output
    assert result.exit_code == case.get("exit_code", 2), f"{case['id']}: exit {result.exit_code}\n{output}"
    assert "Traceback" not in output, output
    errors = [ln for ln in output.replace("\r", "\n").splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, f"{case['id']}: expected one error line:\n{output}"
    for fragment in fragments(case):
        assert fragment in errors[0], f"{case['id']}: {fragment!r} not in {errors[0]!r}"


# ----------------------------------------------------------------------------- not errors
SOURCES = [
    Example.from_words("fa", ["I", "want", "to", "go", "to", "Tehran", "."], tags=["O"] * 5 + ["B-LOC", "O"]),
    Example.from_words("hi", ["Ana", "lives", "in", "Delhi", "."], tags=["B-PER", "O", "O", "B-LOC", "O"]),
    Example.from_words("de", ["The", "version", "for", "Berlin", "."], tags=["O", "O", "O", "B-LOC", "O"]),
    Example.from_words("bel", ["Ana", "rings", "a", "bell", "."], tags=["B-PER", "O", "O", "O", "O"]),
]
TARGETS = [
    "من می\u200cخواهم به تهران بروم .",  # ZWNJ: part of the Persian spelling of the verb
    "अना दिल्ली में रहती है क्\u200dष .",  # ZWJ: a Devanagari conjunct form
    "Die Ver\u00adsion für Berlin .",  # soft hyphen: an invisible hyphenation point, kept
    "Ana toca\x07 una campana .",  # BEL: a real control character
]


def test_word_format_characters_are_projected_and_control_characters_rejected() -> None:
    from dsbuild.project import project

    report = project(SOURCES, TARGETS, src_lang="en", tgt_lang="fa", aligner_options={"seed": 1})
    fa, hi, de, bel = report.projections
    for p, word in ((fa, "می\u200cخواهم"), (hi, "क्\u200dष"), (de, "Ver\u00adsion")):
        assert p.rejected is None and p.target.spans, (p.rejected, p.qc)
        assert word in p.target.words  # the format character stays inside its word (not split off)
    assert fa.target.text == TARGETS[0] and len(fa.target.words) == 6
    assert bel.rejected == "control_characters" and "U+0007 (BELL" in bel.qc["reject_detail"]
    assert report.counts["rejected_by_reason"] == {"control_characters": 1}


@pytest.mark.parametrize("text, bad", [
    ("می\u200cخواهم", []), ("क्\u200dष", []), ("Ver\u00adsion", []), ("\u200f\u05e9\u05dc\u05d5\u05dd", []),
    ("👨\u200d👩\u200d👧", []), ("a\tb\nc", ["U+0009", "U+000A"]), ("bell\x07", ["U+0007"]), ("nul\x00", ["U+0000"]),
    ("zero\u200bwidth", ["U+200B"]), ("bom\ufeff", ["U+FEFF"]), ("over\u202eride", ["U+202E"]),
    ("private\ue000", ["U+E000"]),
])
def test_characters_that_are_not_text_by_unicode_category(text: str, bad: list[str]) -> None:
    assert disallowed_characters(text) == bad
    # aligners refuse only what breaks them: whitespace and control characters (category Cc)
    control = [c for c in bad if unicodedata.category(chr(int(c[2:], 16))) == "Cc"]
    assert (token_problem(text) is None) == (not control)


def test_projection_check_allows_separators_in_running_text() -> None:
    from dsbuild.project.inputs import control_characters

    assert control_characters("a\tb\nc\r\n") == [] and control_characters("a\x1bb") == ["U+001B"]


def test_wrong_argument_types_are_both_type_and_input_errors() -> None:
    with pytest.raises(ArgumentTypeError) as err:
        Example.from_words("x", "abc")
    assert isinstance(err.value, TypeError) and isinstance(err.value, InputError)
    with pytest.raises(TypeError, match=r"token_spans\[0\]"):
        Example.from_words("x", ["a"], token_spans=[("0", 1, "PER")])
    with pytest.raises(TypeError, match="tokens must be a list of Token"):
        Example.from_text("x", "a b", "a b")  # type: ignore[arg-type]


def test_readers_record_the_file_name_not_the_folder(tmp_path: Path) -> None:
    """``meta["source"]`` reaches published rows and rejects: the name only. Errors name the full path."""
    conll = tmp_path / "data.conll"
    conll.write_text("Ana B-PER\nruns O\n", encoding="utf-8")
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["Ana"], "tags": ["B-PER"]}) + "\n", encoding="utf-8")
    conllu = tmp_path / "mt.conllu"
    conllu.write_text("1\tIl-\til-\tDET\t_\t_\t0\troot\t_\t_\n\n1\tbad\n\n", encoding="utf-8")
    mt_jsonl = tmp_path / "mt.jsonl"
    mt_jsonl.write_text("{not json\n", encoding="utf-8")
    assert read_conll(conll)[0].meta["source"] == "data.conll"
    assert read_jsonl(jsonl)[0].meta["source"] == "data.jsonl"
    good, bad = read_conllu(conllu)
    assert good.raw["source"] == "mt.conllu" and bad.problem[1].startswith("mt.conllu:3:")
    (broken,) = read_token_jsonl(mt_jsonl)
    assert broken.problem[1].startswith("mt.jsonl:1:")
    for ex in (good, bad, broken):
        assert str(tmp_path) not in json.dumps([ex.raw, ex.problem], default=str)
    conll.write_text("Ana B-PER\nruns\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"^{conll}:2"):
        read_conll(conll)
