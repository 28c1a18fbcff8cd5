"""Benchmark: dsbuild's constrained projection vs. CODEC's published algorithm vs. plain translation.

Model: the tiny Marian model trained on the synthetic language pair (dsbuild.synthetic; trained and
cached on first use), or ``--model-dir``. Sentences: ``--n`` held-out synthetic sentences (default
1000, each with at least one labelled span) with their gold target spans.

Protocol (one process, one run):

* The same translator object (dsbuild's ``hf-seq2seq``, translation cache OFF, beam ``--beams``,
  batch ``--batch-size``) makes the plain translation and the templates.
* dsbuild's ``constrained`` projector and the ``codec-reference`` projector (CODEC, Le et al. 2024,
  as published: :mod:`dsbuild.project.codec_reference`) project the SAME templates with the same
  model, the same batch size (sentences per search batch for dsbuild; hypotheses per decoder step
  and rows per scoring batch for CODEC, as in the authors' code) and the same torch threads.
* Each repeat times, in turn: plain translation; the template translation; dsbuild's projection;
  CODEC's projection. ``--repeats`` (>= 5) repeats; the MEDIAN of each is reported.
* F1: exact match of (label, span text) against the gold target spans; a rejected sentence
  contributes no prediction. Templates are machine translations, so F1 measures the whole method.
* Decoder work: "calls" are batched decoder forwards; a dsbuild row is one teacher-forced pass of
  one hypothesis over (part of) the template, a CODEC row is one token step of one hypothesis.

Last lines (ratios of medians):
  ``pipeline (template translation + projection)/translate time ratio``: (template translation +
  dsbuild projection) / plain translation;
  ``codec-reference/dsbuild time ratio``: CODEC projection / dsbuild projection (same templates,
  the same repeats: with ``--codec-repeats K``, dsbuild's median over the first K repeats);
  ``constrained/translate time ratio``: dsbuild projection / plain translation.

Usage: python scripts/bench_constrained.py [--n 1000] [--batch-size 32] [--beams 4] [--repeats 5]
       [--codec-repeats K] [--compare-prune]

The first line names the model and its size. ``--codec-repeats K`` (< 5 is below the protocol and
says so) times the CODEC side in the first K repeats only: on a shared machine one CODEC run of
1,000 sentences takes many minutes. ``--compare-prune`` also times dsbuild with ``prune=True``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_translator(model_dir: Path, beams: int, batch_size: int) -> Any:
    """dsbuild's ``hf-seq2seq`` backend with its translation cache OFF (a cache hit would make the
    template free and the comparison unfair)."""
    from dsbuild.registry import translators

    return translators.get("hf-seq2seq")(
        str(model_dir), beam_size=beams, batch_size=batch_size, cache=False, progress=False, device="cpu", dtype="float32"
    )


def heldout_sources(n: int, seed: int) -> list[Any]:
    """``n`` synthetic pairs with at least one span, none of whose sources was in the training data."""
    from dsbuild import synthetic

    hp = synthetic.DEFAULT_HPARAMS
    train = {p.source.text for p in synthetic.generate_pairs(hp["n_train"], seed=0, id_prefix="train")}
    pairs = [p for p in synthetic.generate_pairs(4 * n, seed=seed, unique=True, exclude=train) if p.source.spans]
    return pairs[:n]


def span_keys(ex: Any) -> Counter:
    return Counter((s.label, " ".join(ex.text[s.start : s.end].split())) for s in ex.spans)


def f1(projections: list[Any], pairs: list[Any]) -> float:
    """Micro F1 of (label, span text) against the gold target spans; rejected sentences predict nothing."""
    tp = n_pred = n_gold = 0
    for p, g in zip(projections, pairs):
        pred = Counter() if p.rejected else span_keys(p.target)
        gold = span_keys(g.target)
        tp += sum((pred & gold).values())
        n_pred += sum(pred.values())
        n_gold += sum(gold.values())
    prec, rec = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def model_size(translator: Any) -> str:
    cfg = translator.model.config
    n = sum(p.numel() for p in translator.model.parameters())
    return (f"{n:,} parameters ({cfg.model_type}, d_model {cfg.d_model}, {cfg.encoder_layers}+{cfg.decoder_layers} layers, "
            f"vocabulary {cfg.vocab_size})")


class Timed:
    """Median seconds and the decoder work of the last run of one side."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.calls = self.rows = 0
        self.out: list[Any] = []

    def median(self) -> float:
        return statistics.median(self.seconds)


def run_projector(projector: Any, sources: list[Any], templates: list[str], src: str, tgt: str, side: Timed) -> None:
    scorer = projector.scorer
    scorer.clear_memo()  # no tokenisation memoised from the previous repeat: every run starts cold
    calls0, rows0 = scorer.forward_calls, scorer.forward_rows
    t0 = time.perf_counter()
    side.out = projector.project(sources, templates, src_lang=src, tgt_lang=tgt)
    side.seconds.append(time.perf_counter() - t0)
    side.calls, side.rows = scorer.forward_calls - calls0, scorer.forward_rows - rows0


