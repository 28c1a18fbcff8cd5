"""Typed lexicons: words with grammatical features and inflected forms, loaded from YAML.

A lexicon file holds one language's feature inventory and any number of named lexicons::

    language: es
    features:                       # the values each feature may take in this language
      gender: [m, f]
      number: [sg, pl]
    lexicons:
      person:
        features: [gender, number]  # every entry must give these
        forms: {}                   # no inflected forms
        entries:
          - {text: médico, lemma: médico, gender: m, number: sg}
      verb_transitive:
        features: []
        forms:
          past: [number]            # one form per number value: {sg: vio, pl: vieron}
          part: [gender, number]    # keys join the values in this order: m.sg, f.sg, ...
        entries:
          - {text: ver, past: {sg: vio, pl: vieron}, part: {m.sg: visto, f.sg: vista, m.pl: vistos, f.pl: vistas}}

Everything is checked when the file is read (unknown keys, missing features or forms, values
outside the inventory, empty lexicons), so a typo fails before any generation starts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dsbuild.errors import InputError

ENTRY_KEYS = {"text", "lemma"}


def norm_value(value: Any) -> str:
    """Feature values are strings; YAML booleans and numbers are normalised (``true``, ``3``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Entry:
    """One lexicon entry: surface text, lemma (for distinctness), features, inflected forms."""

    text: str
    lemma: str
    features: dict[str, str] = field(default_factory=dict)
    forms: dict[str, str | dict[str, str]] = field(default_factory=dict)

    def form(self, name: str, key: str | None = None) -> str:
        """The form ``name`` (``text`` is the citation form); ``key`` picks an inflected cell."""
        if name == "text":
            return self.text
        value = self.forms[name]
        if isinstance(value, dict):
            if key is None:
                raise KeyError(f"form {name!r} of {self.text!r} inflects; a key is needed")
            return value[key]
        return value


@dataclass
class Lexicon:
    """A named list of entries sharing required features and declared forms."""

    name: str
    language: str
    features: list[str]
    forms: dict[str, list[str]]
    entries: list[Entry]
    sources: list[str] = field(default_factory=list)

    def matching(self, where: dict[str, list[str]]) -> list[Entry]:
        """Entries whose features take one of the allowed values for every key of ``where``."""
        return [e for e in self.entries if all(e.features.get(k) in vals for k, vals in where.items())]


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file and the YAML problem."""
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path of the lexicon/template file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise InputError(f"cannot parse YAML: {getattr(err, 'problem', err)}", source=path,
                         line=mark.line + 1 if mark is not None else None,
                         hint="fix the YAML syntax (indentation, quotes around strings with ':' or '{')") from None
    if not isinstance(data, dict):
        raise InputError("expected a YAML mapping with 'language' and 'lexicons' and/or 'templates'", source=path,
                         hint="see builders/data/challenge/lexicons/en.yaml for the layout")
    if "language" not in data:
        raise InputError("missing 'language'", source=path, hint="add 'language: <code>' at the top of the file")
    return data


def parse_feature_inventory(raw: Any, path: Path) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, list) and v for v in raw.values()):
        raise InputError("'features' must map each feature name to a non-empty list of values", source=path,
                         hint="for example: features: {gender: [m, f], number: [sg, pl]}")
    return {str(k): [norm_value(v) for v in vals] for k, vals in raw.items()}


def parse_lexicons(raw: Any, language: str, inventory: dict[str, list[str]], path: Path,
                   existing: dict[str, Lexicon]) -> None:
    """Parse the ``lexicons`` mapping of ``path`` into ``existing`` (adding entries to known lexicons)."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise InputError("'lexicons' must be a mapping of lexicon name to {features, forms, entries}", source=path)
    for name, spec in raw.items():
        where = f"lexicon {name!r}"
        if not isinstance(spec, dict):
            raise InputError(f"{where}: expected a mapping with 'entries'", source=path)
        unknown = set(spec) - {"features", "forms", "entries"}
        if unknown:
            raise InputError(f"{where}: unknown key(s) {sorted(unknown)}", source=path,
                             hint="a lexicon has only 'features', 'forms' and 'entries'")
        if name in existing:  # a user file adds entries to a shipped lexicon
            lex = existing[name]
            if "features" in spec and list(spec["features"] or []) != lex.features:
                raise InputError(f"{where}: features {spec['features']} differ from {lex.features} declared in "
                                 f"{lex.sources[0]}", source=path, hint="drop 'features' when extending a lexicon")
        else:
            feats = [str(f) for f in (spec.get("features") or [])]
            for f in feats:
                if f not in inventory:
                    raise InputError(f"{where}: feature {f!r} is not in this language's feature inventory "
                                     f"({sorted(inventory) or 'empty'})", source=path,
                                     hint=f"declare it under 'features:' at the top of the file, e.g. {f}: [value1, value2]")
            forms_raw = spec.get("forms") or {}
            if not isinstance(forms_raw, dict):
                raise InputError(f"{where}: 'forms' must map form names to the features they inflect for", source=path,
                                 hint="for example: forms: {past: [number], part: []}")
            forms = {str(k): [str(x) for x in (v or [])] for k, v in forms_raw.items()}
            for form, ffeats in forms.items():
                for f in ffeats:
                    if f not in inventory:
                        raise InputError(f"{where}: form {form!r} inflects for unknown feature {f!r}", source=path,
                                         hint=f"declare {f!r} under 'features:' at the top of the file")
            lex = Lexicon(name, language, feats, forms, [])
            existing[name] = lex
        lex.sources.append(str(path))
        entries = spec.get("entries")
        if not isinstance(entries, list) or not entries:
            raise InputError(f"{where}: no entries (the lexicon is empty)", source=path,
                             hint="give at least one entry under 'entries:', e.g. - {text: word, ...}")
        for i, raw_entry in enumerate(entries):
            lex.entries.append(_parse_entry(raw_entry, lex, inventory, path, f"{where} entry {i + 1}"))


def _parse_entry(raw: Any, lex: Lexicon, inventory: dict[str, list[str]], path: Path, where: str) -> Entry:
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, dict) or not str(raw.get("text", "")).strip():
        raise InputError(f"{where}: an entry needs a non-empty 'text'", source=path,
                         hint="write entries as {text: word, feature: value, ...}")
    unknown = set(raw) - ENTRY_KEYS - set(lex.features) - set(lex.forms)
    if unknown:
        raise InputError(f"{where} ({raw['text']!r}): unknown key(s) {sorted(unknown)}", source=path,
                         hint=f"lexicon {lex.name!r} declares features {lex.features} and forms {sorted(lex.forms)}; "
                              "declare new ones in the lexicon first")
    feats: dict[str, str] = {}
    for f in lex.features:
        if f not in raw:
            raise InputError(f"{where} ({raw['text']!r}): missing feature {f!r}", source=path,
                             hint=f"give {f}: one of {inventory[f]}")
        value = norm_value(raw[f])
        if value not in inventory[f]:
            raise InputError(f"{where} ({raw['text']!r}): {f}={value!r} is not one of {inventory[f]}", source=path,
                             hint="use a declared value or add it to the feature inventory")
        feats[f] = value
    forms: dict[str, str | dict[str, str]] = {}
    for form, ffeats in lex.forms.items():
        if form not in raw:
            raise InputError(f"{where} ({raw['text']!r}): missing form {form!r}", source=path,
                             hint=f"lexicon {lex.name!r} declares form {form!r}; give it for every entry")
        value = raw[form]
        if ffeats:
            needed = [".".join(c) for c in itertools.product(*(inventory[f] for f in ffeats))]
            if not isinstance(value, dict):
                raise InputError(f"{where} ({raw['text']!r}): form {form!r} inflects for {ffeats}; give a mapping "
                                 f"with keys {needed}", source=path)
            value = {str(k): str(v) for k, v in value.items()}
            missing = [k for k in needed if not value.get(k, "").strip()]
            if missing:
                raise InputError(f"{where} ({raw['text']!r}): form {form!r} lacks cell(s) {missing}", source=path,
                                 hint=f"give every combination of {ffeats}, keys joined by '.'")
            forms[form] = value
        else:
            if isinstance(value, dict) or not str(value).strip():
                raise InputError(f"{where} ({raw['text']!r}): form {form!r} must be a non-empty string", source=path)
            forms[form] = str(value)
    text = str(raw["text"]).strip()
    return Entry(text=text, lemma=str(raw.get("lemma", text)), features=feats, forms=forms)
