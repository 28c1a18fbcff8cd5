"""The events builder run shard by shard: same bytes for any shard size and number of workers.

The builder's unit of work is a *block* of records (see ``builders/events.py``): the shipped
examples fit in one block, so there the shard size can only change how the executor cuts the
source; a multi-document file with small blocks checks real multi-shard builds (blocks spread
over shards and worker processes, segments that must not be split, facts summed over shards).
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import yaml

import builders.events as events_module
from builders.events import Events, _Scan, shared_result
from dsbuild.builder import BuildContext
from dsbuild.config import resolve_options
from dsbuild.events.formats import record_to_raw
from dsbuild.events.markup import load_markup_records
from dsbuild.events.schema import DATA_DIR
from dsbuild.executor import BuildResult, build
from tests.test_execution import digests

#: option sets of tests/test_events_builder.py
#: (the default build aligns with the shipped en-eu text; the others test mechanics, so they align
#: the records alone and skip eflomal runs over 23,510 pairs)
CASES = {"default": {}, "budget": {"budget": 10, "parallel": "none"}, "segments": {"segment_size": 5, "parallel": "none"}}
#: executor settings that must not change a byte
RUNS = {"default-shards": {}, "shards-of-3": {"shard_size": 3}, "shards-of-3-two-workers": {"shard_size": 3, "workers": 2}}
#: documents of the 24 shipped records: d1 comes back after d2, so d1 and d2 must share a block
DOCS = ["d1"] * 5 + ["d2"] * 3 + ["d1"] * 2 + ["d3"] * 6 + ["d4"] * 8


def make(block_records: int | None = None, **options) -> Events:
    builder = Events(resolve_options(Events.Options, options))
    if block_records is not None:
        builder.block_records = block_records  # an instance attribute travels to the workers with the builder
    return builder


@pytest.fixture(scope="module", params=list(CASES))
def shipped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuildResult]:
    """One option set of the existing tests, built with every executor setting of RUNS."""
    root = tmp_path_factory.mktemp(request.param)
    return {run: build(make(**CASES[request.param]), root / run, progress=False, **kw) for run, kw in RUNS.items()}


def test_shipped_examples_give_the_same_bytes_for_any_shard_size_and_workers(shipped: dict[str, BuildResult]) -> None:
    reference = digests(shipped["default-shards"].path)
    assert {"README.md", "quality.json", "rejects.parquet", "events/test-00000-of-00001.parquet"} <= set(reference)
    for run, result in shipped.items():
        assert digests(result.path) == reference, run
    assert shipped["shards-of-3-two-workers"].provenance["execution"]["workers"] == 2


def test_card_facts_and_quality_come_from_the_summed_shard_facts(shipped: dict[str, BuildResult]) -> None:
    result = shipped["shards-of-3"]
    facts = result.provenance["facts"]
    assert facts["input_records"] == 24 and facts["blocks"]["count"] == 1
    quality = json.loads((result.path / "quality.json").read_text())
    assert quality["structure"] == {k: {"input": facts["structure_in"][k], "output": facts["structure_out"][k]}
                                    for k in ("entities", "triggers", "arguments")}
    for view in ("entities-bio", "triggers-bio", "arguments"):  # every view counted the same facts
        assert facts["split_facts"][view]["test"] == facts["split_facts"]["events"]["test"]
    assert list(facts["type_counts"]) == sorted(facts["type_counts"])


# ---------------------------------------------------------------------- several blocks
@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The shipped records as a 4-document MEE file (one schema violation) and given translations (one missing)."""
    root = tmp_path_factory.mktemp("docs")
    items = yaml.safe_load((DATA_DIR / "examples.yaml").read_text(encoding="utf-8"))
    sources, gold = load_markup_records(items, "en", "eu")
    raw = [{**record_to_raw(rec), "doc_id": doc} for rec, doc in zip(sources, DOCS)]
    raw[4]["arguments"][0]["role"] = "Buyer"  # not a role of its event type: rejected under strict validation
    (root / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw))
    (root / "tr.jsonl").write_text("".join(json.dumps({"id": g.id, "translation": " ".join(g.tokens)}) + "\n"
                                           for g in gold if g.id != "ev-012"))
    return {"source_path": str(root / "docs.jsonl"), "translations_path": str(root / "tr.jsonl"),
            "validation": "strict", "segment_size": 2, "budget": 15, "parallel": "none"}


