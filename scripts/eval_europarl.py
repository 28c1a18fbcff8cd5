#!/usr/bin/env python
"""Europarl NER projection benchmark: print span P/R/F1 of the offline default projection.

Aligns as ``python -m dsbuild build europarl-ner`` does with its default shard size (all 799
pairs in one shard; same builder, same options, same seeded aligner), then scores two reference variants *on the same
alignments*, so the gain of the span-projection rules is measured in one run:

- ``baseline``: min..max closure of the aligned tokens, no repairs (the classic recipe);
- ``default``: dsbuild's default rules (what the dataset ships).

Usage::

    python scripts/eval_europarl.py                          # en -> es, shipped parallel text
    python scripts/eval_europarl.py --set target_lang=de --set target_path=de.conll \\
        --set parallel_src=europarl.de-en.en --set parallel_tgt=europarl.de-en.de
    python scripts/eval_europarl.py --reverse                # es -> en (English gold as target)
    python scripts/eval_europarl.py --json                   # machine-readable

Any ``--set`` option of the builder applies (``python -m dsbuild info europarl-ner`` lists them).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from dsbuild.builder import BuildContext
from dsbuild.config import parse_overrides, resolve_options
from dsbuild.evaluate import evaluate_examples
from dsbuild.project.alignment import AlignmentProjector
from dsbuild.project.base import ProjectionReport
from dsbuild.registry import builders

BASELINE_RULES = {"split": "closure", "trim_punct": False, "trim_foreign": False, "trim_weak": False,
                  "trim_case": False, "copy_anchor": False, "extend_case": False, "string_fallback": False,
                  "collisions": "trim"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="builder option, as for `dsbuild build europarl-ner --set ...`")
    ap.add_argument("--reverse", action="store_true", help="project es -> en (English gold as target)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    overrides = parse_overrides(args.overrides)
    if args.reverse:
        overrides = {"source_lang": "es", "target_lang": "en", **overrides}
    cls = builders.get("europarl-ner")
    builder = cls(resolve_options(cls.Options, overrides))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = BuildContext(Path(tmp))
        builder.prepare(ctx)
        with ctx.timer("align"):
            prepared, views = builder.align_all()  # all pairs at once: the build's single shard
    elapsed = time.perf_counter() - t0
    o = builder.options
    gold = list(builder._read_side(o.target_lang))
    results = {"pair": builder.pair, "sentences": len(gold),
               "parallel": (ctx.facts["projection"]["parallel"] or {}).get("pairs", 0),
               "seconds": {k: round(v, 2) for k, v in ctx.timings.items()} | {"total": round(elapsed, 2)}}
    variants = {"baseline": {**BASELINE_RULES}, "default": dict(o.rules)}
    for name, rules in variants.items():
        projector = AlignmentProjector(aligner=None, policy=o.policy, **rules)
        projections = projector.project_aligned(prepared, views)
        results[name] = evaluate_examples([p.target for p in projections], gold).to_dict()
        if name == "default":
            report = ProjectionReport(projections, "alignment", o.source_lang, o.target_lang, projector.describe())
            c = report.counts
            results["counts"] = {"source_spans": c["source_spans"], "projected": c["projected"],
                                 "unprojected": c["unprojected"], "sentences_kept": c["kept"],
                                 "sentences_rejected": c["rejected"]}
            results["unprojected_by_reason"] = c["unprojected_by_reason"]

    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return 0
    print(f"europarl-ner projection {builder.pair}: {len(gold)} sentences, aligner {o.aligner} (seed {o.seed}, "
          f"{o.symmetrization}), parallel text: {results['parallel']} pairs ({o.parallel_mode})")
    print(f"{'variant':10s} {'P':>7s} {'R':>7s} {'F1':>7s}   per-label F1")
    for name in variants:
        m = results[name]["micro"]
        per = "  ".join(f"{k} {v['f1']:.3f}" for k, v in results[name]["per_label"].items())
        print(f"{name:10s} {m['precision']:7.4f} {m['recall']:7.4f} {m['f1']:7.4f}   {per}")
    c = results["counts"]
    print(f"spans: {c['source_spans']} source = {c['projected']} projected + {c['unprojected']} unprojected "
          f"{results['unprojected_by_reason']}; sentences: {c['sentences_kept']} kept, {c['sentences_rejected']} rejected")
    print(f"time: {results['seconds']}")
    print(f"EUROPARL_{builder.pair.upper().replace('-', '_')}_F1 {results['default']['micro']['f1']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
