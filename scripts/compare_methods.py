"""Projection F1 of the methods side by side on the synthetic language pair (known gold spans).

Data: held-out synthetic sentences (dsbuild.synthetic) with labelled spans; their rule-made target
sides carry the gold spans. MT model: the tiny Marian model trained on the synthetic pair (with
and without markers in its training data; cached on first use).

Two settings:

1. **translate-train** (the real use): the model translates each source. ``alignment`` (eflomal,
   helped by 5,000 clean training pairs) and ``constrained`` project onto the model's clean
   translation; ``markers`` translates the marked source and reads its own output. The outputs
   are different texts, so a projected span counts as correct when its (label, text) is a gold
   (label, text) of the sentence; gold spans are read from the reference target. A model
   translation that differs from the reference makes some spans impossible for every method alike.
2. **given reference**: the reference target sentence is the template (as in translate-test);
   ``alignment`` and ``constrained`` are scored on exact token offsets. (``markers`` makes its own
   translation, so it has no score here.)

``tprojection`` (T-Projection: target n-grams + the alignment projector's spans as candidates, ranked
by NMTScore) and ``ensemble`` (alignment + constrained + tprojection voting per span) run in both
settings on the same model. The shared tiny model only saw whole sentences, so it scores bare
phrases (what NMTScore needs) badly; ``tprojection*`` rows use the phrase-capable tiny models of
``tests/plugins/tprojection.py`` (same synthetic sentences plus their entity pairs, en->qsy and
qsy->en for both NMTScore directions; trained once, cached), scored on the given references only.

``--europarl``: also the shipped Europarl NER sample en->es (799 sentences, gold Spanish tokens and
labels; eflomal with the shipped parallel text). No en->es MT model is available offline, so
tprojection does not apply; ``ensemble`` there votes three rule variants of the alignment projector
(default rules, min..max closure, no case rules) over the same cached links (eflomal runs once).

No setting was tuned on these sentences: every method runs with its defaults.

Usage: python scripts/compare_methods.py [--n 300] [--beams 4] [--europarl]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_constrained", Path(__file__).with_name("bench_constrained.py"))
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def prf(pred: list[Counter], gold: list[Counter]) -> tuple[float, float, float]:
    tp = sum(sum((p & g).values()) for p, g in zip(pred, gold))
    n_pred = sum(sum(p.values()) for p in pred)
    n_gold = sum(sum(g.values()) for g in gold)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def text_keys(ex: Any) -> Counter:
    return Counter((s.label, " ".join(ex.text[s.start : s.end].split())) for s in ex.spans)


def token_keys(ex: Any) -> Counter:
    return Counter((s.label, s.token_start, s.token_end) for s in ex.spans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--extra-pairs", type=int, default=5000, help="clean training pairs given to eflomal")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--europarl", action="store_true", help="also run alignment and ensemble on Europarl en->es")
    ap.add_argument("--no-phrase-models", action="store_true", help="skip the tprojection* rows (they train two "
                                                                      "tiny models on first use, about 2 min)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from dsbuild import synthetic
    from dsbuild.project.constrained import ConstrainedProjector
    from dsbuild.project.markers import MarkerProjector
    from dsbuild.registry import projectors

    torch.set_num_threads(args.threads)
    bench = _bench_module()
    model_dir = args.model_dir or synthetic.cached_tiny_marian()
    translator = bench.make_translator(model_dir, args.beams, args.batch_size)
    pairs = bench.heldout_sources(args.n, seed=4242)
    sources = [p.source for p in pairs]
    src, tgt = synthetic.SRC_LANG, synthetic.TGT_LANG
    gold_text = [text_keys(p.target) for p in pairs]
    gold_tok = [token_keys(p.target) for p in pairs]

    t0 = time.perf_counter()
    translations = translator.translate([s.text for s in sources], src, tgt)
    t_translate = time.perf_counter() - t0
    exact_mt = sum(t == p.target.text for t, p in zip(translations, pairs)) / len(pairs)

    rows: list[tuple[str, str, tuple[float, float, float], int, float]] = []

    def run(name: str, setting: str, fn: Any, key: Any, gold: list[Counter]) -> None:
        t = time.perf_counter()
        try:
            out = fn()
        except Exception as err:  # a method that cannot run here is reported, not hidden
            print(f"{name} ({setting}): not run: {type(err).__name__}: {err}")
            return
        dt = time.perf_counter() - t
        pred = [Counter() if p.rejected else key(p.target) for p in out]
        rows.append((name, setting, prf(pred, gold), sum(1 for p in out if p.rejected), dt))

    def alignment_projector() -> Any:
        extra = synthetic.generate_pairs(args.extra_pairs, seed=0, id_prefix="train")
        factory = projectors.get("alignment")
        return factory(
            aligner="eflomal",
            aligner_options={"extra_src": [p.source.words for p in extra], "extra_tgt": [p.target.words for p in extra]},
        )

    constrained = ConstrainedProjector(translator, batch_size=args.batch_size)
    markers = MarkerProjector(translator)
    extra = synthetic.generate_pairs(args.extra_pairs, seed=0, id_prefix="train")
    aligner_options = {"extra_src": [p.source.words for p in extra], "extra_tgt": [p.target.words for p in extra]}

    def tprojection(tr: Any = translator, reverse: Any = None, candidates: Any = "auto") -> Any:
        return projectors.get("tprojection")(tr, reverse_translator=reverse, candidate_projectors=candidates,
                                             projector_options={"alignment": {"aligner_options": aligner_options}})

    def ensemble() -> Any:
        return projectors.get("ensemble")(translator=translator,
                                          projector_options={"alignment": {"aligner_options": aligner_options}})

    setting = "translate-train"
    run("alignment", setting, lambda: alignment_projector().project(sources, translations, src_lang=src, tgt_lang=tgt), text_keys, gold_text)
    run("markers", setting, lambda: markers.project(sources, src_lang=src, tgt_lang=tgt), text_keys, gold_text)
    run("constrained", setting, lambda: constrained.project(sources, translations, src_lang=src, tgt_lang=tgt), text_keys, gold_text)
    run("tprojection", setting, lambda: tprojection().project(sources, translations, src_lang=src, tgt_lang=tgt), text_keys, gold_text)
    run("ensemble", setting, lambda: ensemble().project(sources, translations, src_lang=src, tgt_lang=tgt), text_keys, gold_text)
    refs = [p.target.with_spans([]) for p in pairs]
    setting = "given reference"
    run("alignment", setting, lambda: alignment_projector().project(sources, refs, src_lang=src, tgt_lang=tgt), token_keys, gold_tok)
    run("constrained", setting, lambda: constrained.project(sources, refs, src_lang=src, tgt_lang=tgt), token_keys, gold_tok)
    run("tprojection", setting, lambda: tprojection().project(sources, refs, src_lang=src, tgt_lang=tgt), token_keys, gold_tok)
    run("ensemble", setting, lambda: ensemble().project(sources, refs, src_lang=src, tgt_lang=tgt), token_keys, gold_tok)
    if not args.no_phrase_models:
        from tests.plugins.tprojection import cached_phrase_marian

        fwd = bench.make_translator(cached_phrase_marian(reverse=False), args.beams, args.batch_size)
        rev = bench.make_translator(cached_phrase_marian(reverse=True), args.beams, args.batch_size)
        run("tprojection*", "given reference", lambda: tprojection(fwd, None, []).project(
            sources, refs, src_lang=src, tgt_lang=tgt), token_keys, gold_tok)
        run("tprojection*", "given ref, 2 dir", lambda: tprojection(fwd, rev, []).project(
            sources, refs, src_lang=src, tgt_lang=tgt), token_keys, gold_tok)
        run("tprojection*", "given ref, +align", lambda: tprojection(fwd, rev).project(
            sources, refs, src_lang=src, tgt_lang=tgt), token_keys, gold_tok)

    n_spans = sum(len(s.spans) for s in sources)
    print(f"model: {model_dir}; {len(sources)} held-out sentences, {n_spans} spans; beams={args.beams}")
    print(f"model translation = reference for {exact_mt:.1%} of sentences (translation took {t_translate:.1f} s)")
    print(f"{'method':<12} {'setting':<16} {'P':>6} {'R':>6} {'F1':>6} {'rejected':>9} {'time s':>7}")
    for name, setting, (p, r, f), rej, dt in rows:
        print(f"{name:<12} {setting:<16} {100 * p:6.1f} {100 * r:6.1f} {100 * f:6.1f} {rej:9d} {dt:7.1f}")
    print("tprojection*: phrase-capable tiny models (en->qsy; '2 dir' adds qsy->en), n-gram candidates; "
          "'+align' adds the alignment projector's spans")
    f1 = {(name, setting): f for name, setting, (_, _, f), _, _ in rows}
    c, m = f1.get(("constrained", "translate-train")), f1.get(("markers", "translate-train"))
    if c is not None and m is not None:
        print(f"constrained >= markers (translate-train F1): {'yes' if c >= m else 'no'} ({100 * c:.1f} vs {100 * m:.1f})")
    if args.europarl:
        europarl()


def europarl() -> None:
    """Alignment and an ensemble of alignment rule variants on the Europarl NER sample (en->es)."""
    import tempfile

    from builders.translate_train import DEFAULT_GIVEN, DEFAULT_SOURCE
    from dsbuild.evaluate import span_prf
    from dsbuild.io.conll import read_conll
    from dsbuild.project import parallel_text
    from dsbuild.registry import projectors

    src = read_conll(DEFAULT_SOURCE, id_prefix="europarl-en")
    gold = read_conll(DEFAULT_GIVEN["es"], id_prefix="europarl-en")
    targets = [g.words for g in gold]
    with tempfile.TemporaryDirectory() as cache:
        aligner_options = {"seed": 1, **parallel_text("en", "es")}
        common = {"aligner_options": aligner_options, "alignment_cache": cache}
        out = []
        t = time.perf_counter()
        base = projectors.get("alignment")(**common).project(src, targets, src_lang="en", tgt_lang="es")
        out.append(("alignment", base, time.perf_counter() - t))
        members = [{"method": "alignment", "name": "default", **common},
                   {"method": "alignment", "name": "closure", "split": "closure", "trim_case": False,
                    "extend_case": False, "extend_name": False, **common},
                   {"method": "alignment", "name": "no-case", "trim_case": False, "extend_case": False,
                    "extend_name": False, **common}]
        t = time.perf_counter()
        ens = projectors.get("ensemble")(members).project(src, targets, src_lang="en", tgt_lang="es")
        out.append(("ensemble", ens, time.perf_counter() - t))
    print(f"europarl en->es: {len(src)} sentences, {sum(len(g.spans) for g in gold)} gold Spanish spans; "
          "tprojection: not run (no en->es MT model offline)")
    print(f"{'method':<12} {'P':>6} {'R':>6} {'F1':>6} {'time s':>7}")
    for name, projs, dt in out:
        pred = [[] if p.rejected else p.target.spans for p in projs]
        m = span_prf(pred, [g.spans for g in gold]).micro
        print(f"{name:<12} {100 * m.precision:6.1f} {100 * m.recall:6.1f} {100 * m.f1:6.1f} {dt:7.1f}")
    agree = [a for p in out[1][1] for a in p.qc.get("agreement", [])]
    if agree:
        print("ensemble agreement (members on the winning span): "
              + ", ".join(f"{k}: {sum(a == k for a in agree)}" for k in (1, 2, 3)))


if __name__ == "__main__":
    main()
