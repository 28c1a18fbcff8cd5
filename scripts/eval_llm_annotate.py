"""Teacher vs human agreement of the default llm-annotate build (offline: definition-overlap on MasakhaNEWS).

    python scripts/eval_llm_annotate.py [--out DIR] [--seeds 1 2 3] [--set KEY=VALUE ...]

Protocol: builds `llm-annotate` with its defaults (or the given overrides) into a temporary folder
(or --out) and prints, from quality.json, the teacher's accuracy, macro-F1 (all labels used by the
humans or the teacher, and the human labels only), Cohen's kappa and nominal Krippendorff's alpha
against the human labels of the test split (30% of the MasakhaNEWS texts per language and label,
seed 1), overall and per language. The definition-overlap teacher's scoring was written once and
not tuned on these texts; the keyword lists are IPTC's subtopic names, not chosen by looking at the data.
With several ``--seeds`` (the split seed: which texts form the test split) it builds once per seed and
adds the mean and standard deviation of the overall figures.

MasakhaNEWS licence: AFL-3.0 per its Hugging Face card; an unmerged change (GitHub PR #2) proposes a
non-commercial licence. Fine for internal evaluation; check upstream before redistributing what you build.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsbuild.config import parse_overrides, resolve_options  # noqa: E402
from dsbuild.executor import build  # noqa: E402
from dsbuild.registry import builders  # noqa: E402

FIGURES = ("n", "accuracy", "macro_f1", "macro_f1_reference_labels", "cohen_kappa", "krippendorff_alpha", "no_answer")


def run(overrides: dict, out: str) -> tuple[dict, dict]:
    """quality.json and provenance.json of one build with these option overrides."""
    cls = builders.get("llm-annotate")
    with tempfile.TemporaryDirectory() as tmp:
        result = build(cls(resolve_options(cls.Options, overrides)), out or tmp, overwrite=True, progress=False)
        quality = json.loads((result.path / "quality.json").read_text(encoding="utf-8"))
        prov = json.loads((result.path / "provenance.json").read_text(encoding="utf-8"))
    return quality, prov


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="", help="build here (default: a temporary folder)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[], help="split seeds (default: the option's)")
    parser.add_argument("--set", action="append", default=[], help="builder option KEY=VALUE")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.set)
    overall = []
    for seed in args.seeds or [None]:
        quality, prov = run({**overrides, **({"seed": seed} if seed is not None else {})}, args.out)
        print(f"teacher: backend {prov['config']['backend']}; split seed {prov['config']['seed']}; "
              f"totals {prov['totals']}")
        print("scope     " + "  ".join(f"{f:>12}" for f in FIGURES))
        rows = {"overall": quality["teacher_vs_human"], **quality["teacher_vs_human_per_language"]}
        for scope, s in rows.items():
            print(f"{scope:<9} " + "  ".join(f"{s[f]:>12}" for f in FIGURES))
        overall.append(quality["teacher_vs_human"])
    if len(overall) > 1:
        print(f"overall over {len(overall)} split seeds: " + "; ".join(
            f"{f} {statistics.mean(o[f] for o in overall):.4f} ± {statistics.stdev(o[f] for o in overall):.4f}"
            for f in FIGURES[1:6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
