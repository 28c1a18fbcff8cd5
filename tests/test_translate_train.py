"""translate-train end to end: the tiny Marian model on the synthetic pair, the offline default, rejects, resume."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dsbuild.config import resolve_options
from dsbuild.errors import ConfigError, DsbuildError
from dsbuild.executor import build
from dsbuild.registry import builders, projectors
from dsbuild.synthetic import SRC_LANG, TGT_LANG, generate_pairs


def run(tmp_path: Path, name: str = "out", overwrite: bool = False, **options):
    cls = builders.get("translate-train")
    return build(cls(resolve_options(cls.Options, options)), tmp_path / name, overwrite=overwrite)


def rows(result, config: str, split: str = "train") -> list[dict]:
    return pq.read_table(result.path / config / f"{split}-00000-of-00001.parquet").to_pylist()


@pytest.fixture(scope="module")
def synthetic_inputs(tmp_path_factory, synthetic_pairs):
    """Source JSONL (40 held-out labelled sentences, one over-long) + an extra parallel corpus for eflomal."""
    d = tmp_path_factory.mktemp("tt")
    pairs = synthetic_pairs[:40]
    src = d / "source.jsonl"
    lines = [json.dumps(p.source.to_dict()) for p in pairs]
    long_words = ("John sees Mary and the big dog " * 25).split() + ["."]
    lines.append(json.dumps({"id": "too-long", "tokens": long_words, "tags": ["O"] * len(long_words)}))
    src.write_text("\n".join(lines) + "\n")
    extra = generate_pairs(3000, seed=31, id_prefix="extra")
    for side, attr in (("src", "source"), ("tgt", "target")):
        with gzip.open(d / f"extra.{side}.gz", "wt") as fh:
            fh.write("\n".join(getattr(p, attr).text for p in extra) + "\n")
    return {"source": src, "extra_src": d / "extra.src.gz", "extra_tgt": d / "extra.tgt.gz", "pairs": pairs}


def tiny_options(inputs, model_path, cache_dir, **extra):
    opts = dict(source=str(inputs["source"]), src_lang=SRC_LANG, target_langs=[TGT_LANG], translator="hf-seq2seq",
                model=str(model_path), beam_size=1, cache_dir=str(cache_dir), target_tokenizer="whitespace",
                translator_options={"threads": 1, "progress": False}, policy="keep-partial",
                aligner_options={"extra_src": str(inputs["extra_src"]), "extra_tgt": str(inputs["extra_tgt"])})
    opts.update(extra)
    return opts


def span_f1(result_rows, pairs) -> float:
    """Projected spans vs the synthetic gold target spans (label + token range), micro F1."""
    gold = {p.id: {(s.label, s.token_start, s.token_end) for s in p.target.spans} for p in pairs}
    tp = fp = fn = 0
    seen = set()
    for r in result_rows:
        pred = {(s["label"], s["token_start"], s["token_end"]) for s in r["spans"]}
        g = gold.get(r["id"], set())
        tp, fp, fn = tp + len(pred & g), fp + len(pred - g), fn + len(g - pred)
        seen.add(r["id"])
    fn += sum(len(g) for pid, g in gold.items() if pid not in seen)
    return 2 * tp / max(1, 2 * tp + fp + fn)


def test_end_to_end_tiny_model_alignment(tmp_path, synthetic_inputs, tiny_marian_path):
    opts = tiny_options(synthetic_inputs, tiny_marian_path, tmp_path / "cache")
    result = run(tmp_path, **opts)
    c = result.counts[TGT_LANG]["train"]
    assert c == {"in": 41, "out": 40, "rejected": 1}
    rejects = pq.read_table(result.path / "rejects.parquet").to_pylist()
    assert [(r["id"], r["reason"]) for r in rejects] == [("too-long", "too-long")]
    out = rows(result, TGT_LANG)
    assert {r["id"] for r in out} == {p.id for p in synthetic_inputs["pairs"]}
    r0 = out[0]
    assert r0["source_text"] and r0["qc_source_spans"] >= 1 and json.loads(r0["qc"])["method"] == "alignment"
    f1 = span_f1(out, synthetic_inputs["pairs"])
    assert f1 >= 0.95, f1  # measured 1.0
    prov = json.loads((result.path / "provenance.json").read_text())
    model = next(m for m in prov["models"] if m["kind"] == "machine translation")
    assert model["revision"].startswith("sha256:")
    card = (result.path / "README.md").read_text()
    assert "| qsy | train | 41 | 40 | 1 |" in card and "`too-long` 1" in card and model["revision"] in card

    # rerun: same files, and every translation comes from the cache (no model call)
    again = run(tmp_path, overwrite=True, **opts)
    prov2 = json.loads((again.path / "provenance.json").read_text())
    stats = prov2["facts"]["translate_train"]["translator_stats"]
    assert stats["model_calls"] == 0 and stats["cache_hits"] == 40
    assert rows(again, TGT_LANG) == out
    assert (again.path / "README.md").read_text() == card


@pytest.mark.parametrize("method", ["markers", "constrained"])
def test_end_to_end_tiny_model_marker_methods(tmp_path, synthetic_inputs, tiny_marian_path, method):
    if method not in projectors:
        pytest.fail(f"projector {method!r} is not registered")
    opts = tiny_options(synthetic_inputs, tiny_marian_path, tmp_path / "cache", method=method, aligner_options={})
    result = run(tmp_path, **opts)
    c = result.counts[TGT_LANG]["train"]
    assert c["in"] == 41 and c["out"] + c["rejected"] == 41
    out = rows(result, TGT_LANG)
    assert span_f1(out, synthetic_inputs["pairs"]) >= 0.95  # measured 1.0 for both
    assert all("[" not in r["text"] for r in out)


def test_ct2_translator_with_compute_type(tmp_path, synthetic_inputs, tiny_marian_path):
    pytest.importorskip("ctranslate2")
    opts = tiny_options(synthetic_inputs, tiny_marian_path, tmp_path / "cache", translator="ct2", compute_type="int8",
                        method="constrained", aligner_options={}, translator_options={"threads": 1})
    result = run(tmp_path, **opts)
    c = result.counts[TGT_LANG]["train"]
    assert c["in"] == 41 and c["out"] + c["rejected"] == 41 and c["out"] >= 38
    assert span_f1(rows(result, TGT_LANG), synthetic_inputs["pairs"]) >= 0.9
    assert "int8" in (result.path / "README.md").read_text()
    with pytest.raises(ConfigError, match="compute_type is a ct2 option"):
        run(tmp_path, name="bad", **{**opts, "translator": "hf-seq2seq"})


def test_default_build_runs_offline(tmp_path):
    """The embedded default (Europarl en + the given Spanish side, eflomal alignment), on 40 sentences."""
    result = run(tmp_path, max_examples=40, extra_parallel=False)
    c = result.counts["es"]["test"]
    assert c["in"] == 40 and c["out"] + c["rejected"] == 40 and c["out"] >= 25
    out = rows(result, "es", "test")
    assert out[1]["text"].startswith("Declaro reanudado") and out[1]["spans"][0]["label"] == "ORG"
    card = (result.path / "README.md").read_text()
    assert "given-translations" in card and "alignment" in card
    gold = json.loads((result.path / "quality.json").read_text())["projection_vs_human_labels"]["es/test"]
    # 40 sentences aligned alone measure 0.588 (all 799 with the shipped extra corpus: 0.92)
    assert gold["gold_spans"] > 20 and gold["f1"] >= 0.55, gold
    assert "projection_vs_human_labels" in card


def test_given_translations_missing_entries_are_rejects(tmp_path, synthetic_inputs):
    pairs = synthetic_inputs["pairs"]
    given = tmp_path / "given.jsonl"
    given.write_text("\n".join(json.dumps({"source": p.source.text, "target": p.target.text}) for p in pairs[:30]) + "\n")
    result = run(tmp_path, source=str(synthetic_inputs["source"]), src_lang=SRC_LANG, target_langs=[TGT_LANG],
                 translations=str(given), target_tokenizer="whitespace", policy="keep-partial",
                 aligner_options={"extra_src": str(synthetic_inputs["extra_src"]),
                                  "extra_tgt": str(synthetic_inputs["extra_tgt"])})
    rejects = pq.read_table(result.path / "rejects.parquet").to_pylist()
    reasons = sorted({r["reason"] for r in rejects})
    assert reasons == ["no-translation"] and len(rejects) == 11  # 10 missing + the over-long one
    out = rows(result, TGT_LANG)
    assert len(out) == 30 and span_f1(out, pairs[:30]) >= 0.95  # measured 1.0; gold translations: alignment is the only error


def test_parquet_and_dataset_folder_sources(tmp_path, synthetic_inputs):
    """A Parquet file with ClassLabel tags, and a local folder read through datasets.load_dataset."""
    import datasets

    pairs = synthetic_inputs["pairs"][:12]
    names = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    feats = datasets.Features({"id": datasets.Value("string"), "tokens": datasets.List(datasets.Value("string")),
                               "ner_tags": datasets.List(datasets.ClassLabel(names=names))})
    ds = datasets.Dataset.from_list([{"id": p.id, "tokens": p.source.words, "ner_tags": p.source.tags()} for p in pairs],
                                    features=feats)
    folder = tmp_path / "hubish"
    folder.mkdir()
    ds.to_parquet(str(folder / "train.parquet"))
    given = tmp_path / "given.jsonl"
    given.write_text("\n".join(json.dumps({"id": p.id, "target": p.target.text}) for p in pairs) + "\n")
    common = dict(src_lang=SRC_LANG, target_langs=[TGT_LANG], translations=str(given), translations_key="id",
                  target_tokenizer="whitespace", policy="keep-partial", aligner_options={
                      "extra_src": str(synthetic_inputs["extra_src"]), "extra_tgt": str(synthetic_inputs["extra_tgt"])})
    a = run(tmp_path, "a", source=str(folder / "train.parquet"), **common)
    b = run(tmp_path, "b", source=str(folder), **common)
    for res in (a, b):
        out = rows(res, TGT_LANG)
        assert len(out) == 12 and [r["source_tokens"] for r in out] == [p.source.words for p in pairs]
        assert [r["source_spans"][0]["label"] for r in out] == [p.source.spans[0].label for p in pairs]


def test_bad_options_are_config_errors(tmp_path, tiny_marian_path):
    with pytest.raises(ConfigError, match="needs --set model"):
        run(tmp_path, translator="hf-seq2seq")
    with pytest.raises(ConfigError, match="translates with a model"):
        run(tmp_path, method="markers")
    with pytest.raises(ConfigError, match="no translations into 'de'"):
        run(tmp_path, target_langs=["de"], max_examples=3, extra_parallel=False)
    with pytest.raises(DsbuildError, match="Unknown projector 'alignmnet'. Did you mean 'alignment'"):
        run(tmp_path, method="alignmnet")
    with pytest.raises(ConfigError, match="'es' \\(Spanish\\) is not supported"):
        run(tmp_path, translator="hf-seq2seq", model=str(tiny_marian_path), max_examples=3,
            translator_options={"cache": False, "threads": 1})


def test_two_target_languages_two_configs(tmp_path, synthetic_inputs):
    """One config per target language; the card counts each language separately."""
    pairs = synthetic_inputs["pairs"][:10]
    given = tmp_path / "given.jsonl"
    rows_ = [{"id": p.id, "target": p.target.text, "tgt_lang": lang} for lang in ("qsy", "qsz") for p in pairs]
    rows_ = [r for r in rows_ if not (r["tgt_lang"] == "qsz" and r["id"] == pairs[0].id)]  # one missing in qsz
    given.write_text("\n".join(json.dumps(r) for r in rows_) + "\n")
    src = tmp_path / "src.jsonl"
    src.write_text("\n".join(json.dumps(p.source.to_dict()) for p in pairs) + "\n")
    result = run(tmp_path, source=str(src), src_lang=SRC_LANG, target_langs=["qsy", "qsz"], translations=str(given),
                 translations_key="id", target_tokenizer="whitespace", policy="keep-partial",
                 aligner_options={"extra_src": str(synthetic_inputs["extra_src"]),
                                  "extra_tgt": str(synthetic_inputs["extra_tgt"])})
    assert result.counts["qsy"]["train"] == {"in": 10, "out": 10, "rejected": 0}
    assert result.counts["qsz"]["train"] == {"in": 10, "out": 9, "rejected": 1}
    card = (result.path / "README.md").read_text()
    assert "| qsy | train | 10 | 10 | 0 |" in card and "| qsz | train | 10 | 9 | 1 |" in card
    assert "`no-translation` 1" in card
