"""The CTranslate2 translator against hf-seq2seq on the tiny synthetic Marian model."""

from __future__ import annotations

import sys

import pytest

from dsbuild.errors import ConfigError
from dsbuild.registry import translators

pytest.importorskip("ctranslate2")

SRC, TGT = "en", "qsy"


@pytest.fixture(scope="module")
def texts(tiny_marian_path):
    from dsbuild import synthetic

    return [p.source.text for p in synthetic.generate_pairs(60, seed=31, unique=True)]


@pytest.fixture(scope="module")
def convert_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ct2-models")


@pytest.fixture(scope="module")
def hf(tiny_marian_path):
    return translators.get("hf-seq2seq")(str(tiny_marian_path), beam_size=1, batch_size=16, cache=False,
                                         progress=False, device="cpu", dtype="float32", threads=1)


@pytest.fixture(scope="module")
def ct(tiny_marian_path, convert_dir):
    return translators.get("ct2")(str(tiny_marian_path), beam_size=1, batch_size=16, cache=False, progress=False,
                                  compute_type="float32", convert_dir=convert_dir, threads=1)


def test_greedy_outputs_equal_hf_seq2seq(hf, ct, texts):
    assert ct.converted  # the first construction converts
    expected = hf.translate(texts, SRC, TGT)
    got = ct.translate(texts, SRC, TGT)
    assert got == expected
    assert sum(bool(t) for t in got) == len(texts)


def test_score_close_to_hf(hf, ct, texts):
    targets = hf.translate(texts[:12], SRC, TGT)
    a = hf.score(texts[:12], targets, SRC, TGT)
    b = ct.score(texts[:12], targets, SRC, TGT)
    assert [len(x) for x in a] == [len(x) for x in b]
    assert max(abs(u - v) for x, y in zip(a, b) for u, v in zip(x, y)) < 1e-4
    # a wrong target scores lower than the model's own translation
    worse = ct.score(texts[:12], list(reversed(targets)), SRC, TGT)
    assert sum(sum(x) for x in worse) < sum(sum(x) for x in b)


def test_conversion_is_cached(tiny_marian_path, convert_dir, ct, texts):
    again = translators.get("ct2")(str(tiny_marian_path), beam_size=1, cache=False, progress=False,
                                   compute_type="int8", convert_dir=convert_dir)
    assert not again.converted and again.ct2_path == ct.ct2_path
    assert [p.name for p in convert_dir.iterdir()] == [ct.ct2_path.name]  # no temporary folder left
    # keyed by model and revision (a local folder's revision: the hash of its weights)
    key = again.conversion_key()
    again.revision = "0123456789abcdef"
    assert again.conversion_key() != key
    out = again.translate(texts[:20], SRC, TGT)  # int8 from the same float32 conversion
    assert len(out) == 20 and all(out)


def test_translation_cache_empty_and_long_inputs(tiny_marian_path, convert_dir, texts, tmp_path):
    mt = translators.get("ct2")(str(tiny_marian_path), beam_size=1, cache=tmp_path / "tr.sqlite", progress=False,
                                compute_type="float32", convert_dir=convert_dir, max_input_tokens=12)
    short = [t for t in texts if len(mt.tokenizer(t)["input_ids"]) <= 12][:2]
    long_text = " . ".join(short) + " ."
    out = mt.translate(["", *short, long_text], SRC, TGT)
    assert out[0] == "" and mt.stats["empty"] == 1 and mt.stats["split"] == 1
    assert out[3] and all(out[1:3])
    calls = mt.stats["model_calls"]
    assert mt.translate(short, SRC, TGT) == out[1:3] and mt.stats["model_calls"] == calls  # cache hits
    assert mt.stats["cache_hits"] == 2
    # int8 results are cached under their own key
    assert mt._namespace(SRC, TGT)["compute_type"] == "float32"


def test_unsupported_compute_type_is_one_line(tiny_marian_path, convert_dir):
    with pytest.raises(ConfigError) as err:
        translators.get("ct2")(str(tiny_marian_path), compute_type="float8", convert_dir=convert_dir, cache=False)
    assert "\n" not in str(err.value) and "compute_type" in str(err.value)
    import ctranslate2

    if "float16" not in ctranslate2.get_supported_compute_types("cpu"):
        with pytest.raises(ConfigError, match="not supported on cpu"):
            translators.get("ct2")(str(tiny_marian_path), compute_type="float16", device="cpu",
                                   convert_dir=convert_dir, cache=False)


def test_missing_ctranslate2_is_one_clear_line(tiny_marian_path, convert_dir, monkeypatch):
    from dsbuild.translate.ct2 import CT2Translator

    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # import ctranslate2 -> ImportError
    with pytest.raises(ConfigError) as err:
        CT2Translator(str(tiny_marian_path), convert_dir=convert_dir, cache=False)
    msg = str(err.value)
    assert "\n" not in msg and "ctranslate2" in msg and "pip install" in msg


def test_registered():
    from dsbuild.translate.ct2 import CT2Translator

    assert translators.get("ct2") is CT2Translator


# ----------------------------------------------------------------------------- language codes (NLLB family)
@pytest.fixture(scope="module")
def tiny_nllb_dir(tiny_marian_path, tmp_path_factory):
    """An NLLB-style folder: NllbTokenizer on the tiny sentencepiece model + a random 1-layer M2M100 model."""
    import shutil

    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    d = tmp_path_factory.mktemp("ct2-nllb")
    shutil.copy(tiny_marian_path / "source.spm", d / "sentencepiece.bpe.model")
    tok = NllbTokenizer.from_pretrained(str(d), extra_special_tokens=["eng_Latn", "spa_Latn", "zho_Hans"])
    cfg = M2M100Config(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
                       decoder_start_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_nllb_language_codes_equal_hf_seq2seq(tiny_nllb_dir, tmp_path, texts):
    """Target language codes are forced as hf-seq2seq forces them: same greedy outputs and scores per language."""
    kw = dict(beam_size=1, batch_size=8, cache=False, progress=False, threads=1, max_new_tokens=12)
    hf = translators.get("hf-seq2seq")(str(tiny_nllb_dir), device="cpu", dtype="float32", **kw)
    ct = translators.get("ct2")(str(tiny_nllb_dir), compute_type="float32", convert_dir=tmp_path, **kw)
    assert ct.family == "nllb" and ct.target_prefix("es") == ["spa_Latn"] and ct.target_prefix("zh") == ["zho_Hans"]
    assert ct.source_tokens(["John ."], "en", "es")[0][0] == "eng_Latn"
    outs = {}
    for lang in ("es", "zh"):
        outs[lang] = hf.translate(texts[:16], "en", lang)
        assert ct.translate(texts[:16], "en", lang) == outs[lang]
        a, b = hf.score(texts[:4], outs[lang][:4], "en", lang), ct.score(texts[:4], outs[lang][:4], "en", lang)
        assert [len(x) for x in a] == [len(x) for x in b]  # language code excluded, eos included, as hf
        assert max(abs(u - v) for x, y in zip(a, b) for u, v in zip(x, y)) < 1e-4
    # the forced code conditions the decoder: the same target text scores differently under another code
    assert ct.score(texts[:2], outs["es"][:2], "en", "es") != ct.score(texts[:2], outs["es"][:2], "en", "zh")
    with pytest.raises(ConfigError, match="not supported"):
        ct.translate(["John ."], "en", "fr")
