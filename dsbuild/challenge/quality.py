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
