"""Disk caches shared by several processes: no lost, corrupt or half-written entries, no crash.

Every concurrency test starts real processes with the ``spawn`` start method (what worker pools
and Ray actors do) and releases them together with a barrier, so that they write the same and
different keys of one cache at the same moment. Each cache is then checked entry by entry, and
its folder for temporary files left behind. The ``test_damaged_*`` tests plant a damaged entry
(a file cut short by a crash) and check that it is recomputed instead of failing the build.

Worker functions live at module level: a spawned process imports them by name.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

N_WORKERS = 4
BARRIER_TIMEOUT = 60.0  # seconds; generous: spawning a Python process on a busy 2-core machine is slow

Job = tuple[Callable[..., None], tuple[Any, ...]]


# ------------------------------------------------------------------------------------ harness
def _entry(fn: Callable[..., None], args: tuple[Any, ...], barrier: Any, error_file: str) -> None:
    """Run ``fn(barrier, *args)`` in a spawned process; a failure is written out for the parent."""
    try:
        fn(barrier, *args)
    except threading.BrokenBarrierError:
        sys.exit(1)  # another worker failed first; its traceback is the one to read
    except BaseException:
        Path(error_file).write_text(traceback.format_exc(), encoding="utf-8")
        barrier.abort()  # release the others now rather than at the barrier's timeout
        sys.exit(1)


def run_together(jobs: Sequence[Job], scratch: Path, timeout: float = 120.0) -> None:
    """Run each job in its own spawned process; they meet at a shared barrier before writing.

    Fails with the workers' tracebacks if any worker raised, died or hung.
    """
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(jobs), timeout=BARRIER_TIMEOUT)
    scratch.mkdir(parents=True, exist_ok=True)
    errors = [scratch / f"error-{k}.txt" for k in range(len(jobs))]
    procs = [ctx.Process(target=_entry, args=(fn, args, barrier, str(err)), daemon=True)
             for (fn, args), err in zip(jobs, errors)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.terminate()  # only the processes this helper started
        p.join(5)
    problems = [e.read_text(encoding="utf-8") for e in errors if e.exists()]
    assert not hung, f"{len(hung)} worker(s) hung"
    assert not problems, "\n".join(problems)
    assert [p.exitcode for p in procs] == [0] * len(procs), "a worker died (or the barrier timed out)"


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders left in ``folder`` (recursively); lock files are not temporary."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if ".tmp" in p.name or p.name.startswith((".", "tmp")))


# ---------------------------------------------------------------------------- translation cache
ROUNDS, BATCHES, PER_BATCH = 20, 3, 5


def _translation_value(key: str) -> str:
    return f"translation of {key}"


def _translation_keys(owner: str, rnd: int, batch: int) -> list[str]:
    return [f"{owner}-r{rnd}-b{batch}-{i}" for i in range(PER_BATCH)]


def _translation_writer(barrier: Any, folder: str, worker: int) -> None:
    """Per round: open a new cache file together with the others, write shared and own keys."""
    from dsbuild.translate.cache import TranslationCache

    for rnd in range(ROUNDS):
        barrier.wait()  # every round races on creating a fresh file: the moment WAL is switched on
        cache = TranslationCache(Path(folder) / f"round-{rnd}.sqlite")
        for batch in range(BATCHES):
            keys = _translation_keys("shared", rnd, batch) + _translation_keys(f"w{worker}", rnd, batch)
            cache.put_many([(k, _translation_value(k)) for k in keys])
            assert cache.get_many(keys) == {k: _translation_value(k) for k in keys}
        cache.close()


def test_translation_cache_processes_create_and_write_one_file_at_once(tmp_path: Path) -> None:
    from dsbuild.translate.cache import TranslationCache

    folder = tmp_path / "translations"
    run_together([(_translation_writer, (str(folder), w)) for w in range(N_WORKERS)], tmp_path / "scratch")
    for rnd in range(ROUNDS):
        path = folder / f"round-{rnd}.sqlite"
        expected = {k: _translation_value(k)
                    for owner in ["shared"] + [f"w{w}" for w in range(N_WORKERS)]
                    for batch in range(BATCHES) for k in _translation_keys(owner, rnd, batch)}
        cache = TranslationCache(path)
        assert len(cache) == len(expected) == (1 + N_WORKERS) * BATCHES * PER_BATCH
        assert cache.get_many(list(expected)) == expected
        cache.close()
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()


def _translation_cache_user(barrier: Any, cache: Any, worker: int) -> None:
    """Write through a cache object that was opened in the parent and pickled to this process."""
    barrier.wait()
    key = f"pickled-{worker}"
    cache.put_many([(key, _translation_value(key)), ("pickled-shared", "same")])
    assert cache.get_many([key]) == {key: _translation_value(key)}


def test_translation_cache_pickled_to_worker_processes_reopens_there(tmp_path: Path) -> None:
    from dsbuild.translate.cache import TranslationCache

    cache = TranslationCache(tmp_path / "c.sqlite")
    cache.put_many([("parent", "p")])
    run_together([(_translation_cache_user, (cache, w)) for w in range(2)], tmp_path / "scratch")
    expected = {"parent": "p", "pickled-shared": "same",
                **{f"pickled-{w}": _translation_value(f"pickled-{w}") for w in range(2)}}
    assert cache.get_many(list(expected)) == expected and len(cache) == len(expected)


# ---------------------------------------------------------------------------- alignment links cache
class DiagonalAligner:
    """A stand-in for eflomal: links word i to word i in both directions; counts its calls."""

    symmetrization = "grow-diag-final-and"

    def __init__(self) -> None:
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {"name": "diagonal", "seed": 1}

    def align_directions(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> tuple[list[Any], list[Any]]:
        self.calls += 1
        links = [[(i, i) for i in range(min(len(s), len(t)))] for s, t in zip(src, tgt)]
        return links, [list(x) for x in links]


def _pairs(tag: str, n: int = 30) -> tuple[list[list[str]], list[list[str]]]:
    src = [[f"{tag}{k}", "a", "b", "c"][: 2 + k % 3] for k in range(n)]
    return src, [[w.upper() for w in s] for s in src]


def _expected_links(tag: str) -> tuple[list[list[tuple[int, int]]], list[list[tuple[int, int]]]]:
    src, tgt = _pairs(tag)
    return DiagonalAligner().align_directions(src, tgt)


def _links_writer(barrier: Any, folder: str, worker: int) -> None:
    """Two threads write a shared key and this process's key many times, reading the shared one back.

    Threads as well as processes: a temporary name made of the pid alone is shared by threads
    (and by containers, where every process can be pid 1).
    """
    from concurrent.futures import ThreadPoolExecutor

    from dsbuild.project.alignment import _links_cache_path, _read_links, _write_links

    aligner = DiagonalAligner()
    tags = ["shared", f"own{worker}"]
    paths = {t: _links_cache_path(Path(folder), aligner, *_pairs(t)) for t in tags}
    expected = {t: _expected_links(t) for t in tags}

    def write_and_read() -> None:
        for _ in range(40):
            for t in tags:
                _write_links(paths[t], *expected[t])
                # a reader sees a miss or the whole entry, never part of one (nor an exception)
                assert _read_links(paths["shared"], 30) in (None, expected["shared"])

    barrier.wait()
    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(write_and_read) for _ in range(2)]:
            future.result()


def test_alignment_links_cache_concurrent_writers(tmp_path: Path) -> None:
    from dsbuild.project.alignment import _links_cache_path, _read_links

    folder = tmp_path / "alignments"
    run_together([(_links_writer, (str(folder), w)) for w in range(N_WORKERS)], tmp_path / "scratch")
    tags = ["shared"] + [f"own{w}" for w in range(N_WORKERS)]
    for tag in tags:
        path = _links_cache_path(folder, DiagonalAligner(), *_pairs(tag))
        assert _read_links(path, 30) == _expected_links(tag)
    assert len(list(folder.iterdir())) == len(tags)
    assert leftovers(folder) == []


def _project_with_cache(barrier: Any, folder: str, out: str) -> None:
    """The projector's own cache path: align (miss or hit) and report the links and aligner calls."""
    from dsbuild.project.alignment import AlignmentProjector

    aligner = DiagonalAligner()
    projector = AlignmentProjector(aligner, alignment_cache=folder)
    barrier.wait()
    views = projector.align(*_pairs("shared"))
    Path(out).write_text(json.dumps([sorted(map(list, v.links)) for v in views]), encoding="utf-8")


