"""Structure-level F1 of event projection on the shipped en->eu examples with gold Basque structure.

The Basque translations are human translations whose markup gives the gold target structure, so
this measures projection alone (no MT error). The projector is configured exactly as the
``events`` builder configures it (:meth:`builders.events.Events.projector_options`: the parallel
text for the aligner, ``parallel=auto`` by default), once per aligner seed; the script prints
entities / triggers / arguments P, R, F1 per seed, then the mean and sample standard deviation of
F1 over the seeds, and the loss accounting.

    python scripts/eval_events.py                            # default: seeds 1 2 3, shipped en-eu text
    python scripts/eval_events.py --parallel none            # the 24 pairs alone (the old default)
    python scripts/eval_events.py --seeds 1 2 3 4 5 --set symmetrization=grow-diag-final

Protocol: 24 records (``builders/data/events/examples.yaml``), exact token boundaries and types;
an argument counts only when its trigger, role and entity all match. The records were written for
dsbuild and are the only en-eu event gold here, so the figure is a development figure.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections import Counter

import yaml

from dsbuild.config import parse_overrides, resolve_options
from dsbuild.events.evaluate import KINDS, structure_prf
from dsbuild.events.markup import load_markup_records
from dsbuild.events.project import project_records
from dsbuild.events.schema import DATA_DIR
from dsbuild.registry import builders, projectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="alignment", help="projection method from the registry")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="aligner option for the alignment method (symmetrization=...), else projector option")
    parser.add_argument("--rule", action="append", default=[], metavar="KEY=VALUE", help="alignment-projection rule")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="aligner seeds (default: 1 2 3)")
    parser.add_argument("--parallel", default="auto", help="the builder's parallel option: auto, shipped, none, or a "
                                                           "fetched OPUS corpus name")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    items = yaml.safe_load((DATA_DIR / "examples.yaml").read_text(encoding="utf-8"))
    sources, gold = load_markup_records(items, "en", "eu")
    translations = [g.tokens for g in gold]
    cls = builders.get("events")
    overrides = parse_overrides(args.set)
    rules = parse_overrides(args.rule)
    per_seed: list[dict[str, float]] = []
    print(f"method: {args.method}   parallel: {args.parallel}   options: {' '.join(args.set + args.rule) or '-'}"
          f"   records: {len(sources)}")
    for seed in args.seeds:
        if args.method == "alignment":
            options = {"aligner_options": {**overrides, "seed": seed}, **rules}
        else:
            options = {**overrides, **rules}
        builder = cls(resolve_options(cls.Options, {"method": args.method, "parallel": args.parallel,
                                                    "projector_options": options}))
        if seed == args.seeds[0]:
            text = builder.parallel_text()
            print(f"parallel text: {text.manifest.describe() if text else builder._parallel_note}")
        projector = projectors.get(args.method)(**builder.projector_options())
        t0 = time.perf_counter()
        projected = project_records(sources, translations, projector, src_lang="en", tgt_lang="eu")
        seconds = time.perf_counter() - t0
        scores = structure_prf([p.target for p in projected], gold)
        per_seed.append({kind: scores[kind].f1 for kind in KINDS})
        print(f"\nseed {seed}   time: {seconds:.1f}s")
        print(f"{'':10s} {'P':>6s} {'R':>6s} {'F1':>6s} {'pred':>5s} {'gold':>5s}")
        for kind, prf in scores.items():
            print(f"{kind:10s} {prf.precision:6.3f} {prf.recall:6.3f} {prf.f1:6.3f} {prf.n_pred:5d} {prf.n_gold:5d}")
        n_in, n_out = Counter(), Counter()
        for p in projected:
            n_in.update(p.source.counts())
            n_out.update(p.target.counts())
        n_lost = Counter(loss.kind for p in projected for loss in p.losses)
        print(f"accounting: in {dict(n_in)}  out {dict(n_out)}  recorded losses {dict(n_lost)}")
    print(f"\nF1 over seeds {' '.join(map(str, args.seeds))} (mean, sample sd):")
    for kind in KINDS:
        values = [s[kind] for s in per_seed]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{kind:10s} {statistics.mean(values):6.3f}  sd {sd:5.3f}   per seed: "
              + " ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main()
