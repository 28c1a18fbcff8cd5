"""The field spec: what ``translate-dataset`` does with each field of a source item.

A spec says, per field, one of five kinds:

* ``translate``: a string, translated as a whole (a question, an utterance, a prompt);
* ``translate_each``: a list of strings, each translated on its own, order and length kept
  (answer options, conversation turns);
* ``keep``: copied unchanged (ids, labels, answer keys, instruction ids, folds). A kept field
  can be the **answer key** of a list field (``answer_for: options``); a key outside the options
  is a recorded reject naming the item and field;
* ``spans``: span annotations (a list of ``{start, end, label}`` dicts, character offsets by
  default) over a translated string field ``of``; projected onto the translation with any
  registered projector (``alignment``, ``markers``, ...);
* ``consistent``: values (a string or a list of strings: slot values, keywords) that must be
  translated consistently with their field ``of`` and then be found in its translation.

and a list of **protected patterns** kept verbatim: named built-ins (:data:`BUILTIN_PATTERNS`:
``winogrande-blank``, ``placeholders``, ``urls``, ``numbers``, ``code``, ``emails``) and user
regexes. A spec comes from a YAML file or a mapping (``--set fields={question: translate, ...}``)::

    id: id
    fields:
      question: translate
      options: translate_each
      answer: {kind: keep, answer_for: options, answer_format: letter}
      entities: {kind: spans, of: question}
      keywords: {kind: consistent, of: question}
    protect: [winogrande-blank, urls]
    protect_regex: {ticker: '\\$[A-Z]{2,5}'}

Every problem is one :class:`~dsbuild.errors.ConfigError` line naming the field or option.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dsbuild.errors import ConfigError

FieldKind = Literal["translate", "translate_each", "keep", "spans", "consistent"]
FIELD_KINDS: tuple[str, ...] = ("translate", "translate_each", "keep", "spans", "consistent")
AnswerFormat = Literal["letter", "index0", "index1", "text", "auto"]
ANSWER_FORMATS: tuple[str, ...] = ("letter", "index0", "index1", "text", "auto")


@dataclass(frozen=True)
class FieldSpec:
    """What to do with one field of the source items.

    Attributes:
        name: the field (column) name in the source items and in the output rows.
        kind: ``translate``, ``translate_each``, ``keep``, ``spans`` or ``consistent``.
        of: ``spans`` / ``consistent``: the translated string field they refer to.
        answer_for: ``keep``: this field is the answer key of the list field named here
            (``translate_each`` or ``keep``); checked to point inside it.
        answer_format: how the key names an option: ``letter`` (A, B, ...), ``index0``,
            ``index1`` (``1``/``2``, ints or digit strings), ``text`` (the option itself) or
            ``auto`` (a letter if it is one, else a 1-based index).
        optional: the field may be missing or null in some items (else: a reject naming it).
        span_format: ``spans``: ``char`` (character offsets, default) or ``token`` (whitespace
            token indices); both end-exclusive.
        start_key, end_key, label_key: ``spans``: the keys of each span dict.
    """

    name: str
    kind: FieldKind
    of: str | None = None
    answer_for: str | None = None
    answer_format: AnswerFormat = "auto"
    optional: bool = False
    span_format: Literal["char", "token"] = "char"
    start_key: str = "start"
    end_key: str = "end"
    label_key: str = "label"

    @property
    def translated(self) -> bool:
        """Whether the field's text goes through the translator (``translate``, ``translate_each``)."""
        return self.kind in ("translate", "translate_each")


@dataclass(frozen=True)
class ProtectedPattern:
    """A pattern whose matches must reach the target verbatim, as often as in the source.

    Attributes:
        name: a built-in name (``urls``) or the user's name for a regex.
        regex: the pattern (Python ``re`` syntax).
        standalone: each match must stand as its own token in the target (not glued to a letter
            or digit): Winogrande's blank ``_`` in ``_o`` is glued.
        mask: replace matches by placeholder tokens before machine translation and restore them
            after (given translations are only checked).
    """

    name: str
    regex: str
    standalone: bool = False
    mask: bool = True

    def compiled(self) -> re.Pattern[str]:
        return _compile(self.name, self.regex)


