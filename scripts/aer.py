"""Align a ``src ||| tgt`` file with any registered aligner and score it against gold alignments.

    python scripts/aer.py DATA.src-tgt GOLD [--aligner eflomal] [--set key=value ...]
        [--extra-src FILE --extra-tgt FILE [--extra-tokenize moses --src-lang en --tgt-lang fr]]
        [--all-symmetrizations] [--gold-zero-indexed] [--output PRED.txt] [--json]

Gold links are 1-indexed (``i-j`` sure, ``ipj`` possible) unless ``--gold-zero-indexed``.
``--set`` values are YAML scalars passed to the aligner's constructor (``--set symmetrization=
grow-diag-final --set n_iterations=[2,2,8] --set strip_accents=true``). The extra corpus (plain
text or ``.gz``, line-aligned) is added to the aligner's training data; raw text can be
Moses-tokenised first with ``--extra-tokenize moses`` (cached next to the aligner's priors).

Prints AER, precision, recall, link counts and the time spent (aligner construction, alignment
including any priors training, scoring). Example (the figures in the README):

    nice python scripts/aer.py /work/shared/data/word_alignment/enfr.src-tgt \\
        /work/shared/data/word_alignment/enfr.gold --aligner eflomal \\
        --extra-src /work/shared/data/parallel/en-fr/en-fr.en.gz \\
        --extra-tgt /work/shared/data/parallel/en-fr/en-fr.fr.gz \\
        --extra-tokenize moses --src-lang en --tgt-lang fr
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

from dsbuild.align import SYMMETRIZATION_METHODS, Alignment, symmetrize
from dsbuild.align.eflomal_aligner import default_cache_dir
from dsbuild.align.evaluation import alignment_error_rate, read_gold, read_parallel
from dsbuild.config import parse_overrides
from dsbuild.errors import DsbuildError
from dsbuild.registry import aligners


def moses_tokenized(path: Path, lang: str, cache_dir: Path) -> Path:
    """Moses-tokenise a text file once; the result is cached under a hash of the file and options."""
    from sacremoses import MosesTokenizer
    from tqdm import tqdm

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|moses|{lang}|v1".encode()).hexdigest()
    out = cache_dir / "tokenized" / f"{path.name}.{key[:16]}.moses.gz"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tok = MosesTokenizer(lang=lang)
    opener = gzip.open if path.suffix == ".gz" else open
    tmp = out.with_suffix(".tmp")
    with opener(path, "rt", encoding="utf-8") as src, gzip.open(tmp, "wt", encoding="utf-8") as dst:  # type: ignore[operator]
        for line in tqdm(src, desc=f"moses {lang} {path.name}", unit=" lines"):
            dst.write(tok.tokenize(line.strip(), escape=False, return_str=True) + "\n")
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="pairs to align, one 'source tokens ||| target tokens' a line")
    ap.add_argument("gold", type=Path, help="gold alignments, one line a pair ('i-j' sure, 'ipj' possible)")
    ap.add_argument("--aligner", default="eflomal", help=f"registered aligner ({', '.join(aligners.names())})")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="aligner constructor option (repeatable)")
    ap.add_argument("--extra-src", type=Path, help="extra training corpus, source side (.gz allowed)")
    ap.add_argument("--extra-tgt", type=Path, help="extra training corpus, target side (.gz allowed)")
    ap.add_argument("--extra-tokenize", choices=["none", "moses"], default="none",
                    help="tokenise the extra corpus before use (it must match the data's tokenisation)")
    ap.add_argument("--src-lang", default="en", help="source language for --extra-tokenize")
    ap.add_argument("--tgt-lang", default="fr", help="target language for --extra-tokenize")
    ap.add_argument("--gold-zero-indexed", action="store_true", help="gold links are 0-indexed")
    ap.add_argument("--output", type=Path, help="write the predicted links here (0-indexed Pharaoh)")
    ap.add_argument("--all-symmetrizations", action="store_true",
                    help="for aligners with two directions (eflomal): align once, score every symmetrisation")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ap.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    try:
        options = parse_overrides(args.overrides)
        if (args.extra_src is None) != (args.extra_tgt is None):
            ap.error("give both --extra-src and --extra-tgt")
        t0 = time.perf_counter()
        if args.extra_src is not None:
            extra_src, extra_tgt = args.extra_src, args.extra_tgt
            if args.extra_tokenize == "moses":
                cache = Path(options.get("cache_dir") or default_cache_dir())
                extra_src = moses_tokenized(extra_src, args.src_lang, cache)
                extra_tgt = moses_tokenized(extra_tgt, args.tgt_lang, cache)
            options.update(extra_src=extra_src, extra_tgt=extra_tgt)
        t_tok = time.perf_counter() - t0
        src, tgt = read_parallel(args.data)
        gold = read_gold(args.gold, one_indexed=not args.gold_zero_indexed)
        try:
            aligner = aligners.get(args.aligner)(**options)
        except TypeError as err:
            raise SystemExit(f"error: aligner {args.aligner!r} does not take these options: {err}") from None
        t1 = time.perf_counter()
        by_method = {}
        if args.all_symmetrizations:
            if not hasattr(aligner, "align_directions"):
                raise SystemExit(f"error: aligner {args.aligner!r} has no directional alignments to symmetrise")
            forward, reverse = aligner.align_directions(src, tgt)
            t_align = time.perf_counter() - t1
            for method in ("forward", "reverse", *SYMMETRIZATION_METHODS):
                links = forward if method == "forward" else reverse if method == "reverse" else [
                    symmetrize(f, r, method) for f, r in zip(forward, reverse)]
                by_method[method] = alignment_error_rate(links, gold, source=str(args.gold))
            chosen = getattr(aligner, "symmetrization", "grow-diag-final-and")
            predicted = [Alignment(tuple(symmetrize(f, r, chosen))) for f, r in zip(forward, reverse)]
        else:
            predicted = aligner.align(src, tgt)
            t_align = time.perf_counter() - t1
        result = alignment_error_rate(predicted, gold, source=str(args.gold))
    except DsbuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text("".join(a.to_pharaoh() + "\n" for a in predicted), encoding="utf-8")
    report = {
        "data": str(args.data),
        "aligner": aligner.describe(),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.as_dict().items()},
        "extra_tokenize_s": round(t_tok, 2),
        "align_s": round(t_align, 2),
        "pairs_per_s": round(len(src) / t_align, 1) if t_align > 0 else None,
    }
    if by_method:
        report["by_symmetrization"] = {m: {k: round(v, 4) for k, v in r.as_dict().items() if k in ("aer", "precision", "recall")}
                                       for m, r in by_method.items()}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, default=str))
    else:
        print(f"{args.data.name}: {result.n_pairs} pairs, aligner {args.aligner}")
        print(f"  AER {result.aer:.4f}   precision {result.precision:.4f}   recall {result.recall:.4f}")
        print(f"  links predicted {result.n_predicted}, sure {result.n_sure}, possible {result.n_possible}")
        print(f"  time: tokenise extra {t_tok:.1f} s, align {t_align:.1f} s ({report['pairs_per_s']} pairs/s)")
        for method, r in by_method.items():
            print(f"  {method:<20} AER {r.aer:.4f}   precision {r.precision:.4f}   recall {r.recall:.4f}")
        print(f"  options: {json.dumps(aligner.describe(), default=str)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
