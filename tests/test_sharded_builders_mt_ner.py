"""maltese and ner-invariance run shard by shard: the same bytes whatever the shard size or the number
of workers, and the same bytes as the builders wrote before they were sharded (generate + prepare)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import datasets
import pyarrow
import pyarrow.parquet as pq
import pytest

import dsbuild
from dsbuild.builder import BuildContext
from dsbuild.config import resolve_options
from dsbuild.executor import build
from dsbuild.registry import builders
from tests.test_execution import digests

#: uneven shards: the 395 Maltese sentences make 5 shards per config, the 799 NER seeds 9
SMALL_SHARDS = 97
VARIANTS = {"default": {}, "small-shards": {"shard_size": SMALL_SHARDS},
            "small-shards-2-workers": {"shard_size": SMALL_SHARDS, "workers": 2}}

#: digests of the default builds made by the builders before the port (generate + prepare), with the
#: environment they depend on: Parquet bytes name the pyarrow version, the card the dsbuild version,
#: and ner-invariance rows hold the absolute path of the shipped seed file
BEFORE_THE_PORT = {
    "environment": {"dsbuild": "0.1.0", "pyarrow": "26.0.1", "datasets": "5.2.0", "root": "/work/main"},
    "maltese": {
        "README.md": "35dfbfd37c737991f8846f7fef923d110173ac2d8d69a87765bbf7bae21cf494",
        "quality.json": "565d5fcfe365aed6704971e7bbad4c44fc273be6ae04e1299957e707f4aa32f5",
        "raw/train-00000-of-00001.parquet": "6d39c52cb4a812ae90133ac100216da34f3dcfbd629799c262dc78952ef59706",
        "rejects.parquet": "7de161a6eb0e33a6630ef53fc96b7fa257560c99a13fab7db44d8f94aef0cae0",
        "translate_all_ar/train-00000-of-00001.parquet": "f646a955522cae765481d072d1c47dbd6f323fd13d1f22277522557ca3076e02",
        "translate_all_en/train-00000-of-00001.parquet": "5a8d065b89798a22ef7abd29d01c53b1db137d17f474cd5bdb815503fc2f9873",
        "translate_all_it/train-00000-of-00001.parquet": "494d1a84bf0d3b6a2f027353a4bd6be1e03388de282d5c6c0cf2611720808b16",
        "transliterate_all/train-00000-of-00001.parquet": "ea752b2d4b88ee1c33c07ad04a1b9ddd238c72409379a1d7cb6641b74a4df6a0",
        "transliterate_arabic/train-00000-of-00001.parquet": "c9e9bf5cdf5c8de2e99661163b5cad3401d1d7e3ff2a73454aba77b85a6ab21a",
        "transliterate_arabic_translate_ar/train-00000-of-00001.parquet":
            "01c6dbd34715c046f54dc8df5bc45362375720ade9a41697220eed75a1ab5e78",
        "transliterate_arabic_translate_en/train-00000-of-00001.parquet":
            "661778e6b36416fd66a45b804ebb30af0315f1d4f0f6928958b9e0e70993aca4",
        "transliterate_arabic_translate_it/train-00000-of-00001.parquet":
            "83816396d13a86a269a3420745f48037fe221fe30c3380562493f34515830a4e",
    },
    "ner-invariance": {
        "README.md": "e71c9f7ccfa8104b20d906972a8e26e7bb23bce4f2c5936e90bc92cb277968c8",
        "change-numbers/test-00000-of-00001.parquet": "86fd75b86dd371aa443d019410f82c331f186e5d0aa3af6b89cc344649ea4b39",
        "quality.json": "78b3a8f842ccbf6466e63acfdd1f96011453d4b61ef9fdb79f9651a1648cdf99",
        "rejects.parquet": "dce4473b9f6c30e06217874d67d9f40bcfd06517a1632886234891a77c3b31e5",
        "swap-entities/test-00000-of-00001.parquet": "e774c8151fead9427bb7fbf80efdc0f62810663ce519f01c1d9ab42b9e6f9f9f",
        "typos/test-00000-of-00001.parquet": "de362e758c21b648eac8a6b3f0caee42599d402ef8bc4c175c76a220e702db57",
    },
}
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


def test_same_bytes_as_before_the_port(builds: tuple[str, dict[str, Path]]) -> None:
    here = {"dsbuild": dsbuild.__version__, "pyarrow": pyarrow.__version__, "datasets": datasets.__version__,
            "root": str(ROOT)}
    if here != BEFORE_THE_PORT["environment"]:
        pytest.skip(f"pinned digests were made with {BEFORE_THE_PORT['environment']}, this is {here}")
    name, paths = builds
    got = digests(paths["default"])
    changed = sorted(f for f in set(got) | set(BEFORE_THE_PORT[name]) if got.get(f) != BEFORE_THE_PORT[name].get(f))
    assert not changed, f"{name}: {changed} differ from the pre-sharding build (update BEFORE_THE_PORT only if intended)"


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
