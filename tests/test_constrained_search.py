"""The constrained search against exhaustive enumeration (random-weight Marian, float64)."""

from __future__ import annotations

import pytest

from dsbuild.project._search import MarkerSearch, Problem, exhaustive_search, marked_labels, strip_markers, valid_placements
from dsbuild.project._seq2seq import Seq2SeqScorer
from dsbuild.project._common import target_example
from dsbuild.project.constrained import allowed_slots, marker_token_ids, piece_char_spans
from dsbuild.spans import Example

# (marked source, template, number of pairs)
CASES = [
    ("the [ cat ] sat on [ a mat ] .", "red dog saw Paris", 2),
    ("John [ met ] Mary", "the cat sat near Berlin while Mary walked", 1),
    ("[ big ] dog walked [ quickly ] to [ London ]", "big tree in city river", 3),
    ("[ Mary ] saw [ John ]", "John met Mary at noon.", 2),
    ("a [ red house ] near the river", "the cat sat on a mat near Paris.", 1),
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention on a shared 2-core box
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def setup(random_marian):
    model, tok = random_marian
    scorer = Seq2SeqScorer(model, tok)
    open_ids, close_ids = marker_token_ids(scorer, ("[", "]"))
    encs = scorer.encode([c[0] for c in CASES])
    problems = []
    for (src, tmpl, k), e in zip(CASES, encs):
        forced, content, suffix = scorer.target_ids(tmpl)
        n = len(content)
        problems.append(Problem(e, forced, content, suffix, k, frozenset(range(n)), frozenset(range(1, n + 1))))
    return scorer, open_ids, close_ids, problems


@pytest.fixture(scope="module")
def exact_results(setup):
    scorer, open_ids, close_ids, problems = setup
    return MarkerSearch(scorer, open_ids, close_ids, nbest=5, max_expansions=10**6).run(problems)


def _check_same(found, expected):
    assert [h.slots for h in found] == [h.slots for h in expected]
    for a, b in zip(found, expected):
        assert a.score == pytest.approx(b.score, abs=1e-7)


def test_search_equals_exhaustive_nbest(setup, exact_results):
    scorer, open_ids, close_ids, problems = setup
    for problem, res in zip(problems, exact_results):
        assert res.exact
        _check_same(res.nbest, exhaustive_search(scorer, problem, open_ids, close_ids, nbest=5))


def test_search_without_kv_cache_gives_the_same_nbest(setup, exact_results):
    scorer, open_ids, close_ids, problems = setup
    scorer.use_cache = False
    try:
        results = MarkerSearch(scorer, open_ids, close_ids, nbest=5, max_expansions=10**6).run(problems[:3])
    finally:
        scorer.use_cache = True
    for res, expected in zip(results, exact_results):
        _check_same(res.nbest, expected.nbest)


def test_search_multi_piece_markers_are_looked_up(setup):
    scorer, open_ids, close_ids, _ = setup
    # this tokenizer splits " [" into "▁" + "[" : the search must handle multi-piece markers
    assert len(open_ids) == 2 and scorer.decode(open_ids).strip() == "["
    assert scorer.tokenizer.convert_ids_to_tokens(close_ids)[-1] == "]"


def test_search_restricted_slots_equals_exhaustive(setup):
    scorer, open_ids, close_ids, problems = setup
    restricted = []
    for p in problems:
        opens = frozenset(j for j in p.open_slots if j % 2 == 0) or p.open_slots
        closes = frozenset(j for j in p.close_slots if j != p.n) or p.close_slots
        restricted.append(Problem(p.enc, p.forced, p.content, p.suffix, min(p.n_pairs, 2), opens, closes))
    results = MarkerSearch(scorer, open_ids, close_ids, nbest=3, max_expansions=10**6).run(restricted)
    for problem, res in zip(restricted, results):
        expected = exhaustive_search(scorer, problem, open_ids, close_ids, nbest=3)
        _check_same(res.nbest, expected)
        for h in res.nbest:
            assert all(h.slots[i] in problem.open_slots for i in range(0, len(h.slots), 2))


def test_memory_bound_does_not_change_result(setup, exact_results):
    scorer, open_ids, close_ids, problems = setup
    tight = MarkerSearch(scorer, open_ids, close_ids, nbest=5, max_expansions=10**6, max_cache_bytes=1).run(problems[:3])
    for a, b in zip(exact_results, tight):
        _check_same(b.nbest, a.nbest)


def test_heuristic_bound_is_valid_and_not_better_than_exact(setup, exact_results):
    scorer, open_ids, close_ids, problems = setup
    exact = exact_results
    fast = MarkerSearch(scorer, open_ids, close_ids, nbest=5, max_expansions=10**6, heuristic=True).run(problems)
    same_best = 0
    for problem, e, f in zip(problems, exact, fast):
        assert f.expansions <= e.expansions
        assert e.nbest and f.nbest, "every case has valid placements; the heuristic search must return one"
        assert f.nbest[0].score <= e.nbest[0].score + 1e-9
        assert f.nbest[0].slots in set(valid_placements(problem))
        same_best += f.nbest[0].slots == e.nbest[0].slots
    # the bound trades exactness for speed, but on these short cases it must still find the optimum mostly
    assert same_best >= len(problems) - 1


def test_budget_exhaustion_reports_not_exact(setup):
    scorer, open_ids, close_ids, problems = setup
    res = MarkerSearch(scorer, open_ids, close_ids, nbest=5, max_expansions=2).run(problems[2:3])[0]
    assert not res.exact and res.expansions <= 2


def test_markers_removed_give_template(setup):
    scorer, open_ids, close_ids, problems = setup
    for p, (_, template, _) in zip(problems, CASES):
        target = target_example(Example.from_words("t", ["x"]), template)
        opens, closes = allowed_slots(piece_char_spans(scorer, p.content, template), target)
        for slots in list(valid_placements(p))[:50]:
            labels = marked_labels(p, slots, open_ids, close_ids)
            assert strip_markers(labels, slots, p, open_ids, close_ids) == p.content
            assert len(labels) == len(p.forced) + p.n + len(p.suffix) + p.n_pairs * (len(open_ids) + len(close_ids))
            if not (all(s in opens for s in slots[::2]) and all(s in closes for s in slots[1::2])):
                continue  # inside a word: the text check below is about word-boundary slots
            text = scorer.decode(labels)
            # same characters (a marker before punctuation may change a space, never a character)
            assert "".join(text.replace("[", "").replace("]", "").split()) == "".join(template.split())


def test_piece_char_spans_fast_path_matches_prefix_decoding(setup):
    scorer = setup[0]
    for _, template, _ in CASES:
        content = scorer.target_ids(template)[1]
        fast = piece_char_spans(scorer, content, template)
        decoded = scorer.decode(content)
        ends = [len(scorer.decode(content[: i + 1])) for i in range(len(content))]
        for (a, b), e in zip(fast, ends):
            assert b == max(e, a) and not decoded[a:b].startswith(" ")
        # a template whose spelling differs (double space) still maps onto its own characters
        spaced = template.replace(" ", "  ", 1)
        mapped = piece_char_spans(scorer, scorer.target_ids(spaced)[1], spaced)
        for span in mapped:
            if span is not None and span[0] < span[1]:
                assert spaced[span[0] : span[1]].strip() == spaced[span[0] : span[1]]


@pytest.mark.parametrize("window", [1, 3, None])
def test_windowed_and_speculative_search_equals_exhaustive(setup, exact_results, window):
    """Continuation nodes (short windows) and speculative expansion along guessed placements
    (given a root pass) must not change the exact n-best."""
    from dsbuild.project._seq2seq import Row

    scorer, open_ids, close_ids, problems = setup
    roots = []
    for p in problems:
        ext = p.forced + p.content + p.suffix
        roots.append(Row(enc=p.enc, fed=[scorer.start_id] + ext[:-1], targets=ext))
    root_results = scorer.run(roots, extra_ids=[open_ids[0], close_ids[0]])
    search = MarkerSearch(scorer, open_ids, close_ids, nbest=5, max_expansions=10**6, window=window, max_guesses=3, guess_min_logp=float("-inf"))
    for problem, res, expected in zip(problems, search.run(problems, roots=root_results), exact_results):
        assert res.exact
        _check_same(res.nbest, expected.nbest)
    assert search.speculated_rows > 0


def _guesses_unpruned(p, root, max_guesses, min_logp=-3.0):
    """Reference for _guess_placements: every marker pattern over the candidate slots, no pruning."""
    import math

    f = len(p.forced)
    lp = {j: max(root.extra_logp[f + j]) for j in range(p.n + 1) if f + j < len(root.extra_logp)}
    cands = sorted(j for j in sorted(lp, key=lambda j: -lp[j])[: 2 * p.n_pairs + 3] if lp[j] >= min_logp)
    skip = {j: math.log1p(-min(math.exp(lp[j]), 1 - 1e-9)) for j in cands}
    found = []

    def rec(i, placed, score):
        if i == len(cands):
            if len(placed) == 2 * p.n_pairs:
                found.append((score, placed))
            return
        j = cands[i]
        rec(i + 1, placed, score + skip[j])
        if len(placed) % 2 == 0:
            if j in p.open_slots and j < p.n:
                rec(i + 1, placed + (j,), score + lp[j])
        elif j in p.close_slots and j > placed[-1]:
            rec(i + 1, placed + (j,), score + lp[j])
            if j in p.open_slots and j < p.n:
                rec(i + 1, placed + (j, j), score + lp[j])

    rec(0, (), 0.0)
    found.sort(key=lambda x: (-x[0], x[1]))
    return [g for _, g in found[:max_guesses]]


def test_guess_enumeration_pruning_keeps_the_best_patterns():
    """The guess enumeration prunes partial patterns by score: same top patterns as without pruning (ties included)."""
    import math
    import random
    from types import SimpleNamespace

    from dsbuild.project._search import _guess_placements

    rnd = random.Random(7)
    for _ in range(400):
        n, k = rnd.randint(1, 20), rnd.randint(1, 4)
        p = Problem(0, [], list(range(n)), [2], k, frozenset(j for j in range(n) if rnd.random() < 0.8),
                    frozenset(j for j in range(1, n + 1) if rnd.random() < 0.8))
        extra = [[math.log(rnd.random() ** rnd.choice([0.2, 1, 3]) + 1e-12), math.log(rnd.random() ** 3 + 1e-12)] for _ in range(n + 2)]
        if rnd.random() < 0.3:
            extra = [[round(a), round(b)] for a, b in extra]  # ties
        root = SimpleNamespace(extra_logp=extra)
        guesses = rnd.choice([1, 2, 3])
        assert _guess_placements(p, root, guesses) == _guesses_unpruned(p, root, guesses)
