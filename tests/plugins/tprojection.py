"""Session fixtures for the T-Projection and ensemble tests: tiny Marian models that also translate phrases.

T-Projection scores isolated spans (``William Walker`` -> ``Villiam Valker``). The shared tiny model
(``tiny_marian_path``) only ever saw whole sentences ending in a full stop, so it gives the end of
sequence after a bare name a very low probability, as no real MT model does (they see titles,
terms and short segments in training). These models are trained like it, on the same synthetic
sentence pairs plus each pair's entity pairs (source span text <-> gold target span text):

* ``phrase_marian_path``: en -> qsy;
* ``phrase_marian_reverse_path``: qsy -> en (the second NMTScore direction).

Each trains in about a minute on one core, once, cached under ``$DSBUILD_TEST_CACHE`` (default
``~/.cache/dsbuild-tests``) ``/phrase-marian-<direction>-<hash>`` with a file lock.
:func:`cached_phrase_marian` is also used by ``scripts/compare_methods.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

PHRASE_HPARAMS: dict[str, Any] = {"n_train": 8000, "vocab_size": 500, "d_model": 64, "layers": 2, "heads": 4,
                                  "ffn": 128, "max_len": 128, "batch_size": 64, "steps": 1200, "lr": 3e-3,
                                  "warmup": 150, "dropout": 0.0}


def phrase_corpus(n: int, seed: int = 0, reverse: bool = False) -> list[tuple[str, str]]:
    """Sentence pairs plus their entity pairs (shuffled, seeded); target -> source when ``reverse``."""
    from dsbuild.synthetic import generate_pairs

    out = []
    for p in generate_pairs(n, seed=seed, id_prefix="train"):  # the same sentences as the shared tiny model
        out.append((p.source.text, p.target.text))
        for k, j in sorted(p.span_map.items()):
            out.append((p.source.span_text(p.source.spans[k]), p.target.span_text(p.target.spans[j])))
    random.Random(seed).shuffle(out)
    return [(b, a) for a, b in out] if reverse else out


def _key(reverse: bool, seed: int) -> str:
    from dsbuild.synthetic import tiny_marian_key

    blob = json.dumps({"base": tiny_marian_key(seed), "hp": PHRASE_HPARAMS, "reverse": reverse, "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def train_phrase_marian(out_dir: Path, *, reverse: bool = False, seed: int = 0) -> dict[str, Any]:
    """Train one direction into ``out_dir`` (written to a temporary folder, renamed at the end)."""
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    from dsbuild import synthetic

    hp = dict(PHRASE_HPARAMS)
    src_lang, tgt_lang = (synthetic.TGT_LANG, synthetic.SRC_LANG) if reverse else (synthetic.SRC_LANG, synthetic.TGT_LANG)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        corpus = phrase_corpus(hp["n_train"], seed, reverse)
        synthetic._train_spm([s for s, _ in corpus] + [t for _, t in corpus], tmp / "spm", hp["vocab_size"], seed)
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(tmp / "spm.model"))
        vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=0), encoding="utf-8")
        shutil.copy(tmp / "spm.model", tmp / "source.spm")
        shutil.move(tmp / "spm.model", tmp / "target.spm")
        (tmp / "spm.vocab").unlink(missing_ok=True)
        tok = MarianTokenizer(source_spm=str(tmp / "source.spm"), target_spm=str(tmp / "target.spm"),
                              vocab=str(tmp / "vocab.json"), source_lang=src_lang, target_lang=tgt_lang,
                              model_max_length=hp["max_len"])
        config = MarianConfig(
            vocab_size=len(vocab), d_model=hp["d_model"], encoder_layers=hp["layers"], decoder_layers=hp["layers"],
            encoder_attention_heads=hp["heads"], decoder_attention_heads=hp["heads"], encoder_ffn_dim=hp["ffn"],
            decoder_ffn_dim=hp["ffn"], max_position_embeddings=hp["max_len"], pad_token_id=vocab["<pad>"],
            eos_token_id=vocab["</s>"], decoder_start_token_id=vocab["<pad>"], forced_eos_token_id=vocab["</s>"],
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, scale_embedding=True,
            share_encoder_decoder_embeddings=True, tie_word_embeddings=True)
        config.dsbuild_languages = {"source": [src_lang], "target": [tgt_lang]}
        model = MarianMTModel(config)
        report = synthetic._train_loop(model, tok, corpus, hp, seed)
        model.eval()
        model.generation_config.max_length = hp["max_len"]
        model.generation_config.num_beams = 1
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        report.update(seconds=round(time.perf_counter() - t0, 1), hparams=hp, seed=seed, reverse=reverse)
        (tmp / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(old_threads)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return report


def cached_phrase_marian(reverse: bool = False, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """The model folder, trained on first use and cached (a file lock serialises concurrent sessions)."""
    from filelock import FileLock

    base = Path(cache_dir or os.environ.get("DSBUILD_TEST_CACHE") or Path.home() / ".cache" / "dsbuild-tests")
    base.mkdir(parents=True, exist_ok=True)
    out = base / f"phrase-marian-{'rev' if reverse else 'fwd'}-{_key(reverse, seed)}"
    with FileLock(str(out) + ".lock"):
        if not (out / "config.json").exists():
            train_phrase_marian(out, reverse=reverse, seed=seed)
    return out


@pytest.fixture(scope="session")
def phrase_marian_path() -> Path:
    return cached_phrase_marian(reverse=False)


@pytest.fixture(scope="session")
def phrase_marian_reverse_path() -> Path:
    return cached_phrase_marian(reverse=True)
