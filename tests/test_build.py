"""Executor: layout, load-back, determinism, resume after a kill, accounting, overwrite, rejects, shards."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from dsbuild.errors import ConfigError, DsbuildError
from dsbuild.executor import AccountingError, build
from dsbuild.registry import builders
from dsbuild.validate import validate_dataset
from tests.plugins.foundation import ToyBuilder, ToyOptions, europarl_gold_builder


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` except provenance.json (which holds timings), as bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "provenance.json"}


def test_europarl_layout_and_load_dataset(europarl_dir):
    version = builders.get("europarl-ner").version
    assert europarl_dir.parts[-2:] == ("europarl-ner", version)
    names = sorted(str(p.relative_to(europarl_dir)) for p in europarl_dir.rglob("*") if p.is_file())
    assert names == ["README.md", "en/test-00000-of-00001.parquet", "es/test-00000-of-00001.parquet",
                     "provenance.json", "rejects.parquet"]
    es = datasets.load_dataset(str(europarl_dir), "es", split="test")
    assert es.num_rows == 799
    assert isinstance(es.features["ner_tags"].feature, datasets.ClassLabel)
    assert es.features["ner_tags"].feature.names[:3] == ["O", "B-LOC", "I-LOC"]
    row = es[0]
    for span in row["spans"]:  # spans agree with the text and the tags
        assert row["text"][span["start"]:span["end"]] == span["text"]
        assert es.features["ner_tags"].feature.int2str(row["ner_tags"][span["token_start"]]) == f"B-{span['label']}"
    assert datasets.load_dataset(str(europarl_dir), "en", split="test").num_rows == 799
    prov = json.loads((europarl_dir / "provenance.json").read_text())
    assert prov["builder"] == {**prov["builder"], "name": "europarl-ner", "version": version}
    assert prov["counts"]["es"]["test"] == {"in": 799, "out": 799, "rejected": 0}
    assert len(prov["config_hash"]) == 16 and prov["inputs"][0]["sha256"]
    assert validate_dataset(europarl_dir) == []


def test_two_builds_are_byte_identical(tmp_path, europarl_dir, toy_builders):
    again = build(toy_builders["toy-ner"](), tmp_path / "one").path
    other = build(toy_builders["toy-ner"](), tmp_path / "two").path
    assert files_of(again) == files_of(other)
    provs = [json.loads((p / "provenance.json").read_text()) for p in (again, other)]
    for prov in provs:
        assert set(prov["timings"]) == {"started", "seconds", "total_seconds"}
        del prov["timings"]
    assert provs[0] == provs[1]  # provenance differs only in its timings
    assert sorted(files_of(again)) == ["README.md", "a/test-00000-of-00001.parquet", "a/train-00000-of-00001.parquet",
                                       "b/train-00000-of-00001.parquet", "rejects.parquet"]
    second = build(europarl_gold_builder(), tmp_path / "europarl").path
    assert files_of(second) == files_of(europarl_dir)
    card = (second / "README.md").read_text()
    prov = json.loads((second / "provenance.json").read_text())
    assert prov["timings"]["started"] not in card and "seconds" not in card


def test_resume_after_a_kill_reuses_finished_splits(tmp_path, toy_builders):
    ToyBuilder.fail_on = ("b", "train")
    with pytest.raises(RuntimeError, match="simulated kill"):
        build(ToyBuilder(), tmp_path / "out")
    staging = next((tmp_path / "out" / "toy-ner").glob(".0.1.0.partial-*"))
    done = sorted(str(m.parent.relative_to(staging / "_shards")) for m in staging.glob("_shards/*/*/*/done"))
    assert done == ["a/test/00000", "a/train/00000"]
    assert not (tmp_path / "out" / "toy-ner" / "0.1.0").exists()

    ToyBuilder.fail_on = None
    ToyBuilder.calls.clear()
    resumed = build(ToyBuilder(), tmp_path / "out").path
    assert ToyBuilder.calls == [("b", "train")]  # a/train and a/test came from the markers
    assert not staging.exists()
    fresh = build(ToyBuilder(), tmp_path / "fresh").path
    assert files_of(resumed) == files_of(fresh)
    prov = json.loads((resumed / "provenance.json").read_text())
    assert prov["models"][0]["name"] == "toy-model" and prov["seeds"] == {"toy": 13}  # recorded before the kill
    assert prov["facts"]["first_split_rows"] == 7
    assert validate_dataset(resumed) == []


def test_fresh_ignores_unfinished_build(tmp_path, toy_builders):
    ToyBuilder.fail_on = ("b", "train")
    with pytest.raises(RuntimeError):
        build(ToyBuilder(), tmp_path)
    ToyBuilder.fail_on = None
    ToyBuilder.calls.clear()
    build(ToyBuilder(), tmp_path, resume=False)
    assert ToyBuilder.calls == [("a", "train"), ("a", "test"), ("b", "train")]


def test_accounting_error_when_a_builder_drops_an_example(tmp_path, toy_builders):
    with pytest.raises(AccountingError, match=r"read 7 inputs but produced 4 rows \+ 2 rejects"):
        build(toy_builders["toy-lossy"](), tmp_path)
    assert not (tmp_path / "toy-lossy" / "0.1.0").exists()


def test_rejects_table_and_counts(tmp_path, toy_builders):
    result = build(ToyBuilder(ToyOptions(n=7, reject_every=3)), tmp_path)
    assert result.counts["a"]["train"] == {"in": 7, "out": 4, "rejected": 3}
    rejects = pq.read_table(result.path / "rejects.parquet").to_pylist()
    assert len(rejects) == 9
    assert {(r["config"], r["split"]) for r in rejects} == {("a", "train"), ("a", "test"), ("b", "train")}
    assert all(r["reason"] == "toy-reject" and json.loads(r["example"])["id"] == r["id"] for r in rejects)
    assert result.provenance["totals"] == {"in": 21, "out": 12, "rejected": 9}
    card = (result.path / "README.md").read_text()
    assert "21 inputs read = 12 rows kept + 9 rejected" in card
    assert "| a | train | toy-reject | 3 |" in card


def test_overwrite_semantics(tmp_path, toy_builders):
    first = build(ToyBuilder(ToyOptions(n=4)), tmp_path).path
    before = files_of(first)
    with pytest.raises(DsbuildError, match="already exists; pass --overwrite"):
        build(ToyBuilder(ToyOptions(n=5)), tmp_path)
    assert files_of(first) == before  # untouched
    build(ToyBuilder(ToyOptions(n=5)), tmp_path, overwrite=True)
    assert files_of(first) != before
    assert json.loads((first / "provenance.json").read_text())["config"]["n"] == 5
    assert sorted(p.name for p in (tmp_path / "toy-ner").iterdir()) == ["0.1.0"]  # no staging or .old left


def test_shards_and_empty_splits(tmp_path, toy_builders):
    path = build(ToyBuilder(ToyOptions(n=9, reject_every=0)), tmp_path, shard_rows=4).path
    assert sorted(p.name for p in (path / "a").iterdir()) == [
        "test-00000-of-00003.parquet", "test-00001-of-00003.parquet", "test-00002-of-00003.parquet",
        "train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet"]
    assert datasets.load_dataset(str(path), "a", split="train").num_rows == 9
    assert validate_dataset(path) == []
    with pytest.raises(DsbuildError, match=r"kept 0 rows: all 6 inputs were rejected \(toy-reject 6\).*--allow-empty"):
        build(ToyBuilder(ToyOptions(n=2, reject_every=1)), tmp_path / "empty")  # every row rejected
    assert not (tmp_path / "empty" / "toy-ner" / "0.1.0").exists()
    empty = build(ToyBuilder(ToyOptions(n=2, reject_every=1)), tmp_path / "empty", allow_empty=True).path
    assert pq.read_metadata(empty / "a" / "train-00000-of-00001.parquet").num_rows == 0
    assert validate_dataset(empty) == []


def test_empty_input_is_an_error_unless_allowed(tmp_path, toy_builders):
    with pytest.raises(DsbuildError, match="kept 0 rows: its input holds no examples"):
        build(ToyBuilder(ToyOptions(n=0)), tmp_path)
    result = runner_invoke(["build", "toy-ner", "--set", "n=0", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 2 and "--allow-empty" in result.output and "Traceback" not in result.output
    result = runner_invoke(["build", "toy-ner", "--set", "n=0", "--out", str(tmp_path / "cli"), "--allow-empty"])
    assert result.exit_code == 0, result.output


def runner_invoke(args):
    from typer.testing import CliRunner

    from dsbuild.cli import app

    return CliRunner().invoke(app, args)


def test_builder_version_must_be_semver(tmp_path, toy_builders):
    class BadVersion(ToyBuilder):
        version = "1.0"

    with pytest.raises(ConfigError, match="semver"):
        build(BadVersion(), tmp_path)


def test_readme_builder_example_builds(tmp_path, monkeypatch):
    """The 'Adding a builder' example in README.md runs as written and gives a valid dataset."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", readme.split("## Adding a builder", 1)[1], re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.conll").write_text("Ana B-PER\nruns O\n\n" + "x O\n" * 201)
    namespace: dict = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)
        result = build(namespace["MyNer"](), tmp_path / "out")
    finally:
        builders._items.pop("my-ner", None)
    assert result.counts == {"mt": {"train": {"in": 2, "out": 1, "rejected": 1}}}
    assert validate_dataset(result.path) == []


@pytest.mark.parametrize("damage, message", [
    (lambda row: {k: v for k, v in row.items() if k != "spans"}, "has columns"),
    (lambda row: {**row, "ner_tags": ["B-NOPE"] * len(row["tokens"])}, "does not match the features"),
    (lambda row: {**row, "tokens": 5}, "does not match the features"),
])
def test_a_row_that_does_not_fit_the_features_is_named(tmp_path, toy_builders, damage, message):
    class BadRow(ToyBuilder):
        def generate(self, config, split, ctx):
            for i, item in enumerate(super().generate(config, split, ctx)):
                yield damage(item) if i == 2 and isinstance(item, dict) else item

    with pytest.raises(DsbuildError, match=rf"row 'a-train-2' {message}"):
        build(BadRow(), tmp_path)
    assert not (tmp_path / "toy-ner" / "0.1.0").exists()
