#!/usr/bin/env python
"""Link agreement of dsbuild's ``neural`` aligner with the simalign package, same model and sentences.

Both read the same encoder layer, mean-pool subwords into words (simalign ``token_type="word"``,
dsbuild ``pooling="mean"``) and extract links by ArgMax and IterMax. The script aligns the same
sentence pairs with both and prints, per method, the link agreement (Jaccard: links in both /
links in either, over all pairs) and the share of pairs whose link sets are identical.

Protocol: ``--pairs`` random sentence pairs (seeded) drawn from the tiny test encoder's word
list, each side short enough that simalign does not truncate it; by default the tiny random BERT
of the test suite (``tests/plugins/tiny_bert.py``, built and cached on first use), or any local
encoder with ``--model``. No download: HF_HUB_OFFLINE=1 is set.

Usage::

    python scripts/check_simalign.py                     # tiny BERT, 200 pairs, layer 2
    python scripts/check_simalign.py --model /path/to/mbert --layer 8 --pairs 500

The last line: ``link agreement neural vs simalign: argmax X.XXXX, itermax Y.YYYY``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]

METHODS = ("argmax", "itermax")


def tiny_bert() -> tuple[str, tuple[str, ...]]:
    """Path of the test suite's tiny random BERT (built once, cached) and its word list."""
    sys.path.insert(0, str(ROOT))
    from tests.plugins.tiny_bert import BERT_RECIPE, WORDS, _cached, build_tiny_bert

    return str(_cached("tiny-bert", BERT_RECIPE, build_tiny_bert)), tuple(WORDS)


def sample_pairs(words: tuple[str, ...], n: int, seed: int, model: str, lo: int = 2,
                 hi: int = 10) -> tuple[list[list[str]], list[list[str]]]:
    """``n`` seeded random sentence pairs of ``lo``..``hi`` words each, every side within the
    model's input limit (sides that would be truncated are drawn again)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    limit = min(getattr(tok, "model_max_length", 512), 512) - 2
    rng = random.Random(seed)

    def side() -> list[str]:
        while True:
            sent = [rng.choice(words) for _ in range(rng.randint(lo, hi))]
            if sum(len(tok.tokenize(w)) for w in sent) <= limit:
                return sent

    pairs = [(side(), side()) for _ in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def agreement(model: str, src: list[list[str]], tgt: list[list[str]], layer: int) -> dict[str, Any]:
    """Per method: Jaccard of the pooled link sets, identical pairs, link counts of each aligner."""
    from dsbuild.align.neural import NeuralAligner
    from dsbuild.align.simalign_aligner import SimAlignAligner

    out: dict[str, Any] = {"pairs": len(src), "layer": layer, "model": model}
    for method in METHODS:
        ours = NeuralAligner(model, layer=layer, pooling="mean", extraction=method, num_threads=1).align(src, tgt)
        simalign = SimAlignAligner(model, layer=layer, matching=method, token_type="word", num_threads=1)
        theirs = simalign.align(src, tgt)
        if simalign.stats["truncated_pairs"]:
            raise RuntimeError(f"{simalign.stats['truncated_pairs']} pairs were truncated by simalign: use shorter pairs")
        both = either = same = 0
        for a, b in zip(ours, theirs):
            x, y = set(a.links), set(b.links)
            both += len(x & y)
            either += len(x | y)
            same += x == y
        out[method] = {"agreement": round(both / either, 4) if either else 1.0, "identical_pairs": same,
                       "links_neural": sum(len(a.links) for a in ours),
                       "links_simalign": sum(len(b.links) for b in theirs)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="local encoder folder (default: the test suite's tiny random BERT)")
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    model, words = tiny_bert() if args.model is None else (args.model, ())
    if not words:  # a real model: short sentences of the tiny word list are still fine as input
        words = tiny_bert()[1]
    src, tgt = sample_pairs(words, args.pairs, args.seed, model)
    r = agreement(model, src, tgt, args.layer)
    if args.json:
        print(json.dumps(r, indent=2, sort_keys=True))
        return 0
    print(f"model {model} (layer {args.layer}), {r['pairs']} random pairs (seed {args.seed}), 2-10 words per side, within the model's input limit")
    for method in METHODS:
        m = r[method]
        print(f"{method:8s} agreement {m['agreement']:.4f}  identical pairs {m['identical_pairs']}/{r['pairs']}  "
              f"links neural {m['links_neural']} simalign {m['links_simalign']}")
    print(f"link agreement neural vs simalign: argmax {r['argmax']['agreement']:.4f}, "
          f"itermax {r['itermax']['agreement']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
