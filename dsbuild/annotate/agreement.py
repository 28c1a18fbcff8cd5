"""Agreement between two labellings (teacher vs human, student vs human): written out, no sklearn.

Single-label figures are computed from a confusion table ``{reference: {prediction: count}}``, so
counts summed over shards give exactly the figures of the whole split:

- ``accuracy``;
- per-label precision, recall, F1 and support, and ``macro_f1`` over the labels that occur in the
  reference or the predictions (scikit-learn's default label set, ``zero_division=0``);
  ``macro_f1_reference_labels`` averages over the reference labels only (useful when the
  reference uses a few labels of a larger schema);
- Cohen's kappa (two raters, nominal);
- Krippendorff's alpha, nominal, from the coincidence matrix (Krippendorff 2011, "Computing
  Krippendorff's alpha-reliability"); :func:`krippendorff_alpha` also takes any number of coders
  with missing values.

A prediction that is no label at all (the teacher failed) is the category :data:`NO_ANSWER`: it
counts as wrong everywhere, and is not a label of its own in macro averages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

NO_ANSWER = "(no answer)"
Confusion = dict[str, dict[str, int]]


def confusion(reference: Sequence[str], predicted: Sequence[str | None]) -> Confusion:
    """``{reference label: {predicted label: count}}``; ``None`` predictions become :data:`NO_ANSWER`."""
    if len(reference) != len(predicted):
        raise ValueError(f"{len(reference)} reference labels but {len(predicted)} predictions")
    out: Confusion = {}
    for ref, pred in zip(reference, predicted):
        row = out.setdefault(ref, {})
        key = NO_ANSWER if pred is None else pred
        row[key] = row.get(key, 0) + 1
    return out


def add_confusion(into: Confusion, other: Confusion) -> Confusion:
    """Sum ``other`` into ``into`` (in place) and return it."""
    for ref, row in other.items():
        target = into.setdefault(ref, {})
        for pred, n in row.items():
            target[pred] = target.get(pred, 0) + n
    return into


def _total(conf: Confusion) -> int:
    return sum(n for row in conf.values() for n in row.values())


def accuracy_from(conf: Confusion) -> float:
    n = _total(conf)
    return sum(row.get(ref, 0) for ref, row in conf.items()) / n if n else 0.0


def per_label_from(conf: Confusion, labels: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label (``labels``: default every label seen, not NO_ANSWER)."""
    if labels is None:
        labels = _labels(conf)
    predicted = Counter()
    for row in conf.values():
        for pred, n in row.items():
            predicted[pred] += n
    out = {}
    for label in labels:
        tp = conf.get(label, {}).get(label, 0)
        support = sum(conf.get(label, {}).values())
        p = tp / predicted[label] if predicted[label] else 0.0
        r = tp / support if support else 0.0
        out[label] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": support}
    return out


def _labels(conf: Confusion) -> list[str]:
    seen = set(conf)
    for row in conf.values():
        seen.update(row)
    seen.discard(NO_ANSWER)
    return sorted(seen)


def macro_f1_from(conf: Confusion, labels: Sequence[str] | None = None) -> float:
    scores = per_label_from(conf, labels)
    return sum(s["f1"] for s in scores.values()) / len(scores) if scores else 0.0


def cohen_kappa_from(conf: Confusion) -> float:
    """(p_o - p_e) / (1 - p_e) with p_e from the two raters' marginals; 1.0 when both use one label."""
    n = _total(conf)
    if not n:
        return 0.0
    rows = Counter({ref: sum(row.values()) for ref, row in conf.items()})
    cols: Counter[str] = Counter()
    for row in conf.values():
        cols.update(row)
    p_o = accuracy_from(conf)
    p_e = sum(rows[c] * cols[c] for c in set(rows) | set(cols)) / (n * n)
    return 1.0 if p_e == 1 else (p_o - p_e) / (1 - p_e)


def alpha_from_confusion(conf: Confusion) -> float:
    """Nominal Krippendorff's alpha of two coders with no missing values (each unit coded twice)."""
    # two values per unit: an agreeing unit adds 2 to o[c, c], a disagreeing one 1 to o[c, k] and o[k, c]
    coincidence: Counter[tuple[Any, Any]] = Counter()
    for ref, row in conf.items():
        for pred, n in row.items():
            if ref == pred:
                coincidence[(ref, ref)] += 2 * n
            else:
                coincidence[(ref, pred)] += n
                coincidence[(pred, ref)] += n
    return _alpha(coincidence)


