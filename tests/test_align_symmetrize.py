"""Symmetrisation heuristics: hand-made cases and agreement with a literal transcription of Moses'
pseudo-code on random alignments."""

from __future__ import annotations

import random

import pytest

from dsbuild.align import SYMMETRIZATION_METHODS, symmetrize, symmetrize_batch
from dsbuild.errors import ConfigError


def _all(fwd, rev):
    return {m: set(symmetrize(fwd, rev, m)) for m in SYMMETRIZATION_METHODS}


def test_intersection_and_union():
    fwd = {(0, 0), (1, 1), (2, 1)}
    rev = {(0, 0), (1, 1), (1, 2)}
    assert symmetrize(fwd, rev, "intersection") == [(0, 0), (1, 1)]
    assert symmetrize(fwd, rev, "union") == [(0, 0), (1, 1), (1, 2), (2, 1)]


def test_grow_diag_adds_diagonal_neighbour():
    res = _all({(0, 0), (1, 1)}, {(0, 0)})
    assert res["intersection"] == {(0, 0)}
    assert res["grow-diag"] == {(0, 0), (1, 1)}  # diagonal neighbour, both words unaligned


def test_grow_diag_needs_an_unaligned_word():
    # (0, 1) neighbours (0, 0) but both its words are already aligned: not added by growing or final.
    res = _all({(0, 0), (1, 1), (0, 1)}, {(0, 0), (1, 1)})
    assert res["grow-diag"] == {(0, 0), (1, 1)}
    assert res["grow-diag-final"] == {(0, 0), (1, 1)}
    assert res["grow-diag-final-and"] == {(0, 0), (1, 1)}
    assert res["union"] == {(0, 0), (1, 1), (0, 1)}


def test_final_adds_isolated_links():
    # (2, 2) is not next to anything: only the final step can add it; both words are free.
    res = _all({(0, 0), (2, 2)}, {(0, 0)})
    assert res["grow-diag"] == {(0, 0)}
    assert res["grow-diag-final"] == {(0, 0), (2, 2)}
    assert res["grow-diag-final-and"] == {(0, 0), (2, 2)}


def test_final_and_needs_both_words_unaligned():
    # (2, 0): source word 2 free but target word 0 taken -> final adds it, final-and does not.
    res = _all({(0, 0), (2, 0)}, {(0, 0)})
    assert res["grow-diag"] == {(0, 0)}
    assert res["grow-diag-final"] == {(0, 0), (2, 0)}
    assert res["grow-diag-final-and"] == {(0, 0)}


def test_growing_chains_through_new_points():
    # A diagonal staircase only in the forward direction grows from the single sure link.
    fwd = {(k, k) for k in range(5)}
    assert symmetrize(fwd, {(0, 0)}, "grow-diag") == sorted(fwd)


def test_empty_and_batch():
    assert symmetrize([], [], "grow-diag-final-and") == []
    assert symmetrize([(0, 0)], [], "grow-diag") == []  # empty intersection, nothing to grow from
    assert symmetrize([(0, 0)], [], "grow-diag-final") == [(0, 0)]
    assert symmetrize_batch([[(0, 0)], []], [[(0, 0)], [(1, 1)]], "union") == [[(0, 0)], [(1, 1)]]


def test_unknown_method():
    with pytest.raises(ConfigError, match="grow-diag-final-and"):
        symmetrize([(0, 0)], [(0, 0)], "grow-diagonal")


# --- a literal transcription of the Moses manual's pseudo-code, as an independent reference ---

def _moses(fwd, rev, n, m, method):
    union = fwd | rev
    a = set(fwd & rev)
    neighbours = [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]

    def e_aligned(e):
        return any((e, f) in a for f in range(m))

    def f_aligned(f):
        return any((e, f) in a for e in range(n))

    added = True
    while added:
        added = False
        for e in range(n):
            for f in range(m):
                if (e, f) in a:
                    for de, df in neighbours:
                        en, fn = e + de, f + df
                        if (en, fn) in union and (en, fn) not in a and (not e_aligned(en) or not f_aligned(fn)):
                            a.add((en, fn))
                            added = True
    if method == "grow-diag":
        return a
    for d in (fwd, rev):
        for e in range(n):
            for f in range(m):
                if (e, f) in d and (e, f) not in a:
                    free_e, free_f = not e_aligned(e), not f_aligned(f)
                    if (free_e and free_f) if method == "grow-diag-final-and" else (free_e or free_f):
                        a.add((e, f))
    return a


def _random_directional(rng, n, m):
    fwd = {(rng.randrange(n), j) for j in range(m) if rng.random() < 0.8}  # each target word <= 1 source
    rev = {(i, rng.randrange(m)) for i in range(n) if rng.random() < 0.8}  # each source word <= 1 target
    return fwd, rev


@pytest.mark.parametrize("method", ["grow-diag", "grow-diag-final", "grow-diag-final-and"])
def test_matches_literal_moses_pseudocode(method):
    rng = random.Random(7)
    for _ in range(300):
        n, m = rng.randint(1, 9), rng.randint(1, 9)
        fwd, rev = _random_directional(rng, n, m)
        assert set(symmetrize(fwd, rev, method)) == _moses(fwd, rev, n, m, method), (fwd, rev)


def test_heuristics_are_nested():
    rng = random.Random(3)
    for _ in range(200):
        fwd, rev = _random_directional(rng, rng.randint(1, 12), rng.randint(1, 12))
        r = _all(fwd, rev)
        assert r["intersection"] <= r["grow-diag"] <= r["grow-diag-final-and"] <= r["union"]
        assert r["grow-diag"] <= r["grow-diag-final"] <= r["union"]


def test_final_and_is_not_always_inside_final():
    # grow-diag gives {(0,1), (1,0)}. final adds (0,3) (target 3 free) and (3,1) (source 3 free), after
    # which (3,3) has both words aligned; final-and skips those two and adds (3,3) (both free).
    fwd = {(0, 3), (1, 0), (3, 1)}
    rev = {(0, 1), (1, 0), (3, 3)}
    assert symmetrize(fwd, rev, "grow-diag") == [(0, 1), (1, 0)]
    assert symmetrize(fwd, rev, "grow-diag-final") == [(0, 1), (0, 3), (1, 0), (3, 1)]
    assert symmetrize(fwd, rev, "grow-diag-final-and") == [(0, 1), (1, 0), (3, 3)]
