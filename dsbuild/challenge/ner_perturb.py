"""Span-preserving perturbations of NER examples (CheckList INV tests for NER).

Each operator rebuilds the example token by token and moves every span with it, then
:func:`verify_spans` checks that every span of the result covers exactly the characters it should
(the replacement name, or the unchanged entity text) with the same label, in the same order.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsbuild.errors import InputError
from dsbuild.spans import Example

_WORD = re.compile(r"^[^\W\d_]{4,}$")
_DIGITS = re.compile(r"^\d+$")


@dataclass
class NerPerturbation:
    """The perturbed example, what changed, and the (label, text) each span must cover afterwards."""

    example: Example
    condition: dict[str, Any]
    expected: list[tuple[str, str]]


ANY = "*"  # the class of an ungrouped name list


def load_names(paths: list[Path]) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Read name-lexicon YAML files: ``{language: {LABEL: {class: [name, ...]}}}`` (later files append).

    A label given as a plain list becomes the single class ``"*"`` (any entity of that label can be
    replaced by any of its names); named classes restrict swaps to entities listed in a class.
    """
    import yaml

    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    for path in paths:
        if not path.is_file():
            raise InputError("file not found", source=path, hint="check the path of the name lexicon")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise InputError(f"cannot parse YAML: {err}".splitlines()[0], source=path) from None
        if not isinstance(data, dict):
            raise InputError("expected a mapping {language: {LABEL: [names] or {class: [names]}}}", source=path,
                             hint="see builders/data/challenge/ner/names.yaml")
        for lang, by_label in data.items():
            if not isinstance(by_label, dict):
                raise InputError(f"language {lang!r}: expected a mapping of label to names", source=path)
            for label, value in by_label.items():
                classes = {ANY: value} if isinstance(value, list) else value
                if not isinstance(classes, dict) or not classes:
                    raise InputError(f"{lang}/{label}: expected a list of names or a mapping of class to names",
                                     source=path, hint="for example PER: [Ana García, John Smith]")
                for cls, names in classes.items():
                    if not isinstance(names, list) or not names:
                        raise InputError(f"{lang}/{label}/{cls}: the name list is empty", source=path,
                                         hint="give at least one name, or remove the entry")
                    clean = [" ".join(str(n).split()) for n in names]
                    if any(not n for n in clean):
                        raise InputError(f"{lang}/{label}/{cls}: empty name in the list", source=path)
                    out.setdefault(str(lang), {}).setdefault(str(label), {}).setdefault(str(cls), []).extend(clean)
    return out


def _rebuild(ex: Example, new_id: str, replace: dict[int, list[str]], meta: dict[str, Any]) -> tuple[Example, list[tuple[int, int, str]]]:
    """Replace token ranges keyed by their first token (value: new words; the span/old token
    count is taken from ``ex.spans`` for entity starts, 1 otherwise) and move spans."""
    span_at = {s.token_start: s for s in ex.spans}
    words: list[str] = []
    new_spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(ex.tokens):
        span = span_at.get(i)
        width = (span.token_end - span.token_start) if span is not None else 1
        new_words = replace.get(i, [t.text for t in ex.tokens[i:i + width]])
        start = len(words)
        words.extend(new_words)
        if span is not None:
            new_spans.append((start, len(words), span.label))
        i += width
    return Example.from_words(new_id, words, token_spans=new_spans, meta=meta), new_spans


def name_class(names: dict[str, dict[str, list[str]]], label: str, text: str) -> str | None:
    """The class whose names may replace entity ``text`` of ``label`` (``"*"`` for ungrouped labels)."""
    classes = names.get(label, {})
    if ANY in classes:
        return ANY
    return next((cls for cls, members in sorted(classes.items()) if text in members), None)


