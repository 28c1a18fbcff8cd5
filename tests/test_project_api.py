"""The public projection API: project(), project_back(), ProjectionReport, and bad input."""

import unicodedata

import pytest

from dsbuild import Example
from dsbuild.align.base import Alignment
from dsbuild.errors import ConfigError, InputError
from dsbuild.project import project, project_back
from dsbuild.project.alignment import AlignmentProjector


class MatchAligner:
    """Links equal (lower-cased) words, else the diagonal; records what it was given."""

    name = "match"

    def __init__(self):
        self.calls = []

    def align(self, src, tgt):
        self.calls.append((list(map(list, src)), list(map(list, tgt))))
        out = []
        for s, t in zip(src, tgt):
            links = {(i, j) for i, a in enumerate(s) for j, b in enumerate(t) if a.lower() == b.lower()}
            used_s, used_t = {i for i, _ in links}, {j for _, j in links}
            links |= {(i, i) for i in range(min(len(s), len(t))) if i not in used_s and i not in used_t}
            out.append(Alignment(tuple(sorted(links))))
        return out


def ex(id, words, spans):
    return Example.from_words(id, words, token_spans=spans)


SOURCES = [
    ex("s0", ["Angela", "Merkel", "visited", "Paris", "."], [(0, 2, "PER"), (3, 4, "LOC")]),
    ex("s1", ["The", "UN", "met"], [(1, 2, "ORG")]),
]
TARGETS = ["Angela Merkel visitó Paris .", ["La", "UN", "se", "reunió"]]


def test_project_returns_report_with_examples_counts_and_settings():
    aligner = MatchAligner()
    report = project(SOURCES, TARGETS, src_lang="en", tgt_lang="es", aligner=aligner)
    assert len(report) == 2 and report.method == "alignment"
    first = report.examples[0]
    assert [(first.span_text(s), s.label) for s in first.spans] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert all(s.score is not None for s in first.spans)
    c = report.counts
    assert c["sentences"] == c["kept"] + c["rejected"] == 2
    assert c["source_spans"] == c["projected"] + c["unprojected"] == 3
    assert report.settings["aligner"]["name"] == "match" and report.settings["policy"] == "keep-partial"
    assert "align" in report.timings and "project" in report.timings
    assert "2/2 sentences kept" in report.summary()


def test_target_tokenizer_choice():
    report = project(SOURCES[:1], ["Angela Merkel visitó París."], src_lang="en", tgt_lang="es",
                     aligner=MatchAligner(), target_tokenizer="moses")
    assert report.examples[0].words[-2:] == ["París", "."]


def test_mismatched_counts_are_an_input_error():
    with pytest.raises(InputError, match="2 source sentences but 1 target"):
        project(SOURCES, TARGETS[:1], src_lang="en", tgt_lang="es", aligner=MatchAligner())


@pytest.mark.parametrize("target, reason", [
    ("", "empty_target"),
    ([], "empty_target"),
    (["Angela", "Mer kel"], "token_whitespace"),
    ("Angela Mer\x00kel", "control_characters"),
    ("Angela \u200bMerkel", "control_characters"),
])
def test_bad_targets_are_rejected_with_a_reason(target, reason):
    aligner = MatchAligner()
    report = project([SOURCES[0], SOURCES[1]], [target, TARGETS[1]], src_lang="en", tgt_lang="es", aligner=aligner)
    bad, good = report.projections
    assert bad.rejected == reason and not bad.target.spans
    assert {u.reason for u in bad.unprojected} == {reason} and len(bad.unprojected) == 2
    assert good.rejected is None and report.counts["rejected_by_reason"] == {reason: 1}
    assert len(aligner.calls[0][0]) == 1  # only the valid pair reached the aligner
    assert report.examples == [good.target]


def test_empty_source_is_rejected():
    empty = Example(id="e", text="", tokens=[])
    report = project([empty, SOURCES[1]], ["algo", TARGETS[1]], src_lang="en", tgt_lang="es", aligner=MatchAligner())
    assert report.projections[0].rejected == "empty_source"


def test_over_long_sentences_are_rejected_not_truncated():
    long_src = ex("long", ["w"] * 1025, [(0, 1, "PER")])
    report = project([long_src, SOURCES[1]], [["w"] * 3, TARGETS[1]], src_lang="en", tgt_lang="es",
                     aligner=MatchAligner())  # no limit of its own: eflomal's 1,024 applies
    assert report.projections[0].rejected == "too_long"
    assert "1025 tokens" in report.projections[0].qc["reject_detail"]
    small = project(SOURCES[:1], TARGETS[:1], src_lang="en", tgt_lang="es", aligner=MatchAligner(), max_tokens=4)
    assert small.projections[0].rejected == "too_long"


def test_mixed_unicode_normalisation_aligns_as_one_word():
    nfc, nfd = unicodedata.normalize("NFC", "José"), unicodedata.normalize("NFD", "José")
    assert nfc != nfd
    aligner = MatchAligner()
    report = project([ex("n", ["Pedro", "and", nfc], [(2, 3, "PER")])], [["y", nfd, "Pedro"]],
                     src_lang="en", tgt_lang="es", aligner=aligner)
    proj = report.projections[0]
    assert aligner.calls[0][1][0][1] == nfc  # the aligner saw NFC
    assert proj.target.words[1] == nfd  # the output keeps the original text
    assert [(s.token_start, s.label) for s in proj.target.spans] == [(1, "PER")]
    assert proj.qc["nfc_changed_tokens"] == 1


