"""maltese and ner-invariance run shard by shard: the same bytes whatever the shard size or the number
of workers (checked against the pre-sharding builders when they were ported; see the commit)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dsbuild.builder import BuildContext
from dsbuild.config import resolve_options
from dsbuild.executor import build
from dsbuild.registry import builders
from tests.test_execution import digests

#: uneven shards: the 395 Maltese sentences make 5 shards per config, the 799 NER seeds 9
SMALL_SHARDS = 97
VARIANTS = {"default": {}, "small-shards": {"shard_size": SMALL_SHARDS},
            "small-shards-2-workers": {"shard_size": SMALL_SHARDS, "workers": 2}}

ROOT = Path(__file__).resolve().parents[1]


def make(name: str, **options: object) -> object:
    cls = builders.get(name)
    return cls(resolve_options(cls.Options, options))


@pytest.fixture(scope="module", params=["maltese", "ner-invariance"])
def builds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Path]]:
    """``(name, {variant: dataset folder})``: the embedded default built once per variant."""
    name = request.param
    out = tmp_path_factory.mktemp(name)
    return name, {variant: build(make(name), out / variant, progress=False, **kw).path
                  for variant, kw in VARIANTS.items()}


def test_shard_size_and_workers_do_not_change_a_byte(builds: tuple[str, dict[str, Path]]) -> None:
    name, paths = builds
    reference = digests(paths["default"])
    assert {"README.md", "quality.json", "rejects.parquet"} <= set(reference)
    for variant, path in paths.items():
        assert digests(path) == reference, f"{name}: {variant} differs from the default build"
    prov = json.loads((paths["small-shards-2-workers"] / "provenance.json").read_text())
    assert prov["execution"]["workers"] == 2 and prov["execution"]["shards"] > len(prov["configs"])


@pytest.mark.parametrize("name", ["maltese", "ner-invariance"])
def test_prepared_builder_sent_to_workers_holds_no_examples_or_models(name: str, tmp_path: Path) -> None:
    builder = make(name)
    builder.prepare(BuildContext(work_dir=tmp_path))
    assert builder.worker_cache  # prepare loaded models / lexicons in this process ...
    state = pickle.loads(pickle.dumps(builder)).__dict__
    assert state["worker_cache"] == {}  # ... which workers load again themselves
    assert len(pickle.dumps(builder)) < 20_000  # the input stays on disk: no examples, no predictions


def test_maltese_rejects_keep_their_reasons_across_shards(tmp_path: Path) -> None:
    lines = [{"id": "ok", "tokens": ["Il-", "Prim", "Ministru"], "ner_tags": ["O", "O", "O"]},
             {"id": "short", "tokens": ["Il-", "Qorti"], "ner_tags": ["O"]},
             {"id": "ok2", "tokens": ["Robert", "Abela"], "ner_tags": ["B-PER", "I-PER"]},
             {"id": "empty", "tokens": ["", "Qorti"], "ner_tags": ["O", "B-ORG"]},
             {"id": "ok3", "tokens": ["Iva"], "ner_tags": ["O"]}]
    src = tmp_path / "mapa.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n", encoding="utf-8")
    options = {"source": str(src), "pipelines": ["raw", "transliterate_arabic"]}
    one = build(make("maltese", **options), tmp_path / "one", progress=False)
    two = build(make("maltese", **options), tmp_path / "two", progress=False, shard_size=2)
    assert digests(one.path) == digests(two.path)
    rejects = pq.read_table(two.path / "rejects.parquet").to_pylist()
    assert [(r["config"], r["id"], r["reason"]) for r in rejects] == [
        (config, ex_id, reason) for config in ("raw", "transliterate_arabic")
        for ex_id, reason in (("short", "label-length-mismatch"), ("empty", "empty-token"),
                              ("mapa-6", "malformed-json"))]
    facts = json.loads((two.path / "provenance.json").read_text())["facts"]["maltese"]
    assert facts["input_tokens"] == 6  # the three good sentences, counted once (not once per pipeline)
    assert facts["pipeline_stats"]["transliterate_arabic"]["train"]["tokens"] == 6


def test_ner_failed_span_checks_are_rejects_counted_in_quality(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import builders.ner_invariance as ner

    monkeypatch.setattr(ner, "verify_spans", lambda p: "moved span is off" if p.example.id.endswith("3-typos") else None)
    res = build(make("ner-invariance", max_examples=20, operators=["typos"]), tmp_path, progress=False, shard_size=3)
    rejects = pq.read_table(res.path / "rejects.parquet").to_pylist()
    failed = [r for r in rejects if r["reason"] == "span-check-failed"]
    assert [r["detail"] for r in failed] == ["moved span is off"] * len(failed) and failed
    checks = json.loads((res.path / "quality.json").read_text())["span_checks"]["typos"]
    assert checks["span_check_failed"] == len(failed) and checks["not_applicable"] == len(rejects) - len(failed)
    assert res.counts["typos"]["test"]["in"] == 20
