"""IFEval prompts and Multi-IF three-turn records, for translation with their instructions kept checkable.

Readers (see ``builders/data/ifeval_translate/README.md`` for the formats):

* :func:`read_ifeval`: IFEval's ``input_data.jsonl`` (``key``, ``prompt``, ``instruction_id_list``,
  ``kwargs``): one turn per item. ``kwargs`` entries whose values are all ``null`` (the Hub copy
  fills every parameter name) lose their ``null`` keys.
* :func:`read_multi_if`: Multi-IF records (JSONL, CSV or Parquet): ``key`` (``1000:1:zh``),
  ``turn_k_prompt`` (a JSON-encoded chat message), ``turn_k_instruction_id_list`` (a JSON-encoded,
  cumulative list), ``turn_k_kwargs`` (**doubly** encoded: a JSON list of JSON strings). A record
  may instead hold ``turns``: a list of ``{prompt, instruction_id_list, kwargs}``.

Every decoding step goes through :func:`decode_json`, which unwraps as many JSON-string layers as
it finds (up to 4), so singly, doubly and not-at-all encoded values read alike; what cannot be read
makes the item's ``problem`` (a reject with the item and field named), never a traceback.

Checks on the English source:

* :func:`contradictions`: a relation kwarg (``let_relation``/``relation``: ``at least`` / ``less
  than``) that the prompt's own sentence about that letter or keyword contradicts (IFEval key 1174:
  "at least 6 times" with ``let_relation: less than``);
* :func:`unsupported_reason`: instructions whose checker cannot hold in the target language
  (letter case in scripts without case, ``change_case:english_*`` and fixed English answer
  strings in any non-English language, ``language:response_language``, a-z letter counts in
  non-Latin scripts, word counts in scripts written without spaces). The builder drops them from
  the item with the reason, or rejects the item, by option.

After translation, :func:`translate_kwargs` rebuilds each instruction's kwargs from the values
translated on their own (keywords, forbidden words, end phrases, first words, the prompt to
repeat), and :func:`missing_values` lists those not found in the translated prompt.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsbuild.errors import InputError
from dsbuild.io.jsonl import iter_csv_dicts, iter_json_objects

#: kwargs whose string values are written in the prompt and must be translated consistently with it
TRANSLATED_KWARGS: tuple[str, ...] = ("keywords", "forbidden_words", "keyword", "end_phrase", "first_word",
                                      "prompt_to_repeat")
#: kwargs whose values the checker looks for literally and that stay verbatim (protected in the prompt)
VERBATIM_KWARGS: tuple[str, ...] = ("postscript_marker", "section_spliter")
#: the 25 active instruction ids of IFEval's registry (google-research ``instructions_registry.py``)
INSTRUCTION_IDS: tuple[str, ...] = (
    "keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
    "language:response_language", "length_constraints:number_sentences", "length_constraints:number_paragraphs",
    "length_constraints:number_words", "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders", "detectable_content:postscript", "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response", "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections", "detectable_format:json_format", "detectable_format:title",
    "combination:two_responses", "combination:repeat_prompt", "startend:end_checker", "startend:quotation",
    "change_case:capital_word_frequency", "change_case:english_capital", "change_case:english_lowercase",
    "punctuation:no_comma")

# Scripts by ISO 639-3 language (the default script of each): what the checkers depend on is
# whether the script has letter case, whether it is Latin (a-z letter counts) and whether words
# are separated by spaces (``\w+`` word counts).
_CASED_NON_LATIN = {"rus", "ukr", "bel", "bul", "mkd", "srp", "kaz", "kir", "tgk", "tat", "bak", "mon", "ell", "hye",
                    "che", "oss", "chv", "sah"}
_CASELESS = {"amh", "tir", "ara", "arb", "fas", "pes", "prs", "urd", "pus", "pbt", "snd", "uig", "heb", "yid", "ydd",
             "hin", "mar", "nep", "npi", "san", "ben", "asm", "pan", "guj", "ori", "ory", "tam", "tel", "kan", "mal",
             "sin", "tha", "lao", "khm", "mya", "zho", "cmn", "yue", "jpn", "kor", "kat", "bod", "dzo", "div", "mai",
             "bho", "awa", "kas", "mni", "sat", "ckb"}
_UNSPACED = {"zho", "cmn", "yue", "jpn", "tha", "lao", "khm", "mya", "bod", "dzo"}
_CASED_SCRIPTS = {"Latn", "Cyrl", "Grek", "Armn"}
_UNSPACED_SCRIPTS = {"Hans", "Hant", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"}

_AT_LEAST = r"at least|more than|minimum of|no less than|no fewer than|not less than"
_LESS_THAN = r"less than|fewer than|at most|no more than|not more than|maximum of"
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve")


# ---------------------------------------------------------------------- data model
@dataclass
class Instruction:
    """One verifiable instruction: its registry id and arguments."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    """One user turn: the prompt and the instructions checked at this turn (cumulative in Multi-IF)."""

    prompt: str
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class IfItem:
    """An IFEval prompt (one turn) or a Multi-IF conversation (three turns).

    ``problem`` is ``(reason, detail)`` when the item cannot be used (a reject naming the field).
    """

    id: str
    turns: list[Turn]
    language: str = ""
    problem: tuple[str, str] | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # file:line

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "where": self.where, "record": self.raw}


class DecodeError(ValueError):
    """A field that cannot be decoded; ``field`` names it for the reject."""

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field_name
        self.detail = detail


# ---------------------------------------------------------------------- decoding
def decode_json(value: Any, *, max_layers: int = 4) -> Any:
    """``value`` with up to ``max_layers`` JSON-string layers removed (``'"[\\"{}\\"]"'`` -> ``[{}]``... one step
    per layer). A string that is not JSON is returned as it is."""
    for _ in range(max_layers):
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text or text[0] not in '[{"' and text not in ("null", "true", "false") and not _is_number(text):
            return value
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def decode_id_list(value: Any, field_name: str) -> list[str]:
    """An instruction id list (a list, or a JSON string of one)."""
    ids = decode_json(value)
    if ids is None or ids == "":
        return []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DecodeError(field_name, f"{field_name} must be a list of instruction id strings, got {_short(value)}")
    return ids


def decode_kwargs(value: Any, n: int, field_name: str) -> list[dict[str, Any]]:
    """The kwargs list aligned with ``n`` instruction ids, whatever its encoding.

    Accepts a list of dicts (IFEval), a list of JSON strings, a JSON string of either (Multi-IF:
    a JSON list of JSON strings), ``null`` / ``"None"`` entries (no arguments). Keys whose value
    is ``null`` are dropped (the Hub copy of IFEval lists every parameter name of every checker).
    """
    decoded = decode_json(value)
    if decoded is None or decoded == "":
        decoded = [{}] * n
    if not isinstance(decoded, list):
        raise DecodeError(field_name, f"{field_name} must be a list (one entry per instruction), got {_short(value)}")
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(decoded):
        entry = decode_json(entry)
        if entry is None or entry in ("", "None", "null"):
            entry = {}
        if not isinstance(entry, dict):
            raise DecodeError(field_name, f"{field_name}[{i}] is not an object of arguments: {_short(entry)}")
        out.append({k: v for k, v in entry.items() if v is not None})
    if len(out) != n:
        raise DecodeError(field_name, f"{field_name} has {len(out)} entries for {n} instruction ids")
    return out


def decode_message(value: Any, field_name: str) -> str:
    """A prompt given as text, a chat message ``{"role", "content"}`` or a JSON string of one."""
    msg = decode_json(value)
    if isinstance(msg, dict):
        msg = msg.get("content")
    if not isinstance(msg, str):
        raise DecodeError(field_name, f"{field_name} must be a prompt string or a chat message with 'content', "
                                      f"got {_short(value)}")
    return msg


def _short(value: Any) -> str:
    text = repr(value)
    return (text[:70] + "…") if len(text) > 70 else text


# ---------------------------------------------------------------------- readers
def read_ifeval(path: str | Path) -> Iterator[IfItem]:
    """IFEval prompts, one item (one turn) per JSONL line, id = the ``key`` (as a string)."""
    for line_no, rec in _jsonl_records(Path(path)):
        key = rec.get("key", f"line-{line_no}") if isinstance(rec, dict) else f"line-{line_no}"
        item = IfItem(id=str(key), turns=[], language="en", raw=rec if isinstance(rec, dict) else {"value": rec},
                      where=f"{Path(path).name}:{line_no}")
        try:
            if not isinstance(rec, dict):
                raise DecodeError("record", f"line {line_no} is not a JSON object")
            prompt = decode_message(rec.get("prompt"), "prompt")
            ids = decode_id_list(rec.get("instruction_id_list"), "instruction_id_list")
            kwargs = decode_kwargs(rec.get("kwargs"), len(ids), "kwargs")
            item.turns = [Turn(prompt, [Instruction(i, k) for i, k in zip(ids, kwargs)])]
        except DecodeError as err:
            item.problem = ("bad-field", f"{err.field}: {err.detail}")
        yield item


def read_multi_if(path: str | Path, *, max_turns: int = 3) -> Iterator[IfItem]:
    """Multi-IF conversations (JSONL, CSV or Parquet), id = the record's ``key`` (``1000:1:en``)."""
    path = Path(path)
    for line_no, rec in _records(path):
        if not isinstance(rec, dict):
            yield IfItem(id=f"line-{line_no}", turns=[], raw={"value": _json_safe(rec)}, where=f"{path.name}:{line_no}",
                         problem=("bad-field", f"record: line {line_no} is not an object"))
            continue
        item = IfItem(id=str(rec.get("key") or rec.get("id") or f"line-{line_no}"), turns=[],
                      language=str(rec.get("language") or ""), raw=_json_safe(rec), where=f"{path.name}:{line_no}")
        try:
            item.turns = _multi_if_turns(rec, max_turns)
        except DecodeError as err:
            item.problem = ("not-a-list" if "not a list" in err.detail else "bad-field", f"{err.field}: {err.detail}")
        yield item


