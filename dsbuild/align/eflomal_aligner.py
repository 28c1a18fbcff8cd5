"""eflomal (Östling and Tiedemann 2016): Bayesian IBM1/HMM/fertility alignment by Gibbs sampling.

The offline default aligner. It trains on the pairs being aligned, optionally helped by an extra
parallel corpus, in both directions, and symmetrises the two directional alignments.

How it uses eflomal 2.0 (PyPI ``eflomal``):

- *Files and vocabulary are written here*, not by ``eflomal.Aligner``: its reader always
  lower-cases and silently writes sentences of 1,024+ tokens as empty. We control normalisation
  (:class:`~dsbuild.align.checks.Normalization`) and refuse over-long sentences instead.
- *Fixed seed.* eflomal has no seed option: its C binary seeds its xorshift generator with 8 bytes
  read from ``/dev/urandom``, and with several threads per direction the order in which samplers
  take their random streams varies too. For a fixed seed we run a private copy of the binary
  (cached, the original is untouched) in which the path ``/dev/urandom`` is replaced by the
  relative name ``seed.bin``, run it in a temporary folder holding 8 seed bytes, and give OpenMP
  one thread per direction (``OMP_NUM_THREADS=2,1``: the two directions in parallel, samplers in
  order). Same inputs and options then give identical links. ``seed=None`` uses eflomal as
  shipped (random, not reproducible).
- *Extra corpus, joint (default).* With ``extra_src``/``extra_tgt`` the extra pairs are appended to
  the pairs being aligned for one eflomal run and dropped from the output: the best links, but the
  whole corpus is re-sampled on every call.
- *Extra corpus, priors* (``use_priors=True``). The extra corpus is aligned once
  (both directions) and turned into eflomal priors (lexical, HMM jump and fertility counts,
  ``eflomal.calculate_priors``); the priors are cached on disk under a hash of the corpus and the
  options, and each later call aligns only its own pairs with those priors, so aligning a small
  set after a large one takes seconds. The iteration schedule of such a call is eflomal's default
  for the input plus the extra corpus (what a joint run would use), not for the small input alone
  (which would be hundreds of iterations: on ro-en, 12x slower and no better). Measured with
  ``scripts/aer.py`` (grow-diag-final-and): en-fr with 120k extra pairs AER 0.077 joint vs 0.117
  with priors; ro-en with 10.5k extra pairs 0.292 joint vs 0.301 with priors. Priors trade
  accuracy for speed; joint is the default. Output depends only on inputs and options, never on
  whether the cache existed.

Bad input: different sentence counts, tokens with whitespace or control characters, sentences
over 1,024 tokens raise :class:`~dsbuild.errors.InputError` naming the pair; call
:func:`dsbuild.align.pair_problems` first to reject such pairs instead. Empty sentences are
aligned to nothing (an empty :class:`Alignment`); the caller decides whether to reject them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from dsbuild._optional import require
from dsbuild.align.base import Alignment
from dsbuild.align.checks import Normalization, check_pairs, check_same_count, pair_problems
from dsbuild.align.symmetrize import METHODS, Link, symmetrize
from dsbuild.errors import ConfigError, InputError
from dsbuild.registry import aligners

log = logging.getLogger(__name__)

MAX_TOKENS = 1024
"""eflomal's sentence length limit (``MAX_SENT_LEN`` in its C code)."""

_URANDOM = b"/dev/urandom\x00"
_SEED_FILE = b"seed.bin"
_PRIORS_FORMAT = 1  # bump when the cached priors' content changes

Corpus = str | os.PathLike[str] | Sequence[str] | Sequence[Sequence[str]]


def default_cache_dir() -> Path:
    """``$DSBUILD_CACHE/align`` or ``~/.cache/dsbuild/align``."""
    from dsbuild.cachedir import cache_root

    return cache_root("align")