@pytest.fixture(scope="module")
def blocks(documents: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuildResult]:
    """Blocks of at least 5 records (3 blocks here) in one shard, and one per shard over 2 workers;
    plus the whole file as one block. Counts the projector runs of the first build."""
    root = tmp_path_factory.mktemp("blocks")
    calls: list[int] = []
    project_records = events_module.project_records
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(events_module, "project_records", lambda recs, *a, **k: calls.append(len(recs)) or project_records(recs, *a, **k))
        out = {"one-shard": build(make(5, **documents), root / "one-shard", progress=False)}
    out["projector_calls"] = calls  # type: ignore[assignment]
    out["two-workers"] = build(make(5, **documents), root / "two-workers", shard_size=1, workers=2, progress=False)
    out["one-block"] = build(make(**documents), root / "one-block", shard_size=1, progress=False)
    return out


def test_blocks_give_the_same_bytes_for_any_shard_size_and_workers(blocks: dict[str, BuildResult]) -> None:
    reference = digests(blocks["one-shard"].path)
    assert digests(blocks["two-workers"].path) == reference
    # d1 and d2 interleave: blocks end at 10 and 16, where no document continues
    assert blocks["one-shard"].provenance["facts"]["blocks"]["count"] == 3
    assert blocks["two-workers"].provenance["execution"]["shards"] == 4 * 3  # 4 views x 3 blocks


def test_the_four_views_share_one_projection_per_block(blocks: dict[str, BuildResult]) -> None:
    assert len(blocks["projector_calls"]) == 3  # not 4 views x 3 blocks


def test_blocks_keep_segments_rejects_and_source_facts_of_the_whole_file(blocks: dict[str, BuildResult]) -> None:
    """Alignment depends on the block, the rest must not: the source side of each segment, the
    rejects and the source-side facts are those of the one-block build."""
    small, whole = blocks["one-shard"], blocks["one-block"]
    for view in ("events", "entities-bio", "triggers-bio"):
        assert small.counts[view] == whole.counts[view]
    assert small.counts["arguments"]["test"]["in"] == whole.counts["arguments"]["test"]["in"]  # out: triggers that projected
    rows = [datasets.load_dataset(str(r.path), "events", split="test") for r in (small, whole)]
    assert [(r["id"], r["source_tokens"]) for r in rows[0]] == [(r["id"], r["source_tokens"]) for r in rows[1]]
    assert {r["id"] for r in rows[0]} >= {"d1-seg0", "d1-seg1", "d2-seg0", "d4-seg0"}
    facts = [r.provenance["facts"] for r in (small, whole)]
    for key in ("input_records", "rejected_records", "structure_in"):
        assert facts[0][key] == facts[1][key], key
    assert facts[0]["rejected_records"] == {"no-translation": 1, "over-budget": facts[1]["rejected_records"]["over-budget"],
                                            "schema-violation": 1}
    assert {k: v["before"] for k, v in facts[0]["type_counts"].items()} == \
           {k: v["before"] for k, v in facts[1]["type_counts"].items()}


# ---------------------------------------------------------------------- pieces
@pytest.mark.parametrize("docs, size, ends", [
    (["a"] * 3 + ["b"] * 3 + ["c"] * 3, 2, [3, 6, 9]),
    (["a"] * 3 + ["b"] * 3 + ["c"] * 3, 4, [6, 9]),
    (["a", "b", "a", "c", "c"], 1, [3, 5]),  # a comes back after b: one run
    ([None] * 4 + ["x"], 1, [4, 5]),  # records without a document id are one document
])
def test_blocks_end_only_where_no_document_continues(docs: list[str | None], size: int, ends: list[int]) -> None:
    scan = _Scan(resolve_options(Events.Options, {"segment_size": 2}), size)
    rec = load_markup_records([{"id": "r", "en": "a sentence"}], "en")[0][0]
    for pos, doc in enumerate(docs):
        rec.meta = {"doc_id": doc} if doc else {}
        scan.add(pos, rec)
    assert scan.block_ends() == ends


@pytest.mark.parametrize("n, ends", [(10, [4, 8, 10]), (8, [4, 8]), (3, [3]), (0, [0])])  # 0: one empty block
def test_blocks_without_segments_are_cut_every_block_records(n: int, ends: list[int]) -> None:
    scan = _Scan(resolve_options(Events.Options, {}), 4)
    scan.n = n
    assert scan.block_ends() == ends


def test_shared_result_is_computed_once(tmp_path: Path) -> None:
    ctx = BuildContext(tmp_path)
    calls: list[int] = []
    assert shared_result(ctx, "job-1", lambda: calls.append(1) or {"x": 1}) == {"x": 1}
    assert shared_result(ctx, "job-1", lambda: calls.append(1) or {"x": 2}) == {"x": 1}
    assert calls == [1]
