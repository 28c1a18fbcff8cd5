"""Neural similarity aligner on tiny random encoders: structure and invariants, not quality."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dsbuild.align import Alignment
from dsbuild.align.neural import NeuralAligner, argmax_links, itermax_links, softmax_links
from dsbuild.errors import ConfigError, InputError
from dsbuild.registry import aligners
from tests.plugins.tiny_bert import WORDS


def _aligner(*args, **kwargs) -> NeuralAligner:
    # One torch thread: on a shared 2-core machine two spinning threads make tiny models 100x slower.
    kwargs.setdefault("num_threads", 1)
    return NeuralAligner(*args, **kwargs)


def _pairs(n: int, seed: int = 0, lo: int = 1, hi: int = 12) -> tuple[list[list[str]], list[list[str]]]:
    rng = random.Random(seed)
    src = [[rng.choice(WORDS) for _ in range(rng.randint(lo, hi))] for _ in range(n)]
    tgt = [[rng.choice(WORDS) for _ in range(rng.randint(lo, hi))] for _ in range(n)]
    return src, tgt


@pytest.fixture(scope="module")
def bert(tiny_bert_path):
    return _aligner(str(tiny_bert_path), layer=2, extraction="itermax", batch_size=8)


def test_registry_lists_both_aligners():
    names = aligners.names()
    assert "eflomal" in names and "neural" in names
    assert aligners.get("neural") is NeuralAligner


@pytest.mark.parametrize("extraction", ["argmax", "itermax", "softmax"])
def test_links_in_range_sorted_and_scored(tiny_bert_path, extraction):
    src, tgt = _pairs(20)
    out = _aligner(str(tiny_bert_path), layer=2, extraction=extraction).align(src, tgt)
    assert len(out) == 20 and all(isinstance(a, Alignment) for a in out)
    for a, s, t in zip(out, src, tgt):
        assert a.links, "every non-empty pair gets at least one link"
        assert list(a.links) == sorted(set(a.links))
        assert all(0 <= i < len(s) and 0 <= j < len(t) for i, j in a.links)
        assert set(a.scores) == set(a.links)


def test_argmax_is_inside_itermax_and_threshold_is_monotone(tiny_bert_path):
    src, tgt = _pairs(25, seed=1, lo=3, hi=15)
    p = str(tiny_bert_path)
    arg = _aligner(p, layer=2, extraction="argmax").align(src, tgt)
    it = _aligner(p, layer=2, extraction="itermax").align(src, tgt)
    assert all(set(a.links) <= set(b.links) for a, b in zip(arg, it))
    assert sum(len(b.links) for b in it) > sum(len(a.links) for a in arg)
    loose = _aligner(p, layer=2, extraction="softmax", threshold=0.001).align(src, tgt)
    strict = _aligner(p, layer=2, extraction="softmax", threshold=0.2).align(src, tgt)
    assert all(set(s.links) <= set(l.links) for s, l in zip(strict, loose))


def test_deterministic_and_batch_size_independent(tiny_bert_path, bert):
    src, tgt = _pairs(12, seed=2)
    first = bert.align(src, tgt)
    assert _aligner(str(tiny_bert_path), layer=2, batch_size=8).align(src, tgt) == first
    one_by_one = _aligner(str(tiny_bert_path), layer=2, batch_size=1)
    assert [a.links for a in one_by_one.align(src, tgt)] == [a.links for a in first]
    for x, y in zip(one_by_one.embed_words(src), bert.embed_words(src)):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_long_input_is_windowed_not_truncated(bert):
    rng = random.Random(5)
    long_sentence = [rng.choice(WORDS) for _ in range(200)]  # several times the 24-position limit
    before = bert.stats["windowed_sentences"]
    [vectors] = bert.embed_words([long_sentence])
    assert bert.stats["windowed_sentences"] == before + 1
    assert vectors.shape[0] == 200 and np.isfinite(vectors).all()
    # A sentence aligned with itself: every word's best match is itself, including the words
    # beyond the model's maximum length.
    [self_alignment] = _aligner(bert.model_name, layer=2, extraction="argmax").align(
        [long_sentence], [long_sentence])
    assert self_alignment.links == tuple((k, k) for k in range(200))


def test_window_vectors_come_from_a_real_encoding(bert):
    # Whole-word vocabulary entries are one WordPiece each, so word k is subword k. The content
    # limit is 22: a 60-word sentence is encoded in windows (0,22) (11,33) (22,44) (33,55) (38,60).
    rng = random.Random(6)
    ascii_words = [w for w in WORDS if w.isascii()]
    words = [rng.choice(ascii_words) for _ in range(60)]
    assert all(len(p) == 1 for p in bert._word_pieces([words])[0])
    assert bert._content_limit == 22
    assert bert._windows(60) == [(0, 22), (11, 33), (22, 44), (33, 55), (38, 60)]
    [long_vecs] = bert.embed_words([words])
    [first_window] = bert.embed_words([words[:22]])
    [last_window] = bert.embed_words([words[38:]])
    np.testing.assert_allclose(long_vecs[:11], first_window[:11], atol=1e-5)  # only in window 0
    np.testing.assert_allclose(long_vecs[55:], last_window[17:], atol=1e-5)  # only in the last window
    assert not np.allclose(long_vecs[30], first_window[0], atol=1e-3)


def test_layer_is_validated(tiny_bert_path):
    with pytest.raises(ConfigError, match="layer 8 does not exist: .* has 3 layers"):
        _aligner(str(tiny_bert_path), layer=8).align([["the"]], [["la"]])
    assert _aligner(str(tiny_bert_path), layer=-1).align([["the"]], [["la"]])[0].links == ((0, 0),)
    assert _aligner(str(tiny_bert_path), layer=0).describe()["layer"] == 0


def test_pooling_options(tiny_bert_path):
    sent = [["pequeña", "house"]]  # 'pequeña' is several WordPieces, 'house' one
    vecs = {p: _aligner(str(tiny_bert_path), layer=2, pooling=p).embed_words(sent)[0] for p in ("mean", "max", "first")}
    assert all(v.shape == (2, 32) for v in vecs.values())
    np.testing.assert_allclose(vecs["mean"][1], vecs["first"][1], atol=1e-6)  # one piece: all poolings agree
    np.testing.assert_allclose(vecs["max"][1], vecs["first"][1], atol=1e-6)
    assert not np.allclose(vecs["mean"][0], vecs["first"][0])
    assert (vecs["max"][0] >= vecs["mean"][0] - 1e-6).all()
    with pytest.raises(ConfigError):
        _aligner(str(tiny_bert_path), pooling="sum")
    with pytest.raises(ConfigError):
        _aligner(str(tiny_bert_path), extraction="match")


def test_bpe_model_and_words_without_pieces(tiny_roberta_path):
    a = _aligner(str(tiny_roberta_path), layer=1, extraction="argmax")
    src, tgt = _pairs(10, seed=3)
    out = a.align(src + [["the", "\u200b", "house"]], tgt + [["la", "casa"]])
    assert len(out) == 11
    assert a.stats["unk_words"] == 0  # byte-level BPE gives every word pieces, even U+200B (BERT: see below)
    [vecs] = a.embed_words([["the", "\u200b", "house"]])
    assert vecs.shape[0] == 3  # the zero-width word still has a vector
    d = a.describe()
    assert d["num_hidden_layers"] == 2 and d["device"] == "cpu" and d["content_limit"] == 22


def test_zero_piece_word_uses_unknown_token(tiny_bert_path):
    a = _aligner(str(tiny_bert_path), layer=2)
    [vecs] = a.embed_words([["the", "\u200b", "house"]])  # BERT's normaliser deletes U+200B
    assert vecs.shape[0] == 3 and a.stats["unk_words"] == 1


def test_bad_input(bert):
    with pytest.raises(InputError, match="2 source sentences but 1 target"):
        bert.align([["a"], ["b"]], [["x"]])
    with pytest.raises(InputError, match="whitespace"):
        bert.align([["New York"]], [["x"]])
    assert bert.align([[], ["the"]], [["la"], []]) == [Alignment(()), Alignment(())]
    assert bert.align([], []) == []


def test_unknown_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot load model"):
        _aligner(str(tmp_path / "missing-model")).align([["a"]], [["b"]])


def test_extraction_functions_on_hand_made_matrices():
    sim = np.array([[0.9, 0.1, 0.0], [0.5, 0.45, 0.1], [0.0, 0.1, 0.7]])
    assert argmax_links(sim) == [(0, 0), (2, 2)]
    # word 1 on both sides is unaligned after ArgMax; IterMax links it in a second round
    assert itermax_links(sim, iterations=2) == [(0, 0), (1, 1), (2, 2)]
    assert itermax_links(sim, iterations=1) == argmax_links(sim)
    # a cell with one aligned word is down-weighted (x0.9), not excluded: here it still wins
    sim2 = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.0, 0.1, 0.7]])
    assert itermax_links(sim2, iterations=2) == [(0, 0), (1, 0), (2, 2)]
    soft = softmax_links(np.array([[10.0, 0.0], [0.0, 10.0]]), 0.001)
    assert soft.links == ((0, 0), (1, 1)) and all(0 < v <= 1 for v in soft.scores.values())


def test_num_threads_is_restored(tiny_bert_path):
    import torch

    before = torch.get_num_threads()
    a = _aligner(str(tiny_bert_path), layer=2, num_threads=1)
    a.align([["the"]], [["la"]])
    assert torch.get_num_threads() == before and a.describe()["num_threads"] == 1
    with pytest.raises(ConfigError):
        NeuralAligner(str(tiny_bert_path), num_threads=0)


def test_slow_tokenizer_path_gives_the_same_pieces(bert, monkeypatch):
    sents = [["the", "pequeña", "house"], ["\u200b", "casa"]]
    bert.embed_words([["the"]])  # loads the model
    fast = bert._word_pieces(sents)
    monkeypatch.setattr(type(bert._tokenizer), "is_fast", property(lambda self: False))
    assert bert._word_pieces(sents) == fast
