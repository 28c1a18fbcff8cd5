"""Span precision / recall / F1 (exact match, micro and per label)."""

import pytest

from dsbuild import Example
from dsbuild.errors import InputError
from dsbuild.evaluate import evaluate_examples, span_prf


def test_micro_and_per_label_counts():
    pred = [[(0, 2, "PER"), (3, 4, "LOC")], [(1, 2, "ORG")]]
    gold = [[(0, 2, "PER"), (3, 5, "LOC")], [(1, 2, "ORG"), (4, 5, "MISC")]]
    s = span_prf(pred, gold)
    assert (s.micro.tp, s.micro.n_pred, s.micro.n_gold) == (2, 3, 4)
    assert s.micro.precision == pytest.approx(2 / 3)
    assert s.micro.recall == pytest.approx(0.5)
    assert s.micro.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert s.per_label["LOC"].f1 == 0.0  # boundary differs: no partial credit
    assert s.per_label["PER"].f1 == 1.0
    assert s.per_label["MISC"].recall == 0.0 and s.per_label["MISC"].n_pred == 0
    assert set(s.to_dict()["per_label"]) == {"LOC", "MISC", "ORG", "PER"}


def test_label_must_match_and_duplicates_count_once_each():
    s = span_prf([[(0, 1, "ORG"), (0, 1, "ORG")]], [[(0, 1, "PER"), (0, 1, "ORG")]])
    assert s.micro.tp == 1 and s.micro.n_pred == 2 and s.micro.n_gold == 2


def test_empty_inputs_give_zero_not_crash():
    s = span_prf([[], []], [[], []])
    assert s.micro.f1 == 0.0 and s.micro.precision == 0.0


def test_length_mismatch_is_an_error():
    with pytest.raises(InputError, match="1 predicted examples but 2 gold"):
        span_prf([[]], [[], []])


def test_evaluate_examples_checks_tokens():
    g = Example.from_words("a", ["Angela", "Merkel", "spoke"], tags=["B-PER", "I-PER", "O"])
    p = g.with_spans([g.span_from_tokens(0, 1, "PER")])
    s = evaluate_examples([p], [g])
    assert s.micro.tp == 0 and s.micro.n_gold == 1
    other = Example.from_words("a", ["Angela", "Merkel", "spoke", "."])
    with pytest.raises(InputError, match="tokens differ"):
        evaluate_examples([other], [g])
