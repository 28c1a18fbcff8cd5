"""Benchmark Maltese -> Arabic-script transliteration speed (tokens per second).

Runs the deterministic transliterator over the shipped annotated sentences repeated to
``--tokens`` tokens: once with a fresh transliterator (cold: every token type computed once,
then cached) and once more with the same one (warm: cache hits). Also times the ranked
alternatives mode on the distinct token types. Prints the figures; the target is >= 50,000
tokens/s.

    python scripts/bench_transliteration.py [--tokens 500000]
"""

from __future__ import annotations

import argparse
import time

from dsbuild.maltese import resources
from dsbuild.maltese.readers import read_etymology_tsv
from dsbuild.maltese.transliterate import Transliterator, TransliterationStats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=500_000, help="tokens to transliterate per run")
    args = ap.parse_args()
    base = [t for s in read_etymology_tsv(resources.annotations_path()) for t in s.tokens]
    tokens = (base * (args.tokens // len(base) + 1))[: args.tokens]
    types = sorted(set(base))

    resources.closed_class_words()  # table loading is a one-off cost, not per token
    tr = Transliterator("deterministic")
    stats = TransliterationStats()
    t0 = time.perf_counter()
    tr.transliterate_tokens(tokens, stats)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr.transliterate_tokens(tokens)
    warm = time.perf_counter() - t0

    fresh = Transliterator("deterministic")
    t0 = time.perf_counter()
    for t in types:
        fresh.transliterate(t)
    per_type = time.perf_counter() - t0

    nd = Transliterator("non_deterministic")
    nd.alternatives("kelma")  # loads the character n-gram model
    t0 = time.perf_counter()
    for t in types:
        nd.alternatives(t, 5)
    alt = time.perf_counter() - t0

    print(f"tokens: {len(tokens):,} ({len(types):,} distinct types)")
    print(f"deterministic, cold cache: {len(tokens) / cold:,.0f} tokens/s")
    print(f"deterministic, warm cache: {len(tokens) / warm:,.0f} tokens/s")
    print(f"deterministic, uncached (one call per distinct type): {len(types) / per_type:,.0f} types/s")
    print(f"ranked alternatives (k=5, beam 8), uncached: {len(types) / alt:,.0f} types/s")
    print(f"closed-class table hits: {stats.from_table:,} of {stats.tokens:,}; "
          f"unmapped characters: {sum(stats.unmapped_chars.values()):,} {dict(stats.unmapped_chars.most_common(5))}")
    print(f"target >= 50,000 tokens/s (cold): {'met' if len(tokens) / cold >= 50_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
