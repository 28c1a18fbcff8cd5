#!/usr/bin/env python
"""Projection onto targets whose punctuation is attached to words: span F1 vs the split form.

Users give target token lists in every tokenisation. This script takes the Europarl NER test
sentences (en -> es by default), re-joins the Spanish gold tokens' punctuation onto the words
(``Europeo`` ``.`` -> ``Europeo.``, ``¿`` ``Qué`` -> ``¿Qué``;
:func:`dsbuild.project.retokenize.attach_punctuation`), re-expresses the gold spans over those
tokens (a span covers the whole token holding its words), and projects with the builder's own
projector (same aligner, seed, parallel text and rules) in three ways:

- ``split``: the gold tokens as given (already Moses-split: the published figure);
- ``attached``: attached tokens, re-tokenised into the aligner's units (``retokenize="moses"``,
  the default), spans mapped back onto the attached tokens;
- ``attached-as-given``: attached tokens aligned as they are (``retokenize=None``; the behaviour
  before re-tokenisation);
- ``attached-split-links`` (diagnostic, no extra alignment): the attached targets projected with
  the *split* run's links through the exact split -> attached token map. eflomal is a sampler: a
  batch with other target tokens (the re-tokenised units differ from the gold split in a few
  sentences, e.g. ``1999-``) gives other links everywhere, so ``attached`` vs ``split`` mixes the
  tokenisation effect with run-to-run variation; this row has only the former.

Each form is scored against the gold in its own tokenisation (micro span P/R/F1, exact token
boundaries and label). The three forms are aligned in separate eflomal runs (each with the
parallel text), all with the builder's seed.

Usage::

    python scripts/eval_attached_punct.py                    # en -> es, 799 sentences, shipped parallel text
    python scripts/eval_attached_punct.py --set max_sentences=200
    python scripts/eval_attached_punct.py --json
    python scripts/eval_attached_punct.py --set seed=2 --forms split,attached   # another aligner seed

The last line: ``attached/split F1: A.AAAA / S.SSSS (difference D.DDDD)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from dsbuild.builder import BuildContext
from dsbuild.config import parse_overrides, resolve_options
from dsbuild.evaluate import evaluate_examples
from dsbuild.project.inputs import prepare_pairs
from dsbuild.project.retokenize import UnitMap, attach_punctuation
from dsbuild.registry import builders
from dsbuild.spans import Example

FORMS = ("split", "attached", "attached-as-given")
REPORTED = (*FORMS, "attached-split-links")


def attached_gold(gold: Example) -> Example:
    """``gold`` with punctuation attached to words, its spans over the new tokens."""
    words, owner = attach_punctuation(gold.words)
    spans = sorted({(owner[s.token_start], owner[s.token_end - 1] + 1, s.label) for s in gold.spans})
    return Example.from_words(gold.id, words, token_spans=spans, allow_overlap=True)


def _score(projections: list[Any], golds: list[Example], views: list[Any], t0: float) -> dict[str, Any]:
    scores = evaluate_examples([p.target for p in projections], golds).to_dict()
    return {
        "micro": scores["micro"],
        "sentences_retokenized": sum(v.units is not None and v.units.split_tokens > 0 for v in views),
        "widened_spans": sum(p.qc.get("widened_spans", 0) for p in projections),
        "projected": sum(len(p.mapping) for p in projections),
        "unprojected": sum(len(p.unprojected) for p in projections),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def compare(overrides: dict[str, Any], forms: tuple[str, ...] = FORMS) -> dict[str, Any]:
    """Project the split and the attached forms with the europarl-ner builder's projector; score
    each of ``forms`` (a subset of :data:`FORMS`)."""
    unknown = set(forms) - set(FORMS)
    if unknown:
        raise ValueError(f"unknown form(s) {sorted(unknown)}; choose from {FORMS}")
    cls = builders.get("europarl-ner")
    builder = cls(resolve_options(cls.Options, overrides))
    o = builder.options
    results: dict[str, Any] = {"pair": builder.pair, "aligner": o.aligner, "seed": o.seed}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = BuildContext(Path(tmp))
        builder.prepare(ctx)
        results["parallel"] = (ctx.facts["projection"]["parallel"] or {}).get("pairs", 0)
        sources = list(builder._read_side(o.source_lang))
        gold = list(builder._read_side(o.target_lang))
        projector = builder.projector()
        attached = [attached_gold(g) for g in gold]
        results["sentences"] = len(gold)
        results["source_spans"] = sum(len(x.spans) for x in sources)
        results["attached_tokens_changed"] = sum(len(g.words) - len(a.words) for g, a in zip(gold, attached))
        variants = {"split": (gold, o.target_lang), "attached": (attached, o.target_lang),
                    "attached-as-given": (attached, None)}
        split_views: list[Any] | None = None
        for name in forms:
            golds, lang = variants[name]
            t0 = time.perf_counter()
            prepared = prepare_pairs(sources, [g.words for g in golds], max_tokens=projector.max_tokens)
            valid = [p for p in prepared if p.reject is None]
            views = projector.align([p.src_words for p in valid], [p.tgt_words for p in valid], tgt_lang=lang)
            if name == "split" and len(valid) == len(prepared):
                split_views = views
            results[name] = _score(projector.project_aligned(prepared, views), golds, views, t0)
        if split_views is not None and "attached" in forms:
            # the attached targets projected with the split form's own links, through the exact
            # split -> attached token map: separates the mapping back onto the user's tokens from
            # the aligner's run-to-run variation (eflomal samples: a different batch, other links)
            t0 = time.perf_counter()
            prepared = prepare_pairs(sources, [g.words for g in attached], max_tokens=projector.max_tokens)
            views = []
            for view, g in zip(split_views, gold):
                words, owner = attach_punctuation(g.words)
                views.append(replace(view, units=UnitMap(tuple(g.words), tuple(owner), len(words))))
            results["attached-split-links"] = _score(projector.project_aligned(prepared, views), attached, views, t0)
    if "attached" in results and "split" in results:
        results["f1_difference"] = round(results["attached"]["micro"]["f1"] - results["split"]["micro"]["f1"], 4)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="europarl-ner builder option, as for `dsbuild build europarl-ner --set ...`")
    ap.add_argument("--forms", default=",".join(FORMS), help=f"comma-separated subset of {','.join(FORMS)}")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    r = compare(parse_overrides(args.overrides), forms=tuple(f for f in args.forms.split(",") if f))
    if args.json:
        print(json.dumps(r, indent=2, sort_keys=True))
        return 0
    print(f"europarl-ner {r['pair']}: {r['sentences']} sentences, aligner {r['aligner']} (seed {r['seed']}), "
          f"parallel text {r['parallel']} pairs; attaching punctuation removes {r['attached_tokens_changed']} tokens")
    print(f"{'form':20s} {'P':>7s} {'R':>7s} {'F1':>7s} {'retok.sent':>10s} {'widened':>8s} {'proj':>6s} {'unproj':>7s}")
    for name in REPORTED:
        if name not in r:
            continue
        f = r[name]
        m = f["micro"]
        print(f"{name:20s} {m['precision']:7.4f} {m['recall']:7.4f} {m['f1']:7.4f} {f['sentences_retokenized']:10d} "
              f"{f['widened_spans']:8d} {f['projected']:6d} {f['unprojected']:7d}")
    if "f1_difference" in r:
        print(f"attached/split F1: {r['attached']['micro']['f1']:.4f} / {r['split']['micro']['f1']:.4f} "
              f"(difference {r['f1_difference']:+.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
