"""Europarl en->es projection F1 when the build is sharded: how the statistical aligner copes.

eflomal learns from what it aligns, so a shard aligned alone aligns worse than the whole corpus
would. europarl-ner's default (``alignment_scope=corpus``) gives every shard its links from one
alignment of all test pairs (computed once under a lock, then read from the alignment cache), so
F1 must not depend on the shard size; ``alignment_scope=shard`` aligns each shard on its own pairs,
jointly with the whole extra parallel text (``parallel_mode=joint``) or with priors learnt once
from it (``parallel_mode=priors``). This script builds europarl-ner (all
799 test pairs, the shipped 12k-pair parallel text, seed fixed) at several shard sizes in both
modes and prints span F1 against the Spanish gold, so the cost of sharding is measured, not
guessed. Protocol: one seed per row (the aligner seed also moves F1 by about a point; see
scripts/eval_europarl.py); the projection rules were developed on these same Spanish sentences,
so these are development figures.

    python scripts/bench_aligner_shards.py [--sizes 1000,200,100] [--modes corpus/joint,shard/joint]

Last line: ``aligner_shards: joint/<size> F1 ..., priors/<size> F1 ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from dsbuild.config import resolve_options
from dsbuild.executor import build
from dsbuild.registry import builders


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,400,200,100", help="shard sizes, comma-separated")
    ap.add_argument("--modes", default="corpus/joint,shard/joint,shard/priors",
                    help="alignment_scope/parallel_mode pairs, comma-separated")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cls = builders.get("europarl-ner")
    results = []
    print(f"{'mode':14s} {'shard':>6s} {'shards':>6s} {'F1':>7s} {'P':>7s} {'R':>7s} {'seconds':>8s}")
    for mode in args.modes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                scope, parallel_mode = mode.split("/")
                options = {"alignment_scope": scope, "parallel_mode": parallel_mode}
                res = build(cls(resolve_options(cls.Options, options)), Path(tmp), shard_size=size,
                            workers=args.workers, progress=False)
                seconds = time.perf_counter() - t0
                micro = json.loads((res.path / "quality.json").read_text())["projection"]["micro"]
                shards = res.provenance["execution"]["shards"]
            results.append((mode, size, micro["f1"]))
            print(f"{mode:14s} {size:6d} {shards:6d} {micro['f1']:7.4f} {micro['precision']:7.4f} "
                  f"{micro['recall']:7.4f} {seconds:8.1f}", flush=True)  # seconds: with whatever alignment cache is warm
    print("aligner_shards: " + ", ".join(f"{m}/{s} F1 {f:.4f}" for m, s, f in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