#: the named built-in patterns (``protect: [urls, numbers]``)
BUILTIN_PATTERNS: dict[str, ProtectedPattern] = {
    # any run of underscores, so a blank glued to a word (``_o``) or doubled is still seen
    "winogrande-blank": ProtectedPattern("winogrande-blank", r"_+", standalone=True, mask=False),
    "placeholders": ProtectedPattern("placeholders", r"\{[^{}\s]{0,40}\}"),
    "urls": ProtectedPattern("urls", r"(?:https?://|www\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]"),
    "emails": ProtectedPattern("emails", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "numbers": ProtectedPattern("numbers", r"(?<![\w.])\d+(?:[.,:]\d+)*(?![\w])"),
    "code": ProtectedPattern("code", r"```.*?```|`[^`\n]+`"),
}


@dataclass(frozen=True)
class DatasetSpec:
    """The whole spec: the id field, one :class:`FieldSpec` per handled field, protected patterns.

    Fields of the source that the spec does not name are dropped from the output (name them
    with ``keep`` to carry them over).
    """

    fields: tuple[FieldSpec, ...]
    id_field: str = "id"
    protect: tuple[ProtectedPattern, ...] = ()

    def __post_init__(self) -> None:
        _check_fields(self)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "field spec") -> DatasetSpec:
        """A spec from ``{id, fields, protect, protect_regex}`` (YAML or ``--set``); one-line errors."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping with 'fields' (and 'id', 'protect', 'protect_regex')")
        unknown = sorted(set(data) - {"id", "fields", "protect", "protect_regex"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; use id, fields, protect, protect_regex")
        fields_data = data.get("fields") or {}
        if not isinstance(fields_data, Mapping) or not fields_data:
            raise ConfigError(f"{where}: 'fields' must map field names to kinds, e.g. {{question: translate, "
                              f"options: translate_each, answer: keep}}")
        fields = tuple(_field_from(name, value, where) for name, value in fields_data.items())
        protect = patterns_from(data.get("protect") or [], data.get("protect_regex") or {}, where=where)
        return cls(fields=fields, id_field=str(data.get("id") or "id"), protect=protect)

    @classmethod
    def from_yaml(cls, path: str | Path) -> DatasetSpec:
        """A spec from a YAML file (see the module docstring)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"field spec {path}: file not found (option spec)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"field spec {path}{at}: not valid YAML ({getattr(err, 'problem', err)})") from None
        return cls.from_mapping(data or {}, where=f"field spec {path.name}")

    # ----------------------------------------------------------------- queries
    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)

    def of_kind(self, *kinds: str) -> list[FieldSpec]:
        """The fields of the given kinds, in spec order."""
        return [f for f in self.fields if f.kind in kinds]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def check_columns(self, columns: Iterable[str], source: str) -> None:
        """One ConfigError line naming the first spec'd field (or id field) the source lacks."""
        have = set(columns)
        for name in [self.id_field, *(f.name for f in self.fields if not f.optional)]:
            if name not in have:
                raise ConfigError(f"field spec names field {name!r} but source {source} has no such field "
                                  f"(fields: {', '.join(sorted(have)) or 'none'}); fix the spec or the source")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for facts and the card."""
        return {"id": self.id_field,
                "fields": {f.name: {k: v for k, v in vars(f).items() if k != "name" and v not in (None, False)
                                    and not (k in ("answer_format",) and f.answer_for is None)
                                    and not (k in ("span_format", "start_key", "end_key", "label_key")
                                             and f.kind != "spans")}
                           for f in self.fields},
                "protect": [{"name": p.name, "regex": p.regex, "standalone": p.standalone, "mask": p.mask}
                            for p in self.protect]}


# --------------------------------------------------------------------------- helpers
def patterns_from(names: Iterable[str] | str, regexes: Mapping[str, str], *, where: str = "protect") -> tuple[ProtectedPattern, ...]:
    """Built-in patterns by name plus user regexes ``{name: regex}``; bad names and regexes: one line."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: list[ProtectedPattern] = []
    for name in names:
        if name not in BUILTIN_PATTERNS:
            raise ConfigError(f"{where}: unknown protected pattern {name!r}; built-ins: "
                              f"{', '.join(BUILTIN_PATTERNS)} (add your own with protect_regex={{name: REGEX}})")
        out.append(BUILTIN_PATTERNS[name])
    if not isinstance(regexes, Mapping):
        raise ConfigError(f"{where}: protect_regex must map names to regexes, e.g. {{ticker: '[A-Z]{{3}}'}}")
    for name, regex in regexes.items():
        pattern = ProtectedPattern(str(name), str(regex))
        pattern.compiled()  # an invalid regex fails now, naming the option
        out.append(pattern)
    return tuple(out)


