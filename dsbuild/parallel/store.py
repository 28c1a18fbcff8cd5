"""Where parallel text lives and how it is described: manifests, the fetch cache, the shipped text.

A **store** is a folder per language pair and corpus holding line-aligned gzip files (one
sentence a line, the same line count on both sides) and a ``manifest.json`` that names the
corpus, its version, licence, where it came from and the counts of what was kept and removed:

    $DSBUILD_CACHE/parallel/en-eu/Tatoeba-v2023-04-12/
        en-eu.en.gz  en-eu.eu.gz  manifest.json  LICENSE (when the download had one)

Text shipped with dsbuild (``builders/data/parallel/PAIR/``) has the same layout; its manifest
may list several *sets* (en-eu: a general set and a software-localisation set kept apart).
Pairs are named with the two codes in alphabetical order, as OPUS does (``en-eu``, ``en-fr``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dsbuild.errors import DsbuildError

#: the text shipped with dsbuild (builders/data/parallel)
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "builders" / "data" / "parallel"
MANIFEST = "manifest.json"


class ParallelError(DsbuildError):
    """Parallel text could not be fetched, read or found (network, server, archive, cache)."""


def cache_root() -> Path:
    """``$DSBUILD_CACHE/parallel`` (or ``$XDG_CACHE_HOME/dsbuild/parallel``, ``~/.cache/dsbuild/parallel``)."""
    from dsbuild.cachedir import cache_root as dsbuild_cache

    return dsbuild_cache("parallel")


def pair_name(lang_a: str, lang_b: str) -> str:
    """The pair's folder name: both codes in alphabetical order (``eu``, ``en`` -> ``en-eu``)."""
    a, b = sorted((lang_a, lang_b))
    return f"{a}-{b}"


@dataclass
class ParallelSet:
    """One line-aligned set of a store: file per language (relative to the store), pairs, licence."""

    name: str
    files: dict[str, str]
    pairs: int
    licence: str = ""
    description: str = ""


@dataclass
class Manifest:
    """What a store holds and where it came from; builders copy it into provenance and the card.

    Attributes:
        pair: ``en-eu`` (alphabetical).
        corpus, version: the OPUS corpus and release (``Tatoeba``, ``v2023-04-12``), or the shipped
            text's name and dsbuild's description of it.
        origin: ``opus`` (fetched) or ``shipped``.
        licence: the licence as the source states it (``unknown`` when it states none).
        url: where the text was downloaded from (or the documentation of shipped text).
        sets: the line-aligned sets.
        counts: ``downloaded``, ``kept``, and each removal reason (``overlap``, ``empty``,
            ``too-long``, ``over-max-pairs``...).
        exclude: how overlap with the data being projected was removed (sentences given, rule).
        readme: path of a README (relative to the store) naming sources and licences, if any.
        sources: for text gathered from several places (the shipped en-eu text), one entry per
            source: ``name``, ``licence``, ``pairs``, ``set`` and ``url``; cards list each.
    """

    pair: str
    corpus: str
    version: str
    origin: str
    licence: str
    url: str = ""
    sets: list[ParallelSet] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    exclude: dict[str, Any] = field(default_factory=dict)
    readme: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        """Sentence pairs over all sets."""
        return sum(s.pairs for s in self.sets)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = set(cls.__dataclass_fields__)
        sets = [ParallelSet(**{k: v for k, v in s.items() if k in ParallelSet.__dataclass_fields__})
                for s in data.get("sets", [])]
        return cls(**{**{k: v for k, v in data.items() if k in known}, "sets": sets})

    def card_sources(self) -> list[dict[str, Any]]:
        """``[{name, licence, url, pairs}]`` to name in a card: each listed source, else the corpus itself."""
        if self.sources:
            return [dict(s) for s in self.sources]
        return [{"name": f"{self.corpus} {self.version}".strip(), "licence": self.licence, "url": self.url,
                 "pairs": self.pairs}]

    def describe(self) -> str:
        """One line for logs and cards: corpus, version, origin, pairs, licence."""
        return (f"{self.corpus} {self.version} ({self.origin}, {self.pair}, {self.pairs:,} pairs, "
                f"licence: {self.licence})")


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a store folder; a missing or damaged one is a :class:`ParallelError`."""
    path = folder / MANIFEST
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ParallelError(f"{path}: no manifest; fetch the text again with `dsbuild parallel fetch`") from None
    except (ValueError, TypeError, KeyError) as err:
        raise ParallelError(f"{path}: damaged manifest ({err}); remove {folder} and fetch again") from None


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` (sorted keys, so the same fetch gives the same bytes)."""
    text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def store_folder(root: Path, src: str, tgt: str, corpus: str, version: str) -> Path:
    """The cache folder of a fetched corpus release for the pair."""
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in f"{corpus}-{version}")
    return root / pair_name(src, tgt) / safe


def fetched_stores(src: str, tgt: str, root: str | os.PathLike[str] | None = None) -> list[tuple[Path, Manifest]]:
    """Fetched stores of the pair (any orientation), by corpus name then version; damaged ones skipped."""
    folder = Path(root or cache_root()) / pair_name(src, tgt)
    out = []
    for sub in sorted(folder.iterdir()) if folder.is_dir() else ():
        if (sub / MANIFEST).is_file():
            try:
                out.append((sub, read_manifest(sub)))
            except ParallelError:
                continue
    return out


def shipped_store(src: str, tgt: str, root: str | os.PathLike[str] | None = None) -> tuple[Path, Manifest] | None:
    """The text shipped with dsbuild for the pair, with its manifest, or ``None``."""
    folder = Path(root or SHIPPED_DIR) / pair_name(src, tgt)
    if not (folder / MANIFEST).is_file():
        return None
    return folder, read_manifest(folder)
