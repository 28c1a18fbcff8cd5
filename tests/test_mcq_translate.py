"""mcq-translate: the offline build runs (one language, every benchmark and method), the card carries the
chrF figures, flag rates and the paper's human evaluation, the blank QC catches loss and glue, no answer leak."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dsbuild.config import resolve_options
from dsbuild.executor import build
from dsbuild.registry import builders


@pytest.fixture(scope="module")
def am_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cls = builders.get("mcq-translate")
    b = cls(resolve_options(cls.Options, {"langs": ["am"]}))
    return Path(build(b, tmp_path_factory.mktemp("mcq"), progress=False).path)


def _rows(dataset: Path, config: str, split: str) -> list[dict[str, Any]]:
    return [r for f in sorted((dataset / config).glob(f"{split}-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_configs_aligned_and_accounted(am_build: Path) -> None:
    prov = json.loads((am_build / "provenance.json").read_text())
    assert set(prov["counts"]) == {"en", "am", "am-mt", "am-bt"}
    for config, splits in prov["counts"].items():
        assert splits["winogrande_dev"]["in"] == 1267 and splits["clinical_knowledge_test"]["in"] == 265
        for c in splits.values():
            assert c["in"] == c["out"] + c["rejected"]
    en_ids = {r["id"] for r in _rows(am_build, "en", "winogrande_dev")}
    assert len(en_ids) == 1267 and {r["id"] for r in _rows(am_build, "am", "winogrande_dev")} <= en_ids


def test_qc_catches_amharic_backtranslation_blank_loss(am_build: Path) -> None:
    pc = json.loads((am_build / "provenance.json").read_text())["facts"]["translate_dataset"]["per_config"]
    assert pc["am-bt"]["reject_reasons"]["protected-lost"] == 673  # the README's count of BT rows without `_`
    assert pc["am"]["flags"]["protected-glued"] > 50  # human translations glue the blank to a prefix
    assert pc["am-mt"]["reject_reasons"]["protected-lost"] == 55


def test_no_answer_leak_and_mmlu_options_in_order(am_build: Path) -> None:
    rows = _rows(am_build, "am", "winogrande_dev")
    assert all(r["id"].startswith("wg-") and len(r["id"]) == 15 for r in rows)
    text = (am_build / "rejects.parquet").read_bytes() + b"".join(
        f.read_bytes() for f in am_build.glob("*/*.parquet"))
    assert b"3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U" not in text  # an upstream qID: never published
    english = Path(__file__).parent.parent / "builders/data/mcq_translate/mmlu_cm_ck_vir/clinical_knowledge_test.csv.gz"
    first = next(csv.reader(io.StringIO(gzip.decompress(english.read_bytes()).decode())))
    row = next(r for r in _rows(am_build, "en", "clinical_knowledge_test") if r["id"] == "ck-test-0001")
    assert row["options"] == first[1:5] and row["answer"] == first[5]
    am = next(r for r in _rows(am_build, "am", "clinical_knowledge_test") if r["id"] == "ck-test-0001")
    assert len(am["options"]) == 4 and am["answer"] == first[5] and am["translation_method"] == "human"


def test_card_carries_chrf_flag_rates_and_human_evaluation(am_build: Path) -> None:
    card = (am_build / "README.md").read_text()
    facts = json.loads((am_build / "provenance.json").read_text())["facts"]["translate_dataset"]["recipe"]
    am = facts["per_language"]["am"]
    assert 45 < am["chrf_mt_vs_human"] < 65 and 55 < am["chrf_bt_vs_english"] < 75  # measured 54.82 / 63.34
    assert f"| am | {am['chrf_mt_vs_human']:.2f} | {am['chrf_bt_vs_english']:.2f} |" in card
    assert "protected-lost 43.0%" in card  # the back-translation flag rate
    assert "3,660 / 3,674" in card and "Alhanai et al. 2024, appendix tables" in card
    assert "### Build options\n\n| option | value |" in card  # a heading, then the table


def test_blank_fillable() -> None:
    from builders.mcq_translate import blank_fillable

    assert blank_fillable("so _ got", ["Sarah", "Maria"])
    assert not blank_fillable("so _o got", ["Sarah", "Maria"])  # Sesotho-style glue
    assert not blank_fillable("so got", ["Sarah", "Maria"])
    assert not blank_fillable("so _ got", ["Sarah", " "])


def test_model_config_with_the_tiny_model(tmp_path: Path, tiny_marian_path: Path) -> None:
    """``translator=hf-seq2seq``: a ``<lang>-model`` config translated by this build, scored against the human one."""
    cls = builders.get("mcq-translate")
    opts = {"langs": ["am"], "benchmarks": ["winogrande", "clinical_knowledge"], "methods": ["human"], "max_items": 3,
            "translator": "hf-seq2seq", "model": str(tiny_marian_path), "reject_on": ["options-collapsed"],
            "model_langs": {"am": "qsy"},  # the tiny model knows one target code
            "translator_options": {"threads": 1, "beam_size": 1, "cache": None}}
    out = Path(build(cls(resolve_options(cls.Options, opts)), tmp_path / "o", progress=False).path)
    prov = json.loads((out / "provenance.json").read_text())
    assert set(prov["counts"]) == {"en", "am", "am-model"}
    for splits in prov["counts"].values():
        assert all(c["in"] == 3 == c["out"] + c["rejected"] for c in splits.values())
    rows = _rows(out, "am-model", "winogrande_dev") + _rows(out, "am-model", "clinical_knowledge_test")
    en = {r["id"]: r for r in _rows(out, "en", "winogrande_dev") + _rows(out, "en", "clinical_knowledge_test")}
    assert rows and all(r["translation_method"] == "machine" and r["translator_model"] == tiny_marian_path.name
                        for r in rows)
    for r in rows:  # structure kept: options count and the answer key; scored against the human translation
        assert len(r["options"]) == len(en[r["id"]]["options"]) and r["answer"] == en[r["id"]]["answer"]
        assert r["qc_chrf_reference"] is not None and r["question"] != en[r["id"]]["question"]
    # the tiny model (trained on a synthetic language) writes Latin script, not Ethiopic: the QC says so
    assert all("source-script" in r["qc_flags"] or "untranslated" in r["qc_flags"] for r in rows)
    rec = prov["facts"]["translate_dataset"]["recipe"]["per_language"]["am"]
    assert rec["chrf_model_vs_human"] is not None and rec["chrf_model_vs_human"] < 20
    assert "chrF this build's model vs human" in (out / "README.md").read_text()
