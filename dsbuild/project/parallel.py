"""Parallel text for training statistical aligners: shipped corpora and tokenisation with a cache.

dsbuild ships sentence-aligned text for some language pairs (``builders/data/parallel/``, each
with a README naming sources and licences). Aligners work on whitespace tokens, so both sides are
tokenised first with the same kind of tokenizer as the text being aligned (Moses by default); the
tokenised lines are cached on disk (``$DSBUILD_CACHE/tokenized``) under a hash of the file and the
tokenizer, so only the first use pays for it.

    from dsbuild.project import project, parallel_text
    project(sources, targets, src_lang="en", tgt_lang="es",
            aligner_options={"seed": 1, **parallel_text("en", "es")})
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

def cache_root() -> Path:
    """``$DSBUILD_CACHE`` or ``$XDG_CACHE_HOME/dsbuild`` or ``~/.cache/dsbuild``."""
    from dsbuild.cachedir import cache_root as dsbuild_cache

    return dsbuild_cache()


def shipped_parallel_paths(src_lang: str, tgt_lang: str) -> tuple[Path, Path] | None:
    """The shipped parallel files for the pair (either orientation), source side first, or None.

    The shipped store's first set, found by :func:`dsbuild.parallel.parallel_text` (the one place
    that finds parallel text).
    """
    from dsbuild.parallel import parallel_text as find

    text = find(src_lang, tgt_lang, corpus="shipped")
    return text.paths()[0] if text is not None else None


def tokenized_lines(path: str | os.PathLike[str], tokenizer: str = "moses", lang: str = "xx") -> list[list[str]]:
    """The lines of ``path`` (``.gz`` ok) tokenised by ``tokenizer``; cached on disk by content hash."""
    from dsbuild.tokenize.base import get_tokenizer

    path = Path(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data + f"|{tokenizer}|{lang}".encode()).hexdigest()[:24]
    cache = cache_root() / "tokenized" / f"{digest}.txt.gz"
    lines = _read_cached(cache)
    if lines is not None:
        return lines
    text = gzip.decompress(data).decode("utf-8") if path.suffix == ".gz" else data.decode("utf-8")
    tok = get_tokenizer(tokenizer, lang)
    words_of = getattr(tok, "tokenize_words", None)
    lines = []
    for line in text.splitlines():
        words = words_of(line) if callable(words_of) else [t.text for t in tok.tokenize(line)]
        lines.append([w for w in words if w.strip()])
    _write_cached(cache, lines)
    return lines


def _read_cached(cache: Path) -> list[list[str]] | None:
    """Cached token lines, or ``None`` (a miss: tokenise again) if absent or damaged.

    gzip checks its trailer, so a file cut short (a crash before it reached the disk, an old
    writer without the atomic rename) raises here instead of returning fewer lines.
    """
    try:
        with gzip.open(cache, "rt", encoding="utf-8") as f:
            return [line.rstrip("\n").split(" ") if line.strip() else [] for line in f]
    except FileNotFoundError:
        return None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        log.warning("ignoring damaged tokenisation cache %s (%s: %s); tokenising again", cache, type(err).__name__, err)
        return None


def _write_cached(cache: Path, lines: list[list[str]]) -> None:
    """Store token lines atomically, so that concurrent processes never read a partial file.

    The temporary name is unique (``mkstemp``; a pid alone is shared by threads and by containers
    writing to one cache folder) and in the same folder, so the rename is atomic; same-key writers
    write identical files and the last rename wins.
    """
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.open(raw, "wt", encoding="utf-8", compresslevel=1) as f:
                for words in lines:
                    f.write(" ".join(words) + "\n")
            raw.flush()
            os.fsync(raw.fileno())  # the data is on disk before the name is: no empty file after a crash
        os.replace(tmp, cache)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parallel_text(src_lang: str, tgt_lang: str, src_path: str | None = None, tgt_path: str | None = None,
                  *, tokenizer: str = "moses") -> dict[str, Any]:
    """Kept for imports from this module: see :func:`dsbuild.project.parallel_text`."""
    from dsbuild.project import parallel_text as public

    return public(src_lang, tgt_lang, src_path, tgt_path, tokenizer=tokenizer)