def report(name: str, side: Timed, pairs: list[Any], n_spans: int) -> None:
    out = side.out
    projected = sum(len(p.mapping) for p in out if p.rejected is None)
    rejected = Counter(p.rejected for p in out if p.rejected is not None)
    n = len(out)
    print(f"{name}: spans projected {projected}/{n_spans}, F1 {f1(out, pairs):.3f}, decoder passes: "
          f"{side.calls} batched calls, {side.rows} rows ({side.rows / n:.1f} per sentence), "
          f"median {side.median():.3f} s over {len(side.seconds)} runs; rejected sentences {dict(rejected) or 0}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="sentences (each with at least one span)")
    ap.add_argument("--batch-size", type=int, default=32, help="translation batch = search batch (both methods)")
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of each side (the median is reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: tiny model on a shared machine)")
    ap.add_argument("--heuristic", action="store_true", help="dsbuild: use the heuristic bound (not exact)")
    ap.add_argument("--future-steps", type=int, default=1, help="CODEC's heuristic look-ahead (1 for translate-train)")
    ap.add_argument("--no-codec", action="store_true", help="skip the CODEC reference (quick runs)")
    ap.add_argument("--codec-repeats", type=int, default=None,
                    help="timed runs of the CODEC side (default: --repeats); fewer on a loaded machine, reported")
    ap.add_argument("--compare-prune", action="store_true",
                    help="also time dsbuild with prune=True (CODEC's candidate-position filter) side by side")
    ap.add_argument("--model-dir", type=Path, default=None, help="a trained model folder (default: the tiny synthetic model)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    codec_repeats = args.repeats if args.codec_repeats is None else max(1, min(args.codec_repeats, args.repeats))

    import torch

    from dsbuild import synthetic
    from dsbuild.project.codec_reference import CodecReferenceProjector
    from dsbuild.project.constrained import ConstrainedProjector

    torch.set_num_threads(args.threads)
    model_dir = args.model_dir or synthetic.cached_tiny_marian()
    translator = make_translator(model_dir, args.beams, args.batch_size)
    dsbuild = ConstrainedProjector(translator, batch_size=args.batch_size, heuristic=args.heuristic)
    codec = CodecReferenceProjector(translator, batch_size=args.batch_size, future_steps=args.future_steps)
    pruned = (ConstrainedProjector(translator, batch_size=args.batch_size, heuristic=args.heuristic, prune=True)
              if args.compare_prune else None)
    pairs = heldout_sources(args.n, seed=2024)
    sources = [p.source for p in pairs]
    texts = [s.text for s in sources]
    src, tgt = synthetic.SRC_LANG, synthetic.TGT_LANG
    n_spans = sum(len(s.spans) for s in sources)
    print(f"model: {model_size(translator)}; {'the tiny synthetic Marian' if args.model_dir is None else model_dir.name}; "
          f"beams={args.beams}, batch size={args.batch_size} (translation and both searches), torch threads={args.threads}")
    if args.n < 1000 or args.repeats < 5 or (codec_repeats < 5 and not args.no_codec):
        print(f"note: --n {args.n} / --repeats {args.repeats} / CODEC repeats {codec_repeats} is below the protocol "
              f"(>= 1000 sentences, >= 5 repeats)")

    # warm-up (first calls allocate, load kernels)
    templates = translator.translate(texts[:8], src, tgt)
    dsbuild.project(sources[:8], templates, src_lang=src, tgt_lang=tgt)
    if pruned is not None:
        pruned.project(sources[:8], templates, src_lang=src, tgt_lang=tgt)
    codec.project(sources[:4], templates[:4], src_lang=src, tgt_lang=tgt)

    plain, template, ours, theirs, ours_pruned = [], [], Timed(), Timed(), Timed()
    for r in range(args.repeats):
        t0 = time.perf_counter()
        translator.translate(texts, src, tgt)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        templates = translator.translate(texts, src, tgt)
        template.append(time.perf_counter() - t0)
        run_projector(dsbuild, sources, templates, src, tgt, ours)
        if pruned is not None:
            run_projector(pruned, sources, templates, src, tgt, ours_pruned)
        if not args.no_codec and r < codec_repeats:
            run_projector(codec, sources, templates, src, tgt, theirs)
        logging.getLogger("bench").warning("repeat %d/%d done", r + 1, args.repeats)

    t_plain, t_template = statistics.median(plain), statistics.median(template)
    n = len(sources)
    print(f"sentences: {n}, spans: {n_spans} ({n_spans / n:.2f} per sentence); exact-match templates: "
          f"{sum(t == p.target.text for t, p in zip(templates, pairs))}/{n}")
    print(f"plain translation: median {t_plain:.3f} s; template translation: median {t_template:.3f} s "
          f"(runs: {', '.join(f'{x:.2f}' for x in plain)})")
    report("dsbuild constrained", ours, pairs, n_spans)
    joint = sum(1 for p in ours.out if p.qc.get("search") == "joint")
    exact = sum(1 for p in ours.out if p.qc.get("exact"))
    print(f"  joint search {joint}/{n} sentences, proven exact {exact}/{n}; runs: {', '.join(f'{x:.2f}' for x in ours.seconds)}")
    if pruned is not None:
        report("dsbuild constrained, prune=True", ours_pruned, pairs, n_spans)
        print(f"  runs: {', '.join(f'{x:.2f}' for x in ours_pruned.seconds)}; prune=True/prune=False (default) time ratio: "
              f"{ours_pruned.median() / ours.median():.2f}")
    if not args.no_codec:
        report("codec-reference (CODEC as published)", theirs, pairs, n_spans)
        print(f"  {codec.stats['searches']} searches in total (one per entity per run); runs: "
              f"{', '.join(f'{x:.2f}' for x in theirs.seconds)}")
    pipeline = t_template + ours.median()
    print(f"pipeline (template translation + projection)/translate time ratio: {pipeline / t_plain:.2f}")
    if not args.no_codec:
        # the same repeats on both sides: with --codec-repeats K < --repeats, dsbuild's first K runs
        same = statistics.median(ours.seconds[: len(theirs.seconds)])
        print(f"codec-reference/dsbuild time ratio: {theirs.median() / same:.2f} "
              f"(F1 dsbuild {f1(ours.out, pairs):.3f}, codec-reference {f1(theirs.out, pairs):.3f})")
    print(f"constrained/translate time ratio: {ours.median() / t_plain:.2f}")


if __name__ == "__main__":
    main()
