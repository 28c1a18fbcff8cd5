"""Span projection rules on hand-made alignments (no aligner runs here)."""

import pytest

from dsbuild import Example
from dsbuild.align.base import Alignment
from dsbuild.errors import ConfigError
from dsbuild.project.alignment import AlignmentProjectionOptions, LinkViews, project_sentence


def src(words, spans):
    return Example.from_words("s", words, token_spans=spans)


def tgt(words):
    return Example.from_words("t", words)


def diag(n, skip=()):
    return {(i, i) for i in range(n) if i not in skip}


def check_accounting(proj):
    """Every source span is projected (via mapping) or unprojected, never both, never neither."""
    assert len(proj.mapping) + len(proj.unprojected) == len(proj.source.spans)
    unproj = {id(u.span) for u in proj.unprojected}
    for k, span in enumerate(proj.source.spans):
        assert (k in proj.mapping) != (id(span) in unproj)
    proj.target.validate()


def test_simple_projection_with_crossing_links():
    s = src(["the", "European", "Parliament", "met"], [(1, 3, "ORG")])
    t = tgt(["el", "Parlamento", "Europeo", "se", "reunió"])
    links = {(0, 0), (1, 2), (2, 1), (3, 3), (3, 4)}
    proj = project_sentence(s, t, LinkViews(frozenset(links)))
    check_accounting(proj)
    [span] = proj.target.spans
    assert (span.token_start, span.token_end, span.label) == (1, 3, "ORG")
    assert proj.target.span_text(span) == "Parlamento Europeo"
    assert 0 < span.score <= 1
    assert proj.mapping == {0: 0}


def test_accepts_alignment_objects_and_plain_links():
    s = src(["Paris", "is", "big"], [(0, 1, "LOC")])
    t = tgt(["París", "es", "grande"])
    for alignment in (Alignment(((0, 0), (1, 1), (2, 2))), [(0, 0), (1, 1), (2, 2)]):
        assert project_sentence(s, t, alignment).target.spans[0].token_end == 1


def test_unaligned_span_falls_back_to_exact_string_then_reason():
    s = src(["I", "saw", "Koch", "today"], [(2, 3, "PER")])
    t = tgt(["Hoy", "vi", "a", "Koch"])
    proj = project_sentence(s, t, frozenset({(3, 0), (1, 1)}))
    assert proj.target.span_text(proj.target.spans[0]) == "Koch"
    assert proj.qc["n_string_match"] == 1
    proj = project_sentence(s, t, frozenset({(3, 0), (1, 1)}), AlignmentProjectionOptions(string_fallback=False))
    check_accounting(proj)
    assert [u.reason for u in proj.unprojected] == ["unaligned"]
    t2 = tgt(["Hoy", "vi", "a", "Kochová"])
    proj = project_sentence(s, t2, frozenset({(3, 0), (1, 1)}))
    assert [u.reason for u in proj.unprojected] == ["unaligned"] and not proj.target.spans


def test_split_projection_policies():
    # "Bank" is linked to a far token that belongs to another source word (w): a split
    s = src(["World", "Bank", "and", "w"], [(0, 2, "ORG")])
    t = tgt(["Banco", "Mundial", "y", "x", "banco"])
    links = frozenset({(0, 1), (1, 0), (2, 2), (3, 3), (1, 4)})
    views = LinkViews(links, strong=frozenset({(0, 1), (1, 0), (2, 2), (3, 3)}))
    best = project_sentence(s, t, views)
    assert proj_range(best) == [(0, 2)] and best.qc["n_split"] == 1
    closure = project_sentence(s, t, views, AlignmentProjectionOptions(split="closure", trim_case=False))
    assert proj_range(closure) == [(0, 5)]
    rejected = project_sentence(s, t, views, AlignmentProjectionOptions(split="reject"))
    check_accounting(rejected)
    assert [u.reason for u in rejected.unprojected] == ["split"]


