"""Alignment error rate: reproduces the published figures of the shipped aligner outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsbuild.align import Alignment
from dsbuild.align.evaluation import (
    GoldAlignment,
    alignment_error_rate,
    parse_gold_line,
    read_gold,
    read_links,
    read_parallel,
)
from dsbuild.errors import InputError

DATA = Path("/work/shared/data/word_alignment")
if not DATA.is_dir():  # pragma: no cover - the shared data sits next to the checkout
    DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "word_alignment"


@pytest.mark.parametrize(("pair", "expected"), [("enfr", 0.041), ("roen", 0.207)])
def test_reproduces_published_aer(pair, expected):
    result = alignment_error_rate(read_links(DATA / f"{pair}.awesome-align.out"), read_gold(DATA / f"{pair}.gold"))
    assert round(result.aer, 3) == expected
    assert 0 < result.precision <= 1 and 0 < result.recall <= 1
    src, tgt = read_parallel(DATA / f"{pair}.src-tgt")
    assert len(src) == len(tgt) == result.n_pairs


def test_gold_counts_match_readme():
    enfr = read_gold(DATA / "enfr.gold")
    assert sum(len(g.sure) for g in enfr) == 4038
    assert sum(len(g.possible - g.sure) for g in enfr) == 13400


def test_hand_made_scores():
    gold = [parse_gold_line("1-1 2p2 3-3")]  # 0-indexed: sure (0,0), (2,2); possible (1,1)
    assert gold[0] == GoldAlignment(frozenset({(0, 0), (2, 2)}), frozenset({(0, 0), (1, 1), (2, 2)}))
    perfect = alignment_error_rate([Alignment(((0, 0), (2, 2)))], gold)
    assert perfect.aer == 0.0 and perfect.precision == 1.0 and perfect.recall == 1.0
    # A = {(0,0), (1,1), (0,2)}: A∩S = 1, A∩P = 2 -> AER = 1 - 3/5; P = 2/3; R = 1/2
    r = alignment_error_rate([[(0, 0), (1, 1), (0, 2)]], gold)
    assert r.aer == pytest.approx(0.4) and r.precision == pytest.approx(2 / 3) and r.recall == 0.5
    # possible links do not count against recall
    assert alignment_error_rate([[(0, 0), (2, 2), (1, 1)]], gold).aer == 0.0


def test_bad_files():
    with pytest.raises(InputError, match="bad gold link"):
        parse_gold_line("1-1 2x2")
    with pytest.raises(InputError, match="index 0 in a 1-indexed"):
        parse_gold_line("0-1")
    with pytest.raises(InputError, match="2 predicted alignments but 1 gold"):
        alignment_error_rate([[], []], [parse_gold_line("1-1")])


def test_bad_parallel_line(tmp_path):
    path = tmp_path / "x.src-tgt"
    path.write_text("a b ||| x y\nno separator here\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_parallel(path)
    assert err.value.line == 2
