"""Span evaluation: precision, recall and F1 of predicted (projected) spans against gold spans.

Matching is exact: a predicted span counts as correct only when its label and its token
boundaries both equal those of a gold span in the same example. Figures are reported micro-averaged
over all spans and per label (for per-label figures only spans of that label count)::

    >>> from dsbuild.evaluate import span_prf
    >>> s = span_prf([[(0, 2, "PER")]], [[(0, 2, "PER"), (4, 5, "LOC")]])
    >>> round(s.micro.f1, 3), s.per_label["LOC"].recall
    (0.667, 0.0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsbuild.errors import InputError
from dsbuild.spans import Example, Span

SpanKey = tuple[int, int, str]


@dataclass(frozen=True)
class PRF:
    """Counts and the derived precision / recall / F1 (0.0 when undefined)."""

    tp: int
    n_pred: int
    n_gold: int

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        return {"precision": round(self.precision, digits), "recall": round(self.recall, digits),
                "f1": round(self.f1, digits), "tp": self.tp, "predicted": self.n_pred, "gold": self.n_gold}


@dataclass(frozen=True)
class SpanScores:
    """Micro-averaged and per-label span scores."""

    micro: PRF
    per_label: dict[str, PRF] = field(default_factory=dict)

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        return {"micro": self.micro.to_dict(digits),
                "per_label": {k: v.to_dict(digits) for k, v in sorted(self.per_label.items())}}


def _keys(spans: Iterable[Span | SpanKey]) -> Counter[SpanKey]:
    out: Counter[SpanKey] = Counter()
    for s in spans:
        out[(s.token_start, s.token_end, s.label) if isinstance(s, Span) else (int(s[0]), int(s[1]), str(s[2]))] += 1
    return out


def span_prf(predicted: Sequence[Iterable[Span | SpanKey]], gold: Sequence[Iterable[Span | SpanKey]]) -> SpanScores:
    """Exact-match span P/R/F1 over parallel lists (one entry per example) of spans.

    Each entry holds :class:`~dsbuild.spans.Span` objects or ``(token_start, token_end, label)``
    triples (end exclusive). Duplicated spans count once per occurrence.
    """
    if len(predicted) != len(gold):
        raise InputError(f"{len(predicted)} predicted examples but {len(gold)} gold examples",
                         hint="pass one (possibly empty) list of spans per example, in the same order")
    tp: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    for pred_spans, gold_spans in zip(predicted, gold):
        p, g = _keys(pred_spans), _keys(gold_spans)
        for key, n in p.items():
            n_pred[key[2]] += n
            tp[key[2]] += min(n, g.get(key, 0))
        for key, n in g.items():
            n_gold[key[2]] += n
    labels = sorted(set(n_pred) | set(n_gold))
    per_label = {lab: PRF(tp[lab], n_pred[lab], n_gold[lab]) for lab in labels}
    micro = PRF(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    return SpanScores(micro, per_label)


def evaluate_examples(predicted: Sequence[Example], gold: Sequence[Example], *, check_tokens: bool = True) -> SpanScores:
    """Span P/R/F1 of ``predicted`` examples against ``gold`` examples (same order, same tokens).

    With ``check_tokens`` the token sequences must agree, since token-index spans cannot be
    compared across tokenisations.
    """
    if len(predicted) != len(gold):
        raise InputError(f"{len(predicted)} predicted examples but {len(gold)} gold examples",
                         hint="evaluate the projected examples against the gold examples of the same sentences")
    if check_tokens:
        for p, g in zip(predicted, gold):
            if p.words != g.words:
                raise InputError("predicted and gold tokens differ", example_id=p.id,
                                 hint="project onto the gold tokenisation (pass gold token lists as targets)")
    return span_prf([p.spans for p in predicted], [g.spans for g in gold])