def _multi_if_turns(rec: dict[str, Any], max_turns: int) -> list[Turn]:
    """The turns of one record: ``turn_k_*`` columns, or a ``turns`` list when it holds turns."""
    if rec.get("turn_1_prompt") in (None, "") and "turns" in rec:
        turns_in = decode_json(rec["turns"])
        if not isinstance(turns_in, list):
            raise DecodeError("turns", f"turns is not a list ({_short(rec['turns'])}); give a list of "
                                       f"{{prompt, instruction_id_list, kwargs}}")
        out = []
        for k, t in enumerate(turns_in, 1):
            if not isinstance(t, dict):
                raise DecodeError(f"turns[{k - 1}]", "a turn must be an object with prompt, instruction_id_list, kwargs")
            ids = decode_id_list(t.get("instruction_id_list"), f"turns[{k - 1}].instruction_id_list")
            kwargs = decode_kwargs(t.get("kwargs"), len(ids), f"turns[{k - 1}].kwargs")
            out.append(Turn(decode_message(t.get("prompt"), f"turns[{k - 1}].prompt"),
                            [Instruction(i, a) for i, a in zip(ids, kwargs)]))
        return out
    out = []
    for k in range(1, max_turns + 1):
        prompt = rec.get(f"turn_{k}_prompt")
        if prompt in (None, "") and k > 1:
            break
        text = decode_message(prompt, f"turn_{k}_prompt")
        ids = decode_id_list(rec.get(f"turn_{k}_instruction_id_list"), f"turn_{k}_instruction_id_list")
        kwargs = decode_kwargs(rec.get(f"turn_{k}_kwargs"), len(ids), f"turn_{k}_kwargs")
        out.append(Turn(text, [Instruction(i, a) for i, a in zip(ids, kwargs)]))
    return out


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, decoded JSON)`` per non-blank line; a value that is not an object is kept
    (the readers record it as a reject); invalid UTF-8 or JSON is an InputError naming the line."""
    return iter_json_objects(path, hint="one JSON object per line", objects_only=False)


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """Records of a JSONL, CSV or Parquet file with their 1-based row (line) numbers."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        yield from _jsonl_records(path)
    elif suffix == ".csv":
        csv.field_size_limit(1 << 27)  # Multi-IF cells hold whole conversations
        yield from iter_csv_dicts(path)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield i, row
    else:
        raise InputError(f"cannot read {suffix or 'a file without suffix'}", source=path.name,
                         hint="give Multi-IF records as .jsonl, .csv or .parquet")


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# ---------------------------------------------------------------------- checks on the source
def contradictions(prompt: str, instructions: Sequence[Instruction]) -> list[tuple[int, str]]:
    """Instructions whose relation kwarg contradicts the prompt's own sentence about the letter or keyword.

    For ``keywords:letter_frequency`` and ``keywords:frequency``: in the sentences that mention
    the letter (``letter o``) or keyword, a phrase ``at least N`` / ``less than N`` (and synonyms)
    with the kwarg's N must agree with ``let_relation`` / ``relation``. Returns ``(index, detail)``.
    """
    out = []
    for i, ins in enumerate(instructions):
        k = ins.kwargs
        if ins.id == "keywords:letter_frequency" and isinstance(k.get("letter"), str):
            anchor, rel, n = rf"\bletters?\s+[\"'“]?{re.escape(k['letter'])}\b", k.get("let_relation"), k.get("let_frequency")
        elif ins.id == "keywords:frequency" and isinstance(k.get("keyword"), str):
            anchor, rel, n = rf"\b{re.escape(k['keyword'])}\b", k.get("relation"), k.get("frequency")
        else:
            continue
        if not isinstance(n, int) or rel not in ("at least", "less than"):
            continue
        said = _relations_said(prompt, anchor, n)
        if said and rel not in said:
            out.append((i, f"{ins.id}: kwargs say {rel!r} {n} but the prompt says {' / '.join(sorted(said))} {n}"))
    return out


