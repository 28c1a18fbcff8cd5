"""The shipped Maltese resources: mapping tables, word translation tables, annotations, model.

The data lives in ``builders/data/maltese`` (copied from github.com/MLRS/malti, MIT licence; see
the README there). ``DSBUILD_MALTESE_DATA`` points elsewhere (a folder with the same layout).

Every table is read with quoting disabled (tokens contain ``"`` and ``'``) and every string is
NFC-normalised, so precomposed and combining spellings of ċ ġ ħ ż are the same key.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from dsbuild.errors import InputError

log = logging.getLogger(__name__)

#: the word translation tables, by direction
TRANSLATION_TABLES = ("mt-en", "mt-it", "mt-ar", "en-ar")
#: the closed-class token tables, looked up in this order
TOKEN_TABLES = ("small_closed_class", "additional_closed_class")
DATA_LICENSE = "MIT"
DATA_SOURCE = "https://github.com/MLRS/malti (tags 2024.eacl and 2023.cawl-1.4)"


def nfc(text: str) -> str:
    """NFC-normalise ``text`` (ċ ġ ħ ż and friends precomposed); fast path for ASCII."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def data_dir() -> Path:
    """The folder holding the Maltese tables (``DSBUILD_MALTESE_DATA`` overrides the shipped one)."""
    env = os.environ.get("DSBUILD_MALTESE_DATA")
    if env:
        return Path(env)
    import builders  # the package that ships builder data

    return Path(builders.__file__).parent / "data" / "maltese"


def annotations_path() -> Path:
    """The shipped etymology annotations (TSV ``id token category category_merged``)."""
    return data_dir() / "etymology_annotations.tsv"


def _checked(path: Path) -> Path:
    if not path.is_file():
        raise InputError("table not found", source=path,
                         hint="reinstall dsbuild, or point DSBUILD_MALTESE_DATA at a folder with the MLRS tables")
    return path


def _open_table(path: Path) -> list[str]:
    return _checked(path).read_text(encoding="utf-8").splitlines()


@dataclass(frozen=True)
class MapRule:
    """One ``source -> target`` row of a ``.map`` table."""

    source: str
    target: str


def read_map(path: str | Path) -> list[MapRule]:
    """Read a ``.map`` table: ``source<TAB>target`` rows; ``#`` lines are comments.

    A row without a tab maps its source to the empty string (``dediac.map`` deletes marks).
    Duplicate rows are kept once, in first-seen order.
    """
    path = Path(path)
    rules: list[MapRule] = []
    seen: set[tuple[str, str]] = set()
    for line in _open_table(path):
        if not line or line.startswith("#"):
            continue
        source, _, target = line.partition("\t")
        rule = MapRule(nfc(source), nfc(target.rstrip("\t")))
        if rule.source == "" or (rule.source, rule.target) in seen:
            continue
        seen.add((rule.source, rule.target))
        rules.append(rule)
    return rules


@functools.lru_cache(maxsize=None)
def token_table(name: str) -> dict[str, str]:
    """A closed-class token table (Maltese word -> Arabic script, ``+`` = attach to next)."""
    return {r.source: r.target for r in read_map(data_dir() / "token_mappings" / f"{name}.map")}


@functools.lru_cache(maxsize=None)
def closed_class_words() -> dict[str, str]:
    """Both closed-class tables merged; the small table wins on a clash."""
    merged: dict[str, str] = {}
    for name in reversed(TOKEN_TABLES):
        merged.update(token_table(name))
    return merged


@functools.lru_cache(maxsize=None)
def char_table(mode: str, name: str) -> tuple[MapRule, ...]:
    """A character table from ``char_mappings_{mode}/{name}.map``."""
    return tuple(read_map(data_dir() / f"char_mappings_{mode}" / f"{name}.map"))


@functools.lru_cache(maxsize=None)
def translation_table(direction: str) -> dict[str, str]:
    """A word translation table (``mt-en`` etc.): token -> translation, first row wins.

    Rows with more than two columns keep the second column (one row of ``en-ar`` has six).
    """
    if direction not in TRANSLATION_TABLES:
        raise InputError(f"unknown translation table {direction!r}",
                         hint=f"use one of {', '.join(TRANSLATION_TABLES)}")
    path = data_dir() / "word_translations" / f"{direction}.tsv"
    table: dict[str, str] = {}
    odd = 0
    with _checked(path).open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 2:
                odd += 1
                continue
            odd += len(row) > 2
            table.setdefault(nfc(row[0]), nfc(row[1]))
    if odd:
        log.debug("%s: %d rows with other than two columns", path, odd)
    return table


@functools.lru_cache(maxsize=None)
def common_ngrams() -> frozenset[str]:
    """The frequent Maltese character n-grams used as classifier features."""
    return frozenset(nfc(x.strip()) for x in _open_table(data_dir() / "etymology_common_ngrams.txt") if x.strip())


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tables_version() -> dict[str, str]:
    """Short checksums of every shipped table, so a card can name exactly which tables were used."""
    root = data_dir()
    out = {}
    for sub in ("token_mappings", "char_mappings_deterministic", "char_mappings_non_deterministic", "word_translations"):
        for p in sorted((root / sub).iterdir()):
            out[f"{sub}/{p.name}"] = file_sha256(p)[:12]
    return out
