"""Ensemble projection: score-weighted votes per source span, the agreement QC value, registry and builder."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from dsbuild import Example
from dsbuild.errors import ConfigError
from dsbuild.project import project
from dsbuild.project._common import reject_all
from dsbuild.project.base import Projection
from dsbuild.project.ensemble import EnsembleProjector
from dsbuild.registry import projectors
from dsbuild.synthetic import SRC_LANG, TGT_LANG


class Fixed:
    """A member that projects source span k onto the token range ``ranges[k]`` (None: unprojected)."""

    def __init__(self, name: str, ranges: list[tuple[int, int] | None], score: float | None = 1.0,
                 reject: str | None = None) -> None:
        self.name, self.ranges, self.score, self.reject = name, ranges, score, reject
        self.calls = 0

    def project(self, sources, targets, *, src_lang, tgt_lang):
        self.calls += 1
        out = []
        for src, tgt in zip(sources, targets):
            assert isinstance(tgt, Example)  # the ensemble tokenises once, for every member
            if self.reject:
                out.append(reject_all(src, tgt, self.reject, "test", {}))
                continue
            picked = sorted((rng, k) for k, rng in enumerate(self.ranges) if rng is not None)
            spans = [tgt.span_from_tokens(a, b, src.spans[k].label, self.score) for (a, b), k in picked]
            mapping = {k: n for n, (_, k) in enumerate(picked)}  # target spans are stored in position order
            out.append(Projection(source=src, target=tgt.with_spans(spans), mapping=mapping, qc={"method": self.name}))
        return out


SRC = Example.from_words("s1", ["John", "Smith", "visits", "New", "York", "and", "Paris"],
                         token_spans=[(0, 2, "PER"), (3, 5, "LOC"), (6, 7, "LOC")])
TGT = ["Nueva", "York", "y", "París", "visita", "John", "Smith"]


def run(members, **kw):
    ens = EnsembleProjector(members, **kw)
    return ens, ens.project([SRC], [TGT], src_lang="en", tgt_lang="es")[0]


def test_agreement_counts_on_constructed_cases():
    a = Fixed("a", [(5, 7), (0, 2), (3, 4)])
    b = Fixed("b", [(5, 7), (0, 2), (2, 4)])
    c = Fixed("c", [(5, 7), (1, 2), None])
    _, p = run([a, b, c])
    got = {SRC.span_text(SRC.spans[k]): (p.target.span_text(p.target.spans[j]), p.span_info[k]["agreement"])
           for k, j in p.mapping.items()}
    # all three agree / two of three agree (majority wins) / a tie between two single votes -> the earlier range
    assert got == {"John Smith": ("John Smith", 3), "New York": ("Nueva York", 2), "Paris": ("y París", 1)}
    assert p.span_info[0]["voters"] == 3 and p.span_info[2]["voters"] == 2 and p.span_info[0]["members"] == 3
    assert p.span_info[1]["agreeing"] == ["a", "b"]
    # qc: one agreement per projected target span, in target order (Nueva York, y París, John Smith)
    assert p.qc["agreement"] == [2, 1, 3] and p.qc["min_agreement"] == 1
    # the score is the winner's share of the vote weight
    assert [s.score for s in p.target.spans] == [pytest.approx(2 / 3), pytest.approx(1 / 3), 1.0]
    assert [s.label for s in p.target.spans] == ["LOC", "LOC", "PER"]


def test_weights_and_scores_decide_and_min_agreement_filters():
    a = Fixed("a", [(5, 7), (0, 2), None], score=1.0)
    b = Fixed("b", [(6, 7), (1, 2), None], score=0.4)
    c = Fixed("c", [(6, 7), (1, 2), None], score=0.4)
    _, p = run([a, b, c])  # 1.0 beats 0.4 + 0.4
    assert {p.target.span_text(s) for s in p.target.spans} == {"John Smith", "Nueva York"}
    _, q = run([a, b, c], weights={"b": 2.0})  # 0.8 + 0.4 beats 1.0
    assert {q.target.span_text(s) for s in q.target.spans} == {"Smith", "York"}
    assert all(q.span_info[k]["agreement"] == 2 for k in q.mapping)
    assert [u.reason for u in q.unprojected] == ["unaligned"]  # nobody projected Paris
    _, r = run([a, b, c], min_agreement=2)
    assert {r.target.span_text(s) for s in r.target.spans} == set()  # 'a' alone wins both, agreement 1
    assert sorted(u.reason for u in r.unprojected) == ["low_agreement", "low_agreement", "unaligned"]
    _, s = run([a, b, c], min_agreement=2, policy="reject")
    assert s.rejected == "unprojected_span" and not s.target.spans


def test_collisions_fall_back_and_abstentions():
    a = Fixed("a", [(5, 7), (0, 2), (0, 2)])
    b = Fixed("b", [(5, 7), (0, 2), (3, 4)])
    _, p = run([a, b])
    # New York wins (0, 2) with 2 votes; Paris's winner (0, 2) is taken -> its next range (3, 4)
    assert {SRC.span_text(SRC.spans[k]): p.target.span_text(p.target.spans[j]) for k, j in p.mapping.items()} == {
        "John Smith": "John Smith", "New York": "Nueva York", "Paris": "París"}
    assert p.span_info[2]["fallback"] is True and p.span_info[2]["agreement"] == 1
    spans = p.target.spans
    assert all(x.token_end <= y.token_start for x, y in zip(spans, spans[1:]))
    # a member that rejects the sentence abstains; all rejecting -> the first member's reason
    bad = Fixed("bad", [], reject="too_long")
    _, q = run([bad, a])
    assert q.rejected is None and q.qc["abstained"] == {"bad": "too_long"} and q.span_info[0]["members"] == 1
    _, r = run([bad, Fixed("bad2", [], reject="empty_target")])
    assert r.rejected == "too_long" and len(r.unprojected) == 3


def test_registry_project_api_and_alignment_members():
    """By name through dsbuild.project.project, with two alignment members (gold and shifted links)."""
    assert projectors.get("ensemble") is EnsembleProjector

    class Links:
        name = "links"

        def __init__(self, shift: int) -> None:
            self.shift = shift

        def align(self, src, tgt):
            gold = [(0, 5), (1, 6), (3, 0), (4, 1), (6, 3)]
            return [[(i, min(len(t) - 1, j + self.shift)) for i, j in gold] for t in tgt]

    members = [{"method": "alignment", "name": "gold", "aligner": Links(0)},
               {"method": "alignment", "name": "gold2", "aligner": Links(0)},
               {"method": "alignment", "name": "shifted", "aligner": Links(1), "weight": 0.5}]
    report = project([SRC], [TGT], method="ensemble", src_lang="en", tgt_lang="es", members=members,
                     target_tokenizer="whitespace")
    p = report[0]
    assert report.method == "ensemble" and p.qc["members"] == ["gold", "gold2", "shifted"]
    assert [(p.target.span_text(s), s.label) for s in p.target.spans] == [
        ("Nueva York", "LOC"), ("París", "LOC"), ("John Smith", "PER")]
    # the shifted links miss both LOC spans; "John Smith" is copied verbatim, which the alignment rules find
    assert p.qc["agreement"] == [2, 2, 3]
    assert [m["weight"] for m in report.settings["members"]] == [1.0, 1.0, 0.5]


def test_defaults_and_bad_options():
    ens = EnsembleProjector()  # no MT model: alignment alone
    assert [m.name for m in ens.members] == ["alignment"]
    with pytest.raises(ConfigError, match="unique"):
        EnsembleProjector([Fixed("a", []), Fixed("a", [])])
    with pytest.raises(ConfigError, match="unknown ensemble members"):
        EnsembleProjector([Fixed("a", [])], weights={"b": 1.0})
    with pytest.raises(ConfigError, match="not 'ensemble'"):
        EnsembleProjector(["ensemble"])
    with pytest.raises(ConfigError, match="min_agreement"):
        EnsembleProjector([Fixed("a", [])], min_agreement=0)


def test_translate_train_builder_default_members(tmp_path, synthetic_pairs, tiny_marian_path):
    """method=ensemble by name in translate-train with an MT model: alignment + constrained + tprojection
    vote; the agreement per span reaches the qc column."""
    import gzip

    from dsbuild.config import resolve_options
    from dsbuild.executor import build
    from dsbuild.registry import builders
    from dsbuild.synthetic import generate_pairs

    pairs = synthetic_pairs[:16]
    src = tmp_path / "source.jsonl"
    src.write_text("\n".join(json.dumps(p.source.to_dict()) for p in pairs) + "\n")
    extra = generate_pairs(2000, seed=31, id_prefix="extra")
    for side, attr in (("src", "source"), ("tgt", "target")):
        with gzip.open(tmp_path / f"extra.{side}.gz", "wt") as fh:
            fh.write("\n".join(getattr(p, attr).text for p in extra) + "\n")
    aligner_options = {"extra_src": str(tmp_path / "extra.src.gz"), "extra_tgt": str(tmp_path / "extra.tgt.gz")}
    cls = builders.get("translate-train")
    opts = dict(source=str(src), src_lang=SRC_LANG, target_langs=[TGT_LANG], translator="hf-seq2seq",
                model=str(tiny_marian_path), beam_size=1, cache_dir=str(tmp_path / "cache"),
                target_tokenizer="whitespace", translator_options={"threads": 1, "progress": False},
                policy="keep-partial", method="ensemble",
                method_options={"projector_options": {"alignment": {"aligner_options": aligner_options}}})
    result = build(cls(resolve_options(cls.Options, opts)), tmp_path / "out")
    c = result.counts[TGT_LANG]["train"]
    assert c["in"] == 16 and c["out"] + c["rejected"] == 16
    rows = pq.read_table(result.path / TGT_LANG / "train-00000-of-00001.parquet").to_pylist()
    assert rows
    for r in rows:
        qc = json.loads(r["qc"])
        assert qc["method"] == "ensemble" and qc["members"] == ["alignment", "constrained", "tprojection"]
        assert len(qc["agreement"]) == len(r["spans"]) and all(1 <= a <= 3 for a in qc["agreement"])
    # on this easy pair most spans get at least two methods' votes
    agree = [a for r in rows for a in json.loads(r["qc"])["agreement"]]
    assert sum(a >= 2 for a in agree) / len(agree) >= 0.7
    gold = {p.id: {(s.label, p.target.span_text(s)) for s in p.target.spans} for p in pairs}
    tp = sum(len({(s["label"], s["text"]) for s in r["spans"]} & gold[r["id"]]) for r in rows)
    assert 2 * tp / (sum(len(r["spans"]) for r in rows) + sum(len(g) for g in gold.values())) >= 0.75
