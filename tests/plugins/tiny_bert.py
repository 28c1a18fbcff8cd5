"""Session fixtures: tiny encoders with random weights, saved to disk, for the neural aligner tests.

No weights can be downloaded here, so the tests build what they load: a 2-layer BERT with a
WordPiece vocabulary, and a 2-layer RoBERTa with a byte-level BPE vocabulary trained on a few
sentences. Both are saved with ``save_pretrained`` and loaded back through the real
``from_pretrained(path)`` code path (HF_HUB_OFFLINE=1 is set in conftest). Built once and cached
on disk under ``$DSBUILD_TEST_CACHE`` (default ``~/.cache/dsbuild-tests``), keyed by a hash of
their recipe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

WORDS = (
    "the house is small la casa es pequeña das haus ist klein we are not aware of any copyright "
    "restrictions material parliament president report commission council europe european union "
    "no somos conscientes de ninguna restricción derechos autor parlamento presidente informe "
    "comisión consejo unión europea"
).split()

# Deliberately small position limits so that windowing is exercised with short inputs.
BERT_RECIPE = {"hidden": 32, "layers": 3, "heads": 2, "intermediate": 64, "max_positions": 24, "seed": 0, "v": 1}
ROBERTA_RECIPE = {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64, "max_positions": 26, "seed": 0, "v": 1}


def _cache_root() -> Path:
    return Path(os.environ.get("DSBUILD_TEST_CACHE") or Path.home() / ".cache" / "dsbuild-tests")


def _cached(name: str, recipe: dict[str, object], build) -> Path:  # type: ignore[no-untyped-def]
    key = hashlib.sha256(json.dumps({"words": WORDS, **recipe}, sort_keys=True).encode()).hexdigest()[:12]
    path = _cache_root() / f"{name}-{key}"
    if (path / "config.json").is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{name}-"))
    try:
        build(tmp, recipe)
        try:
            tmp.rename(path)
        except OSError:  # another session finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def build_tiny_bert(path: Path, recipe: dict[str, object]) -> None:
    """2-layer BERT, random weights, WordPiece vocab of whole words, characters and ##characters."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    chars = sorted({c for w in WORDS for c in w})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS)) + chars + [f"##{c}" for c in chars]
    tokens += [".", ",", "##s"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=int(recipe["max_positions"]))
    torch.manual_seed(int(recipe["seed"]))  # type: ignore[arg-type]
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=recipe["hidden"], num_hidden_layers=recipe["layers"],
        num_attention_heads=recipe["heads"], intermediate_size=recipe["intermediate"],
        max_position_embeddings=recipe["max_positions"], pad_token_id=0,
    )
    BertModel(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)


def build_tiny_roberta(path: Path, recipe: dict[str, object]) -> None:
    """2-layer RoBERTa, random weights, byte-level BPE trained on the word list."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS)] * 3, vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(path))
    tokenizer = RobertaTokenizer(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"),
                                 model_max_length=int(recipe["max_positions"]) - 2)
    torch.manual_seed(int(recipe["seed"]))  # type: ignore[arg-type]
    config = RobertaConfig(
        vocab_size=bpe.get_vocab_size(), hidden_size=recipe["hidden"], num_hidden_layers=recipe["layers"],
        num_attention_heads=recipe["heads"], intermediate_size=recipe["intermediate"],
        max_position_embeddings=recipe["max_positions"], pad_token_id=1,
    )
    RobertaModel(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_bert_path() -> Path:
    """Folder of a saved tiny random BERT (WordPiece), loadable with ``from_pretrained``."""
    return _cached("tiny-bert", BERT_RECIPE, build_tiny_bert)


@pytest.fixture(scope="session")
def tiny_roberta_path() -> Path:
    """Folder of a saved tiny random RoBERTa (byte-level BPE), loadable with ``from_pretrained``."""
    return _cached("tiny-roberta", ROBERTA_RECIPE, build_tiny_roberta)
