"""scripts/aer.py end to end on the en-fr gold set (fast eflomal settings)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/word_alignment")
if not DATA.is_dir():  # pragma: no cover
    DATA = ROOT.parent / "shared" / "data" / "word_alignment"


def _script():
    spec = importlib.util.spec_from_file_location("aer_script", ROOT / "scripts" / "aer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_aligns_and_scores(tmp_path, capsys):
    out = tmp_path / "pred.txt"
    code = _script().main([str(DATA / "enfr.src-tgt"), str(DATA / "enfr.gold"), "--aligner", "eflomal",
                           "--set", "n_iterations=[2,2,4]", "--set", f"cache_dir={tmp_path}",
                           "--set", "symmetrization=intersection", "--output", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["aer"] <= 0.31 and report["n_pairs"] == 447  # measured AER 0.277 (intersection)
    assert report["aligner"]["symmetrization"] == "intersection"
    assert len(out.read_text(encoding="utf-8").splitlines()) == 447


def test_all_symmetrizations(tmp_path, capsys):
    code = _script().main([str(DATA / "enfr.src-tgt"), str(DATA / "enfr.gold"), "--all-symmetrizations",
                           "--set", "n_iterations=[2,2,4]", "--set", f"cache_dir={tmp_path}", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["by_symmetrization"]
    assert set(rows) == {"forward", "reverse", "intersection", "union", "grow-diag", "grow-diag-final",
                         "grow-diag-final-and"}
    assert rows["intersection"]["precision"] >= rows["union"]["precision"]
    assert rows["union"]["recall"] >= rows["intersection"]["recall"]
    assert rows["grow-diag-final-and"]["aer"] == report["aer"]  # the aligner's default is the headline


def test_extra_corpus_and_errors(tmp_path, capsys):
    src = tmp_path / "d.src-tgt"
    src.write_text("the house ||| la maison\na house ||| une maison\n", encoding="utf-8")
    gold = tmp_path / "d.gold"
    gold.write_text("1-1 2-2\n1-1 2-2\n", encoding="utf-8")
    extra_en, extra_fr = tmp_path / "x.en", tmp_path / "x.fr"
    extra_en.write_text("the house\nthe cat\na cat\n", encoding="utf-8")
    extra_fr.write_text("la maison\nle chat\nun chat\n", encoding="utf-8")
    script = _script()
    assert script.main([str(src), str(gold), "--extra-src", str(extra_en), "--extra-tgt", str(extra_fr),
                        "--set", f"cache_dir={tmp_path}", "--set", "n_iterations=[2,2,4]"]) == 0
    text = capsys.readouterr().out
    assert "AER" in text and "precision" in text and '"pairs_used": 3' in text
    with pytest.raises(SystemExit):
        script.main([str(src), str(gold), "--extra-src", str(extra_en)])
    gold.write_text("1-1\n", encoding="utf-8")
    assert script.main([str(src), str(gold), "--set", f"cache_dir={tmp_path}"]) == 2
    assert "2 predicted alignments but 1 gold" in capsys.readouterr().err