def proj_range(proj):
    return [(sp.token_start, sp.token_end) for sp in proj.target.spans]


def test_edge_repair_punctuation_and_function_words():
    s = src(["in", "Berlin", "today"], [(1, 2, "LOC")])
    t = tgt(["hoy", "en", "Berlín", ",", "ya"])
    strong = frozenset({(0, 1), (1, 2), (2, 0)})
    weak = frozenset({(1, 1), (1, 3)})  # spurious one-direction links to the article and a comma
    views = LinkViews(strong | weak, strong=strong)
    proj = project_sentence(s, t, views)
    assert proj_range(proj) == [(2, 3)]
    plain = AlignmentProjectionOptions(trim_punct=False, trim_foreign=False, trim_case=False, copy_anchor=False)
    assert proj_range(project_sentence(s, t, views, plain)) == [(1, 4)]


def test_sentence_initial_capital_is_not_a_name():
    s = src(["The", "Parliament", "agreed"], [(1, 2, "ORG")])
    t = tgt(["El", "Parlamento", "aceptó"])
    # 'El' linked to 'The' (outside) and weakly to 'Parliament'
    views = LinkViews(frozenset({(0, 0), (1, 0), (1, 1), (2, 2)}), strong=frozenset({(0, 0), (1, 1), (2, 2)}))
    assert proj_range(project_sentence(s, t, views)) == [(1, 2)]
    # extension adds unaligned capitalised neighbours of a name, but never the sentence's first word
    s2 = src(["Fujimori", "came"], [(0, 1, "PER")])
    t2 = tgt(["Alberto", "Fuyimori", "Tanaka", "vino"])
    views2 = LinkViews(frozenset({(0, 1), (1, 3)}))
    assert proj_range(project_sentence(s2, t2, views2)) == [(1, 3)]


def test_collisions_trim_or_drop():
    s = src(["New", "York", "Times", "said"], [(0, 2, "LOC"), (2, 3, "ORG")])
    t = tgt(["el", "New", "York", "Times", "dijo"])
    strong = frozenset({(0, 1), (1, 2), (2, 3), (3, 4)})
    views = LinkViews(strong | {(2, 2)}, strong=strong)  # Times also weakly on York: overlap
    no_copy = AlignmentProjectionOptions(copy_anchor=False)  # else 'Times' snaps to its copy
    proj = project_sentence(s, t, views, no_copy)
    check_accounting(proj)
    assert proj_range(proj) == [(1, 3), (3, 4)]
    assert proj_range(project_sentence(s, t, views)) == [(1, 3), (3, 4)]
    dropped = project_sentence(s, t, views, AlignmentProjectionOptions(collisions="drop", copy_anchor=False))
    check_accounting(dropped)
    assert len(dropped.target.spans) == 1 and [u.reason for u in dropped.unprojected] == ["collision"]


def test_sentence_policy_reject_moves_all_spans_to_unprojected():
    s = src(["Koch", "met", "Prodi"], [(0, 1, "PER"), (2, 3, "PER")])
    t = tgt(["Koch", "conoció", "a", "X"])
    links = frozenset({(0, 0), (1, 1)})
    keep = project_sentence(s, t, links)
    assert keep.rejected is None and len(keep.target.spans) == 1 and keep.unprojected[0].reason == "unaligned"
    rej = project_sentence(s, t, links, policy="reject")
    check_accounting(rej)
    assert rej.rejected == "unprojected_span" and not rej.target.spans
    assert sorted(u.reason for u in rej.unprojected) == ["sentence_rejected", "unaligned"]


def test_out_of_range_links_are_counted_not_fatal():
    s = src(["Rome"], [(0, 1, "LOC")])
    t = tgt(["Roma"])
    proj = project_sentence(s, t, frozenset({(0, 0), (5, 7)}))
    assert proj_range(proj) == [(0, 1)] and proj.qc["out_of_range_links"] == 1


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError):
        AlignmentProjectionOptions(split="largest")
    with pytest.raises(ConfigError):
        AlignmentProjectionOptions(collisions="merge")


