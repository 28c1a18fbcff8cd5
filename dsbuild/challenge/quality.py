"""Automated quality checks for challenge sets: overlap properties, label balance, duplicates."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)
NO_SPACE_LANGS = {"zh", "ja", "th", "yue"}


def words(text: str, language: str) -> list[str]:
    """Lower-cased word tokens; characters for languages written without spaces."""
    text = unicodedata.normalize("NFC", text).lower()
    if language in NO_SPACE_LANGS:
        return [c for c in text if c.isalnum()]
    return _WORD.findall(text)


def normalize_pair(premise: str, hypothesis: str) -> tuple[str, str]:
    """The key under which two pairs count as duplicates: NFC, case-folded, single spaces."""
    def n(s: str) -> str:
        return " ".join(unicodedata.normalize("NFC", s).casefold().split())
    return n(premise), n(hypothesis)


def overlap_rate(premise: str, hypothesis: str, language: str) -> float:
    """Share of hypothesis words that also occur in the premise (the HANS overlap heuristic)."""
    hyp = words(hypothesis, language)
    prem = set(words(premise, language))
    return sum(w in prem for w in hyp) / len(hyp) if hyp else 0.0


def contiguous(premise: str, hypothesis: str, language: str) -> bool:
    """Whether the hypothesis words occur as a contiguous run in the premise (subsequence/constituent)."""
    hyp, prem = words(hypothesis, language), words(premise, language)
    n = len(hyp)
    return n > 0 and any(prem[i:i + n] == hyp for i in range(len(prem) - n + 1))


def label_balance(labels: Iterable[str], expected: Iterable[str], tolerance: float) -> dict[str, Any]:
    """Counts and shares per label; ``balanced`` when every share is within ``tolerance`` of uniform."""
    counts = Counter(labels)
    names = list(expected)
    total = sum(counts.values())
    uniform = 1 / len(names) if names else 0.0
    shares = {k: (counts.get(k, 0) / total if total else 0.0) for k in names}
    worst = max((abs(s - uniform) for s in shares.values()), default=0.0)
    return {"counts": {k: counts.get(k, 0) for k in names}, "total": total,
            "shares": {k: round(v, 4) for k, v in shares.items()}, "max_deviation": round(worst, 4),
            "tolerance": tolerance, "balanced": bool(total) and worst <= tolerance + 1e-9}


# --------------------------------------------------------------------------- surface agreement
Readings = dict[str, list[dict[str, str]]]


def agreement_index(bank: Any) -> tuple[Readings, Readings]:
    """Feature readings of surface words, read back from the lexicons (independent of rendering).

    Returns ``(function_words, content_words)``: single-token entries of the lexicons that templates
    use as agreeing function words (``{lexicon|slot}``: articles, auxiliaries, quantifiers), and
    single-token entries and inflected form cells of every other lexicon (nouns, participles,
    adjectives), each with every set of features it can carry.
    """
    from dsbuild.challenge.template import PLACEHOLDER

    fw_names = {name for t in bank.templates for text in (t.premise, t.hypothesis)
                for name, form, ctrl in PLACEHOLDER.findall(text) if name not in t.slots and ctrl}
    function_words: Readings = {}
    content: Readings = {}
    for name, lex in bank.lexicons.items():
        target = function_words if name in fw_names else content
        for e in lex.entries:
            if " " not in e.text and e.features:
                target.setdefault(e.text.lower(), []).append(dict(e.features))
            if name in fw_names:
                continue
            for form, feats in lex.forms.items():
                value = e.forms.get(form)
                if isinstance(value, dict) and feats:
                    for key, surface in value.items():
                        if " " not in surface:
                            content.setdefault(surface.lower(), []).append(dict(zip(feats, key.split("."))))
    return function_words, content


def adjacent_agreement(sentence: str, index: tuple[Readings, Readings]) -> tuple[int, list[str]]:
    """Check every (function word, next word) pair found in the index: some readings must agree on
    all features they share. Returns (pairs checked, violations as 'w1 w2')."""
    function_words, content = index
    checked, bad = 0, []
    for clause in re.split(r"[.,;:!?¿¡]", sentence.lower()):
        toks = _WORD.findall(clause)
        for w1, w2 in zip(toks, toks[1:]):
            if w1 not in function_words or w2 not in content:
                continue
            pairs = [(r1, r2) for r1 in function_words[w1] for r2 in content[w2] if set(r1) & set(r2)]
            if not pairs:
                continue
            checked += 1
            if not any(all(r1[k] == r2[k] for k in set(r1) & set(r2)) for r1, r2 in pairs):
                bad.append(f"{w1} {w2}")
    return checked, bad
