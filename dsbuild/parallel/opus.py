"""Fetch sentence pairs from OPUS (https://opus.nlpl.eu) into the parallel-text cache.

The OPUS API answers ``GET {api}?source=en&target=eu&preprocessing=moses&version=latest`` with
``{"corpora": [{"corpus", "version", "source", "target", "preprocessing", "url", "size" (KB),
"alignment_pairs", "documents", "source_tokens", "target_tokens", ...}]}``; each ``url`` is a zip
holding Moses-format files (``CORPUS.en-eu.en`` and ``CORPUS.en-eu.eu``, line-aligned) and often a
``LICENSE`` and ``README``. :func:`fetch` picks a corpus, downloads the zip once (kept in the cache
folder, so a second fetch with other options does not download again), filters the pairs
(empty side, over ``max_tokens`` tokens, control characters), removes the pairs that overlap the
sentences given to ``exclude``, keeps at most ``max_pairs`` in file order, and writes the store
with its manifest (see :mod:`dsbuild.parallel.store`).

Only the standard library is used (``urllib``): no extra dependency.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import logging
import os
import re
import shutil
import tempfile
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsbuild.parallel.overlap import OverlapFilter
from dsbuild.parallel.store import (MANIFEST, Manifest, ParallelError, ParallelSet, cache_root, pair_name, store_folder,
                                    write_manifest)

log = logging.getLogger(__name__)

OPUS_API = "https://opus.nlpl.eu/opusapi/"
#: seconds to wait for the server to answer (connect or read)
TIMEOUT = 30.0
#: default ceiling on the download size when no corpus is named (OPUS's ``size`` is in KB)
MAX_DOWNLOAD_MB = 200


@dataclass(frozen=True)
class CorpusInfo:
    """One corpus release as the OPUS API lists it for a pair."""

    corpus: str
    version: str
    url: str
    size_kb: int
    pairs: int

    @classmethod
    def from_api(cls, entry: dict[str, Any]) -> CorpusInfo:
        return cls(str(entry["corpus"]), str(entry.get("version", "")), str(entry["url"]),
                   _int(entry.get("size")), _int(entry.get("alignment_pairs")))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------------- the API
def list_corpora(src: str, tgt: str, *, api: str = OPUS_API, corpus: str | None = None) -> list[CorpusInfo]:
    """The Moses-format corpora OPUS lists for the pair (latest releases), by name."""
    a, b = sorted((src, tgt))
    # every corpus of the pair is asked for, the name matched here: case-insensitively, and the error
    # can then list the names that exist
    query = {"source": a, "target": b, "preprocessing": "moses", "version": "latest"}
    url = f"{api}?{urllib.parse.urlencode(query)}"
    data = _get_json(url)
    entries = data.get("corpora") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ParallelError(f"{url}: unexpected answer from the OPUS API (no 'corpora' list); check --api")
    out = []
    for e in entries:
        if isinstance(e, dict) and e.get("url") and e.get("corpus") and e.get("preprocessing", "moses") == "moses" \
                and (corpus is None or str(e["corpus"]).lower() == corpus.lower()):
            out.append(CorpusInfo.from_api(e))
    return sorted(out, key=lambda c: (c.corpus, c.version))


def choose_corpus(corpora: list[CorpusInfo], src: str, tgt: str, corpus: str | None,
                  max_download_mb: int = MAX_DOWNLOAD_MB) -> CorpusInfo:
    """The named corpus, else the one with most pairs whose download is at most ``max_download_mb``."""
    if corpus:
        named = [c for c in corpora if c.corpus.lower() == corpus.lower()]
        if not named:
            names = ", ".join(c.corpus for c in corpora) or "none"
            raise ParallelError(f"OPUS lists no Moses-format corpus {corpus!r} for {pair_name(src, tgt)} "
                                f"(available: {names}); pick one of these with --corpus")
        return named[-1]
    small = [c for c in corpora if c.size_kb <= max_download_mb * 1024]
    if not small:
        raise ParallelError(f"OPUS lists no Moses-format corpus for {pair_name(src, tgt)} under {max_download_mb} MB"
                            + (f" ({len(corpora)} bigger ones: name one with --corpus)" if corpora else
                               "; check the language codes (ISO 639-1, e.g. en, eu)"))
    return max(small, key=lambda c: (c.pairs, c.corpus))


def _open(url: str, what: str) -> Any:
    """An open HTTP response, or one clear :class:`ParallelError` line."""
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "dsbuild"}), timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        hint = "the pair or corpus does not exist there" if err.code == 404 else "try again later"
        raise ParallelError(f"{url}: {what} answered HTTP {err.code} ({err.reason}); {hint}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ParallelError(f"{url}: cannot reach the server for {what} ({reason}); check the network "
                            "or the address given with --api") from None


def _get_json(url: str) -> Any:
    try:
        with _open(url, "the OPUS API") as resp:
            body = resp.read()
    except (OSError, http.client.HTTPException) as err:  # the connection broke or timed out mid-answer
        raise ParallelError(f"{url}: the OPUS API stopped answering ({err}); try again later") from None
    try:
        return json.loads(body)
    except ValueError:
        raise ParallelError(f"{url}: the OPUS API did not answer JSON; check --api") from None


def download(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest`` (atomically: a killed download leaves no partial file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, _open(url, "the corpus download") as resp:
            try:
                shutil.copyfileobj(resp, out, length=1 << 20)
            except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
                raise ParallelError(f"{url}: the download broke off ({err}); fetch again") from None
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


# ---------------------------------------------------------------------- the archive
def read_moses_zip(path: Path, src: str, tgt: str) -> tuple[Iterator[tuple[str, str]], dict[str, str]]:
    """Line pairs (source side first) of a Moses zip, and its licence/readme texts by member name."""
    try:
        zf = zipfile.ZipFile(path)
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise ParallelError(f"{path}: the downloaded corpus is not a valid zip archive ({err}); "
                            "it was removed: fetch again (or check the server's download address)") from None
    side = {lang: [n for n in names if n.endswith(f".{lang}") and not n.endswith("/")] for lang in (src, tgt)}
    if len(side[src]) != 1 or len(side[tgt]) != 1:
        raise ParallelError(f"{path}: expected one '*.{src}' and one '*.{tgt}' file in the Moses archive, found "
                            f"{sorted(names)}; the corpus is not in Moses format")
    notes = {}
    for n in names:
        if Path(n).name.upper().startswith(("LICENSE", "LICENCE", "README")):
            notes[Path(n).name] = zf.read(n).decode("utf-8", errors="replace")

    def lines() -> Iterator[tuple[str, str]]:
        try:
            with zf, zf.open(side[src][0]) as fs, zf.open(side[tgt][0]) as ft:
                s_lines = io.TextIOWrapper(fs, encoding="utf-8", errors="replace")
                t_lines = io.TextIOWrapper(ft, encoding="utf-8", errors="replace")
                for a, b in _zip_strict(s_lines, t_lines, path):
                    yield a.rstrip("\n"), b.rstrip("\n")
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise ParallelError(f"{path}: the corpus archive is damaged ({err}); it was removed: fetch again") from None

    return lines(), notes


def _zip_strict(a: Iterable[str], b: Iterable[str], path: Path) -> Iterator[tuple[str, str]]:
    ia, ib = iter(a), iter(b)
    line = 0
    while True:
        x, y = next(ia, None), next(ib, None)
        if x is None and y is None:
            return
        line += 1
        if x is None or y is None:
            raise ParallelError(f"{path}: the two sides have different line counts (one ends at line {line}); "
                                "the archive is damaged: remove it and fetch again")
        yield x, y


# ---------------------------------------------------------------------- filtering
def pair_problem(a: str, b: str, max_tokens: int) -> str | None:
    """Why a pair cannot train an aligner (``empty``, ``too-long``, ``control-char``), or ``None``."""
    if not a.strip() or not b.strip():
        return "empty"
    if len(a.split()) > max_tokens or len(b.split()) > max_tokens:
        return "too-long"
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t" for ch in a + b):
        return "control-char"
    return None


def select_pairs(pairs: Iterable[tuple[str, str]], *, exclude: OverlapFilter | None, max_pairs: int,
                 max_tokens: int) -> tuple[list[tuple[str, str]], Counter]:
    """The first ``max_pairs`` usable pairs that overlap nothing excluded, and counts by outcome."""
    kept: list[tuple[str, str]] = []
    counts: Counter = Counter()
    for a, b in pairs:
        counts["downloaded"] += 1
        a, b = " ".join(a.split()), " ".join(b.split())  # tabs and runs of spaces: one space
        problem = pair_problem(a, b, max_tokens)
        if problem is None and exclude is not None and (exclude.overlaps(a) or exclude.overlaps(b)):
            problem = "overlap"
        if problem is None and max_pairs and len(kept) >= max_pairs:
            problem = "over-max-pairs"
        if problem is not None:
            counts[problem] += 1
        else:
            kept.append((a, b))
    counts["kept"] = len(kept)
    return kept, counts


def _write_gz(path: Path, lines: Iterable[str]) -> None:
    # mtime=0 and a fixed name: the same pairs give the same bytes
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for line in lines:
            gz.write(line.encode("utf-8") + b"\n")


def licence_of(notes: dict[str, str], corpus: str) -> str:
    """The licence as the archive states it (first line of its LICENSE), else a pointer to OPUS."""
    for name, text in sorted(notes.items()):
        if name.upper().startswith(("LICENSE", "LICENCE")):
            first = next((line.strip() for line in text.splitlines() if line.strip()), "")
            if first:
                return first[:300]
    return f"unknown: not stated in the download; see https://opus.nlpl.eu/{corpus}"


# ---------------------------------------------------------------------- fetch
def _select(pairs: Iterable[tuple[str, str]], exclude: Iterable[str], max_pairs: int,
            max_tokens: int) -> tuple[list[tuple[str, str]], Counter, OverlapFilter | None]:
    sentences = list(exclude)
    flt = OverlapFilter(sentences) if sentences else None
    kept, counts = select_pairs(pairs, exclude=flt, max_pairs=max_pairs, max_tokens=max_tokens)
    return kept, counts, flt


def fetch(src: str, tgt: str, *, corpus: str | None = None, max_pairs: int = 200_000,
          exclude: Iterable[str] = (), exclude_name: str = "", max_tokens: int = 200,
          api: str = OPUS_API, root: Path | None = None,
          max_download_mb: int = MAX_DOWNLOAD_MB) -> tuple[Path, Manifest]:
    """Fetch sentence pairs for ``src``-``tgt`` from OPUS into the cache; returns the store and manifest.

    Args:
        src, tgt: language codes as OPUS spells them (``en``, ``eu``).
        corpus: an OPUS corpus name (``Tatoeba``, ``Europarl``...); default: the corpus with most
            pairs among those whose download is at most ``max_download_mb``.
        max_pairs: keep at most this many pairs (in file order; 0 = all).
        exclude: sentences of the data being projected (either language): pairs overlapping them
            are removed (see :mod:`dsbuild.parallel.overlap`) and counted as ``overlap``.
        exclude_name: what ``exclude`` is, for the manifest (a file name, a dataset).
        max_tokens: pairs with a side over this many whitespace tokens are dropped (``too-long``).
        api: the OPUS API address (a local server in tests).
        root: the cache folder (default :func:`dsbuild.parallel.store.cache_root`).
    """
    check_language(src)
    check_language(tgt)
    if src == tgt:
        raise ParallelError(f"source and target language are both {src!r}; give two different languages")
    if max_pairs < 0:
        raise ParallelError(f"max_pairs must be >= 0 (0 keeps every pair), not {max_pairs}")
    root = Path(root or cache_root())
    info = choose_corpus(list_corpora(src, tgt, api=api), src, tgt, corpus, max_download_mb)
    folder = store_folder(root, src, tgt, info.corpus, info.version)
    try:
        return _fetch_into(folder, info, src, tgt, max_pairs=max_pairs, exclude=exclude, exclude_name=exclude_name,
                           max_tokens=max_tokens)
    except OSError as err:  # the cache: read-only, full, a file where a folder should be
        _remove_if_empty(folder)
        what = f"{err.strerror or err} (errno {err.errno})" if err.errno else str(err)
        raise ParallelError(f"{root}: cannot write the parallel-text cache ({what}); choose a writable folder "
                            "with --cache-dir or DSBUILD_CACHE") from None
    except ParallelError:
        _remove_if_empty(folder)
        raise


def check_language(code: str) -> None:
    """A language code as OPUS spells it (``en``, ``eu``, ``pt_BR``, ``zh_CN``), or a :class:`ParallelError`."""
    if not _LANG.fullmatch(code or ""):
        raise ParallelError(f"{code!r} is not a language code; give an ISO 639 code as OPUS spells it "
                            "(en, eu, pt_BR)")


_LANG = re.compile(r"[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?")


def _remove_if_empty(folder: Path) -> None:
    try:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass


def _fetch_into(folder: Path, info: CorpusInfo, src: str, tgt: str, *, max_pairs: int, exclude: Iterable[str],
                exclude_name: str, max_tokens: int) -> tuple[Path, Manifest]:
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "download.zip"
    if not archive.is_file():
        log.info("downloading %s %s for %s (%s KB) from %s", info.corpus, info.version, pair_name(src, tgt),
                 f"{info.size_kb:,}", info.url)
        download(info.url, archive)
    a, b = sorted((src, tgt))
    try:
        pairs, notes = read_moses_zip(archive, a, b)
        kept, counts, flt = _select(pairs, exclude, max_pairs, max_tokens)
    except ParallelError:
        archive.unlink(missing_ok=True)  # a bad download must not be reused by the next fetch
        raise
    if not kept:
        raise ParallelError(f"{info.url}: no usable sentence pair in the download ({dict(counts)})")
    pair = pair_name(src, tgt)
    files = {a: f"{pair}.{a}.gz", b: f"{pair}.{b}.gz"}
    # the manifest goes first and comes back last: a fetch killed in between leaves a store that
    # parallel_text() skips (no manifest), never a manifest describing other files
    (folder / MANIFEST).unlink(missing_ok=True)
    _write_gz(folder / files[a], (x for x, _ in kept))
    _write_gz(folder / files[b], (y for _, y in kept))
    for name, text in notes.items():
        (folder / name).write_text(text, encoding="utf-8")
    licence = licence_of(notes, info.corpus)
    manifest = Manifest(
        pair=pair, corpus=info.corpus, version=info.version, origin="opus", licence=licence, url=info.url,
        sets=[ParallelSet("main", files, len(kept), licence, f"OPUS {info.corpus} {info.version}, Moses format")],
        counts=dict(sorted(counts.items())),
        exclude={"sentences": len(flt) if flt else 0, "name": exclude_name,
                 "rule": "lower-cased, whitespace deleted: equal, or containing a sentence of 6+ tokens"},
        readme=next((n for n in sorted(notes) if n.upper().startswith("README")), ""),
    )
    write_manifest(folder, manifest)
    log.info("parallel text: %s -> %s", manifest.describe(), folder)
    return folder, manifest