def swap_entities(ex: Example, names: dict[str, dict[str, list[str]]], rng: random.Random, new_id: str) -> NerPerturbation | None:
    """Replace entities by other names of the same label and class (the same text gets the same name)."""
    chosen: dict[tuple[str, str], str] = {}
    replace: dict[int, list[str]] = {}
    swaps, kept, expected = [], [], []
    for span in ex.spans:
        original = ex.span_text(span)
        cls = name_class(names, span.label, original)
        pool = [n for n in names.get(span.label, {}).get(cls or "", []) if n != original]
        if not pool:
            why = "no names of this type" if span.label not in names else (
                "not in any name class of this type" if cls is None else "no other name in its class")
            kept.append({"label": span.label, "text": original, "why": why})
            expected.append((span.label, original))
            continue
        key = (span.label, original)
        if key not in chosen:
            chosen[key] = rng.choice(pool)
        replace[span.token_start] = chosen[key].split(" ")
        swaps.append({"label": span.label, "class": cls, "original": original, "replacement": chosen[key],
                      "old_start": span.start, "old_end": span.end})
        expected.append((span.label, chosen[key]))
    if not swaps:
        return None
    new, _ = _rebuild(ex, new_id, replace, dict(ex.meta))
    new_at = {old.start: fresh for old, fresh in zip(ex.spans, new.spans)}  # spans keep their order
    out_swaps = [{**s, "new_start": new_at[s["old_start"]].start, "new_end": new_at[s["old_start"]].end} for s in swaps]
    return NerPerturbation(new, {"operation": "swap-entities", "swaps": out_swaps, "kept": kept}, expected)


def _outside(ex: Example) -> list[int]:
    inside = {i for s in ex.spans for i in s.token_range}
    return [i for i in range(len(ex.tokens)) if i not in inside]


def change_numbers(ex: Example, rng: random.Random, new_id: str) -> NerPerturbation | None:
    """Replace every all-digit token outside entities by a different number with as many digits."""
    replace: dict[int, list[str]] = {}
    changes = []
    for i in _outside(ex):
        tok = ex.tokens[i].text
        if not _DIGITS.match(tok):
            continue
        lo = 10 ** (len(tok) - 1) if len(tok) > 1 else 0
        hi = 10 ** len(tok) - 1
        new = tok
        while new == tok and hi > lo:
            new = str(rng.randint(lo, hi))
        if new == tok:
            continue
        replace[i] = [new]
        changes.append({"token": i, "original": tok, "replacement": new})
    if not changes:
        return None
    new_ex, _ = _rebuild(ex, new_id, replace, dict(ex.meta))
    return NerPerturbation(new_ex, {"operation": "change-numbers", "changes": changes},
                           [(s.label, ex.span_text(s)) for s in ex.spans])


def typo_outside(ex: Example, rng: random.Random, new_id: str) -> NerPerturbation | None:
    """Swap two adjacent inner letters of one word (4+ letters) outside every entity."""
    options = [(i, j) for i in _outside(ex) if _WORD.match(ex.tokens[i].text)
               for j in range(1, len(ex.tokens[i].text) - 2) if ex.tokens[i].text[j] != ex.tokens[i].text[j + 1]]
    if not options:
        return None
    i, j = rng.choice(options)
    w = ex.tokens[i].text
    typo = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    new_ex, _ = _rebuild(ex, new_id, {i: [typo]}, dict(ex.meta))
    return NerPerturbation(new_ex, {"operation": "typo-outside-entities", "token": i, "original": w, "replacement": typo},
                           [(s.label, ex.span_text(s)) for s in ex.spans])


def verify_spans(p: NerPerturbation) -> str | None:
    """``None`` when every span covers exactly its expected text and label; else what is wrong."""
    ex = p.example
    if len(ex.spans) != len(p.expected):
        return f"{len(ex.spans)} spans after the perturbation, expected {len(p.expected)}"
    for span, (label, text) in zip(ex.spans, p.expected):
        got = ex.text[span.start:span.end]
        if span.label != label or got != text:
            return f"span {span.label} [{span.start}, {span.end}) covers {got!r}, expected {label} {text!r}"
        if " ".join(t.text for t in ex.tokens[span.token_start:span.token_end]) != text:
            return f"span tokens {span.token_start}-{span.token_end} do not spell {text!r}"
    ex.validate()
    return None