def _relations_said(prompt: str, anchor: str, n: int) -> set[str]:
    """The relations (``at least`` / ``less than``) the sentences mentioning ``anchor`` state for ``n``."""
    forms = "|".join([str(n)] + ([_NUMBER_WORDS[n]] if 0 <= n < len(_NUMBER_WORDS) else []))
    said: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", prompt):
        if re.search(anchor, sentence, re.I):
            for m in re.finditer(rf"(?i)(?:({_AT_LEAST})|({_LESS_THAN}))\s+(?:{forms})\b", sentence):
                said.add("at least" if m.group(1) else "less than")
    return said


def uncheckable(instructions: Sequence[Instruction]) -> list[str]:
    """Instructions whose kwargs IFEval's checker cannot use as written, one note each.

    ``keywords:letter_frequency`` takes an a-z letter; given another character (keys 1122 ``#``
    and 1129 ``!``), the reference checker silently substitutes a random letter, so the count it
    checks is not the one the prompt asks for, in any language.
    """
    out = []
    for ins in instructions:
        letter = ins.kwargs.get("letter")
        if ins.id == "keywords:letter_frequency" and isinstance(letter, str) and not _is_ascii_letter(letter):
            out.append(f"{ins.id}: letter {letter!r} is not an a-z letter; IFEval's checker substitutes a random "
                       f"letter for it")
    return out


