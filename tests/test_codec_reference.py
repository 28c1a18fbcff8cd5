"""The CODEC reference projector (random-weight Marian, float64): candidates, search, re-ranking, rejects."""

from __future__ import annotations

import pytest

from dsbuild.project._search import Problem, exhaustive_search
from dsbuild.project.codec_reference import (
    NO_PLACEMENT,
    TARGET_OVERLAP,
    CodecReferenceProjector,
    _Incumbent,
    _rerank,
    _Search,
    candidate_positions,
)
from dsbuild.registry import projectors
from dsbuild.spans import Example


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def codec(random_marian):
    model, tok = random_marian
    return CodecReferenceProjector(model=model, tokenizer=tok, batch_size=8)


def ex(id_, words, spans):
    return Example.from_words(id_, words.split(), token_spans=spans)


SOURCES = [
    ex("a", "the cat sat on a mat .", [(1, 2, "PER"), (4, 6, "LOC")]),
    ex("b", "John met Mary", [(0, 1, "PER")]),
    ex("c", "big dog walked quickly to London", [(0, 2, "X"), (5, 6, "Z")]),
]
TEMPLATES = ["red dog saw Paris.", "the cat sat near Berlin while Mary walked", "big tree in city river"]


def test_candidate_positions_thresholds_and_window():
    delta = [0.0, 0.05, 0.2, 0.6, 0.1, 0.0, 0.0, 0.0, 0.09, 0.3, 0.15]
    # 3 is strong (>= 0.5); within 5 of it, 2 and 4 pass 0.1 (1 and 8 do not); 9 and 10 are too far
    assert candidate_positions(delta) == {2, 3, 4}
    assert candidate_positions(delta, threshold=0.25) == {2, 3, 4, 9, 10}
    assert candidate_positions(delta, window=0) == {3}
    assert candidate_positions([0.49, 0.3]) == set()


def test_stage2_candidates_come_from_the_nll_change(codec):
    """The search's opening slots are the thresholded |log p(marked) - log p(clean)| positions
    (at word starts), computed here independently by plain teacher forcing."""
    from dsbuild.project._seq2seq import Row

    scorer = codec.scorer
    src, tmpl = SOURCES[1], TEMPLATES[1]
    codec._src_lang, codec._tgt_lang = "en", "xx"
    done, info = codec._prepare(src, tmpl, "given")
    assert done is None
    search = codec._stage1_2([src], [(0, info)])[0]
    ext = info["forced"] + info["content"] + info["suffix"]
    encs = scorer.encode([src.text, info["marked"][0]])
    clean, marked = scorer.run([Row(enc=e, fed=[scorer.start_id] + ext[:-1], targets=ext) for e in encs], keep_cache=False)
    delta = [abs(a - b) for a, b in zip(marked.target_logp, clean.target_logp)]
    expected = candidate_positions(delta) & info["opens"]
    assert expected, "the random model must move some token's loss by 0.5 nats for this test to mean something"
    assert search.open_ok == frozenset(expected)
    assert search.close_ok == info["closes"]


@pytest.mark.parametrize("case", range(3))
def test_exact_branch_and_bound_equals_exhaustive(codec, case):
    """future_steps < 0 is CODEC's exact bound: the n best placements of one pair equal exhaustive enumeration."""
    scorer = codec.scorer
    src = "the [ cat ] sat on a mat" if case != 2 else "John [ met ] Mary"
    tmpl = ["red dog saw Paris quickly", "the cat sat near Berlin", "big tree in city river ."][case]
    enc = scorer.encode([src])[0]
    forced, content, suffix = scorer.target_ids(tmpl)
    n = len(content)
    opens, closes = frozenset(range(n)), frozenset(range(1, n + 1))
    problem = Problem(enc, forced, content, suffix, 1, opens, closes)
    expected = exhaustive_search(scorer, problem, codec.open_ids, codec.close_ids, nbest=5)
    codec.future_steps = -1
    try:
        inc = codec._search(_Search(enc, content + suffix, n, opens, closes))
    finally:
        codec.future_steps = 1
    found = sorted(inc.heap, reverse=True)
    assert [h[2] for h in found] == [h.slots for h in expected]
    assert [h[0] for h in found] == pytest.approx([h.score for h in expected], abs=1e-7)


