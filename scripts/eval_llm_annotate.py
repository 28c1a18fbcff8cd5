"""Teacher vs human agreement of the default llm-annotate build (offline: definition-overlap on MasakhaNEWS).

    python scripts/eval_llm_annotate.py [--out DIR] [--set KEY=VALUE ...]

Protocol: builds `llm-annotate` with its defaults (or the given overrides) into a temporary folder
(or --out) and prints, from quality.json, the teacher's accuracy, macro-F1 (all labels used by the
humans or the teacher, and the human labels only), Cohen's kappa and nominal Krippendorff's alpha
against the human labels of the test split (30% of the MasakhaNEWS texts per language and label,
seed 1), overall and per language. The definition-overlap teacher's scoring was written once and
not tuned on these texts; the keyword lists are IPTC's subtopic names, not chosen by looking at the data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsbuild.config import parse_overrides, resolve_options  # noqa: E402
from dsbuild.executor import build  # noqa: E402
from dsbuild.registry import builders  # noqa: E402

FIGURES = ("n", "accuracy", "macro_f1", "macro_f1_reference_labels", "cohen_kappa", "krippendorff_alpha", "no_answer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="", help="build here (default: a temporary folder)")
    parser.add_argument("--set", action="append", default=[], help="builder option KEY=VALUE")
    args = parser.parse_args(argv)
    cls = builders.get("llm-annotate")
    with tempfile.TemporaryDirectory() as tmp:
        result = build(cls(resolve_options(cls.Options, parse_overrides(args.set))), args.out or tmp,
                       overwrite=True, progress=False)
        quality = json.loads((result.path / "quality.json").read_text(encoding="utf-8"))
        prov = json.loads((result.path / "provenance.json").read_text(encoding="utf-8"))
    print(f"teacher: backend {prov['config']['backend']}; totals {prov['totals']}")
    print("scope     " + "  ".join(f"{f:>12}" for f in FIGURES))
    rows = {"overall": quality["teacher_vs_human"], **quality["teacher_vs_human_per_language"]}
    for scope, s in rows.items():
        print(f"{scope:<9} " + "  ".join(f"{s[f]:>12}" for f in FIGURES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