def _compile(name: str, regex: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(regex, re.DOTALL)
    except re.error as err:
        raise ConfigError(f"protect_regex {name!r}: {regex!r} is not a valid regular expression ({err}); "
                          f"fix the pattern (Python re syntax)") from None
    if compiled.search("") is not None:
        raise ConfigError(f"protect_regex {name!r}: {regex!r} matches the empty string; make it match at least "
                          f"one character")
    return compiled


def _field_from(name: Any, value: Any, where: str) -> FieldSpec:
    """One FieldSpec from ``kind`` or ``{kind: ..., of: ..., ...}``."""
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, Mapping) or "kind" not in value:
        raise ConfigError(f"{where}: field {name!r}: give a kind ({' | '.join(FIELD_KINDS)}) or "
                          f"{{kind: ..., of: ...}}, not {value!r}")
    allowed = {f for f in FieldSpec.__dataclass_fields__ if f != "name"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{where}: field {name!r}: unknown setting(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
    return FieldSpec(name=str(name), **dict(value))


def _check_fields(spec: DatasetSpec) -> None:
    """Kinds, references (``of``, ``answer_for``) and duplicates: one line each."""
    names = [f.name for f in spec.fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"field spec: field(s) {dupes} named twice")
    if spec.id_field in names:
        raise ConfigError(f"field spec: the id field {spec.id_field!r} is kept as the row id; do not list it in fields")
    by_name = {f.name: f for f in spec.fields}
    for f in spec.fields:
        if f.kind not in FIELD_KINDS:
            raise ConfigError(f"field spec: field {f.name!r}: unknown kind {f.kind!r}; use one of {', '.join(FIELD_KINDS)}")
        if f.kind in ("spans", "consistent"):
            target = by_name.get(f.of or "")
            if target is None or target.kind != "translate":
                raise ConfigError(f"field spec: field {f.name!r} ({f.kind}) needs of=FIELD naming a 'translate' "
                                  f"field (got of={f.of!r})")
        if f.answer_for is not None:
            target = by_name.get(f.answer_for)
            if f.kind != "keep" or target is None or target.kind not in ("translate_each", "keep"):
                raise ConfigError(f"field spec: field {f.name!r}: answer_for must name a list field "
                                  f"(translate_each or keep) and the answer field must be 'keep'")
            if f.answer_format not in ANSWER_FORMATS:
                raise ConfigError(f"field spec: field {f.name!r}: answer_format {f.answer_format!r} is not one of "
                                  f"{', '.join(ANSWER_FORMATS)}")
        if f.span_format not in ("char", "token"):
            raise ConfigError(f"field spec: field {f.name!r}: span_format must be char or token")
    if not any(f.translated for f in spec.fields):
        raise ConfigError("field spec: no field to translate; mark at least one field translate or translate_each")
    for p in spec.protect:
        p.compiled()


def answer_index(key: Any, options: list[Any], fmt: str) -> int | None:
    """The 0-based option index an answer key names, or ``None`` when it names none of ``options``."""
    n = len(options)
    if fmt == "text":
        return options.index(key) if key in options else None
    if isinstance(key, bool):
        return None
    text = str(key).strip()
    if fmt in ("letter", "auto") and len(text) == 1 and text.isalpha():
        i = ord(text.upper()) - ord("A")
        return i if 0 <= i < n else None
    if fmt in ("index0", "index1", "auto") and (isinstance(key, int) or text.lstrip("-").isdigit()):
        i = int(text) - (0 if fmt == "index0" else 1)
        return i if 0 <= i < n else None
    return None


__all__ = ["ANSWER_FORMATS", "BUILTIN_PATTERNS", "DatasetSpec", "FIELD_KINDS", "FieldSpec", "ProtectedPattern",
           "answer_index", "patterns_from"]
