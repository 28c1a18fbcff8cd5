"""The projector interface: source examples with spans + target texts -> projected examples + QC.

Every projection method (word alignment, markers, constrained decoding) is one module in
``dsbuild/project/`` registered in ``dsbuild.registry.projectors`` behind this interface, so a
builder switches method by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from dsbuild.spans import Example, Span

SentencePolicy = Literal["keep-partial", "reject"]


@dataclass
class Unprojected:
    """A source span that did not make it to the target, and why (stable reason code + detail)."""

    span: Span
    reason: str
    detail: str = ""


@dataclass
class Projection:
    """The result for one sentence pair.

    ``target`` holds the target text, tokens and the projected spans (each with a ``score``).
    Every source span is either in ``target.spans`` (matched through ``mapping``: source span
    index -> target span index) or in ``unprojected``. ``rejected`` is set when the sentence
    policy rejects the whole sentence; ``qc`` holds per-sentence quality checks.
    """

    source: Example
    target: Example
    mapping: dict[int, int] = field(default_factory=dict)
    unprojected: list[Unprojected] = field(default_factory=list)
    rejected: str | None = None
    qc: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Projector(Protocol):
    name: str

    def project(
        self,
        sources: Sequence[Example],
        targets: Sequence[str | Sequence[str] | Example],
        *,
        src_lang: str,
        tgt_lang: str,
    ) -> list[Projection]:
        """Project each source example's spans onto its target (text, token list or Example)."""
        ...
