"""The projector interface: source examples with spans + target texts -> projected examples + QC.

Every projection method (word alignment, markers, constrained decoding) is one module in
``dsbuild/project/`` registered in ``dsbuild.registry.projectors`` behind this interface, so a
builder switches method by name.
"""

from __future__ import annotations

from collections import Counter
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
    ``span_info`` holds optional per-span details keyed by *source* span index (methods that
    have them fill it: ``tprojection`` its NMT scores and candidate counts, ``ensemble`` how
    many methods agreed, ``agreement``); empty for methods that record nothing per span.
    """

    source: Example
    target: Example
    mapping: dict[int, int] = field(default_factory=dict)
    unprojected: list[Unprojected] = field(default_factory=list)
    rejected: str | None = None
    qc: dict[str, Any] = field(default_factory=dict)
    span_info: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        """True when the sentence was not rejected (its target may still miss some spans)."""
        return self.rejected is None

    @property
    def complete(self) -> bool:
        """True when every source span was projected."""
        return self.rejected is None and not self.unprojected


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


@dataclass
class ProjectionReport:
    """What :func:`dsbuild.project.project` returns: one :class:`Projection` per input pair,
    aggregate counts, the projector's settings and timings.

    ``examples`` are the projected target examples of the kept sentences; ``counts`` add up:
    ``sentences == kept + rejected`` and ``source_spans == projected + unprojected``.
    """

    projections: list[Projection]
    method: str
    src_lang: str
    tgt_lang: str
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.projections)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.projections)

    def __getitem__(self, i: int) -> Projection:
        return self.projections[i]

    @property
    def examples(self) -> list[Example]:
        """Target examples with projected spans, for the sentences that were kept."""
        return [p.target for p in self.projections if p.rejected is None]

    @property
    def rejected(self) -> list[Projection]:
        return [p for p in self.projections if p.rejected is not None]

    @property
    def counts(self) -> dict[str, Any]:
        """Sentence and span counts, with reasons (they add up; see the class docstring)."""
        sent_reasons = Counter(p.rejected for p in self.projections if p.rejected is not None)
        span_reasons = Counter(u.reason for p in self.projections for u in p.unprojected)
        n_src = sum(len(p.source.spans) for p in self.projections)
        n_proj = sum(len(p.mapping) for p in self.projections)
        return {
            "sentences": len(self.projections),
            "kept": len(self.projections) - sum(sent_reasons.values()),
            "complete": sum(p.complete for p in self.projections),
            "rejected": sum(sent_reasons.values()),
            "rejected_by_reason": dict(sorted(sent_reasons.items())),
            "source_spans": n_src,
            "projected": n_proj,
            "unprojected": sum(span_reasons.values()),
            "unprojected_by_reason": dict(sorted(span_reasons.items())),
        }

    def summary(self) -> str:
        """One line for logs: sentences kept and spans projected."""
        c = self.counts
        return (f"{self.method} {self.src_lang}->{self.tgt_lang}: {c['kept']}/{c['sentences']} sentences kept, "
                f"{c['projected']}/{c['source_spans']} spans projected"
                + (f", unprojected by reason {c['unprojected_by_reason']}" if c["unprojected"] else "")
                + (f", rejected by reason {c['rejected_by_reason']}" if c["rejected"] else ""))
