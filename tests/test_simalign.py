"""The simalign package as ``aligner="simalign"``, checked against dsbuild's own neural aligner.

Both run on the tiny random BERT of ``tests/plugins/tiny_bert.py`` (no download): structure and
agreement, not quality.
"""

from __future__ import annotations

import importlib.util
import logging
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("simalign")

from dsbuild.align import Alignment  # noqa: E402
from dsbuild.align.neural import NeuralAligner, cosine_matrix  # noqa: E402
from dsbuild.align.simalign_aligner import MATCHING, SimAlignAligner  # noqa: E402
from dsbuild.errors import ConfigError  # noqa: E402
from dsbuild.registry import aligners  # noqa: E402
from tests.plugins.tiny_bert import WORDS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("check_simalign", ROOT / "scripts" / "check_simalign.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def pairs(tiny_bert_path):
    return _script().sample_pairs(tuple(WORDS), 60, 0, str(tiny_bert_path))


def _sim(path, **kw) -> SimAlignAligner:
    kw.setdefault("num_threads", 1)
    return SimAlignAligner(str(path), layer=2, **kw)


def test_registered():
    assert aligners.get("simalign") is SimAlignAligner


def test_same_links_as_the_neural_aligner(tiny_bert_path, pairs):
    """ArgMax and IterMax: identical links (same encoder layer, same pooling, same stopping rule);
    and simalign's own IterMax on dsbuild's word vectors reproduces simalign exactly."""
    src, tgt = pairs
    r = _script().agreement(str(tiny_bert_path), src, tgt, layer=2)
    assert r["argmax"]["agreement"] == 1.0 and r["argmax"]["identical_pairs"] == len(src)
    assert r["itermax"]["agreement"] == 1.0 and r["itermax"]["identical_pairs"] == len(src), r["itermax"]

    from simalign import SentenceAligner

    neural = NeuralAligner(str(tiny_bert_path), layer=2, pooling="mean", extraction="itermax", num_threads=1)
    ours = neural.align(src, tgt)
    theirs = _sim(tiny_bert_path, matching="itermax", token_type="word").align(src, tgt)
    for s_vec, t_vec, a, b in zip(neural.embed_words(src), neural.embed_words(tgt), ours, theirs):
        assert set(b.links) == set(a.links)
        rule = SentenceAligner.iter_max((cosine_matrix(s_vec, t_vec) + 1.0) / 2.0)
        assert {(int(i), int(j)) for i, j in zip(*np.nonzero(rule))} == set(b.links)


def test_matching_methods_and_token_types(tiny_bert_path, pairs):
    src, tgt = pairs[0][:15], pairs[1][:15]
    fwd = _sim(tiny_bert_path, matching="fwd", token_type="word").align(src, tgt)
    rev = _sim(tiny_bert_path, matching="r", token_type="word").align(src, tgt)
    match = _sim(tiny_bert_path, matching="match", token_type="word").align(src, tgt)
    arg = _sim(tiny_bert_path, matching="argmax", token_type="word").align(src, tgt)
    for s, t, f, r, m, a in zip(src, tgt, fwd, rev, match, arg):
        assert sorted(i for i, _ in f.links) == list(range(len(s)))  # one link per source word
        assert sorted(j for _, j in r.links) == list(range(len(t)))  # one link per target word
        assert set(a.links) == set(f.links) & set(r.links)  # argmax = intersection of the directions
        assert len(m.links) == min(len(s), len(t))  # a maximum matching is one-to-one
        assert len({i for i, _ in m.links}) == len({j for _, j in m.links}) == len(m.links)
    for bpe in _sim(tiny_bert_path, matching="itermax").align(src, tgt):  # token_type="bpe", simalign's default
        assert isinstance(bpe, Alignment) and bpe.links and not bpe.scores
    for s, t, bpe in zip(src, tgt, _sim(tiny_bert_path, matching="i").align(src, tgt)):
        assert list(bpe.links) == sorted(set(bpe.links))
        assert all(0 <= i < len(s) and 0 <= j < len(t) for i, j in bpe.links)
    assert {v[0] for v in MATCHING.values()} == {"inter", "itermax", "mwmf", "fwd", "rev"}


def test_long_pair_is_aligned_on_what_fits_and_counted(tiny_bert_path, caplog):
    rng = random.Random(3)
    long_src = [rng.choice(["the", "house", "is", "small"]) for _ in range(40)]  # 24 positions
    aligner = _sim(tiny_bert_path, matching="argmax", token_type="word")
    with caplog.at_level(logging.WARNING):
        [a, empty] = aligner.align([long_src, []], [["la", "casa"], ["la"]])
    assert aligner.stats["truncated_pairs"] == 1 and "aligning the first 22/2 words" in caplog.text
    assert a.links and max(i for i, _ in a.links) < 22
    assert empty.links == ()
    assert aligner.describe()["stats"]["truncated_pairs"] == 1 and aligner.describe()["max_subwords"] == 22
    assert not [h for h in logging.getLogger("simalign.simalign").handlers if isinstance(h, logging.StreamHandler)]


def test_bad_settings_and_missing_model_are_one_line(tiny_bert_path):
    with pytest.raises(ConfigError, match="matching must be one of"):
        SimAlignAligner(matching="softmax")
    with pytest.raises(ConfigError, match="token_type"):
        SimAlignAligner(token_type="char")
    with pytest.raises(ConfigError, match="layer 9 does not exist"):
        SimAlignAligner(str(tiny_bert_path), layer=9).align([["a"]], [["b"]])
    with pytest.raises(ConfigError) as err:
        SimAlignAligner("no-such-org/no-such-encoder").align([["a"]], [["b"]])
    message = str(err.value)
    assert "no-such-org/no-such-encoder" in message and "\n" not in message
