"""Benchmark: translation speed of ``hf-seq2seq`` (PyTorch) and ``ct2`` (CTranslate2, float32 and int8).

Two models:

* tiny: the tiny Marian model trained on the synthetic language pair (dsbuild.synthetic);
* realistic size: a RANDOMLY initialised Marian model of the shape of an OPUS-MT model (6+6
  layers, d_model 512, 8 heads, FFN 2048, 32k vocabulary; the tiny model's sentencepiece pieces
  plus filler entries up to 32,000). Random weights never stop on their own, so the output
  length is FORCED to ``--length`` tokens for both engines (hf: ``min_new_tokens`` =
  ``max_new_tokens``; ct2: ``min_decoding_length`` = ``max_decoding_length``); the printed
  tokens per sentence show both produced the same amount.

Protocol: the same ``--n`` held-out synthetic source sentences, beam size ``--beams``, batch size
``--batch-size`` and CPU threads ``--threads`` for every engine; translation cache off; one
warm-up call each; ``--repeats`` timed runs, the MEDIAN reported. The models are built/converted
before timing (conversion is cached and not timed).

Last line: ``ct2/hf speed ratio (realistic size, int8): X.XX`` (sentences/s of ct2 int8 / hf-seq2seq).

Usage: python scripts/bench_translate.py [--n 200] [--n-realistic 64] [--beams 4] [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def realistic_marian(base: Path, out: Path, *, vocab_size: int = 32000, seed: int = 0) -> Path:
    """A random-weight Marian of OPUS-MT shape, with the tiny model's tokenizer widened to ``vocab_size``."""
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    vocab = json.loads((base / "vocab.json").read_text(encoding="utf-8"))
    ordered = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    ordered += [f"\u2581w{i}" for i in range(vocab_size - len(ordered))]  # fillers: ids the random model may emit
    (tmp / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(ordered)}), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (tmp / name).write_bytes((base / name).read_bytes())
    tok = MarianTokenizer(source_spm=str(tmp / "source.spm"), target_spm=str(tmp / "target.spm"), vocab=str(tmp / "vocab.json"))
    torch.manual_seed(seed)
    cfg = MarianConfig(vocab_size=vocab_size, d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                       decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512,
                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                       decoder_start_token_id=tok.pad_token_id, forced_eos_token_id=tok.eos_token_id, scale_embedding=True)
    MarianMTModel(cfg).save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(out)
    except OSError:  # built by another process meanwhile
        pass
    return out


def sources(n: int) -> list[str]:
    from dsbuild import synthetic

    return [p.source.text for p in synthetic.generate_pairs(n, seed=777, unique=True, id_prefix="bench")]


def engines(model_dir: Path, args: argparse.Namespace, length: int | None) -> dict[str, Any]:
    """hf-seq2seq, ct2 float32 and ct2 int8 on one model, same settings (output length forced when given)."""
    from dsbuild.registry import translators

    common = dict(beam_size=args.beams, batch_size=args.batch_size, cache=False, progress=False, threads=args.threads,
                  max_new_tokens=length)
    hf = translators.get("hf-seq2seq")(str(model_dir), device="cpu", dtype="float32", **common)
    if length:
        hf.model.generation_config.min_new_tokens = length
    out: dict[str, Any] = {"hf-seq2seq": hf}
    for ct in ("float32", "int8"):
        out[f"ct2 {ct}"] = translators.get("ct2")(str(model_dir), device="cpu", compute_type=ct, min_new_tokens=length, **common)
    return out


def decoder_steps(mts: dict[str, Any], texts: list[str]) -> dict[str, float]:
    """Generated positions per sentence of each engine on one batch (hf: its last step is the
    forced end token; ct2 stops at max_decoding_length): the work both did, not re-tokenised text."""
    import torch

    src, tgt = "en", "qsy"
    hf = mts["hf-seq2seq"]
    enc = hf.source_batch(texts, src, tgt)
    length = hf.params["max_new_tokens"]
    with torch.inference_mode():
        gen = hf.model.generate(**enc, num_beams=hf.params["beam_size"], max_length=length + 1, do_sample=False)
    out = {"hf-seq2seq": float(gen.shape[1] - 1)}
    for k, mt in mts.items():
        if k.startswith("ct2"):
            res = mt.engine.translate_batch(mt.source_tokens(texts, src, tgt), beam_size=mt.params["beam_size"],
                                            max_decoding_length=length, min_decoding_length=length)
            out[k] = sum(len(r.hypotheses[0]) for r in res) / len(res)
    return out