def test_heuristic_search_scores_are_exact_scores_of_its_placements(codec):
    """future_steps=1 prunes more (not exact), but every hypothesis it keeps is scored exactly."""
    scorer = codec.scorer
    enc = scorer.encode(["the [ cat ] sat on a mat"])[0]
    forced, content, suffix = scorer.target_ids("red dog saw Paris quickly")
    n = len(content)
    opens, closes = frozenset(range(n)), frozenset(range(1, n + 1))
    calls = codec.stats["search_calls"]
    inc = codec._search(_Search(enc, content + suffix, n, opens, closes))
    assert codec.stats["search_calls"] > calls
    every = {h.slots: h.score for h in exhaustive_search(scorer, Problem(enc, forced, content, suffix, 1, opens, closes),
                                                         codec.open_ids, codec.close_ids, nbest=10**6)}
    assert len(inc.heap) == 5
    for score, _, slots, _ in inc.heap:
        assert score == pytest.approx(every[slots], abs=1e-7)


def test_end_to_end_every_sentence_kept_or_rejected(codec):
    out = codec.project(SOURCES, TEMPLATES, src_lang="en", tgt_lang="xx")
    assert len(out) == len(SOURCES)
    for p in out:
        assert len(p.mapping) + len(p.unprojected) == len(p.source.spans)
        if p.rejected is None:
            assert len(p.target.spans) == len(p.source.spans)
            assert {p.target.spans[j].label for j in p.mapping.values()} == {s.label for s in p.source.spans}
        else:
            assert p.rejected in (NO_PLACEMENT, TARGET_OVERLAP) and not p.target.spans
        assert p.target.text == TEMPLATES[out.index(p)]  # the template is never altered


def test_overlapping_spans_reject_the_sentence(random_marian, monkeypatch):
    model, tok = random_marian
    codec = CodecReferenceProjector(model=model, tokenizer=tok)
    # every entity's only candidate is the same span: the merge finds them overlapping
    monkeypatch.setattr(codec, "_search", lambda s: _Incumbent(heap=[(-1.0, 0, (0, 2), [0.0])]))
    monkeypatch.setattr(codec, "_reverse_nll", lambda a, b: [0.0] * len(a))  # plausible: passes the filter
    p = codec.project(SOURCES[:1], TEMPLATES[:1], src_lang="en", tgt_lang="xx")[0]
    assert p.rejected == TARGET_OVERLAP and not p.mapping and len(p.unprojected) == 2
    # one entity alone on the same template is kept
    q = codec.project(SOURCES[1:2], TEMPLATES[:1], src_lang="en", tgt_lang="xx")[0]
    assert q.rejected is None and len(q.mapping) == 1


def test_missing_span_rejects_the_sentence(random_marian, monkeypatch):
    model, tok = random_marian
    codec = CodecReferenceProjector(model=model, tokenizer=tok)
    monkeypatch.setattr(codec, "_search", lambda s: _Incumbent())  # the search found nothing
    out = codec.project(SOURCES, TEMPLATES, src_lang="en", tgt_lang="xx")
    assert all(p.rejected == NO_PLACEMENT for p in out)
    assert all(u.reason == NO_PLACEMENT for p in out for u in p.unprojected)


def test_rerank_rules():
    # a near-exact string match wins over the forward-best, among the most similar the lowest NLL
    assert _rerank(["paris", "paris .", "de paris"], [9.0, 2.0, 1.0], "paris", "") == 0
    # no similar candidate: the forward-best stays unless a lower-NLL candidate is a word sub-sequence of it
    assert _rerank(["la casa roja", "casa roja", "roja"], [4.0, 3.0, 4.5], "red house", "") == 1
    assert _rerank(["la casa roja", "el perro"], [4.0, 3.0], "red house", "") == 0
    # candidates neither similar (> 0.5) nor plausible (NLL < 5) are filtered: nothing left
    assert _rerank(["xyz"], [7.0], "red house", "casa roja") is None
    # the separate entity translation counts for the similarity
    assert _rerank(["casa roja", "la"], [6.0, 1.0], "red house", "casa roja") == 0


def test_registered():
    assert projectors.get("codec-reference") is CodecReferenceProjector