def _is_ascii_letter(text: str) -> bool:
    return len(text) == 1 and text.isascii() and text.isalpha()


@dataclass(frozen=True)
class ScriptProfile:
    """What the instruction checkers depend on in a target language's script."""

    lang: str
    cased: bool = True
    latin: bool = True
    spaced: bool = True
    english: bool = False
    known: bool = True


def script_profile(lang: str, script: str | None = None) -> ScriptProfile:
    """The profile of ``lang`` (ISO 639-1/3, optionally ``_Scrp``); ``script`` (ISO 15924) overrides.

    A language this table does not know is taken as Latin-script, cased and spaced (``known``
    is then ``False`` and the builder records it).
    """
    from dsbuild.translate.langcodes import parse_code

    try:
        code = parse_code(lang)
        iso3, scr = code.lang, script or code.script
    except Exception:  # a private-use code (qsy) or a name the table lacks: judged by the script alone
        iso3, scr = lang.lower(), script
    english = iso3 == "eng"
    if scr:
        return ScriptProfile(lang, cased=scr in _CASED_SCRIPTS, latin=scr == "Latn", spaced=scr not in _UNSPACED_SCRIPTS,
                             english=english)
    if iso3 in _CASELESS:
        return ScriptProfile(lang, cased=False, latin=False, spaced=iso3 not in _UNSPACED, english=english)
    if iso3 in _CASED_NON_LATIN:
        return ScriptProfile(lang, cased=True, latin=False, english=english)
    from dsbuild.translate.langcodes import NAMES

    return ScriptProfile(lang, english=english, known=iso3 in NAMES)


