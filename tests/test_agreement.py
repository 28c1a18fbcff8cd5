"""Agreement metrics (dsbuild.annotate.agreement) against hand-computed values and scikit-learn."""

from __future__ import annotations

import random

import pytest

from dsbuild.annotate import agreement as ag

REF = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]


def test_hand_computed_single_label_figures() -> None:
    # confusion: a->a 2, a->b 1, b->b 1, b->c 1, c->c 1
    assert ag.confusion(REF, PRED) == {"a": {"a": 2, "b": 1}, "b": {"b": 1, "c": 1}, "c": {"c": 1}}
    assert ag.accuracy(REF, PRED) == pytest.approx(4 / 6)
    per = ag.per_label_from(ag.confusion(REF, PRED))
    # a: P 2/2, R 2/3 -> F1 0.8; b: P 1/2, R 1/2 -> 0.5; c: P 1/2, R 1/1 -> 2/3
    assert [per[k]["f1"] for k in "abc"] == pytest.approx([0.8, 0.5, 2 / 3])
    assert ag.macro_f1(REF, PRED) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # p_o = 4/6; p_e = (3*2 + 2*2 + 1*2) / 36 = 1/3 -> kappa = (2/3 - 1/3) / (2/3) = 0.5
    assert ag.cohen_kappa(REF, PRED) == pytest.approx(0.5)
    # coincidences: o_aa 4, o_bb 2, o_cc 2, o_ab = o_ba = 1, o_bc = o_cb = 1; n_a 5, n_b 4, n_c 3, n 12
    # D_o = 4/12; D_e = 2 (5*4 + 5*3 + 4*3) / (12*11) = 94/132 -> alpha = 1 - 44/94 = 50/94
    assert ag.alpha_from_confusion(ag.confusion(REF, PRED)) == pytest.approx(50 / 94)
    assert ag.krippendorff_alpha(list(zip(REF, PRED))) == pytest.approx(50 / 94)


def test_krippendorff_reference_example_with_missing_values() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 coders x 12 units, nominal: 0.743
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [list(col) for col in zip(*data)]
    assert ag.krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)


def test_perfect_and_chance_agreement() -> None:
    same = ["x", "y", "z", "x"]
    assert ag.cohen_kappa(same, same) == 1.0
    assert ag.alpha_from_confusion(ag.confusion(same, same)) == 1.0
    assert ag.accuracy(same, same) == 1.0
    # one rater always says "x": kappa 0 (no agreement beyond chance)
    assert ag.cohen_kappa(["x", "y", "x", "y"], ["x", "x", "x", "x"]) == pytest.approx(0.0)


def test_no_answer_counts_as_wrong_but_is_no_label() -> None:
    conf = ag.confusion(["a", "a", "b"], ["a", None, "b"])
    assert conf["a"][ag.NO_ANSWER] == 1
    s = ag.scores_from(conf)
    assert s["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert set(s["per_label"]) == {"a", "b"}
    assert s["per_label"]["a"]["recall"] == 0.5 and s["no_answer"] == 1


def test_counts_summed_over_shards_give_the_same_figures() -> None:
    whole = ag.confusion(REF, PRED)
    parts = ag.add_confusion(ag.confusion(REF[:2], PRED[:2]), ag.confusion(REF[2:], PRED[2:]))
    assert ag.scores_from(parts) == ag.scores_from(whole)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn(seed: int) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = random.Random(seed)
    labels = list("abcde")
    ref = [rng.choice(labels[:4]) for _ in range(300)]
    pred = [r if rng.random() < 0.55 else rng.choice(labels) for r in ref]
    assert ag.accuracy(ref, pred) == pytest.approx(sk.accuracy_score(ref, pred))
    assert ag.macro_f1(ref, pred) == pytest.approx(sk.f1_score(ref, pred, average="macro", zero_division=0))
    assert ag.cohen_kappa(ref, pred) == pytest.approx(sk.cohen_kappa_score(ref, pred))
    p, r, f, support = sk.precision_recall_fscore_support(ref, pred, labels=labels, zero_division=0)
    per = ag.per_label_from(ag.confusion(ref, pred), labels)
    assert [per[k]["f1"] for k in labels] == pytest.approx(list(f))
    assert [per[k]["precision"] for k in labels] == pytest.approx(list(p))
    assert [per[k]["support"] for k in labels] == list(support)
    # two coders, nothing missing: alpha from the confusion table equals the general formula
    assert ag.alpha_from_confusion(ag.confusion(ref, pred)) == pytest.approx(ag.krippendorff_alpha(list(zip(ref, pred))))


def test_multilabel_hand_computed() -> None:
    ref = [["a", "b"], ["a"], ["c"]]
    pred = [["a"], ["a", "c"], None]
    counts = ag.multilabel_counts(ref, pred)
    # a: tp 2; b: fn 1; c: fp 1, fn 1
    assert counts["labels"] == {"a": {"tp": 2, "fp": 0, "fn": 0}, "b": {"tp": 0, "fp": 0, "fn": 1},
                                "c": {"tp": 0, "fp": 1, "fn": 1}}
    s = ag.multilabel_scores(counts)
    assert s["exact_match"] == 0.0
    # micro: P 2/3, R 2/4 -> F1 = 2 * (2/3 * 1/2) / (2/3 + 1/2) = 4/7
    assert s["micro_f1"] == pytest.approx(4 / 7, abs=1e-4)
    assert s["macro_f1"] == pytest.approx(1 / 3, abs=1e-4)
