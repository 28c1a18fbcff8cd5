"""The aligner interface: batches of tokenised sentence pairs in, 0-indexed links out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Alignment:
    """Word alignment of one sentence pair.

    ``links`` are ``(source_index, target_index)`` pairs, 0-indexed, sorted. ``scores`` maps a
    link to its score where the method has one (probability, similarity).
    """

    links: tuple[tuple[int, int], ...]
    scores: dict[tuple[int, int], float] = field(default_factory=dict)

    def to_pharaoh(self) -> str:
        """``0-0 1-2 ...`` (0-indexed)."""
        return " ".join(f"{i}-{j}" for i, j in self.links)

    @classmethod
    def from_pharaoh(cls, line: str) -> Alignment:
        links = sorted({(int(a), int(b)) for a, b in (p.split("-") for p in line.split())})
        return cls(tuple(links))


@runtime_checkable
class Aligner(Protocol):
    """Aligns tokenised sentence pairs. Implementations register in ``dsbuild.registry.aligners``."""

    name: str

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Alignment]:
        """One :class:`Alignment` per pair; ``len(src) == len(tgt)``."""
        ...

    def describe(self) -> dict[str, Any]:
        """Parameters and model revision, recorded in provenance."""
        ...