def unsupported_reason(ins: Instruction, profile: ScriptProfile) -> str | None:
    """Why ``ins`` cannot hold when the prompt and answer are in ``profile``'s language, or ``None``."""
    if profile.english:
        return None
    iid = ins.id
    if iid in ("change_case:english_capital", "change_case:english_lowercase"):
        return "needs-english"  # the checker also requires langdetect == 'en'
    if iid == "language:response_language":
        return "response-language"  # clashes with, or becomes trivial for, the prompt's language
    if iid == "detectable_format:constrained_response":
        return "fixed-english-answers"  # the checker looks for "My answer is yes." etc.
    if iid == "change_case:capital_word_frequency" and not profile.cased:
        return "script-without-case"
    letter = ins.kwargs.get("letter")
    if iid == "keywords:letter_frequency" and not profile.latin and not (isinstance(letter, str) and
                                                                         not _is_ascii_letter(letter)):
        return "letter-not-in-script"  # the checker takes an a-z letter ('#' is no letter: see uncheckable())
    if iid == "length_constraints:number_words" and not profile.spaced:
        return "words-not-spaced"  # \w+ runs: a Chinese or Thai sentence counts as a few words
    return None


def new_instructions(turns: Sequence[Turn], k: int) -> list[int]:
    """Indices (in turn ``k``'s list) of the instructions turn ``k`` adds (Multi-IF lists are cumulative)."""
    ids = [i.id for i in turns[k].instructions]
    if k == 0:
        return list(range(len(ids)))
    prev = [i.id for i in turns[k - 1].instructions]
    if ids[: len(prev)] == prev:
        return list(range(len(prev), len(ids)))
    remaining = list(prev)
    out = []
    for n, iid in enumerate(ids):
        if iid in remaining:
            remaining.remove(iid)
        else:
            out.append(n)
    return out


# ---------------------------------------------------------------------- values and their translations
def value_strings(kwargs: dict[str, Any]) -> list[str]:
    """The strings of ``kwargs`` that the prompt writes and that must be translated with it, in order."""
    out: list[str] = []
    for key in TRANSLATED_KWARGS:
        value = kwargs.get(key)
        for v in (value if isinstance(value, list) else [value]):
            if isinstance(v, str) and v.strip() and v not in out:
                out.append(v)
    return out


def verbatim_strings(kwargs: dict[str, Any]) -> list[str]:
    """The kwargs strings the checker looks for literally (postscript markers, section splitters)."""
    return [kwargs[k] for k in VERBATIM_KWARGS if isinstance(kwargs.get(k), str) and kwargs[k].strip()]


def translate_kwargs(kwargs: dict[str, Any], translations: dict[str, str]) -> dict[str, Any]:
    """``kwargs`` with every translatable string replaced by its translation (same keys and shapes)."""
    out = dict(kwargs)
    for key in TRANSLATED_KWARGS:
        value = kwargs.get(key)
        if isinstance(value, list):
            out[key] = [translations.get(v, v) if isinstance(v, str) else v for v in value]
        elif isinstance(value, str):
            out[key] = translations.get(value, value)
    return out


def normalise(text: str) -> str:
    """Case-folded NFC text with whitespace runs as one space (the checkers compare case-insensitively)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def missing_values(kwargs: dict[str, Any], prompt: str) -> list[str]:
    """``key=value`` of the kwargs strings (translatable and verbatim) not found in ``prompt``."""
    text = normalise(prompt)
    missing = []
    for key in TRANSLATED_KWARGS + VERBATIM_KWARGS:
        value = kwargs.get(key)
        for v in (value if isinstance(value, list) else [value]):
            if isinstance(v, str) and v.strip() and normalise(v) not in text:
                missing.append(f"{key}={v!r}")
    return missing


__all__ = ["DecodeError", "INSTRUCTION_IDS", "IfItem", "Instruction", "ScriptProfile", "TRANSLATED_KWARGS", "Turn",
           "VERBATIM_KWARGS", "contradictions", "decode_id_list", "decode_json", "decode_kwargs", "decode_message",
           "missing_values", "new_instructions", "normalise", "read_ifeval", "read_multi_if", "script_profile",
           "translate_kwargs", "uncheckable", "unsupported_reason", "value_strings", "verbatim_strings"]
