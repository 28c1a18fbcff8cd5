"""Alignment error rate (Och and Ney 2003) against gold alignments with sure and possible links.

Gold files follow the WPT/awesome-align convention: one line per pair, **1-indexed** links,
``i-j`` for a sure link and ``ipj`` for a possible one. Predictions are **0-indexed** ``i-j``
(Pharaoh, as written by :meth:`Alignment.to_pharaoh`). Scores are corpus-level (link counts summed
over all pairs), as in the published tables:

- precision = |A ∩ P| / |A|
- recall = |A ∩ S| / |S|
- AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)

where A is the predicted set, S the sure gold links and P the possible ones (P includes S).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dsbuild.align.base import Alignment
from dsbuild.errors import InputError

Link = tuple[int, int]

_GOLD_LINK = re.compile(r"^(\d+)([-p])(\d+)$")
_PRED_LINK = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True)
class GoldAlignment:
    """Sure and possible links of one pair, 0-indexed; ``possible`` includes ``sure``."""

    sure: frozenset[Link]
    possible: frozenset[Link]


@dataclass(frozen=True)
class AERResult:
    """Corpus-level alignment scores and the counts they come from."""

    aer: float
    precision: float
    recall: float
    n_pairs: int
    n_predicted: int
    n_sure: int
    n_possible: int
    hits_sure: int
    hits_possible: int

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def parse_gold_line(line: str, *, one_indexed: bool = True, source: str | None = None,
                    line_no: int | None = None) -> GoldAlignment:
    """Parse ``1-2 3p4 ...``: ``-`` sure, ``p`` possible; returns 0-indexed links."""
    sure: set[Link] = set()
    possible: set[Link] = set()
    offset = 1 if one_indexed else 0
    for item in line.split():
        m = _GOLD_LINK.match(item)
        if not m:
            raise InputError(f"bad gold link {item!r}", source=source, line=line_no,
                             hint="gold links look like '3-4' (sure) or '3p4' (possible)")
        i, j = int(m.group(1)) - offset, int(m.group(3)) - offset
        if i < 0 or j < 0:
            raise InputError(f"gold link {item!r} has index 0 in a 1-indexed file", source=source, line=line_no,
                             hint="pass one_indexed=False for 0-indexed gold files")
        possible.add((i, j))
        if m.group(2) == "-":
            sure.add((i, j))
    return GoldAlignment(frozenset(sure), frozenset(possible))


def read_gold(path: str | Path, *, one_indexed: bool = True) -> list[GoldAlignment]:
    """Read a gold alignment file (one pair a line)."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        return [parse_gold_line(line, one_indexed=one_indexed, source=str(path), line_no=k)
                for k, line in enumerate(f, start=1)]


def parse_links(line: str, *, source: str | None = None, line_no: int | None = None) -> list[Link]:
    """Parse a 0-indexed Pharaoh line ``0-0 1-2``."""
    links = []
    for item in line.split():
        m = _PRED_LINK.match(item)
        if not m:
            raise InputError(f"bad alignment link {item!r}", source=source, line=line_no,
                             hint="links look like '0-1' (0-indexed source-target)")
        links.append((int(m.group(1)), int(m.group(2))))
    return links


def read_links(path: str | Path) -> list[list[Link]]:
    """Read a 0-indexed Pharaoh alignment file (one pair a line)."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        return [parse_links(line, source=str(path), line_no=k) for k, line in enumerate(f, start=1)]


def alignment_error_rate(
    predicted: Sequence[Alignment | Iterable[Link]], gold: Sequence[GoldAlignment], *, source: str | None = None
) -> AERResult:
    """Corpus-level AER, precision and recall of ``predicted`` against ``gold``.

    Raises:
        InputError: different numbers of predicted and gold pairs.
    """
    if len(predicted) != len(gold):
        raise InputError(f"{len(predicted)} predicted alignments but {len(gold)} gold alignments", source=source,
                         hint="score the same pairs, in the same order")
    n_pred = n_sure = n_poss = hit_s = hit_p = 0
    for pred, g in zip(predicted, gold):
        links = set(pred.links if isinstance(pred, Alignment) else (tuple(link) for link in pred))
        n_pred += len(links)
        n_sure += len(g.sure)
        n_poss += len(g.possible)
        hit_s += len(links & g.sure)
        hit_p += len(links & g.possible)
    aer = 1.0 - (hit_s + hit_p) / (n_pred + n_sure) if (n_pred + n_sure) else 0.0
    return AERResult(
        aer=aer,
        precision=hit_p / n_pred if n_pred else 0.0,
        recall=hit_s / n_sure if n_sure else 0.0,
        n_pairs=len(gold),
        n_predicted=n_pred,
        n_sure=n_sure,
        n_possible=n_poss,
        hits_sure=hit_s,
        hits_possible=hit_p,
    )


def read_parallel(path: str | Path) -> tuple[list[list[str]], list[list[str]]]:
    """Read a ``source tokens ||| target tokens`` file into token lists."""
    path = Path(path)
    src: list[list[str]] = []
    tgt: list[list[str]] = []
    with open(path, encoding="utf-8") as f:
        for k, line in enumerate(f, start=1):
            parts = line.rstrip("\r\n").split("|||")
            if len(parts) != 2:
                raise InputError("expected one '|||' separating source and target", source=str(path), line=k,
                                 hint="write each pair as 'source tokens ||| target tokens'")
            src.append(parts[0].split())
            tgt.append(parts[1].split())
    return src, tgt