def measure(name: str, mts: dict[str, Any], texts: list[str], repeats: int, forced: bool = False) -> dict[str, float]:
    """Median sentences/s of each engine (runs interleaved, so load changes hit all engines alike)."""
    src, tgt = "en", "qsy"
    times: dict[str, list[float]] = {k: [] for k in mts}
    outputs: dict[str, list[str]] = {}
    for k, mt in mts.items():
        mt.translate(texts[:4], src, tgt)  # warm-up
    for _ in range(repeats):
        for k, mt in mts.items():
            t0 = time.perf_counter()
            outputs[k] = mt.translate(texts, src, tgt)
            times[k].append(time.perf_counter() - t0)
    speed = {}
    for k, mt in mts.items():
        med = statistics.median(times[k])
        speed[k] = len(texts) / med
        tokens = sum(len(mt.tokenizer(text_target=o)["input_ids"]) - 1 for o in outputs[k]) / len(texts)
        print(f"{name}: {k:<11} {speed[k]:8.1f} sentences/s (median {med:.3f} s over {repeats} runs; "
              f"{tokens:.1f} tokens per output after re-tokenising)")
    if forced:
        print(f"{name}: decoder steps per sentence (one batch, counted directly): {decoder_steps(mts, texts[: 8])}")
    same = sum(a == b for a, b in zip(outputs["hf-seq2seq"], outputs["ct2 float32"]))
    print(f"{name}: ct2 float32 output identical to hf-seq2seq for {same}/{len(texts)} sentences")
    return speed


def n_params(mt: Any) -> str:
    cfg = mt.model.config
    n = sum(p.numel() for p in mt.model.parameters())
    return f"{n / 1e6:.1f}M parameters, {cfg.encoder_layers}+{cfg.decoder_layers} layers, d_model {cfg.d_model}, vocabulary {cfg.vocab_size}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="sentences for the tiny model")
    ap.add_argument("--n-realistic", type=int, default=48, help="sentences for the realistic-size model")
    ap.add_argument("--length", type=int, default=24, help="forced output length on the realistic-size model")
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from dsbuild import synthetic
    from dsbuild.translate.cache import default_cache_dir

    torch.set_num_threads(args.threads)
    print(f"protocol: beams={args.beams}, batch size={args.batch_size}, threads={args.threads} (torch and CTranslate2), "
          f"median of {args.repeats} interleaved runs, translation cache off, CPU")
    tiny_dir = synthetic.cached_tiny_marian()
    texts = sources(max(args.n, args.n_realistic))
    tiny = engines(tiny_dir, args, None)
    print(f"tiny model: {n_params(tiny['hf-seq2seq'])}; {args.n} sentences")
    tiny_speed = measure("tiny", tiny, texts[: args.n], args.repeats)

    big_dir = realistic_marian(tiny_dir, default_cache_dir().parent / "bench" / "realistic-marian-v1")
    big = engines(big_dir, args, args.length)
    print(f"realistic-size model (random weights): {n_params(big['hf-seq2seq'])}; {args.n_realistic} sentences, "
          f"output forced to {args.length} tokens")
    big_speed = measure("realistic", big, texts[: args.n_realistic], args.repeats, forced=True)

    print(f"ct2/hf speed ratio (tiny, float32): {tiny_speed['ct2 float32'] / tiny_speed['hf-seq2seq']:.2f}")
    print(f"ct2/hf speed ratio (tiny, int8): {tiny_speed['ct2 int8'] / tiny_speed['hf-seq2seq']:.2f}")
    print(f"ct2/hf speed ratio (realistic size, float32): {big_speed['ct2 float32'] / big_speed['hf-seq2seq']:.2f}")
    print(f"ct2/hf speed ratio (realistic size, int8): {big_speed['ct2 int8'] / big_speed['hf-seq2seq']:.2f}")


if __name__ == "__main__":
    main()