@aligners.register("eflomal")
class EflomalAligner:
    """Statistical word aligner: eflomal in both directions + symmetrisation.

    Args:
        symmetrization: ``grow-diag-final-and`` (default), ``grow-diag-final``, ``grow-diag``,
            ``intersection`` or ``union``.
        extra_src, extra_tgt: an extra parallel corpus for training: paths to line-aligned
            whitespace-tokenised text files (``.gz`` allowed) or in-memory lists of lines or
            token lists. Its pairs never appear in the output. Extra pairs that cannot be aligned
            (empty, over-long, control characters) are skipped and counted in ``describe()``.
        use_priors: ``False`` (default) aligns the extra corpus jointly with the input on every
            call (best links); ``True`` trains on it once and reuses the result as cached priors
            (much faster for repeated calls, somewhat worse links: see the module docstring).
        lowercase, unicode_form, strip_accents: token normalisation (see
            :class:`~dsbuild.align.checks.Normalization`); affects only how tokens are matched.
        seed: random seed (``None``: eflomal's own random seed, not reproducible).
        model: 1 = IBM1, 2 = HMM, 3 = HMM + fertility (default).
        n_iterations: iterations per model (IBM1, HMM, fertility); default from eflomal's
            formula, ``rel_iterations * 5000 / sqrt(number of sentences)``.
        rel_iterations, n_samplers, null_prior: as in eflomal.
        threads: 2 aligns the two directions in parallel, 1 one after the other.
        cache_dir: where the seeded binary copy and priors are cached
            (default :func:`default_cache_dir`).
    """

    name = "eflomal"

    def __init__(
        self,
        symmetrization: str = "grow-diag-final-and",
        extra_src: Corpus | None = None,
        extra_tgt: Corpus | None = None,
        *,
        use_priors: bool = False,
        lowercase: bool = True,
        unicode_form: str = "NFC",
        strip_accents: bool = False,
        seed: int | None = 1,
        model: int = 3,
        n_iterations: Sequence[int] | None = None,
        rel_iterations: float = 1.0,
        n_samplers: int = 3,
        null_prior: float = 0.2,
        threads: int = 2,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if symmetrization not in METHODS:
            raise ConfigError(f"unknown symmetrization {symmetrization!r}; choose one of {', '.join(METHODS)}")
        if (extra_src is None) != (extra_tgt is None):
            raise ConfigError("give both extra_src and extra_tgt (the two sides of the extra corpus), or neither")
        if model not in (1, 2, 3):
            raise ConfigError(f"eflomal model must be 1 (IBM1), 2 (HMM) or 3 (HMM+fertility), got {model!r}")
        if n_iterations is not None:
            n_iterations = tuple(int(n) for n in n_iterations)
            if len(n_iterations) != 3 or min(n_iterations) < 0:
                raise ConfigError("n_iterations must be three non-negative integers (IBM1, HMM, fertility)")
        if n_samplers < 1 or threads not in (1, 2) or rel_iterations <= 0:
            raise ConfigError("n_samplers must be >= 1, threads 1 or 2, rel_iterations > 0")
        if seed is not None and not isinstance(seed, int):
            raise ConfigError(f"seed must be an integer or None, got {seed!r}")
        self.symmetrization = symmetrization
        self.normalization = Normalization(unicode_form=unicode_form, lowercase=lowercase, strip_accents=strip_accents)
        self.extra_src = extra_src
        self.extra_tgt = extra_tgt
        self.use_priors = use_priors
        self.seed = seed
        self.model = model
        self.n_iterations = n_iterations
        self.rel_iterations = float(rel_iterations)
        self.n_samplers = int(n_samplers)
        self.null_prior = float(null_prior)
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._extra: tuple[list[list[str]], list[list[str]]] | None = None
        self._extra_stats: dict[str, Any] = {}
        self._priors: Any = None  # parsed eflomal priors tuple, memoised
        self._priors_key: str | None = None
        self.last_timing: dict[str, float] = {}

    # ------------------------------------------------------------------ public API

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Alignment]:
        """Align tokenised pairs; one symmetrised :class:`Alignment` per pair (0-indexed links)."""
        forward, reverse = self.align_directions(src, tgt)
        return [Alignment(tuple(symmetrize(f, r, self.symmetrization))) for f, r in zip(forward, reverse)]

    def align_directions(
        self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]
    ) -> tuple[list[list[Link]], list[list[Link]]]:
        """The two directional alignments before symmetrisation, both as ``(source, target)`` links.

        Useful for direction ensembles or a different symmetrisation per use
        (:func:`dsbuild.align.symmetrize`).
        """
        check_pairs(src, tgt, max_tokens=MAX_TOKENS)
        t0 = time.perf_counter()
        norm_src = [[self.normalization(w) for w in s] for s in src]
        norm_tgt = [[self.normalization(w) for w in t] for t in tgt]
        priors = None
        train_src, train_tgt = norm_src, norm_tgt
        if self.extra_src is not None:
            if self.use_priors:
                priors = self._load_or_train_priors()
            else:
                extra_src, extra_tgt = self._extra_corpus()
                train_src, train_tgt = norm_src + extra_src, norm_tgt + extra_tgt
        t1 = time.perf_counter()
        # With priors standing for the extra corpus, iterate as a joint run over both would: eflomal's
        # schedule (5000 / sqrt(sentences)) gives a small input hundreds of needless iterations.
        schedule_size = len(src) + (len(self._extra_corpus()[0]) if priors is not None else 0)
        forward, reverse = self._run(train_src, train_tgt, priors, schedule_size=schedule_size)
        self.last_timing = {"prepare_s": t1 - t0, "eflomal_s": time.perf_counter() - t1}
        return forward[: len(src)], reverse[: len(src)]

    def describe(self) -> dict[str, Any]:
        """Options, normalisation, seed, eflomal version and extra-corpus facts (for provenance)."""
        from importlib.metadata import version

        info: dict[str, Any] = {
            "aligner": self.name,
            "eflomal_version": version("eflomal"),
            "symmetrization": self.symmetrization,
            "normalization": self.normalization.as_dict(),
            "seed": self.seed,
            "deterministic": self.seed is not None,
            "model": self.model,
            "n_iterations": list(self.n_iterations) if self.n_iterations else "auto",
            "rel_iterations": self.rel_iterations,
            "n_samplers": self.n_samplers,
            "null_prior": self.null_prior,
            "max_tokens": MAX_TOKENS,
            "extra_corpus": None,
        }
        if self.extra_src is not None:
            info["extra_corpus"] = {
                "src": _corpus_label(self.extra_src),
                "tgt": _corpus_label(self.extra_tgt),
                "mode": "priors" if self.use_priors else "joint",
                **self._extra_stats,
            }
        return info

    # ------------------------------------------------------------------ extra corpus and priors

    def _extra_corpus(self) -> tuple[list[list[str]], list[list[str]]]:
        if self._extra is None:
            src = _read_corpus(self.extra_src, "extra_src")  # type: ignore[arg-type]
            tgt = _read_corpus(self.extra_tgt, "extra_tgt")  # type: ignore[arg-type]
            check_same_count(src, tgt, source=f"{_corpus_label(self.extra_src)} / {_corpus_label(self.extra_tgt)}")
            bad = pair_problems(src, tgt, max_tokens=MAX_TOKENS)
            keep_src, keep_tgt = [], []
            skipped_empty = 0
            for k, (s, t) in enumerate(zip(src, tgt)):
                if k in bad:
                    continue
                if not s or not t:
                    skipped_empty += 1
                    continue
                keep_src.append([self.normalization(w) for w in s])
                keep_tgt.append([self.normalization(w) for w in t])
            self._extra_stats = {
                "pairs_read": len(src),
                "pairs_used": len(keep_src),
                "pairs_skipped_invalid": len(bad),
                "pairs_skipped_empty": skipped_empty,
            }
            if bad or skipped_empty:
                log.warning("extra corpus: skipped %d invalid and %d empty pairs of %d (first: pair %d: %s)",
                            len(bad), skipped_empty, len(src), min(bad) if bad else -1,
                            bad[min(bad)] if bad else "")
            if not keep_src:
                raise InputError("the extra corpus has no usable sentence pairs",
                                 source=_corpus_label(self.extra_src),
                                 hint="pass line-aligned, whitespace-tokenised text with non-empty lines")
            self._extra = (keep_src, keep_tgt)
        return self._extra

    def _options_key(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "format": _PRIORS_FORMAT,
            "eflomal": version("eflomal"),
            "normalization": self.normalization.as_dict(),
            "seed": self.seed,
            "model": self.model,
            "n_iterations": self.n_iterations,
            "rel_iterations": self.rel_iterations,
            "n_samplers": self.n_samplers,
            "null_prior": self.null_prior,
        }

    def _load_or_train_priors(self) -> Any:
        """Priors from the extra corpus: from memory, from the disk cache, or trained now."""
        eflomal = require("eflomal", extra="aligners", purpose="the eflomal aligner")

        if self._priors is not None:
            return self._priors
        extra_src, extra_tgt = self._extra_corpus()
        key = _hash_corpus(extra_src, extra_tgt, self._options_key())
        path = self.cache_dir / "eflomal-priors" / f"{key}.priors.gz"
        self._extra_stats["priors_cache"] = str(path)
        parsed, trained = _read_priors(path, eflomal), False
        if parsed is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # One process trains, concurrent ones wait and read its file: training can take minutes
            # (and with seed=None two processes would train different priors).
            with FileLock(str(path) + ".lock"):
                parsed = _read_priors(path, eflomal)  # trained by another process while we waited?
                if parsed is None:
                    parsed, trained = self._train_priors(path, extra_src, extra_tgt, eflomal), True
        self._extra_stats["priors_reused"] = not trained
        if not trained:
            log.info("reusing eflomal priors %s", path)
        self._priors = _Priors(parsed)
        self._priors_key = key
        return self._priors

    def _train_priors(self, path: Path, extra_src: list[list[str]], extra_tgt: list[list[str]], eflomal: Any) -> Any:
        """Align the extra corpus, store its priors at ``path`` (atomically) and return them parsed."""
        if self.seed is None:
            log.warning("seed=None: priors trained now are random and will be reused from %s", path)
        log.info("training eflomal priors on %d extra pairs (cached in %s)", len(extra_src), path)
        t0 = time.perf_counter()
        fwd, rev = self._run(extra_src, extra_tgt, None)
        counts = eflomal.calculate_priors(
            (" ".join(s) for s in extra_src), (" ".join(t) for t in extra_tgt),
            (_pharaoh(links) for links in fwd), (_pharaoh(links) for links in rev))
        buf = io.StringIO()
        eflomal.write_priors(buf, *counts)
        _atomic_write(path, gzip.compress(buf.getvalue().encode("utf-8"), mtime=0))
        self._extra_stats["priors_train_s"] = round(time.perf_counter() - t0, 2)
        return eflomal.read_priors(io.StringIO(buf.getvalue()))

    # ------------------------------------------------------------------ running the binary

    def _run(
        self, src: list[list[str]], tgt: list[list[str]], priors: Any, schedule_size: int | None = None
    ) -> tuple[list[list[Link]], list[list[Link]]]:
        """Run eflomal on normalised pairs; empty pairs get no links.

        ``schedule_size`` is the number of sentences the default iteration schedule is computed for
        (default: the pairs being run).
        """
        n = len(src)
        forward: list[list[Link]] = [[] for _ in range(n)]
        reverse: list[list[Link]] = [[] for _ in range(n)]
        active = [k for k in range(n) if src[k] and tgt[k]]
        if not active:
            return forward, reverse
        binary = self._binary()
        with tempfile.TemporaryDirectory(prefix="dsbuild-eflomal-") as tmp:
            tmpdir = Path(tmp)
            src_index = _write_text(tmpdir / "src.txt", [src[k] for k in active])
            tgt_index = _write_text(tmpdir / "tgt.txt", [tgt[k] for k in active])
            args = [str(binary), "-m", str(self.model), "-s", "src.txt", "-t", "tgt.txt",
                    "-n", str(self.n_samplers), "-N", repr(self.null_prior), "-q",
                    "-f", "fwd.links", "-r", "rev.links"]
            iters = self._iterations(max(len(active), schedule_size or 0))
            args += ["-1", str(iters[0])]
            if self.model >= 2:
                args += ["-2", str(iters[1])]
            if self.model >= 3:
                args += ["-3", str(iters[2])]
            if priors is not None:
                with open(tmpdir / "priors.txt", "w", encoding="utf-8") as f:
                    priors.write_for(src_index, tgt_index, f)
                args += ["-p", "priors.txt"]
            if self.seed is not None:
                (tmpdir / _SEED_FILE.decode()).write_bytes(_seed_bytes(self.seed))
            env = dict(os.environ)
            # One thread per direction: samplers then take their random streams in a fixed order.
            env["OMP_NUM_THREADS"] = f"{self.threads},1"
            try:
                proc = subprocess.run(args, cwd=tmpdir, env=env, capture_output=True, text=True,
                                      preexec_fn=_die_with_parent)
            except OSError as err:  # e.g. the cache folder is on a noexec file system
                raise ConfigError(f"cannot run the eflomal binary {binary}: {err}. Set cache_dir to a folder "
                                  "where programs may be executed, or seed=None to run eflomal as installed") from None
            if proc.returncode != 0:
                raise RuntimeError(f"eflomal failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
            fwd_lines = (tmpdir / "fwd.links").read_text(encoding="utf-8").splitlines()
            rev_lines = (tmpdir / "rev.links").read_text(encoding="utf-8").splitlines()
        if len(fwd_lines) != len(active) or len(rev_lines) != len(active):
            raise RuntimeError(f"eflomal wrote {len(fwd_lines)}/{len(rev_lines)} alignment lines for "
                               f"{len(active)} pairs")
        for k, f_line, r_line in zip(active, fwd_lines, rev_lines):
            forward[k] = _parse_links(f_line)
            reverse[k] = _parse_links(r_line)
        return forward, reverse

    def _iterations(self, n_sentences: int) -> tuple[int, int, int]:
        if self.n_iterations is not None:
            return self.n_iterations  # type: ignore[return-value]
        # eflomal's own default schedule (eflomal.cython.align).
        iters = max(2, int(round(self.rel_iterations * 5000 / math.sqrt(n_sentences))))
        iters4 = max(1, iters // 4)
        if self.model == 1:
            return (iters, 0, 0)
        if self.model == 2:
            return (max(2, iters4), iters, 0)
        return (max(2, iters4), iters4, iters)

    def _binary(self) -> Path:
        original = _find_binary()
        if self.seed is None:
            return original
        return _seeded_binary(original, self.cache_dir)


# ---------------------------------------------------------------------- helpers


class _Priors:
    """eflomal priors indexed by word, so that writing them for a small input costs little.

    ``eflomal.to_eflomal_priors_file`` walks every prior of the corpus for each call (seconds for
    a large corpus); this writes the same file, restricted to the input's vocabulary.
    """

    def __init__(self, parsed: tuple[Any, ...]) -> None:
        lex, hmmf, hmmr, ferf, ferr = parsed
        self.lex: dict[str, list[tuple[str, float]]] = {}
        for src, tgt, alpha in lex:
            self.lex.setdefault(src, []).append((tgt, alpha))
        self.ferf: dict[str, list[tuple[int, float]]] = {}
        for word, fert, alpha in ferf:
            self.ferf.setdefault(word, []).append((fert, alpha))
        self.ferr: dict[str, list[tuple[int, float]]] = {}
        for word, fert, alpha in ferr:
            self.ferr.setdefault(word, []).append((fert, alpha))
        self.hmmf: dict[int, float] = dict(hmmf)
        self.hmmr: dict[int, float] = dict(hmmr)

    def write_for(self, src_index: dict[str, int], tgt_index: dict[str, int], out: Any) -> None:
        """Write eflomal's numeric priors file for these vocabularies (ids 1-based, 0 = NULL)."""
        lex: dict[tuple[int, int], float] = {}
        null_targets = self.lex.get("<NULL>", [])
        for src, e0 in [("<NULL>", -1), *src_index.items()]:
            if src == "<NULL>" and e0 != -1:
                continue  # eflomal reserves this spelling for the empty word
            entries = null_targets if src == "<NULL>" else self.lex.get(src, ())
            for tgt, alpha in entries:
                f = 0 if tgt == "<NULL>" else tgt_index.get(tgt, -1) + 1
                if f > 0 or tgt == "<NULL>":
                    lex[(e0 + 1, f)] = lex.get((e0 + 1, f), 0.0) + alpha
        ferf: dict[tuple[int, int], float] = {}
        for word, e0 in src_index.items():
            for fert, alpha in self.ferf.get(word, ()):
                ferf[(e0 + 1, fert)] = ferf.get((e0 + 1, fert), 0.0) + alpha
        ferr: dict[tuple[int, int], float] = {}
        for word, f0 in tgt_index.items():
            for fert, alpha in self.ferr.get(word, ()):
                ferr[(f0 + 1, fert)] = ferr.get((f0 + 1, fert), 0.0) + alpha
        lines = [f"{len(src_index) + 1} {len(tgt_index) + 1} {len(lex)} {len(self.hmmf)} {len(self.hmmr)} "
                 f"{len(ferf)} {len(ferr)}"]
        lines += [f"{e} {f} {alpha:g}" for (e, f), alpha in sorted(lex.items())]
        lines += [f"{jump} {alpha:g}" for jump, alpha in sorted(self.hmmf.items())]
        lines += [f"{jump} {alpha:g}" for jump, alpha in sorted(self.hmmr.items())]
        lines += [f"{e} {fert} {alpha:g}" for (e, fert), alpha in sorted(ferf.items())]
        lines += [f"{f} {fert} {alpha:g}" for (f, fert), alpha in sorted(ferr.items())]
        out.write("\n".join(lines) + "\n")


def _write_text(path: Path, sents: Iterable[Sequence[str]]) -> dict[str, int]:
    """Write eflomal's numeric text format; returns the vocabulary (token -> 0-based id)."""
    index: dict[str, int] = {}
    lines = []
    for sent in sents:
        ids = [index.setdefault(w, len(index)) for w in sent]
        lines.append(f"{len(ids)} {' '.join(map(str, ids))}")
    with open(path, "w", encoding="ascii") as f:
        f.write(f"{len(lines)} {len(index)}\n")
        f.write("\n".join(lines))
        f.write("\n")
    return index


def _parse_links(line: str) -> list[Link]:
    links = []
    for item in line.split():
        a, _, b = item.partition("-")
        links.append((int(a), int(b)))
    return sorted(links)


def _pharaoh(links: Iterable[Link]) -> str:
    return " ".join(f"{i}-{j}" for i, j in links)


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, ask for SIGTERM when the Python process dies, so a
    killed build does not leave eflomal running (best effort, a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _seed_bytes(seed: int) -> bytes:
    # xorshift* must not start from 0; hash the seed to a non-zero 64-bit state.
    state = int.from_bytes(hashlib.sha256(f"dsbuild-eflomal-seed:{seed}".encode()).digest()[:8], "little") | 1
    return state.to_bytes(8, "little")


def _find_binary() -> Path:
    eflomal = require("eflomal", extra="aligners", purpose="the eflomal aligner")

    candidate = Path(eflomal.__file__).parent / "bin" / "eflomal"
    if candidate.is_file():
        return candidate
    found = shutil.which("eflomal")
    if found:
        return Path(found)
    raise ConfigError("the eflomal binary was not found next to the eflomal package or on PATH",
                      ) from None


def _seeded_binary(original: Path, cache_dir: Path) -> Path:
    """A cached copy of the eflomal binary that reads its seed from ``./seed.bin``."""
    data = original.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = cache_dir / f"eflomal-seeded-{digest}"
    # The patch keeps the length: a copy of another size is damaged (cut short by a crash), not reusable.
    if target.is_file() and os.access(target, os.X_OK) and target.stat().st_size == len(data):
        return target
    if data.count(_URANDOM) != 1:
        raise ConfigError(
            f"cannot fix the seed of {original}: expected its seed source '/dev/urandom' exactly once "
            "(an unknown eflomal build?)",
        )
    patched = data.replace(_URANDOM, _SEED_FILE + b"\x00" * (len(_URANDOM) - len(_SEED_FILE)))
    _atomic_write(target, patched, mode=0o755)
    return target


def _read_priors(path: Path, eflomal: Any) -> Any:
    """Parsed priors from the cache, or ``None`` (a miss) when absent or damaged (then retrained)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return eflomal.read_priors(f)
    except FileNotFoundError:
        return None
    # gzip/zlib errors for a truncated file; eflomal's parser raises ValueError, IndexError or
    # TypeError (its own message formatting) on a bad line.
    except (OSError, EOFError, zlib.error, ValueError, IndexError, TypeError) as err:
        log.warning("ignoring damaged eflomal priors %s (%s: %s); training them again", path, type(err).__name__, err)
        return None


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers in any process see the old file or all of the new one.

    The temporary file has a unique name (``mkstemp``) in the same folder, so concurrent writers
    never share one and the final rename is atomic; it is synced before the rename so that a
    crash leaves no empty or short file under the final name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _corpus_label(corpus: Corpus | None) -> str | None:
    if corpus is None:
        return None
    if isinstance(corpus, (str, os.PathLike)):
        return str(corpus)
    return f"<in-memory list of {len(corpus)} lines>"


def _read_corpus(corpus: Corpus, what: str) -> list[list[str]]:
    """Lines of a path (``.gz`` allowed) or an in-memory list, as token lists (whitespace split)."""
    if isinstance(corpus, (str, os.PathLike)):
        path = Path(corpus)
        if not path.is_file():
            raise InputError(f"{what}: file not found", source=path,
                             hint="give the path of a line-aligned, whitespace-tokenised text file (.gz allowed)")
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8", newline="\n") as f:  # type: ignore[operator]
                return [line.rstrip("\r\n").split() for line in f]
        except UnicodeDecodeError as err:
            raise InputError(f"{what}: not UTF-8 text ({err.reason})", source=path,
                             hint="convert the file to UTF-8") from None
    return [line.split() if isinstance(line, str) else list(line) for line in corpus]


def _hash_corpus(src: list[list[str]], tgt: list[list[str]], options: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for s, t in zip(src, tgt):
        h.update(" ".join(s).encode("utf-8"))
        h.update(b"\t")
        h.update(" ".join(t).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:24]
