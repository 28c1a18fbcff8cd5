"""Symmetrisation of two directional word alignments (Koehn et al. 2003; Moses' ``symal``).

Both inputs are sets of 0-indexed ``(source_index, target_index)`` links *in the same
orientation*: ``forward`` from the source-to-target model (each target word linked to at most one
source word), ``reverse`` from the target-to-source model. The heuristics:

- ``intersection``: links in both (high precision);
- ``union``: links in either (high recall);
- ``grow-diag``: start from the intersection and repeatedly add union links that neighbour an
  existing link (8-neighbourhood) and touch a word that is still unaligned;
- ``grow-diag-final``: grow-diag, then add the remaining union links of each direction whose
  source *or* target word is unaligned;
- ``grow-diag-final-and``: as grow-diag-final, but the source *and* target word must both be
  unaligned.

The loops follow the pseudo-code of the Moses manual literally (row-major scan, neighbour order
left, up, right, down, then diagonals), so results match Moses on the same inputs.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Literal

from dsbuild.errors import ConfigError

Link = tuple[int, int]
SymmetrizationMethod = Literal["intersection", "union", "grow-diag", "grow-diag-final", "grow-diag-final-and"]
METHODS: tuple[str, ...] = ("intersection", "union", "grow-diag", "grow-diag-final", "grow-diag-final-and")

# Moses' order: the four direct neighbours first, then the diagonals.
_NEIGHBOURS: tuple[Link, ...] = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def symmetrize(
    forward: Iterable[Link],
    reverse: Iterable[Link],
    method: str = "grow-diag-final-and",
) -> list[Link]:
    """Combine two directional alignments of one sentence pair; returns sorted links.

    Args:
        forward: links of the source-to-target model, ``(i, j)`` 0-indexed.
        reverse: links of the target-to-source model, also as ``(i, j)`` (source, target).
        method: one of :data:`METHODS`.

    Raises:
        ConfigError: unknown ``method``.
    """
    fwd = {(int(i), int(j)) for i, j in forward}
    rev = {(int(i), int(j)) for i, j in reverse}
    if method == "intersection":
        return sorted(fwd & rev)
    if method == "union":
        return sorted(fwd | rev)
    if method not in METHODS:
        raise ConfigError(f"unknown symmetrisation {method!r}; choose one of {', '.join(METHODS)}")
    union = fwd | rev
    if not union:
        return []
    aligned = _grow_diag(fwd & rev, union)
    if method == "grow-diag-final":
        _final(aligned, fwd, need_both_unaligned=False)
        _final(aligned, rev, need_both_unaligned=False)
    elif method == "grow-diag-final-and":
        _final(aligned, fwd, need_both_unaligned=True)
        _final(aligned, rev, need_both_unaligned=True)
    return sorted(aligned.links)


class _Growing:
    """The alignment being grown, with per-word alignment counts for O(1) "is aligned" checks."""

    def __init__(self, links: set[Link]) -> None:
        self.links: set[Link] = set()
        self.rows: dict[int, set[int]] = {}
        self.src_count: dict[int, int] = {}
        self.tgt_count: dict[int, int] = {}
        for link in links:
            self.add(link)

    def add(self, link: Link) -> None:
        i, j = link
        self.links.add(link)
        self.rows.setdefault(i, set()).add(j)
        self.src_count[i] = self.src_count.get(i, 0) + 1
        self.tgt_count[j] = self.tgt_count.get(j, 0) + 1

    def src_aligned(self, i: int) -> bool:
        return i in self.src_count

    def tgt_aligned(self, j: int) -> bool:
        return j in self.tgt_count


def _grow_diag(start: set[Link], union: set[Link]) -> _Growing:
    aligned = _Growing(start)
    max_i = max(i for i, _ in union)
    added = True
    while added:
        added = False
        # Row-major scan over the current alignment; points added in the current or a later row
        # are visited in the same pass, exactly as the literal double loop would.
        for i in range(max_i + 1):
            row = aligned.rows.get(i)
            if not row:
                continue
            cols = sorted(row)
            k = 0
            while k < len(cols):
                j = cols[k]
                k += 1
                for di, dj in _NEIGHBOURS:
                    ni, nj = i + di, j + dj
                    if ni < 0 or nj < 0 or (ni, nj) in aligned.links or (ni, nj) not in union:
                        continue
                    if not aligned.src_aligned(ni) or not aligned.tgt_aligned(nj):
                        aligned.add((ni, nj))
                        added = True
                        if ni == i and nj > j:
                            bisect.insort(cols, nj, lo=k)
    return aligned


def _final(aligned: _Growing, direction: set[Link], *, need_both_unaligned: bool) -> None:
    for i, j in sorted(direction):
        if (i, j) in aligned.links:
            continue
        src_free = not aligned.src_aligned(i)
        tgt_free = not aligned.tgt_aligned(j)
        if (src_free and tgt_free) if need_both_unaligned else (src_free or tgt_free):
            aligned.add((i, j))


def symmetrize_batch(
    forward: Iterable[Iterable[Link]], reverse: Iterable[Iterable[Link]], method: str = "grow-diag-final-and"
) -> list[list[Link]]:
    """:func:`symmetrize` for parallel lists of directional alignments."""
    return [symmetrize(f, r, method) for f, r in zip(forward, reverse, strict=True)]