def test_alignment_projector_shares_its_cache_between_processes(tmp_path: Path) -> None:
    folder = tmp_path / "alignments"
    outs = [tmp_path / f"out-{w}.json" for w in range(3)]
    run_together([(_project_with_cache, (str(folder), str(o))) for o in outs], tmp_path / "scratch")
    results = [json.loads(o.read_text(encoding="utf-8")) for o in outs]
    assert results[0] == results[1] == results[2] and len(results[0]) == 30
    assert len(list(folder.glob("links-*.json.gz"))) == 1 and leftovers(folder) == []


@pytest.mark.parametrize("damage", ["truncated", "empty", "not gzip", "wrong shape", "too few pairs"])
def test_damaged_alignment_cache_entry_is_a_miss(tmp_path: Path, damage: str) -> None:
    from dsbuild.project.alignment import AlignmentProjector, _links_cache_path

    src, tgt = _pairs("x")
    aligner = DiagonalAligner()
    projector = AlignmentProjector(aligner, alignment_cache=tmp_path)
    good = projector.align(src, tgt)
    path = _links_cache_path(tmp_path, aligner, src, tgt)
    blob = path.read_bytes()
    path.write_bytes({"truncated": blob[: len(blob) // 2], "empty": b"", "not gzip": b"{}",
                      "wrong shape": gzip.compress(b'{"fwd": [[1]], "rev": 3}'),
                      "too few pairs": gzip.compress(b'{"fwd": [], "rev": []}')}[damage])
    assert projector.align(src, tgt) == good  # recomputed, not a crash
    assert aligner.calls == 2
    assert path.read_bytes() == blob  # and the entry is repaired
    assert projector.align(src, tgt) == good and aligner.calls == 2


# ---------------------------------------------------------------------------- eflomal caches
def _eflomal_corpus(n: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """A toy pair (target word = source word + 'x'), as in test_align_eflomal."""
    import random

    rng = random.Random(seed)
    vocab = [f"w{k}" for k in range(30)]
    src = [[rng.choice(vocab) for _ in range(rng.randint(3, 7))] for _ in range(n)]
    return src, [[w + "x" for w in s] for s in src]


def _eflomal_with_priors(barrier: Any, cache_dir: str, out: str) -> None:
    """Align with priors from an extra corpus: the seeded binary and the priors are cached."""
    from dsbuild.align import EflomalAligner

    extra_src, extra_tgt = _eflomal_corpus(80, seed=1)
    aligner = EflomalAligner(seed=3, extra_src=extra_src, extra_tgt=extra_tgt, use_priors=True,
                             cache_dir=cache_dir, n_iterations=(2, 2, 4))
    barrier.wait()
    links = [sorted(a.links) for a in aligner.align(*_eflomal_corpus(10, seed=2))]
    reused = aligner.describe()["extra_corpus"]["priors_reused"]
    Path(out).write_text(json.dumps({"links": links, "reused": reused}), encoding="utf-8")


def test_eflomal_priors_and_binary_trained_once_for_concurrent_processes(tmp_path: Path) -> None:
    cache = tmp_path / "align"
    outs = [tmp_path / f"out-{w}.json" for w in range(3)]
    run_together([(_eflomal_with_priors, (str(cache), str(o))) for o in outs], tmp_path / "scratch")
    results = [json.loads(o.read_text(encoding="utf-8")) for o in outs]
    # one process trained the priors, the others waited for them instead of training them again
    assert sorted(r["reused"] for r in results) == [False, True, True]
    assert results[0]["links"] == results[1]["links"] == results[2]["links"]
    assert len(list((cache / "eflomal-priors").glob("*.priors.gz"))) == 1
    assert len(list(cache.glob("eflomal-seeded-*"))) == 1
    assert leftovers(cache) == []


def _seeded_copy(barrier: Any, cache_dir: str) -> None:
    from dsbuild.align.eflomal_aligner import _find_binary, _seeded_binary

    original = _find_binary()
    barrier.wait()
    for _ in range(3):
        path = _seeded_binary(original, Path(cache_dir))
        assert path.stat().st_size == original.stat().st_size and os.access(path, os.X_OK)


def test_eflomal_seeded_binary_written_by_concurrent_processes(tmp_path: Path) -> None:
    from dsbuild.align.eflomal_aligner import _SEED_FILE, _URANDOM, _find_binary

    run_together([(_seeded_copy, (str(tmp_path / "align"),)) for _ in range(3)], tmp_path / "scratch")
    (copy,) = (tmp_path / "align").iterdir()
    data = _find_binary().read_bytes()
    assert copy.read_bytes() == data.replace(_URANDOM, _SEED_FILE + b"\x00" * (len(_URANDOM) - len(_SEED_FILE)))


def test_damaged_eflomal_caches_are_a_miss(tmp_path: Path) -> None:
    from dsbuild.align import EflomalAligner
    from dsbuild.align.eflomal_aligner import _find_binary, _seeded_binary

    # a seeded copy cut short (a crash before its data reached the disk) is written again
    original = _find_binary()
    path = _seeded_binary(original, tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[:1000])
    assert _seeded_binary(original, tmp_path).read_bytes() == good
    # damaged priors are trained again, with the same result
    extra_src, extra_tgt = _eflomal_corpus(60, seed=1)
    kw = {"seed": 3, "extra_src": extra_src, "extra_tgt": extra_tgt, "use_priors": True, "cache_dir": tmp_path,
          "n_iterations": (2, 2, 4)}
    src, tgt = _eflomal_corpus(8, seed=2)
    first = EflomalAligner(**kw).align(src, tgt)
    (priors,) = (tmp_path / "eflomal-priors").glob("*.priors.gz")
    blob = priors.read_bytes()
    priors.write_bytes(blob[: len(blob) // 2])
    again = EflomalAligner(**kw)
    assert again.align(src, tgt) == first
    assert again.describe()["extra_corpus"]["priors_reused"] is False
    assert priors.read_bytes() == blob
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- etymology model cache
def _fake_etymology_train(marks: Path) -> Callable[..., None]:
    """A stand-in for CRF training that copies the shipped model (slowly) and leaves a mark."""
    from dsbuild.maltese import etymology

    shipped = etymology.shipped_model_dir()

    def train(sentences: Any, out_dir: Any, **kw: Any) -> None:
        marks.mkdir(parents=True, exist_ok=True)
        (marks / uuid.uuid4().hex).touch()
        time.sleep(0.5)  # long enough for every process to find the cache empty
        shutil.copytree(shipped, out_dir, dirs_exist_ok=True)

    return train


def _use_cached_etymology(etymology: Any, marks: Path) -> None:
    """Make ``load_classifier`` skip the shipped model and train (fake) into ``$DSBUILD_CACHE``."""
    missing = Path(os.environ["DSBUILD_CACHE"]) / "no-shipped-model"
    etymology.train = _fake_etymology_train(marks)
    etymology.shipped_model_dir = lambda: missing
    etymology.load_classifier.cache_clear()


def _etymology_loader(barrier: Any, marks: str, out: str) -> None:
    from dsbuild.maltese import etymology

    _use_cached_etymology(etymology, Path(marks))
    barrier.wait()
    Path(out).write_text(etymology.load_classifier().version, encoding="utf-8")


def test_etymology_model_trained_once_for_concurrent_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsbuild.maltese import etymology

    monkeypatch.setenv("DSBUILD_CACHE", str(tmp_path / "cache"))  # inherited by the spawned processes
    marks, outs = tmp_path / "marks", [tmp_path / f"out-{w}.txt" for w in range(3)]
    run_together([(_etymology_loader, (str(marks), str(o))) for o in outs], tmp_path / "scratch")
    shipped = etymology.load_model_dir(etymology.shipped_model_dir()).version
    assert [o.read_text(encoding="utf-8") for o in outs] == [shipped] * 3
    assert len(list(marks.iterdir())) == 1  # one process trained; the others waited and loaded its model
    assert etymology.load_model_dir(etymology._cache_dir()).version == shipped
    assert leftovers(tmp_path / "cache") == []


@pytest.mark.parametrize("damage", ["empty folder", "bad meta.json", "bad crf.model"])
def test_damaged_etymology_cache_is_retrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    from dsbuild.maltese import etymology

    monkeypatch.setenv("DSBUILD_CACHE", str(tmp_path / "cache"))
    cached = etymology._cache_dir()
    shutil.copytree(etymology.shipped_model_dir(), cached)
    if damage == "empty folder":
        shutil.rmtree(cached)
        cached.mkdir()
    else:
        (cached / damage.split()[1]).write_text("{not json", encoding="utf-8")
    shipped = etymology.load_model_dir(etymology.shipped_model_dir()).version
    monkeypatch.setattr(etymology, "train", _fake_etymology_train(tmp_path / "marks"))
    monkeypatch.setattr(etymology, "shipped_model_dir", lambda: tmp_path / "missing")
    etymology.load_classifier.cache_clear()
    try:
        assert etymology.load_classifier().version == shipped
    finally:
        etymology.load_classifier.cache_clear()
    assert etymology.load_model_dir(cached).version == shipped
    assert leftovers(tmp_path / "cache") == []


# ---------------------------------------------------------------------------- tokenised parallel text
def _tokenize_cached(barrier: Any, texts: list[str], out: str) -> None:
    """Tokenise each text in two threads at once (all processes on the same first text)."""
    from concurrent.futures import ThreadPoolExecutor

    from dsbuild.project.parallel import tokenized_lines
    from dsbuild.registry import tokenizers

    # Fill the tokenizer registry first: Registry._load is not thread-safe (a second thread can
    # find it marked loaded but still empty), and that is not the cache under test here.
    tokenizers.get("moses")
    barrier.wait()
    with ThreadPoolExecutor(2) as pool:
        result = [[f.result() for f in [pool.submit(tokenized_lines, t, "moses", "en") for _ in range(2)]]
                  for t in texts]
    Path(out).write_text(json.dumps(result), encoding="utf-8")


def _parallel_file(folder: Path, name: str, n: int) -> Path:
    path = folder / name
    lines = [f"Sentence {k}, from {name}: it's ({k * 7}) words long." for k in range(n)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
    return path


def test_tokenised_parallel_text_cache_concurrent_writers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsbuild.project.parallel import tokenized_lines

    monkeypatch.setenv("DSBUILD_CACHE", str(tmp_path / "cache"))
    shared = _parallel_file(tmp_path, "shared.en.gz", 200)
    own = [_parallel_file(tmp_path, f"own{w}.en.gz", 50) for w in range(3)]
    outs = [tmp_path / f"out-{w}.json" for w in range(3)]
    run_together([(_tokenize_cached, ([str(shared), str(o)], str(out))) for o, out in zip(own, outs)],
                 tmp_path / "scratch")
    monkeypatch.setenv("DSBUILD_CACHE", str(tmp_path / "fresh"))  # the reference: computed alone
    expected_shared = tokenized_lines(shared, "moses", "en")
    for o, out in zip(own, outs):
        expected_own = tokenized_lines(o, "moses", "en")
        assert json.loads(out.read_text(encoding="utf-8")) == [[expected_shared] * 2, [expected_own] * 2]
    cache = tmp_path / "cache" / "tokenized"
    assert len(list(cache.glob("*.txt.gz"))) == 4 and leftovers(cache) == []
    for entry in cache.glob("*.txt.gz"):
        gzip.decompress(entry.read_bytes())  # whole: gzip checks length and CRC


def test_damaged_tokenised_parallel_text_cache_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsbuild.project.parallel import tokenized_lines

    monkeypatch.setenv("DSBUILD_CACHE", str(tmp_path / "cache"))
    text = _parallel_file(tmp_path, "t.en.gz", 200)
    good = tokenized_lines(text, "moses", "en")
    (entry,) = (tmp_path / "cache" / "tokenized").glob("*.txt.gz")
    blob = entry.read_bytes()
    entry.write_bytes(blob[: len(blob) // 2])  # cut short: gzip's trailer is missing
    assert tokenized_lines(text, "moses", "en") == good
    assert gzip.decompress(entry.read_bytes()) == gzip.decompress(blob)


# ---------------------------------------------------------------------------- tiny model cache
def _tiny_marian_user(barrier: Any, cache_dir: str, marks: str, out: str) -> None:
    """``cached_tiny_marian`` with training replaced by a slow stand-in that leaves a mark."""
    from dsbuild import synthetic

    def fake_train(out_dir: Any, **kw: Any) -> None:
        Path(marks).mkdir(parents=True, exist_ok=True)
        (Path(marks) / uuid.uuid4().hex).touch()
        time.sleep(0.5)
        tmp = Path(out_dir).with_name(Path(out_dir).name + f".tmp-{uuid.uuid4().hex}")
        tmp.mkdir()
        (tmp / "config.json").write_text("{}", encoding="utf-8")
        os.replace(tmp, out_dir)

    synthetic.train_tiny_marian = fake_train
    barrier.wait()
    Path(out).write_text(str(synthetic.cached_tiny_marian(cache_dir, seed=0)), encoding="utf-8")


def test_tiny_model_trained_once_for_concurrent_processes(tmp_path: Path) -> None:
    cache, marks = tmp_path / "models", tmp_path / "marks"
    outs = [tmp_path / f"out-{w}.txt" for w in range(3)]
    run_together([(_tiny_marian_user, (str(cache), str(marks), str(o))) for o in outs], tmp_path / "scratch")
    paths = {o.read_text(encoding="utf-8") for o in outs}
    assert len(paths) == 1 and (Path(paths.pop()) / "config.json").is_file()
    assert len(list(marks.iterdir())) == 1
    assert leftovers(cache) == []