def test_capital_based_extensions_follow_the_target_language():
    from dsbuild.project.alignment import capitalisation_rate

    english = [["The", "Commission", "met", "the", "ministers", "in", "Brussels", "today", "."]]
    german = [["Die", "Kommission", "traf", "die", "Minister", "heute", "in", "Brüssel", "zur", "Beratung", "."]]
    assert capitalisation_rate(english) < 0.3 < capitalisation_rate(german)
    opt = AlignmentProjectionOptions()
    same, rate = opt.for_targets(english * 3 + [["x", "y", "z", "w", "v"]] * 3)
    assert same is opt and rate < 0.2
    off, rate = opt.for_targets(german)
    assert rate > 0.2 and not off.extend_case and not off.extend_name and off.trim_case
    assert AlignmentProjectionOptions(case_signal="on").for_targets(german)[0].extend_name
    assert not AlignmentProjectionOptions(case_signal="off").for_targets(english)[0].extend_name
    # in a projection: the unaligned capitalised neighbour is added only when capitals mark names
    from dsbuild.project.alignment import AlignmentProjector
    from dsbuild.project.inputs import prepare_pairs

    s = src(["Fujimori", "came"], [(0, 1, "PER")])
    prepared = prepare_pairs([s], [["vino", "Alberto", "Fuyimori", "Tanaka", "hoy"]])
    views = [LinkViews(frozenset({(0, 2), (1, 0)}))]
    on = AlignmentProjector(aligner=None, case_signal="on").project_aligned(prepared, views)
    assert proj_range(on[0]) == [(1, 4)]
    forced_off = AlignmentProjector(aligner=None, case_signal="off").project_aligned(prepared, views)
    assert proj_range(forced_off[0]) == [(2, 3)]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WORDS = ["the", "The", "Union", "de", "la", "Parlamento", ",", "Koch", "x", "EU", "s", "'"]


@st.composite
def sentence_pairs(draw):
    n = draw(st.integers(1, 9))
    m = draw(st.integers(1, 9))
    src_words = draw(st.lists(st.sampled_from(WORDS), min_size=n, max_size=n))
    tgt_words = draw(st.lists(st.sampled_from(WORDS), min_size=m, max_size=m))
    cuts = sorted(draw(st.sets(st.integers(0, n), max_size=6)) | {0, n})
    spans = [(a, b, draw(st.sampled_from(["PER", "ORG"]))) for a, b in zip(cuts, cuts[1:]) if draw(st.booleans())]
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, m - 1))
    fwd = draw(st.sets(pairs, max_size=12))
    rev = draw(st.sets(pairs, max_size=12))
    options = AlignmentProjectionOptions(
        split=draw(st.sampled_from(["best", "closure", "reject"])), collisions=draw(st.sampled_from(["trim", "drop"])),
        copy_anchor=draw(st.booleans()), extend_name=draw(st.booleans()), ensemble=draw(st.booleans()))
    return src(src_words, spans), tgt(tgt_words), LinkViews(frozenset(fwd | rev), frozenset(fwd & rev),
                                                            frozenset(fwd), frozenset(rev)), options


@settings(max_examples=300, deadline=None)
@given(sentence_pairs(), st.sampled_from(["keep-partial", "reject"]))
def test_any_alignment_gives_valid_non_overlapping_projections(case, policy):
    s, t, views, options = case
    proj = project_sentence(s, t, views, options, policy=policy)
    check_accounting(proj)  # every span projected xor unprojected; target spans valid, no overlap
    for k, n in proj.mapping.items():
        assert proj.target.spans[n].label == s.spans[k].label
        assert 0.0 <= proj.target.spans[n].score <= 1.0
    if policy == "reject" and proj.unprojected:
        assert proj.rejected == "unprojected_span" and not proj.target.spans
