"""Per-language chrF and QC flag rates of an mcq-translate build (the figures its card reports).

Protocol: corpus chrF (sacrebleu chrF2, character 6-grams, beta 2) over every item of the included splits
(WinoGrande dev, MMLU clinical knowledge dev/val/test) that has both texts, an item's text being its question and
options joined by newlines; "MT vs human" scores the paper's machine translation against its human translation, "BT vs
English" the paper's back-translation of the human translation against the English item. Flag rates: share of items
that reached the QC (before rejection) carrying each flag. All figures are computed during the build and read here from
its provenance.json; no setting was tuned on them.

    python scripts/eval_mcq_translate.py OUT/mcq-translate/1.0.0      # an existing build
    python scripts/eval_mcq_translate.py --build                       # build the offline default first (~1 min)
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any


def build_default(out: Path) -> Path:
    """Build mcq-translate with its default options into ``out``; return the dataset folder."""
    from dsbuild.executor import build
    from dsbuild.registry import builders

    cls = builders.get("mcq-translate")
    return Path(build(cls(cls.Options()), out, overwrite=True, progress=False).path)


def report(dataset: Path) -> str:
    """The chrF table, the flag-rate table and the kept counts, as text."""
    facts: dict[str, Any] = json.loads((dataset / "provenance.json").read_text())["facts"]["translate_dataset"]
    rec, per_config = facts["recipe"], facts["per_config"]
    lines = ["language  chrF MT vs human  chrF BT vs English", "--------  ----------------  ------------------"]
    for lang, r in rec["per_language"].items():
        lines.append(f"{lang:<8}  {_f(r['chrf_mt_vs_human']):>16}  {_f(r['chrf_bt_vs_english']):>18}")
    flags = sorted({f for s in per_config.values() for f in s["flag_rates"]})
    lines += ["", "QC flag rates (% of QC'd items) per config", "config  method            in    kept  " +
              "  ".join(f"{f:>17}" for f in flags)]
    for name, s in per_config.items():
        rates = "  ".join(f"{100 * s['flag_rates'].get(f, 0):>16.2f}%" for f in flags)
        lines.append(f"{name:<6}  {s['method']:<16}  {s['input']:>4}  {s['kept']:>4}  {rates}")
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", help="a built mcq-translate folder (OUT/mcq-translate/VERSION)")
    parser.add_argument("--build", action="store_true", help="build the offline default into a temporary folder first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.build:
        with tempfile.TemporaryDirectory() as tmp:
            print(report(build_default(Path(tmp))))
    elif args.dataset:
        print(report(Path(args.dataset)))
    else:
        parser.error("give a built dataset folder, or --build")


if __name__ == "__main__":
    main()