def krippendorff_alpha(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Nominal alpha; ``units[u]`` holds the values the coders gave unit ``u`` (``None``: missing).

    Units with fewer than two values are not pairable and are skipped. ``1 - D_o / D_e``, with the
    observed and expected disagreement from the coincidence matrix. 1.0 when there is no variation.
    """
    coincidence: Counter[tuple[Any, Any]] = Counter()
    for values in units:
        vals = [v for v in values if v is not None]
        m = len(vals)
        if m < 2:
            continue
        counts = Counter(vals)
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nc - 1) if c == k else nc * nk
                if pairs:
                    coincidence[(c, k)] += pairs / (m - 1)
    return _alpha(coincidence)


def _alpha(coincidence: Counter[tuple[Any, Any]]) -> float:
    """``1 - D_o / D_e`` from a nominal coincidence matrix."""
    n_c: Counter[Any] = Counter()
    for (c, _k), v in coincidence.items():
        n_c[c] += v
    n = sum(n_c.values())
    if n <= 1:
        return 0.0
    d_o = sum(v for (c, k), v in coincidence.items() if c != k) / n
    d_e = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n * (n - 1))
    return 1.0 if d_e == 0 else 1 - d_o / d_e


def scores_from(conf: Confusion, *, digits: int = 4) -> dict[str, Any]:
    """Every single-label figure of one confusion table, rounded (what quality.json holds)."""
    per_label = per_label_from(conf)
    return {
        "n": _total(conf),
        "accuracy": round(accuracy_from(conf), digits),
        "macro_f1": round(macro_f1_from(conf), digits),
        "macro_f1_reference_labels": round(macro_f1_from(conf, sorted(conf)), digits),
        "cohen_kappa": round(cohen_kappa_from(conf), digits),
        "krippendorff_alpha": round(alpha_from_confusion(conf), digits),
        "no_answer": sum(row.get(NO_ANSWER, 0) for row in conf.values()),
        "per_label": {k: {m: round(v, digits) if isinstance(v, float) else v for m, v in s.items()}
                      for k, s in per_label.items()},
    }


def scores(reference: Sequence[str], predicted: Sequence[str | None], *, digits: int = 4) -> dict[str, Any]:
    """:func:`scores_from` of two label lists."""
    return scores_from(confusion(reference, predicted), digits=digits)


# ----------------------------------------------------------------------------- list helpers
def accuracy(reference: Sequence[str], predicted: Sequence[str | None]) -> float:
    return accuracy_from(confusion(reference, predicted))


def macro_f1(reference: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str] | None = None) -> float:
    return macro_f1_from(confusion(reference, predicted), labels)


def cohen_kappa(a: Sequence[str], b: Sequence[str | None]) -> float:
    return cohen_kappa_from(confusion(a, b))


# ----------------------------------------------------------------------------- multi-label
def multilabel_counts(reference: Sequence[Sequence[str]], predicted: Sequence[Sequence[str] | None]) -> dict[str, Any]:
    """Counts that sum over shards: per label tp/fp/fn, exact-match items, items."""
    out: dict[str, Any] = {"items": 0, "exact": 0, "labels": {}}
    for ref, pred in zip(reference, predicted):
        ref_set, pred_set = set(ref), set(pred or ())
        out["items"] += 1
        out["exact"] += int(ref_set == pred_set and pred is not None)
        for label in ref_set | pred_set:
            c = out["labels"].setdefault(label, {"tp": 0, "fp": 0, "fn": 0})
            c["tp" if label in ref_set and label in pred_set else "fn" if label in ref_set else "fp"] += 1
    return out


def multilabel_scores(counts: dict[str, Any], *, digits: int = 4) -> dict[str, Any]:
    """Exact-match accuracy, micro and macro F1 and per-label F1 from :func:`multilabel_counts`."""
    per_label, tp_all, fp_all, fn_all = {}, 0, 0, 0
    for label, c in sorted(counts.get("labels", {}).items()):
        tp, fp, fn = c["tp"], c["fp"], c["fn"]
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        per_label[label] = {"precision": round(p, digits), "recall": round(r, digits),
                            "f1": round(2 * p * r / (p + r), digits) if p + r else 0.0, "support": tp + fn}
    micro_p = tp_all / (tp_all + fp_all) if tp_all + fp_all else 0.0
    micro_r = tp_all / (tp_all + fn_all) if tp_all + fn_all else 0.0
    items = counts.get("items", 0)
    return {"n": items, "exact_match": round(counts.get("exact", 0) / items, digits) if items else 0.0,
            "micro_f1": round(2 * micro_p * micro_r / (micro_p + micro_r), digits) if micro_p + micro_r else 0.0,
            "macro_f1": round(sum(s["f1"] for s in per_label.values()) / len(per_label), digits) if per_label else 0.0,
            "per_label": per_label}


__all__ = ["NO_ANSWER", "accuracy", "accuracy_from", "add_confusion", "alpha_from_confusion", "cohen_kappa",
           "cohen_kappa_from", "confusion", "krippendorff_alpha", "macro_f1", "macro_f1_from", "multilabel_counts",
           "multilabel_scores", "per_label_from", "scores", "scores_from"]
