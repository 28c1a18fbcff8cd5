"""Throughput of the foundation pieces, measured in one run on this machine (prints figures).

    python scripts/bench_foundation.py

* CoNLL reading (the shipped Europarl files), sentences per second;
* span <-> tag conversions (IOB1/IOB2/BIOES), sentences per second;
* a gold europarl-ner build (Parquet + rejects + provenance + card), seconds, and card rendering alone;
* ratio of the dsbuild CoNLL reader to a minimal reader that only splits lines (the cost of validation).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from builders.europarl_ner import SHIPPED
from dsbuild.cards import render_card
from dsbuild.executor import build
from dsbuild.io import read_conll
from dsbuild.spans import convert_tags, spans_to_tags, tags_to_spans
from dsbuild.config import resolve_options
from dsbuild.registry import builders


def europarl_gold_builder():  # noqa: ANN201
    """europarl-ner, gold configs only (no projection): what this script times."""
    cls = builders.get("europarl-ner")
    return cls(resolve_options(cls.Options, {"project": False}))


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def minimal_reader(path: Path) -> list[list[tuple[str, str]]]:
    sents, cur = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if cur:
                sents.append(cur)
            cur = []
        else:
            tok, tag = line.split()[0], line.split()[-1]
            cur.append((tok, tag))
    if cur:
        sents.append(cur)
    return sents


def main() -> None:
    paths = list(SHIPPED.values())
    n_sent = sum(len(read_conll(p)) for p in paths)
    t_read = best_of(lambda: [read_conll(p) for p in paths])
    t_min = best_of(lambda: [minimal_reader(p) for p in paths])
    print(f"read_conll: {n_sent} sentences in {t_read:.3f} s = {n_sent / t_read:,.0f} sentences/s "
          f"(minimal line splitter: {t_min:.3f} s; dsbuild/minimal = {t_read / t_min:.1f}x)")

    exs = [ex for p in paths for ex in read_conll(p)]
    tag_seqs = [ex.tags("IOB2") for ex in exs]

    def conversions() -> None:
        for tags in tag_seqs:
            spans = tags_to_spans(tags, "IOB2")
            spans_to_tags(spans, len(tags), "BIOES")
            convert_tags(tags, "IOB2", "IOB1")

    t_conv = best_of(conversions)
    print(f"tag conversions (decode + 2 encodes): {len(tag_seqs)} sentences in {t_conv:.3f} s = "
          f"{len(tag_seqs) / t_conv:,.0f} sentences/s")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = build(europarl_gold_builder(), tmp)
        t_build = time.perf_counter() - t0
        t_card = best_of(lambda: render_card(result.path))
        rows = result.provenance["totals"]["out"]
    print(f"europarl-ner gold build: {rows} rows in {t_build:.2f} s (card rendering alone {t_card:.3f} s)")


if __name__ == "__main__":
    main()
