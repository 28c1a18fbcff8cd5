"""Session fixtures for the marker / constrained-decoding projection tests.

A tiny sentencepiece tokenizer and a RANDOM-weight MarianMTModel (no training: the exhaustive-vs-search
correctness test only needs some fixed scoring function), built once and cached on disk.
Two tokenizers: one whose vocabulary holds the ``[`` / ``]`` markers, one that cannot express them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

_WORDS = (
    "the cat sat on a mat near Paris and Berlin while John met Mary at noon in London "
    "big small red blue dog house tree river city walked saw gave took quickly slowly"
).split()


def _cache_root() -> Path:
    return Path(os.environ.get("DSBUILD_TEST_CACHE", Path.home() / ".cache" / "dsbuild-tests"))


def _corpus(with_markers: bool) -> list[str]:
    import random

    rng = random.Random(0)
    lines = []
    for _ in range(400):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 9))]
        if with_markers and rng.random() < 0.5:
            i = rng.randrange(len(words))
            words[i : i + 1] = ["[", words[i], "]"]
        lines.append(" ".join(words) + rng.choice(["", " .", "."]))
    return lines


def build_random_marian(path: Path, *, with_markers: bool = True, seed: int = 0) -> Path:
    """Write a tiny Marian model (random weights) + sentencepiece tokenizer to ``path``."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    path.mkdir(parents=True, exist_ok=True)
    corpus = path / "corpus.txt"
    corpus.write_text("\n".join(_corpus(with_markers)) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(path / "spm"),
        vocab_size=60,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        eos_id=0,
        unk_id=1,
        pad_id=2,
        bos_id=-1,
        user_defined_symbols=["[", "]"] if with_markers else [],
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(path / "spm.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        (path / name).write_bytes((path / "spm.model").read_bytes())
    tok = MarianTokenizer(
        source_spm=str(path / "source.spm"), target_spm=str(path / "target.spm"), vocab=str(path / "vocab.json")
    )
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=2,
        eos_token_id=0,
        decoder_start_token_id=2,
        forced_eos_token_id=0,
        scale_embedding=True,
    )
    model = MarianMTModel(config)
    # Random weights with a larger spread than the init, so scores are far from uniform.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _cached(name: str, **kwargs: object) -> Path:
    key = hashlib.sha256(json.dumps({"v": 2, **kwargs}, sort_keys=True).encode()).hexdigest()[:12]
    path = _cache_root() / f"{name}-{key}"
    if not (path / "config.json").exists():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        build_random_marian(tmp, **kwargs)  # type: ignore[arg-type]
        try:
            tmp.rename(path)
        except OSError:  # another process won the race
            pass
    return path


@pytest.fixture(scope="session")
def random_marian_path() -> Path:
    """Folder of a random-weight Marian model whose vocabulary holds ``[`` and ``]``."""
    return _cached("random-marian", with_markers=True)


@pytest.fixture(scope="session")
def random_marian_nomarker_path() -> Path:
    """Folder of a random-weight Marian model whose vocabulary cannot express ``[`` / ``]``."""
    return _cached("random-marian-nomarker", with_markers=False)


@pytest.fixture(scope="session")
def random_marian(random_marian_path: Path):  # type: ignore[no-untyped-def]
    """(model, tokenizer) loaded with from_pretrained, in float64 so that search and
    exhaustive enumeration agree to many decimals."""
    import torch
    from transformers import AutoTokenizer, MarianMTModel

    model = MarianMTModel.from_pretrained(random_marian_path).to(torch.float64).eval()
    tok = AutoTokenizer.from_pretrained(random_marian_path)
    return model, tok
