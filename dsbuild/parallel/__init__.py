"""Parallel text for any language pair: fetch it from OPUS, find it again, name it in cards.

Statistical word aligners (eflomal) are only as good as the parallel text they learn from. dsbuild
ships text for en-es, en-eu and en-fr (``builders/data/parallel/``); for any other pair,
``dsbuild parallel fetch SRC TGT`` downloads sentence pairs from OPUS into the cache, with the
pairs that overlap the data you will project removed, and a manifest (corpus, version, licence,
counts) that builders copy into their cards::

    from dsbuild.parallel import fetch, parallel_text

    fetch("en", "eu", corpus="Tatoeba", max_pairs=100_000, exclude=my_sentences)
    text = parallel_text("en", "eu")                  # fetched text first, else the shipped text
    text.manifest.describe()                          # 'Tatoeba v2023-04-12 (opus, en-eu, ...)'
    aligner_options = text.aligner_options()          # {'extra_src': [...], 'extra_tgt': [...]}

This package is about *getting* parallel text; :mod:`dsbuild.project.parallel` tokenises it for
the aligner (``tokenized_lines``, cached) and is what :meth:`ParallelText.aligner_options` uses.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsbuild.parallel.opus import OPUS_API, CorpusInfo, fetch, list_corpora
from dsbuild.parallel.overlap import OverlapFilter, remove_overlap
from dsbuild.parallel.store import (SHIPPED_DIR, Manifest, ParallelError, ParallelSet, cache_root, fetched_stores,
                                    pair_name, shipped_store)


@dataclass
class ParallelText:
    """Parallel text found for a pair, oriented ``src`` -> ``tgt``.

    Attributes:
        src, tgt: the languages asked for (files are given source side first).
        folder: the store folder.
        manifest: what the store holds (corpus, version, licence, counts).
        sets: the set names used (all of the store's by default).
    """

    src: str
    tgt: str
    folder: Path
    manifest: Manifest
    sets: tuple[str, ...]

    def paths(self) -> list[tuple[Path, Path]]:
        """``(source file, target file)`` per set used, in the manifest's order."""
        return [(self.folder / s.files[self.src], self.folder / s.files[self.tgt])
                for s in self.manifest.sets if s.name in self.sets]

    @property
    def pairs(self) -> int:
        """Sentence pairs in the sets used."""
        return sum(s.pairs for s in self.manifest.sets if s.name in self.sets)

    def aligner_options(self, tokenizer: str = "moses") -> dict[str, Any]:
        """``extra_src``/``extra_tgt`` token lists for the aligner, every set used concatenated.

        Both sides are tokenised with ``tokenizer`` (cached on disk by content): tokenise the text
        being aligned the same way.
        """
        from dsbuild.project.parallel import tokenized_lines

        src: list[list[str]] = []
        tgt: list[list[str]] = []
        for a, b in self.paths():
            src += tokenized_lines(a, tokenizer, self.src)
            tgt += tokenized_lines(b, tokenizer, self.tgt)
        return {"extra_src": src, "extra_tgt": tgt}

    def describe(self) -> dict[str, Any]:
        """For provenance and cards: the manifest with the sets used and their pair count."""
        return {**self.manifest.to_dict(), "sets_used": list(self.sets), "pairs_used": self.pairs}


def parallel_text(src: str, tgt: str, *, corpus: str | None = None, prefer: str = "fetched",
                  sets: Sequence[str] | None = None, cache: str | os.PathLike[str] | None = None,
                  shipped: str | os.PathLike[str] | None = None) -> ParallelText | None:
    """Parallel text for ``src``-``tgt``: fetched (``dsbuild parallel fetch``) or shipped with dsbuild.

    Args:
        corpus: a corpus name (fetched: the OPUS corpus; ``shipped``: the shipped text only).
        prefer: ``fetched`` (default: fetched text first, else shipped) or ``shipped``.
        sets: set names to use (default: every set of the store).
        cache, shipped: the folders to look in (defaults: the fetch cache and ``builders/data/parallel``).

    Returns ``None`` when there is none. Among several fetched corpora the one with most pairs wins
    (then the name, then the latest version), so the choice does not depend on the order of fetches.
    """
    if prefer not in ("fetched", "shipped"):
        raise ParallelError(f"prefer must be 'fetched' or 'shipped', not {prefer!r}")
    candidates: list[tuple[Path, Manifest]] = []
    fetched = [] if corpus == "shipped" else [
        (f, m) for f, m in fetched_stores(src, tgt, cache) if corpus is None or m.corpus.lower() == corpus.lower()]
    fetched.sort(key=lambda fm: (fm[1].pairs, fm[1].corpus, fm[1].version))
    ship = shipped_store(src, tgt, shipped) if corpus in (None, "shipped") else None
    if prefer == "fetched":
        candidates = fetched[-1:] + ([ship] if ship else [])
    else:
        candidates = ([ship] if ship else []) + fetched[-1:]
    for folder, manifest in candidates:
        names = tuple(s.name for s in manifest.sets)
        chosen = tuple(sets) if sets is not None else names
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise ParallelError(f"{folder / 'manifest.json'}: no set(s) {unknown}; sets: {list(names)}")
        return ParallelText(src, tgt, folder, manifest, chosen)
    return None


__all__ = ["OPUS_API", "SHIPPED_DIR", "CorpusInfo", "Manifest", "OverlapFilter", "ParallelError", "ParallelSet",
           "ParallelText", "cache_root", "fetch", "list_corpora", "pair_name", "parallel_text", "remove_overlap"]
