"""Structure-level F1 of event projection on the shipped en->eu examples with gold Basque structure.

The Basque translations are human translations whose markup gives the gold target structure, so
this measures projection alone (no MT error). Prints entities / triggers / arguments P, R, F1 and
the loss accounting for every projection method given.

    python scripts/eval_events.py                       # alignment (eflomal on the 24 pairs)
    python scripts/eval_events.py --method alignment --set aligner=eflomal
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter

import yaml

from dsbuild.config import parse_overrides
from dsbuild.events.evaluate import structure_prf
from dsbuild.events.markup import load_markup_records
from dsbuild.events.project import project_records
from dsbuild.events.schema import DATA_DIR
from dsbuild.registry import projectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="alignment", help="projection method from the registry")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="projector option")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    items = yaml.safe_load((DATA_DIR / "examples.yaml").read_text(encoding="utf-8"))
    sources, gold = load_markup_records(items, "en", "eu")
    translations = [g.tokens for g in gold]
    projector = projectors.get(args.method)(**parse_overrides(args.set))
    t0 = time.perf_counter()
    projected = project_records(sources, translations, projector, src_lang="en", tgt_lang="eu")
    seconds = time.perf_counter() - t0
    scores = structure_prf([p.target for p in projected], gold)
    print(f"method: {args.method} {' '.join(args.set)}   records: {len(sources)}   time: {seconds:.2f}s")
    print(f"{'':10s} {'P':>6s} {'R':>6s} {'F1':>6s} {'pred':>5s} {'gold':>5s}")
    for kind, prf in scores.items():
        print(f"{kind:10s} {prf.precision:6.3f} {prf.recall:6.3f} {prf.f1:6.3f} {prf.n_pred:5d} {prf.n_gold:5d}")
    n_in, n_out = Counter(), Counter()
    for p in projected:
        n_in.update(p.source.counts())
        n_out.update(p.target.counts())
    n_lost = Counter(loss.kind for p in projected for loss in p.losses)
    print(f"accounting: in {dict(n_in)}  out {dict(n_out)}  recorded losses {dict(n_lost)}")


if __name__ == "__main__":
    main()
