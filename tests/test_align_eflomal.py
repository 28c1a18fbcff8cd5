"""eflomal aligner: determinism under a fixed seed, priors cache, extra corpus, bad input."""

from __future__ import annotations

import gzip
import random
import unicodedata
from pathlib import Path

import pytest

from dsbuild.align import EFLOMAL_MAX_TOKENS, Alignment, EflomalAligner, pair_problems
from dsbuild.errors import ConfigError, InputError
from dsbuild.registry import aligners

SHIPPED = Path(__file__).resolve().parents[1] / "builders" / "data" / "parallel" / "en-es"
FAST = {"n_iterations": (2, 2, 4)}


def _shipped(n: int, start: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    with gzip.open(SHIPPED / "en-es.en.gz", "rt", encoding="utf-8") as f:
        en = [line.split() for _, line in zip(range(start + n), f)][start:]
    with gzip.open(SHIPPED / "en-es.es.gz", "rt", encoding="utf-8") as f:
        es = [line.split() for _, line in zip(range(start + n), f)][start:]
    return en, es


def _synthetic(n: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """A toy language pair: target word = source word + 'x', same order, so the gold is diagonal."""
    rng = random.Random(seed)
    vocab = [f"w{k}" for k in range(40)]
    src = [[rng.choice(vocab) for _ in range(rng.randint(3, 9))] for _ in range(n)]
    return src, [[w + "x" for w in s] for s in src]


def test_registered():
    assert aligners.get("eflomal") is EflomalAligner
    assert "eflomal" in aligners.names()


def test_learns_a_word_for_word_mapping(tmp_path):
    src, tgt = _synthetic(300)
    out = EflomalAligner(cache_dir=tmp_path).align(src, tgt)
    assert len(out) == len(src) and all(isinstance(a, Alignment) for a in out)
    predicted = [link for a in out for link in a.links]
    diagonal = sum(i == j for i, j in predicted)
    assert diagonal / len(predicted) > 0.95
    assert diagonal / sum(len(s) for s in src) > 0.95
    for a, s, t in zip(out, src, tgt):
        assert all(0 <= i < len(s) and 0 <= j < len(t) for i, j in a.links)
        assert list(a.links) == sorted(a.links)


def test_fixed_seed_gives_identical_links(tmp_path):
    src, tgt = _shipped(250)
    first = EflomalAligner(seed=7, cache_dir=tmp_path, **FAST).align(src, tgt)
    second = EflomalAligner(seed=7, cache_dir=tmp_path, **FAST).align(src, tgt)
    other = EflomalAligner(seed=8, cache_dir=tmp_path, **FAST).align(src, tgt)
    assert first == second
    assert first != other  # the seed really reaches the sampler
    fwd1, rev1 = EflomalAligner(seed=7, cache_dir=tmp_path, **FAST).align_directions(src, tgt)
    fwd2, rev2 = EflomalAligner(seed=7, cache_dir=tmp_path, **FAST).align_directions(src, tgt)
    assert (fwd1, rev1) == (fwd2, rev2) and fwd1 != rev1


def test_symmetrization_option(tmp_path):
    src, tgt = _shipped(120)
    kw = {"seed": 3, "cache_dir": tmp_path, **FAST}
    gdfa = EflomalAligner(symmetrization="grow-diag-final-and", **kw).align(src, tgt)
    gdf = EflomalAligner(symmetrization="grow-diag-final", **kw).align(src, tgt)
    inter = EflomalAligner(symmetrization="intersection", **kw).align(src, tgt)
    # intersection is inside both; final-and adds no link whose words are both aligned by final
    # (final-and is not always a subset of final: a link final adds early can block a later one)
    assert all(set(i.links) <= set(a.links) and set(i.links) <= set(b.links) for i, a, b in zip(inter, gdfa, gdf))
    assert gdf != gdfa
    assert sum(len(a.links) for a in gdf) > sum(len(a.links) for a in inter)
    with pytest.raises(ConfigError):
        EflomalAligner(symmetrization="diag")


def test_extra_corpus_priors_are_cached_and_reused(tmp_path):
    test_src, test_tgt = _shipped(20)
    extra_src, extra_tgt = _shipped(400, start=20)
    src_file, tgt_file = tmp_path / "x.en.gz", tmp_path / "x.es.gz"
    with gzip.open(src_file, "wt", encoding="utf-8") as f:
        f.write("".join(" ".join(s) + "\n" for s in extra_src))
    with gzip.open(tgt_file, "wt", encoding="utf-8") as f:
        f.write("".join(" ".join(t) + "\n" for t in extra_tgt))
    cache = tmp_path / "cache"
    first = EflomalAligner(extra_src=src_file, extra_tgt=tgt_file, use_priors=True, cache_dir=cache, **FAST)
    out1 = first.align(test_src, test_tgt)
    assert len(out1) == 20  # the extra pairs are not in the output
    facts = first.describe()["extra_corpus"]
    assert facts["priors_reused"] is False and facts["pairs_used"] == 400 and facts["mode"] == "priors"
    assert list((cache / "eflomal-priors").glob("*.priors.gz"))
    # a new aligner (new process, say) on the same corpus reuses the priors and gives the same links
    second = EflomalAligner(extra_src=[" ".join(s) for s in extra_src], extra_tgt=extra_tgt, use_priors=True,
                            cache_dir=cache, **FAST)
    out2 = second.align(test_src, test_tgt)
    assert second.describe()["extra_corpus"]["priors_reused"] is True
    assert out2 == out1
    # aligning one more small set reuses the in-memory priors
    assert len(second.align(test_src[:3], test_tgt[:3])) == 3
    # different normalisation -> different cache key
    third = EflomalAligner(extra_src=src_file, extra_tgt=tgt_file, cache_dir=cache, lowercase=False, use_priors=True,
                           **FAST)
    third.align(test_src[:2], test_tgt[:2])
    assert third.describe()["extra_corpus"]["priors_reused"] is False


def test_extra_corpus_joint_mode(tmp_path):
    test_src, test_tgt = _shipped(15)
    extra_src, extra_tgt = _shipped(200, start=15)
    a = EflomalAligner(extra_src=extra_src, extra_tgt=extra_tgt, cache_dir=tmp_path, **FAST)  # joint by default
    out = a.align(test_src, test_tgt)
    assert len(out) == 15 and a.describe()["extra_corpus"]["mode"] == "joint"
    assert out == EflomalAligner(extra_src=extra_src, extra_tgt=extra_tgt, use_priors=False, cache_dir=tmp_path,
                                 **FAST).align(test_src, test_tgt)


def test_extra_corpus_problems(tmp_path):
    with pytest.raises(ConfigError, match="both"):
        EflomalAligner(extra_src=["a b"])
    with pytest.raises(InputError, match="2 source sentences but 1 target"):
        EflomalAligner(extra_src=["a b", "c"], extra_tgt=["x y"], cache_dir=tmp_path).align([["a"]], [["x"]])
    with pytest.raises(InputError, match="file not found"):
        EflomalAligner(extra_src=tmp_path / "nope.gz", extra_tgt=tmp_path / "nope2.gz").align([["a"]], [["x"]])
    # unusable extra pairs (empty side, control character) are skipped and counted, not fatal
    a = EflomalAligner(extra_src=["a b", "", "c\x00d e"], extra_tgt=["x y", "z", "w v"], cache_dir=tmp_path, **FAST)
    a.align([["a", "b"]], [["x", "y"]])
    facts = a.describe()["extra_corpus"]
    assert (facts["pairs_used"], facts["pairs_skipped_empty"], facts["pairs_skipped_invalid"]) == (1, 1, 1)


def test_mismatched_counts_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="2 source sentences but 1 target"):
        EflomalAligner(cache_dir=tmp_path).align([["a"], ["b"]], [["x"]])


def test_empty_sentences_get_empty_alignments(tmp_path):
    src, tgt = _synthetic(60)
    src[5], tgt[9] = [], []
    out = EflomalAligner(cache_dir=tmp_path, **FAST).align(src, tgt)
    assert out[5].links == () and out[9].links == ()
    assert out[6].links and len(out) == 60
    assert EflomalAligner(cache_dir=tmp_path).align([[]], [[]]) == [Alignment(())]
    assert EflomalAligner(cache_dir=tmp_path).align([], []) == []


def test_sentence_length_limit(tmp_path):
    src, tgt = _synthetic(30)
    long_ok = [f"w{k % 40}" for k in range(EFLOMAL_MAX_TOKENS)]
    out = EflomalAligner(cache_dir=tmp_path, **FAST).align(src + [long_ok], tgt + [[w + "x" for w in long_ok]])
    assert out[-1].links and max(i for i, _ in out[-1].links) < EFLOMAL_MAX_TOKENS
    too_long = long_ok + ["w1"]
    with pytest.raises(InputError, match="1025 tokens, over the aligner's limit of 1024") as err:
        EflomalAligner(cache_dir=tmp_path).align(src + [too_long], tgt + [["x"]])
    assert err.value.example_id == "30"
    assert set(pair_problems(src + [too_long], tgt + [["x"]], max_tokens=EFLOMAL_MAX_TOKENS)) == {30}


@pytest.mark.parametrize("bad", ["New York", "a\tb", "tab\u00a0nbsp", "bell\x07", "nul\x00"])
def test_bad_tokens_are_input_errors(tmp_path, bad):
    with pytest.raises(InputError, match="pair 1: target token 1") as err:
        EflomalAligner(cache_dir=tmp_path).align([["a"], ["b", "c"]], [["x"], ["y", bad]])
    assert "pair_problems" in str(err.value)
    assert pair_problems([["a"], ["b", "c"]], [["x"], ["y", bad]]).keys() == {1}


def test_mixed_unicode_normalisation_is_unified(tmp_path):
    src, tgt = _shipped(80)
    nfd_tgt = [[unicodedata.normalize("NFD", w) for w in t] for t in tgt]
    mixed_tgt = [t if k % 2 else n for k, (t, n) in enumerate(zip(tgt, nfd_tgt))]
    assert mixed_tgt != tgt  # the shipped Spanish has accents, so NFD differs
    kw = {"seed": 5, "cache_dir": tmp_path, **FAST}
    assert EflomalAligner(**kw).align(src, mixed_tgt) == EflomalAligner(**kw).align(src, tgt)


def test_describe_records_options(tmp_path):
    d = EflomalAligner(lowercase=False, strip_accents=True, seed=11, cache_dir=tmp_path).describe()
    assert d["normalization"] == {"unicode_form": "NFC", "lowercase": False, "strip_accents": True}
    assert d["seed"] == 11 and d["deterministic"] is True and d["eflomal_version"].startswith("2.")
    assert d["symmetrization"] == "grow-diag-final-and" and d["max_tokens"] == 1024
    assert EflomalAligner(seed=None).describe()["deterministic"] is False
    with pytest.raises(ConfigError):
        EflomalAligner(model=4)
    with pytest.raises(ConfigError):
        EflomalAligner(n_iterations=(1, 2))


def test_indexed_priors_write_the_same_file_as_eflomal(tmp_path):
    import io

    import eflomal

    from dsbuild.align.eflomal_aligner import _Priors, _write_text

    src, tgt = _shipped(150)
    src, tgt = [[w.lower() for w in s] for s in src], [[w.lower() for w in t] for t in tgt]
    fwd, rev = EflomalAligner(cache_dir=tmp_path, **FAST)._run(src[30:], tgt[30:], None)
    counts = eflomal.calculate_priors((" ".join(s) for s in src[30:]), (" ".join(t) for t in tgt[30:]),
                                      (" ".join(f"{i}-{j}" for i, j in x) for x in fwd),
                                      (" ".join(f"{i}-{j}" for i, j in x) for x in rev))
    text = io.StringIO()
    eflomal.write_priors(text, *counts)
    text.seek(0)
    parsed = eflomal.read_priors(text)
    src_index = _write_text(tmp_path / "s.txt", src[:30])
    tgt_index = _write_text(tmp_path / "t.txt", tgt[:30])

    class Index(dict):  # what eflomal's TextIndex does, without its lower-casing
        def __getitem__(self, word):
            return dict.get(self, word) + 1 if word in self else None

    expected, ours = io.StringIO(), io.StringIO()
    eflomal.to_eflomal_priors_file(parsed, Index(src_index), Index(tgt_index), expected)
    _Priors(parsed).write_for(src_index, tgt_index, ours)
    assert ours.getvalue() == expected.getvalue() and expected.getvalue().count("\n") > 100
