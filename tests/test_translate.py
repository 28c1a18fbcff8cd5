"""Translators: the hf-seq2seq backend on the tiny Marian model, the given backend, language codes, cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dsbuild.errors import ConfigError, InputError
from dsbuild.registry import translators
from dsbuild.synthetic import SRC_LANG, TGT_LANG
from dsbuild.translate.base import Translator
from dsbuild.translate.cache import TranslationCache, cache_key
from dsbuild.translate.hf import HFSeq2SeqTranslator, split_sentences
from dsbuild.translate.langcodes import parse_code, resolve_code


@pytest.fixture(scope="module")
def mt(tiny_marian_path, tmp_path_factory) -> HFSeq2SeqTranslator:
    """Greedy translator on the tiny model, no cache (a fresh instance per test module)."""
    return translators.get("hf-seq2seq")(str(tiny_marian_path), beam_size=1, cache=False, progress=False, threads=1)


# ----------------------------------------------------------------------------- hf-seq2seq
def test_registered_and_protocol(mt):
    assert {"hf-seq2seq", "given"} <= set(translators.names())
    assert isinstance(mt, Translator)
    assert mt.family == "marian"
    d = mt.describe()
    assert d["revision"].startswith("sha256:") and d["model"].endswith(Path(mt.path).name)


def test_translates_synthetic_pair(mt, synthetic_pairs):
    pairs = synthetic_pairs[:30]
    out = mt.translate([p.source.text for p in pairs], SRC_LANG, TGT_LANG)
    exact = sum(o == p.target.text for o, p in zip(out, pairs)) / len(pairs)
    assert exact >= 0.95, exact  # measured 1.0
    marked = [p.marked() for p in pairs]
    out_m = mt.translate([m[0] for m in marked], SRC_LANG, TGT_LANG)
    assert sum(o == m[1] for o, m in zip(out_m, marked)) / len(pairs) >= 0.95  # measured 1.0


def test_output_order_is_input_order_despite_length_sorting(mt, synthetic_pairs):
    texts = [p.source.text for p in synthetic_pairs[:12]]
    one_by_one = [mt.translate([t], SRC_LANG, TGT_LANG)[0] for t in texts[:4]]
    assert mt.translate(texts, SRC_LANG, TGT_LANG)[:4] == one_by_one


def test_language_codes(mt):
    assert mt.model_code("eng", "source") == "en"
    assert mt.model_code("qsy", "target") == "qsy"
    with pytest.raises(ConfigError) as err:
        mt.translate(["John sees Mary ."], "en", "es")
    msg = str(err.value)
    assert "'es' (Spanish) is not supported" in msg and "qsy" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="Did you mean en"):
        mt.translate(["John sees Mary ."], "english", TGT_LANG)
    with pytest.raises(ConfigError, match="unknown ISO 639-1"):
        mt.translate(["x"], "qq", TGT_LANG)


def test_empty_strings_do_not_call_the_model(tiny_marian_path):
    mt = translators.get("hf-seq2seq")(str(tiny_marian_path), beam_size=1, cache=False, progress=False, threads=1)
    assert mt.translate(["", "   "], SRC_LANG, TGT_LANG) == ["", ""]
    assert mt.stats["model_calls"] == 0 and mt._model is None  # not even loaded
    out = mt.translate(["", "John sees Mary .", ""], SRC_LANG, TGT_LANG)
    assert out[0] == out[2] == "" and out[1] == "John Marj vidas ."
    assert mt.stats["model_calls"] == 1 and mt.stats["translated"] == 1


def test_over_long_inputs_split_or_error(tiny_marian_path):
    mt = translators.get("hf-seq2seq")(str(tiny_marian_path), beam_size=1, cache=False, progress=False, threads=1,
                                       max_input_tokens=7)
    two = "John sees Mary . Anna visits Paris ."
    assert mt.too_long([two, "John sees Mary ."], SRC_LANG) == [True, False]
    assert split_sentences(two) == ["John sees Mary .", "Anna visits Paris ."]
    parts = mt.translate(split_sentences(two), SRC_LANG, TGT_LANG)
    assert parts[0] == "John Marj vidas ."
    assert mt.translate([two], SRC_LANG, TGT_LANG) == [" ".join(parts)]
    assert mt.stats["split"] == 1
    one_long = "John Smith and the famous old doctor sees Acme Corporation near the big river yesterday ."
    with pytest.raises(InputError, match="splitting it into sentences leaves a sentence"):
        mt.translate([one_long], SRC_LANG, TGT_LANG)
    strict = translators.get("hf-seq2seq")(str(tiny_marian_path), cache=False, max_input_tokens=7, long_inputs="error", threads=1)
    with pytest.raises(InputError, match="more than the model.s limit of 7"):
        strict.translate([two], SRC_LANG, TGT_LANG)


def test_missing_model_path_is_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        HFSeq2SeqTranslator(str(tmp_path / "no-such-model"))
    assert "does not exist" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        HFSeq2SeqTranslator(str(tmp_path / "empty"))
    with pytest.raises(ConfigError) as err:  # a Hub id that is not cached, offline
        HFSeq2SeqTranslator("dsbuild-test/no-such-model-xyz")
    assert "cannot load MT model" in str(err.value) and "\n" not in str(err.value)


def test_missing_model_path_cli_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dsbuild", "build", "translate-train", "--out", str(tmp_path),
         "--set", "translator=hf-seq2seq", "--set", f"model={tmp_path / 'nope'}"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "does not exist" in proc.stderr


def test_cache_hit_on_rerun(tiny_marian_path, tmp_path, synthetic_pairs):
    texts = [p.source.text for p in synthetic_pairs[:10]]
    first = HFSeq2SeqTranslator(str(tiny_marian_path), beam_size=2, cache=tmp_path, progress=False, threads=1)
    out1 = first.translate(texts, SRC_LANG, TGT_LANG)
    assert first.stats["model_calls"] >= 1 and first.stats["translated"] == 10
    second = HFSeq2SeqTranslator(str(tiny_marian_path), beam_size=2, cache=tmp_path, progress=False, threads=1)
    out2 = second.translate(texts + [texts[0]], SRC_LANG, TGT_LANG)
    assert out2 == out1 + [out1[0]]
    assert second.stats["model_calls"] == 0 and second.stats["cache_hits"] == 11 and second._model is None
    # different generation parameters are a different cache entry
    third = HFSeq2SeqTranslator(str(tiny_marian_path), beam_size=1, cache=tmp_path, progress=False, threads=1)
    third.translate(texts[:2], SRC_LANG, TGT_LANG)
    assert third.stats["model_calls"] == 1
    # a partially cached batch translates only what is missing
    fourth = HFSeq2SeqTranslator(str(tiny_marian_path), beam_size=2, cache=tmp_path, progress=False, threads=1)
    fourth.translate(texts + ["Mary sees John ."], SRC_LANG, TGT_LANG)
    assert fourth.stats["translated"] == 1 and fourth.stats["cache_hits"] == 10


def test_killed_run_keeps_finished_batches(tiny_marian_path, tmp_path, synthetic_pairs):
    """A run killed after its first batch resumes with that batch from the cache."""
    texts = [p.source.text for p in synthetic_pairs[:9]]
    first = HFSeq2SeqTranslator(str(tiny_marian_path), beam_size=1, batch_size=4, cache=tmp_path, progress=False, threads=1)
    real_generate = first.model.generate
    calls = []

    def generate_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt("killed")
        return real_generate(*args, **kwargs)

    first.model.generate = generate_then_die
    with pytest.raises(KeyboardInterrupt):
        first.translate(texts, SRC_LANG, TGT_LANG)
    second = HFSeq2SeqTranslator(str(tiny_marian_path), beam_size=1, batch_size=4, cache=tmp_path, progress=False, threads=1)
    out = second.translate(texts, SRC_LANG, TGT_LANG)
    assert second.stats["cache_hits"] == 4 and second.stats["translated"] == 5
    fresh = HFSeq2SeqTranslator(str(tiny_marian_path), beam_size=1, batch_size=4, cache=False, progress=False, threads=1)
    assert out == fresh.translate(texts, SRC_LANG, TGT_LANG)


def test_determinism_greedy_beam_and_sampling(tiny_marian_path, synthetic_pairs):
    texts = [p.source.text for p in synthetic_pairs[:8]]
    runs = []
    for _ in range(2):
        a = HFSeq2SeqTranslator(str(tiny_marian_path), beam_size=3, cache=False, progress=False, threads=1)
        s = HFSeq2SeqTranslator(str(tiny_marian_path), sampling=True, seed=5, temperature=1.5, cache=False, progress=False, threads=1)
        runs.append((a.translate(texts, SRC_LANG, TGT_LANG), s.translate(texts, SRC_LANG, TGT_LANG)))
    assert runs[0] == runs[1]


def test_score_teacher_forced(mt, synthetic_pairs):
    pairs = synthetic_pairs[:6]
    src = [p.source.text for p in pairs]
    good = [p.target.text for p in pairs]
    bad = [" ".join(reversed(t.split())) for t in good]
    scores = mt.score(src, good, SRC_LANG, TGT_LANG)
    assert [len(s) for s in scores] == [len(ids) for ids in mt.target_ids(good, TGT_LANG)]
    assert all(v <= 0 for s in scores for v in s)
    worse = mt.score(src, bad, SRC_LANG, TGT_LANG)
    assert all(sum(g) > sum(b) for g, b in zip(scores, worse))
    single = mt.score(src[:1], good[:1], SRC_LANG, TGT_LANG)[0]
    assert single == pytest.approx(scores[0], abs=1e-4)  # batching and padding do not change scores
    with pytest.raises(InputError):
        mt.score(src, good[:2], SRC_LANG, TGT_LANG)


def test_exposes_model_and_tokenizer_for_custom_decoding(mt):
    enc = mt.source_batch(["John sees Mary ."], SRC_LANG, TGT_LANG)
    assert enc["input_ids"].shape[0] == 1
    assert mt.model.config.model_type == "marian"
    assert mt.generate_kwargs(TGT_LANG) == {} and mt.forced_prefix_length() == 0
    assert mt.model_lang_code("en") is None  # bilingual Marian has no language tokens


# ----------------------------------------------------------------------------- language codes
def test_language_codes_per_family():
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M
    from transformers.models.mbart50.tokenization_mbart50 import FAIRSEQ_LANGUAGE_CODES as MBART
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB

    m2m = M2M["m2m100"] if isinstance(M2M, dict) else M2M
    cases = {"es": ("spa_Latn", "es", "es_XX"), "spa": ("spa_Latn", "es", "es_XX"), "es-ES": ("spa_Latn", "es", "es_XX"),
             "ar": ("arb_Arab", "ar", "ar_AR"), "zh": ("zho_Hans", "zh", "zh_CN"), "fa": ("pes_Arab", "fa", "fa_IR"),
             "deu": ("deu_Latn", "de", "de_DE"), "ger": ("deu_Latn", "de", "de_DE")}
    for code, (nllb, m, mb) in cases.items():
        assert resolve_code(code, NLLB, family="nllb") == nllb
        assert resolve_code(code, m2m, family="m2m100") == m
        assert resolve_code(code, MBART, family="mbart") == mb
    assert resolve_code("zh-Hant", NLLB, family="nllb") == "zho_Hant"
    assert resolve_code("spa_Latn", NLLB, family="nllb") == "spa_Latn"  # the model's own code
    assert resolve_code("es_XX", MBART, family="mbart") == "es_XX"
    assert resolve_code("ast", m2m, family="m2m100") == "ast"
    assert resolve_code("es", [">>spa<<", ">>fra<<"], family="marian-multi") == ">>spa<<"
    with pytest.raises(ConfigError, match=r"'eu' \(Basque\) is not supported by model 'mbart'"):
        resolve_code("eu", MBART, family="mbart", model="mbart")
    with pytest.raises(ConfigError, match="Close matches: spa_Latn"):
        resolve_code("spa_Latx", NLLB, family="nllb")
    with pytest.raises(ConfigError, match="ambiguous"):
        resolve_code("tur", ["tur_Latn", "tur_Arab"], family="nllb")
    assert resolve_code("kas", ["kas_Arab", "kas_Deva"], family="nllb") == "kas_Arab"  # default script


def test_parse_code_rejects_non_codes():
    assert parse_code("pt-BR").lang == "por" and parse_code("pt-BR").region == "BR"
    for bad in ["", "e", "spanish-language", "12", "es_Latn_Xtra_1"]:
        with pytest.raises(ConfigError):
            parse_code(bad)


# ----------------------------------------------------------------------------- cache
def test_cache_roundtrip_and_atomic_batches(tmp_path):
    cache = TranslationCache(tmp_path / "c.sqlite")
    k1, k2 = cache_key({"m": 1}, "a"), cache_key({"m": 2}, "a")
    assert k1 != k2
    cache.put_many([(k1, "x")])
    assert cache.get_many([k1, k2]) == {k1: "x"}
    with pytest.raises(RuntimeError):
        cache.put_many(_raising_pairs([(k2, "y")]))
    assert cache.get_many([k2]) == {}  # nothing of a failed batch is stored
    assert len(TranslationCache(tmp_path / "c.sqlite")) == 1


def _raising_pairs(pairs):
    yield from pairs
    raise RuntimeError("killed mid-batch")


# ----------------------------------------------------------------------------- given
def test_given_from_mapping_and_missing_entries():
    tr = translators.get("given")({"John sees Mary .": "John Mary vidas ."})
    assert isinstance(tr, Translator)
    assert tr.translate(["John sees Mary .", ""], "en", "qsy") == ["John Mary vidas .", ""]
    assert tr.lookup(["nope"], "en", "qsy") == [None]
    with pytest.raises(InputError) as err:
        tr.translate(["John sees Mary .", "Anna sees Paris .", "x"], "en", "qsy")
    assert "2 of 3 inputs have no given 'qsy' translation" in str(err.value) and "'Anna sees Paris .'" in str(err.value)
    with pytest.raises(ConfigError, match="cannot score"):
        tr.score(["a"], ["b"], "en", "qsy")


def test_given_from_files_by_id_and_language(tmp_path):
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "target": "uno", "tgt_lang": "es"}, {"id": "a", "target": "eins", "tgt_lang": "de"},
        {"id": "b", "target": "dos", "tgt_lang": "es"}]) + "\n")
    tr = translators.get("given")(path=jsonl, key="id")
    assert tr.translate(["one", "two"], "en", "es", ids=["a", "b"]) == ["uno", "dos"]
    assert tr.translate(["one"], "en", "de", ids=["a"]) == ["eins"]
    with pytest.raises(InputError, match="1 of 2 inputs"):
        tr.translate(["one", "two"], "en", "de", ids=["a", "b"])
    with pytest.raises(ConfigError, match="no translations into 'fr' \\(the file has de, es\\)"):
        tr.translate(["one"], "en", "fr", ids=["a"])
    with pytest.raises(ConfigError, match="needs ids"):
        tr.translate(["one"], "en", "es")
    csv_path = tmp_path / "t.tsv"
    csv_path.write_text("source\ttarget\nJohn sees Mary .\tJohn Mary vidas .\n")
    assert translators.get("given")(path=csv_path).translate(["John sees Mary ."], "en", "qsy") == ["John Mary vidas ."]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "a", "target": "b"}\n{"src": "c"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2"):
        translators.get("given")(path=bad)
    with pytest.raises(ConfigError, match="does not exist"):
        translators.get("given")(path=tmp_path / "none.jsonl")


# ----------------------------------------------------------------------------- NLLB family (random weights)
@pytest.fixture(scope="module")
def tiny_nllb(tiny_marian_path, tmp_path_factory) -> Path:
    """An NLLB-style folder: NllbTokenizer on the tiny sentencepiece model + a random 1-layer M2M100 model."""
    import shutil

    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    d = tmp_path_factory.mktemp("nllb")
    shutil.copy(tiny_marian_path / "source.spm", d / "sentencepiece.bpe.model")
    tok = NllbTokenizer.from_pretrained(str(d), extra_special_tokens=["eng_Latn", "spa_Latn", "zho_Hans", "zho_Hant"])
    cfg = M2M100Config(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
                       decoder_start_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_nllb_family_codes_forced_bos_and_scores(tiny_nllb):
    mt = HFSeq2SeqTranslator(str(tiny_nllb), beam_size=1, cache=False, progress=False, threads=1)
    assert mt.family == "nllb"
    assert mt.model_code("es", "target") == "spa_Latn" and mt.model_code("zh-Hant", "target") == "zho_Hant"
    assert mt.model_code("zh", "target") == "zho_Hans" and mt.model_lang_code("eng") == "eng_Latn"
    with pytest.raises(ConfigError, match=r"'fr' \(French\) is not supported"):
        mt.translate(["John sees Mary ."], "en", "fr")
    spa = mt.tokenizer.convert_tokens_to_ids("spa_Latn")
    assert mt.generate_kwargs("es") == {"forced_bos_token_id": spa}
    enc = mt.source_batch(["John sees Mary ."], "en", "es")
    assert enc["input_ids"][0, 0].item() == mt.tokenizer.convert_tokens_to_ids("eng_Latn")  # source language token
    out = mt.model.generate(**enc, **mt.generate_kwargs("es"), max_length=6)
    assert out[0, 1].item() == spa  # the target language is forced after the decoder start
    assert isinstance(mt.translate(["John sees Mary ."], "en", "es")[0], str)
    labels = mt.target_ids(["John Marj vidas ."], "es")[0]
    assert labels[0] == spa and mt.forced_prefix_length() == 1
    assert len(mt.score(["John sees Mary ."], ["John Marj vidas ."], "en", "es")[0]) == len(labels) - 1