def test_policy_reject_and_option_errors():
    src = [ex("p", ["Koch", "met", "Prodi"], [(0, 1, "PER"), (2, 3, "PER")])]
    report = project(src, [["Koch", "vio", "a", "X", "Y"]], src_lang="en", tgt_lang="es",
                     aligner=MatchAligner(), policy="reject", string_fallback=False)
    assert report.projections[0].rejected in ("unprojected_span", None)
    with pytest.raises(ConfigError, match="policy"):
        project(src, [["Koch"]], src_lang="en", tgt_lang="es", aligner=MatchAligner(), policy="drop")
    with pytest.raises(ConfigError, match="unknown alignment-projection option"):
        project(src, [["Koch"]], src_lang="en", tgt_lang="es", aligner=MatchAligner(), closure="minmax")


def test_project_back_is_translate_test():
    originals = ["Merkel visitó Madrid ayer .", ["La", "ONU", "habló"]]
    labelled_en = [ex("en0", ["Merkel", "visited", "Madrid", "yesterday", "."], [(0, 1, "PER"), (2, 3, "LOC")]),
                   ex("en1", ["The", "UN", "spoke"], [(1, 2, "ORG")])]
    report = project_back(originals, labelled_en, orig_lang="es", aligner=MatchAligner())
    assert report.src_lang == "en" and report.tgt_lang == "es"
    back = report.examples
    assert back[0].text == originals[0]
    assert [(back[0].span_text(s), s.label) for s in back[0].spans] == [("Merkel", "PER"), ("Madrid", "LOC")]
    assert [(back[1].span_text(s), s.label) for s in back[1].spans] == [("ONU", "ORG")]


def test_eflomal_limit_is_the_default_limit():
    assert AlignmentProjector(aligner="eflomal").max_tokens == 1024


class DirectionalAligner(MatchAligner):
    """Gives both directions (like eflomal) and a seeded description, so links can be cached."""

    symmetrization = "grow-diag-final"

    def __init__(self, seed=1):
        super().__init__()
        self.seed = seed

    def align_directions(self, src, tgt):
        links = [list(a.links) for a in self.align(src, tgt)]
        return links, links

    def describe(self):
        return {"aligner": "directional-test", "seed": self.seed, "deterministic": self.seed is not None}


def test_alignment_cache_reuses_links_for_identical_input(tmp_path):
    first_aligner = DirectionalAligner()
    first = AlignmentProjector(first_aligner, alignment_cache=tmp_path).project(SOURCES, TARGETS, src_lang="en", tgt_lang="es")
    assert len(first_aligner.calls) == 1 and len(list(tmp_path.glob("links-*.json.gz"))) == 1
    again_aligner = DirectionalAligner()
    again = AlignmentProjector(again_aligner, alignment_cache=tmp_path).project(SOURCES, TARGETS, src_lang="en", tgt_lang="es")
    assert again_aligner.calls == []  # served from the cache
    assert [p.target.spans for p in again] == [p.target.spans for p in first]
    other_seed = DirectionalAligner(seed=2)
    AlignmentProjector(other_seed, alignment_cache=tmp_path).project(SOURCES, TARGETS, src_lang="en", tgt_lang="es")
    assert len(other_seed.calls) == 1  # different settings, different key
    unseeded = DirectionalAligner(seed=None)
    AlignmentProjector(unseeded, alignment_cache=tmp_path).project(SOURCES, TARGETS, src_lang="en", tgt_lang="es")
    AlignmentProjector(unseeded, alignment_cache=tmp_path).project(SOURCES, TARGETS, src_lang="en", tgt_lang="es")
    assert len(unseeded.calls) == 2  # random links are never reused


def test_parallel_text_lookup_and_tokenisation(tmp_path, monkeypatch):
    from dsbuild.project.parallel import parallel_text, shipped_parallel_paths, tokenized_lines

    en, es = shipped_parallel_paths("en", "es")
    assert en.name == "en-es.en.gz" and es.name == "en-es.es.gz"
    assert shipped_parallel_paths("es", "en") == (es, en)  # either orientation, source side first
    assert shipped_parallel_paths("en", "xx") is None and parallel_text("en", "xx") == {}
    monkeypatch.setenv("DSBUILD_CACHE", str(tmp_path / "cache"))
    (tmp_path / "a.txt").write_text("Hello, world.\n\nIt's 3.5%.\n", encoding="utf-8")
    lines = tokenized_lines(tmp_path / "a.txt", "moses", "en")
    assert lines == [["Hello", ",", "world", "."], [], ["It", "'s", "3.5", "%", "."]]
    assert list((tmp_path / "cache" / "tokenized").glob("*.txt.gz"))
    assert tokenized_lines(tmp_path / "a.txt", "moses", "en") == lines  # from the cache
    opts = parallel_text("en", "es", str(tmp_path / "a.txt"), str(tmp_path / "a.txt"))
    assert opts["extra_src"] == lines


def test_tokenizer_that_cannot_keep_offsets_gives_a_reject():
    class Rewriting:
        name = "rewriting"

        def tokenize(self, text):
            from dsbuild.tokenize.base import locate_tokens

            return locate_tokens(text, [w.upper() for w in text.split()], tokenizer=self.name)

    report = project(SOURCES, ["angela merkel", TARGETS[1]], src_lang="en", tgt_lang="es",
                     aligner=MatchAligner(), target_tokenizer=Rewriting())
    assert report.projections[0].rejected == "tokenization_failed"
    assert "not the next text" in report.projections[0].qc["reject_detail"]
    assert report.projections[1].rejected is None
