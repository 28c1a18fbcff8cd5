"""Cards: computed front matter, offline metadata validation, templates, and `validate` on damaged datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dsbuild.cards import (allowed_values, parse_front_matter, render_card, size_category, validate_metadata,
                           write_card)
from dsbuild.errors import DsbuildError
from dsbuild.executor import build
from dsbuild.validate import validate_dataset
from tests.plugins.foundation import ToyBuilder, ToyOptions

GOOD = {
    "pretty_name": "X", "language": ["en", "mt", "fil"], "license": "cc-by-4.0", "multilinguality": ["multilingual"],
    "size_categories": ["n<1K"], "source_datasets": ["original", "extended|europarl"],
    "task_categories": ["token-classification"], "task_ids": ["named-entity-recognition"],
    "annotations_creators": ["machine-generated"], "language_creators": ["found"], "tags": ["ner"],
}


@pytest.fixture
def europarl_copy(tmp_path, europarl_dir) -> Path:
    dst = tmp_path / "europarl-ner" / europarl_dir.name
    shutil.copytree(europarl_dir, dst)
    return dst


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 9_999, 10_000, 99_999, 100_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]
    assert size_category(10**13) == "n>1T"
    assert all(size_category(10**k) in allowed_values()["size_categories"] for k in range(14))


def test_vendored_lists_hold_the_values_we_rely_on():
    allowed = allowed_values()
    assert {"unknown", "other", "cc-by-4.0", "mit", "apache-2.0", "odc-by"} <= set(allowed["licenses"])
    assert "named-entity-recognition" in allowed["task_categories"]["token-classification"]
    assert "translation" in allowed["task_categories"]


@pytest.mark.parametrize("change, message", [
    ({}, None),
    ({"license": "unknown"}, None),
    ({"license": "other", "license_name": "europarl-terms"}, None),
    ({"license": "other"}, "license_name is missing"),
    ({"license": "CC-BY"}, "license: 'CC-BY' is not an allowed value"),
    ({"task_categories": ["ner"]}, "task_categories: 'ner'"),
    ({"task_ids": ["named-entity-detection"]}, "task_ids: 'named-entity-detection' is not an allowed value"),
    ({"task_ids": ["extractive-qa"]}, "does not belong to task_categories"),
    ({"size_categories": ["1K-10K"]}, "size_categories"),
    ({"multilinguality": ["bilingual"]}, "multilinguality"),
    ({"annotations_creators": ["robots"]}, "annotations_creators"),
    ({"language_creators": []}, "'language_creators' is missing"),
    ({"language": ["english"]}, "not an ISO 639 code"),
    ({"language": ["xx"]}, "not an ISO 639-1 code"),
    ({"language": [False]}, "quote codes such as 'no'"),
    ({"source_datasets": ["extended|"]}, "source_datasets"),
    ({"pretty_name": ""}, "pretty_name"),
])
def test_validate_metadata(change, message):
    problems = validate_metadata({**GOOD, **change})
    if message is None:
        assert problems == []
    else:
        assert any(message in p for p in problems), problems


def test_europarl_card(europarl_dir):
    text = (europarl_dir / "README.md").read_text()
    assert "### Build options\n\n| option | value |" in text  # a heading, then a Markdown table
    meta, body = parse_front_matter(text)
    assert validate_metadata(meta) == []
    assert meta["configs"] == [
        {"config_name": "en", "data_files": [{"split": "test", "path": "en/test-*.parquet"}]},
        {"config_name": "es", "data_files": [{"split": "test", "path": "es/test-*.parquet"}]}]
    assert [i["config_name"] for i in meta["dataset_info"]] == ["en", "es"]
    es_info = meta["dataset_info"][1]
    assert es_info["splits"][0]["num_examples"] == 799
    assert [f["name"] for f in es_info["features"]] == ["id", "text", "tokens", "ner_tags", "spans"]
    assert es_info["features"][3]["list"]["class_label"]["names"]["1"] == "B-LOC"
    assert meta["license"] == "unknown" and meta["size_categories"] == ["1K<n<10K"]
    assert meta["language"] == ["en", "es"] and meta["task_ids"] == ["named-entity-recognition"]
    for heading in ("## Dataset structure", "## How it was made", "## Licences and citations", "## Limitations",
                    "## How to load", "## Version history"):
        assert heading in body
    assert "too small to train on" in body  # the builder template's limitations block
    assert "| test | 799 | 799 | 799 | 0 |" in body
    assert "| test | 100 | 180 | 338 | 84 | 702 |" in body  # en spans by label, from the Parquet data
    assert "@inproceedings{agerri-etal-2018-building" in body
    assert 'load_dataset(PATH, "en")' in body
    assert render_card(europarl_dir) == text


def test_quality_models_seeds_and_other_licence(tmp_path, toy_builders):
    ToyBuilder.quality = {"f1": 0.81234, "per_label": {"PER": {"p": 1.0, "r": 0.5}, "LOC": {"p": 0.25, "r": 1.0}}}
    path = build(ToyBuilder(ToyOptions(license="other", license_name="toy-terms")), tmp_path).path
    meta, body = parse_front_matter((path / "README.md").read_text())
    assert (meta["license"], meta["license_name"], meta["license_link"]) == ("other", "toy-terms", "https://example.org/licence")
    assert validate_dataset(path) == []
    unnamed = build(ToyBuilder(ToyOptions(license="other")), tmp_path / "unnamed").path
    assert any("license_name is missing" in p for p in validate_dataset(unnamed))
    assert json.loads((path / "quality.json").read_text())["f1"] == 0.81234
    assert "## Quality" in body and "| f1 | 0.8123 |" in body
    assert "| PER | 1 | 0.5 |" in body and "| LOC | 0.25 | 1 |" in body
    assert "`toy-model` (aligner), revision `abc123`" in body and '"threshold": 0.5' in body
    assert "`toy=13`" in body


def test_card_command_restores_an_edited_card(europarl_copy):
    original = (europarl_copy / "README.md").read_text()
    (europarl_copy / "README.md").write_text(original.replace("Europarl", "Eurorail"))
    assert any("differs from the card rendered" in p for p in validate_dataset(europarl_copy))
    write_card(europarl_copy)
    assert (europarl_copy / "README.md").read_text() == original
    assert validate_dataset(europarl_copy) == []


def test_render_card_needs_provenance(tmp_path):
    with pytest.raises(DsbuildError, match="no provenance.json"):
        render_card(tmp_path)


def _damage_counts(d: Path) -> None:
    prov = json.loads((d / "provenance.json").read_text())
    prov["counts"]["es"]["test"]["in"] = 800
    (d / "provenance.json").write_text(json.dumps(prov))


def _damage_features(d: Path) -> None:
    table = pq.read_table(d / "es" / "test-00000-of-00001.parquet").drop_columns(["spans"])
    pq.write_table(table, d / "es" / "test-00000-of-00001.parquet")


def _damage_schema_metadata(d: Path) -> None:
    table = pq.read_table(d / "es" / "test-00000-of-00001.parquet")
    pq.write_table(table.replace_schema_metadata(None), d / "es" / "test-00000-of-00001.parquet")


def _damage_license(d: Path) -> None:
    text = (d / "README.md").read_text()
    (d / "README.md").write_text(text.replace("\nlicense: unknown\n", "\nlicense: europarl\n"))


def _damage_configs(d: Path) -> None:
    text = (d / "README.md").read_text()
    (d / "README.md").write_text(text.replace("path: es/test-*.parquet", "path: es/*.parquet"))


def _damage_extra_shard(d: Path) -> None:
    shutil.copy(d / "es" / "test-00000-of-00001.parquet", d / "es" / "test-00001-of-00002.parquet")


def _damage_rejects(d: Path) -> None:
    pq.write_table(pa.table({"config": ["es"], "split": ["test"], "id": ["x"], "reason": ["r"], "detail": [""],
                             "example": [None]}, schema=pq.read_schema(d / "rejects.parquet")), d / "rejects.parquet")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "rejects.parquet").unlink(), "rejects.parquet is missing"),
    (lambda d: (d / "es" / "test-00000-of-00001.parquet").unlink(), "listed in provenance.json but missing"),
    (_damage_counts, "800 inputs != 799 kept + 0 rejected"),
    (_damage_features, "column 'spans' missing"),
    (_damage_schema_metadata, "no embedded datasets.Features"),
    (_damage_license, "license: 'europarl' is not an allowed value"),
    (_damage_configs, "data_files should be 'es/test-*.parquet'"),
    (_damage_extra_shard, "not listed in provenance.json"),
    (_damage_rejects, "rejects.parquet holds 1 rejects but provenance counts 0"),
    (lambda d: (d / "README.md").write_text("# no front matter\n"), "no YAML front matter"),
    (lambda d: (d / "quality.json").write_text("{oops"), "quality.json is not valid JSON"),
    (lambda d: (d / "provenance.json").write_text('{"builder": {"version": "2.0.0"}, "configs": [{"splits": []}]}'),
     "provenance.json is malformed"),
])
def test_validate_reports_damage(europarl_copy, damage, message):
    damage(europarl_copy)
    problems = validate_dataset(europarl_copy)
    assert any(message in p for p in problems), problems


def test_validate_wrong_directory(tmp_path, europarl_dir):
    assert validate_dataset(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a directory"]
    renamed = tmp_path / "europarl-ner" / "9.9.9"
    shutil.copytree(europarl_dir, renamed)
    assert any("does not match the builder version" in p for p in validate_dataset(renamed))


def test_build_warns_about_metadata_the_hub_would_reject(tmp_path, toy_builders, caplog):
    with caplog.at_level("WARNING", logger="dsbuild.executor"):
        path = build(ToyBuilder(ToyOptions(license="gplv9")), tmp_path).path
    assert any("license: 'gplv9' is not an allowed value" in r.getMessage() for r in caplog.records)
    assert any("gplv9" in p for p in validate_dataset(path))
