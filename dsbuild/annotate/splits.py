"""Split assignment: human-labelled test, teacher-labelled train/dev, no text in two splits.

One streaming pass over the source gives, per input, its language, a hash of its normalised text
and its human label (if any). :func:`assign_splits` then decides, deterministically:

1. **Duplicates**: inputs whose normalised text (NFKC, casefolded, spacing collapsed) equals an
   earlier input's are rejects (reason ``duplicate``), placed in the split of the copy that is
   kept, so no text is in two splits. The kept copy is the first one with a human label, else the
   first one.
2. **Test**: ``test_fraction`` of the human-labelled inputs, stratified per (language, human
   label); these keep their human labels as ground truth.
3. **Dev**: ``dev_fraction`` of the remaining inputs per language; the rest is **train**. Their
   human labels (if any) are not used: the teacher labels them.

Within a stratum, inputs are ordered by a seeded hash of their normalised text, so the choice
does not depend on the source order. Empty texts go to train (and are rejected there as
``empty-text``). Memory: a few bytes per input plus one dict entry per distinct text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

TRAIN, DEV, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", DEV: "dev", TEST: "test"}


def normalise_text(text: str) -> str:
    """NFKC, casefolded, runs of whitespace as one space, stripped: what 'the same text' means."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text or "").casefold()).strip()


def text_key(text: str) -> bytes:
    """A 16-byte digest of the normalised text (what duplicates are found by)."""
    return hashlib.blake2b(normalise_text(text).encode("utf-8"), digest_size=16).digest()


@dataclass
class SplitPlan:
    """Per input index: its split code, and for duplicates the id of the copy that is kept."""

    codes: bytearray = field(default_factory=bytearray)
    duplicate_of: dict[int, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def split_of(self, index: int) -> str:
        return SPLIT_NAMES[self.codes[index]]


@dataclass(frozen=True)
class Record:
    """What the plan needs of one input."""

    id: str
    language: str
    key: bytes | None  # None: empty text
    human_label: str | None


def assign_splits(records: Iterable[Record], *, test_fraction: float, dev_fraction: float, seed: int) -> SplitPlan:
    """The :class:`SplitPlan` of ``records`` (in source order); see the module docstring."""
    kept: dict[bytes, int] = {}  # text key -> index of the kept copy
    ids: list[str] = []
    meta: list[tuple[str, bytes | None, str | None]] = []
    dups: dict[int, int] = {}  # duplicate index -> kept index (resolved at the end)
    for i, rec in enumerate(records):
        ids.append(rec.id)
        meta.append((rec.language, rec.key, rec.human_label))
        if rec.key is None:
            continue
        first = kept.get(rec.key)
        if first is None:
            kept[rec.key] = i
        elif rec.human_label is not None and meta[first][2] is None:
            dups[first] = i  # a labelled copy is worth more: keep it, the unlabelled one becomes the duplicate
            kept[rec.key] = i
        else:
            dups[i] = first
    plan = SplitPlan(codes=bytearray([TRAIN]) * len(ids))
    _assign_test(plan, meta, kept.values(), test_fraction, seed)
    _assign_dev(plan, meta, [i for i in kept.values() if plan.codes[i] != TEST], dev_fraction, seed)
    for dup, first in dups.items():
        while first in dups:  # a kept copy that was itself replaced by a labelled one
            first = dups[first]
        plan.codes[dup] = plan.codes[first]
        plan.duplicate_of[dup] = ids[first]
    for code in plan.codes:
        plan.counts[SPLIT_NAMES[code]] = plan.counts.get(SPLIT_NAMES[code], 0) + 1
    return plan


def _rank(seed: int, key: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=8, key=str(seed).encode()[:64]).digest()


def _take(plan: SplitPlan, strata: dict[tuple, list[int]], meta: list, fraction: float, seed: int, code: int) -> None:
    for members in strata.values():
        n = round(fraction * len(members))
        for i in sorted(members, key=lambda j: (_rank(seed, meta[j][1]), j))[:n]:
            plan.codes[i] = code


def _assign_test(plan: SplitPlan, meta: list, kept: Iterable[int], fraction: float, seed: int) -> None:
    strata: dict[tuple, list[int]] = {}
    for i in kept:
        language, _key, label = meta[i]
        if label is not None:
            strata.setdefault((language, label), []).append(i)
    _take(plan, strata, meta, fraction, seed, TEST)


def _assign_dev(plan: SplitPlan, meta: list, pool: list[int], fraction: float, seed: int) -> None:
    strata: dict[tuple, list[int]] = {}
    for i in pool:
        strata.setdefault((meta[i][0],), []).append(i)
    _take(plan, strata, meta, fraction, seed + 1, DEV)


__all__ = ["DEV", "SPLIT_NAMES", "TEST", "TRAIN", "Record", "SplitPlan", "assign_splits", "normalise_text", "text_key"]
