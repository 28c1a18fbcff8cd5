"""T-Projection: candidates, NMTScore ranking, one assignment per sentence, batching, registry, builder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dsbuild import Example
from dsbuild.errors import ConfigError, UnknownNameError
from dsbuild.project import project
from dsbuild.project.tprojection import Seq2SeqCandidateGenerator, TProjectionProjector, find_in_tokens
from dsbuild.registry import projectors, translators
from dsbuild.synthetic import SRC_LANG, TGT_LANG, held_out_pairs


class TableTranslator:
    """A stand-in MT model: log p(target | source) from a table (one token each), calls counted."""

    name = "table"

    def __init__(self, table: dict[tuple[str, str], float], default: float = -10.0) -> None:
        self.table, self.default = table, default
        self.calls: list[int] = []

    def score(self, sources, targets, src_lang, tgt_lang):
        self.calls.append(len(sources))
        return [[self.table.get((s, t), self.default)] for s, t in zip(sources, targets)]

    def translate(self, texts, src_lang, tgt_lang):
        return list(texts)

    def describe(self):
        return {"name": self.name}


def f1(pairs, projections) -> float:
    tp = fp = fn = 0
    for p, o in zip(pairs, projections):
        gold = {(s.label, s.token_start, s.token_end) for s in p.target.spans}
        pred = {(s.label, s.token_start, s.token_end) for s in o.target.spans} if o.rejected is None else set()
        tp, fp, fn = tp + len(gold & pred), fp + len(pred - gold), fn + len(gold - pred)
    return 2 * tp / max(1, 2 * tp + fp + fn)


def hf(path: Path, **kw):
    return translators.get("hf-seq2seq")(str(path), cache=False, progress=False, threads=1, beam_size=1,
                                         batch_size=kw.pop("batch_size", 64), **kw)


@pytest.fixture(scope="module")
def phrase_pairs(phrase_marian_path):
    return held_out_pairs(phrase_marian_path, 60, seed=4242)


# ---------------------------------------------------------------------- on the synthetic world
@pytest.mark.parametrize("directions", [1, 2])
def test_recovers_gold_spans_with_batched_scoring(phrase_pairs, phrase_marian_path, phrase_marian_reverse_path, directions):
    fwd = hf(phrase_marian_path)
    rev = hf(phrase_marian_reverse_path) if directions == 2 else None
    proj = TProjectionProjector(fwd, reverse_translator=rev, candidate_projectors=[])
    out = proj.project([p.source for p in phrase_pairs], [p.target.with_spans([]) for p in phrase_pairs],
                       src_lang=SRC_LANG, tgt_lang=TGT_LANG)
    # measured: 1.000 (forward only and both directions, 60 held-out sentences, 132 spans)
    assert f1(phrase_pairs, out) >= 0.95
    # one batched score call per direction for the whole batch, never one per candidate
    assert proj.stats["score_calls"] == directions
    n_pairs = proj.stats["scored_pairs"]
    assert n_pairs > 1000
    assert fwd.stats["model_calls"] == math.ceil(n_pairs / 64)
    if rev is not None:
        assert rev.stats["model_calls"] == math.ceil(n_pairs / 64)
    for o in out:
        spans = o.target.spans
        assert all(a.token_end <= b.token_start for a, b in zip(spans, spans[1:])), "overlapping assignment"
        assert len(o.mapping) + len(o.unprojected) == len(o.source.spans)
        for k in o.mapping:
            info = o.span_info[k]
            assert info["candidates"] > 0 and 0 < info["nmt_score"] <= 1
            assert (info["reverse"] is None) == (rev is None)
    assert out[0].qc["method"] == "tprojection" and out[0].qc["assignment"] == "exact"


def test_same_output_for_any_batch_split(phrase_pairs, phrase_marian_path):
    """Shards of any size give the same spans and scores (scores are rounded: padding moves last bits)."""
    pairs = phrase_pairs[:24]
    proj = TProjectionProjector(hf(phrase_marian_path), candidate_projectors=[])
    src, tgt = [p.source for p in pairs], [p.target.with_spans([]) for p in pairs]
    whole = proj.project(src, tgt, src_lang=SRC_LANG, tgt_lang=TGT_LANG)
    split = (proj.project(src[:7], tgt[:7], src_lang=SRC_LANG, tgt_lang=TGT_LANG)
             + proj.project(src[7:], tgt[7:], src_lang=SRC_LANG, tgt_lang=TGT_LANG))
    assert [p.target.spans for p in whole] == [p.target.spans for p in split]


def test_sentence_only_model_is_weaker_but_runs(synthetic_pairs, tiny_marian_path):
    """The shared tiny model never saw a bare phrase: its end-of-sequence after a name is improbable.
    T-Projection still runs on it; the figure documents why phrase-capable models matter."""
    pairs = synthetic_pairs[:30]
    proj = TProjectionProjector(hf(tiny_marian_path), candidate_projectors=[])
    out = proj.project([p.source for p in pairs], [p.target.with_spans([]) for p in pairs], src_lang=SRC_LANG,
                       tgt_lang=TGT_LANG)
    assert 0.3 <= f1(pairs, out) < 0.9  # measured 0.51 on 60 sentences


# ---------------------------------------------------------------------- assignment, candidates
def _src(words, spans):
    return Example.from_words("s", words, token_spans=spans)


def test_exact_assignment_beats_greedy_and_no_overlap():
    src = _src(["Anna", "met", "Bob", "."], [(0, 1, "PER"), (2, 3, "PER")])
    tgt = ["Ana", "vio", "Ana", "Bobo", "."]
    table = {("Anna", "Ana"): math.log(0.9), ("Anna", "Ana vio"): math.log(0.8), ("Bob", "Ana"): math.log(0.85),
             ("Anna", "Bobo"): math.log(0.2), ("Bob", "Bobo"): math.log(0.95)}
    tr = TableTranslator(table)
    exact = TProjectionProjector(tr, candidate_projectors=[], max_ngram=2).project([src], [tgt], src_lang="en", tgt_lang="es")[0]
    assert [(exact.target.span_text(s), s.label) for s in exact.target.spans] == [("Ana", "PER"), ("Bobo", "PER")]
    assert len(tr.calls) == 1
    # two source spans, one target word both want: the exact search gives it to one, the other takes the next
    src2 = _src(["Anna", "and", "Anne"], [(0, 1, "PER"), (2, 3, "PER")])
    tr2 = TableTranslator({("Anna", "Ana"): math.log(0.9), ("Anne", "Ana"): math.log(0.8), ("Anne", "y"): math.log(0.1)})
    p = TProjectionProjector(tr2, candidate_projectors=[], max_ngram=1).project([src2], [["Ana", "y"]], src_lang="en", tgt_lang="es")[0]
    assert [(p.target.span_text(s), s.score) for s in p.target.spans] == [("Ana", 0.9), ("y", 0.1)]
    # greedy (exact_max_spans=0): the best pair first, the other span takes what is left
    g = TProjectionProjector(tr2, candidate_projectors=[], max_ngram=1, exact_max_spans=0, min_score=0.5)
    pg = g.project([src2], [["Ana", "y"]], src_lang="en", tgt_lang="es")[0]
    assert [p.target.span_text(s) for s in pg.target.spans] == ["Ana"]
    assert [(u.reason, u.span.start) for u in pg.unprojected] == [("low_confidence", 9)]
    assert pg.qc["assignment"] == "greedy"


def test_identical_spans_take_distinct_occurrences_and_collisions_are_reported():
    src = _src(["Paris", "and", "Paris"], [(0, 1, "LOC"), (2, 3, "LOC")])
    tr = TableTranslator({("Paris", "París"): 0.0})
    p = TProjectionProjector(tr, candidate_projectors=[], max_ngram=1).project(
        [src], [["París", "y", "París"]], src_lang="en", tgt_lang="es")[0]
    assert [(s.token_start, s.token_end) for s in p.target.spans] == [(0, 1), (2, 3)]
    # a one-word target: the second span has nothing left
    q = TProjectionProjector(tr, candidate_projectors=[], max_ngram=1).project([src], [["París"]], src_lang="en", tgt_lang="es")[0]
    assert len(q.target.spans) == 1 and [u.reason for u in q.unprojected] == ["collision"]
    r = TProjectionProjector(tr, candidate_projectors=[], max_ngram=1, policy="reject").project(
        [src], [["París"]], src_lang="en", tgt_lang="es")[0]
    assert r.rejected == "unprojected_span" and not r.target.spans


def test_ngram_filters_and_proposals_are_candidates():
    src = _src(["the", "New", "York", "office"], [(1, 3, "LOC")])
    tr = TableTranslator({("New York", "Nueva York ,"): 0.0, ("New York", "la oficina de Nueva York"): -0.01})
    proj = TProjectionProjector(tr, candidate_projectors=[], max_ngram=3)
    p = proj.project([src], [["la", "oficina", "de", "Nueva", "York", ","]], src_lang="en", tgt_lang="es")[0]
    # n-grams ending in punctuation and longer than 2 x 2 + 1 tokens are not candidates
    assert p.target.span_text(p.target.spans[0]) != "Nueva York ,"
    assert p.span_info[0]["candidates"] == sum(1 for a in range(6) for n in (1, 2, 3) if a + n <= 6
                                               and "," not in ["la", "oficina", "de", "Nueva", "York", ","][a:a + n])
    # a proposal from another method is a candidate even beyond the n-gram limits
    other = Example.from_words("s", ["la", "oficina", "de", "Nueva", "York", ","], token_spans=[(0, 5, "LOC")])
    from dsbuild.project.base import Projection

    prop = Projection(source=src, target=other, mapping={0: 0}, qc={"method": "alignment"})
    p2 = proj.project([src], [["la", "oficina", "de", "Nueva", "York", ","]], src_lang="en", tgt_lang="es",
                      proposals=[[prop]])[0]
    assert p2.target.span_text(p2.target.spans[0]) == "la oficina de Nueva York"
    assert p2.span_info[0]["sources"] == ["alignment"]


def test_generator_candidates_fit_their_label_only():
    class Gen:
        def propose(self, targets, labels):
            return [[("PER", "Gran Bretaña"), ("LOC", "no está aquí")] for _ in targets]

    words = ["Francia", "y", "Gran", "Bretaña", "apoyaron"]
    src = _src(["France", "and", "Britain", "backed"], [(2, 3, "LOC")])
    tr = TableTranslator({("Britain", "Gran Bretaña"): 0.0})
    p = TProjectionProjector(tr, candidate_projectors=[], max_ngram=1, generator=Gen()).project(
        [src], [words], src_lang="en", tgt_lang="es")[0]
    # the generated "Gran Bretaña" was labelled PER: not a candidate for the LOC span; 1-grams only
    assert p.target.span_text(p.target.spans[0]) != "Gran Bretaña"
    src_per = _src(["France", "and", "Britain", "backed"], [(2, 3, "PER")])
    q = TProjectionProjector(tr, candidate_projectors=[], max_ngram=1, generator=Gen()).project(
        [src_per], [words], src_lang="en", tgt_lang="es")[0]
    assert q.target.span_text(q.target.spans[0]) == "Gran Bretaña" and "generator" in q.span_info[0]["sources"]


def test_find_in_tokens_and_generator_parse():
    words = ["Visitó", "Nueva", "York,", "y", "nueva", "york"]
    assert find_in_tokens(words, "Nueva York,") == [(1, 3)]
    assert find_in_tokens(words, "NUEVA YORK") == [(1, 3), (4, 6)]  # case and punctuation-insensitive fallback
    assert find_in_tokens(words, "Londres") == []


def test_hf_generator_runs_on_a_tiny_seq2seq_model(tiny_marian_path):
    gen = Seq2SeqCandidateGenerator(str(tiny_marian_path), num_beams=2, max_new_tokens=8)
    assert gen.prompt(["Marj", "vidas"], ["PER", "LOC"]) == "Marj vidas <Person>[None]</Person><Location>[None]</Location>"
    assert gen.parse("<Person>Marj</Person> x <Location>[None]</Location><Person>Ana</Person>", ["PER"]) == [
        ("PER", "Marj"), ("PER", "Ana")]
    out = gen.propose([["Marj", "vidas", "."], ["Atens", "."]], [["PER"], ["LOC"]])
    assert len(out) == 2 and gen.calls == 1 and all(isinstance(x, list) for x in out)
    with pytest.raises(ConfigError, match="could not be loaded"):
        Seq2SeqCandidateGenerator(str(tiny_marian_path / "missing"))


def test_generator_by_model_name_in_the_projector(tiny_marian_path):
    """generator= a model folder: the projector loads it as a Seq2SeqCandidateGenerator, calls it once per
    batch, and what it writes that is not in the target adds no candidate (the n-grams still decide)."""
    src = _src(["Anna", "sings"], [(0, 1, "PER")])
    tr = TableTranslator({("Anna", "Ana"): 0.0})
    proj = TProjectionProjector(tr, candidate_projectors=[], max_ngram=1, generator=str(tiny_marian_path),
                                generator_options={"num_beams": 2, "max_new_tokens": 8})
    assert isinstance(proj.generator, Seq2SeqCandidateGenerator) and proj.generator.num_beams == 2
    out = proj.project([src, src], [["Ana", "canta"], ["Ana", "baila"]], src_lang="en", tgt_lang="es")
    assert proj.generator.calls == 1 and [o.target.span_text(o.target.spans[0]) for o in out] == ["Ana", "Ana"]
    assert proj.describe()["generator"]["num_beams"] == 2
    with pytest.raises(ConfigError, match="generator_options need generator"):
        TProjectionProjector(tr, candidate_projectors=[], generator_options={"num_beams": 2})


# ---------------------------------------------------------------------- API, registry, builder
def test_registry_project_api_and_rejects():
    assert projectors.get("tprojection") is TProjectionProjector
    tr = TableTranslator({("Anna", "Ana"): 0.0})
    srcs = [_src(["Anna", "sings"], [(0, 1, "PER")]), _src(["Anna", "sings"], [(0, 1, "PER")]),
            Example.from_words("o", ["New", "York"], token_spans=[(0, 2, "LOC"), (1, 2, "LOC")], allow_overlap=True)]
    report = project(srcs, ["Ana canta", "", "Nueva York"], method="tprojection", src_lang="en", tgt_lang="es",
                     translator=tr, candidate_projectors=[])
    assert report.method == "tprojection"
    c = report.counts
    assert c["sentences"] == c["kept"] + c["rejected"] and c["source_spans"] == c["projected"] + c["unprojected"]
    assert report[0].target.span_text(report[0].target.spans[0]) == "Ana"
    assert report[1].rejected == "empty_target"
    assert report[2].rejected == "overlapping_spans" and len(report[2].unprojected) == 2
    assert len(tr.calls) == 1
    assert report.settings["method"] == "tprojection" and report.settings["both_directions"] is False


def test_bad_options_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="needs a translation model"):
        TProjectionProjector()
    with pytest.raises(UnknownNameError):
        TProjectionProjector(TableTranslator({}), candidate_projectors=["alignmnt"])
    with pytest.raises(ConfigError, match="call tprojection again"):
        TProjectionProjector(TableTranslator({}), candidate_projectors=["ensemble"])
    with pytest.raises(ConfigError, match="policy"):
        TProjectionProjector(TableTranslator({}), policy="drop")


def test_translate_train_builder_by_name(tmp_path, phrase_pairs, phrase_marian_path):
    from dsbuild.config import resolve_options
    from dsbuild.executor import build
    from dsbuild.registry import builders

    pairs = phrase_pairs[:20]
    src = tmp_path / "source.jsonl"
    src.write_text("\n".join(json.dumps(p.source.to_dict()) for p in pairs) + "\n")
    cls = builders.get("translate-train")
    opts = dict(source=str(src), src_lang=SRC_LANG, target_langs=[TGT_LANG], translator="hf-seq2seq",
                model=str(phrase_marian_path), beam_size=1, cache_dir=str(tmp_path / "cache"),
                target_tokenizer="whitespace", translator_options={"threads": 1, "progress": False},
                policy="keep-partial", method="tprojection", method_options={"candidate_projectors": []})
    result = build(cls(resolve_options(cls.Options, opts)), tmp_path / "out")
    c = result.counts[TGT_LANG]["train"]
    assert c["in"] == 20 and c["out"] + c["rejected"] == 20
    rows = pq.read_table(result.path / TGT_LANG / "train-00000-of-00001.parquet").to_pylist()
    assert rows and all(json.loads(r["qc"])["method"] == "tprojection" for r in rows)
    # the model's own translations: a span is right when its (label, text) is a gold (label, text)
    gold = {p.id: {(s.label, p.target.span_text(s)) for s in p.target.spans} for p in pairs}
    tp = sum(len({(s["label"], s["text"]) for s in r["spans"]} & gold[r["id"]]) for r in rows)
    n_pred = sum(len(r["spans"]) for r in rows)
    n_gold = sum(len(g) for g in gold.values())
    assert 2 * tp / (n_pred + n_gold) >= 0.8
