"""Helpers shared by the marker and constrained-decoding projectors (private)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from dsbuild.errors import ConfigError
from dsbuild.project.base import Projection, Unprojected
from dsbuild.spans import Example, Span, Token

_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)

# reason codes (stable; shown in rejects tables)
EMPTY_SOURCE = "empty_source"
EMPTY_TARGET = "empty_target"
OVERLAPPING_SPANS = "overlapping_spans"
MARKER_IN_SOURCE = "marker_in_source"
TOO_LONG = "too_long"
SENTENCE_REJECTED = "sentence_rejected"  # same code as dsbuild.project.reasons (alignment projector)


def tokenize(text: str) -> list[Token]:
    """Word / punctuation tokens with character offsets (for target texts given as plain strings)."""
    return [Token(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def resolve_tokenizer(tokenizer: Any, lang: str) -> Any:
    """None (built-in word/punctuation split), a registered tokenizer name, or an object with ``tokenize``."""
    if tokenizer is None or hasattr(tokenizer, "tokenize"):
        return tokenizer
    try:
        from dsbuild.tokenize.base import get_tokenizer
    except ImportError as err:  # pragma: no cover - the tokenize package ships with dsbuild
        raise ConfigError(f"tokenizer {tokenizer!r} needs dsbuild.tokenize ({err})") from None
    return get_tokenizer(tokenizer, lang)


def target_example(source: Example, target: str | Sequence[str] | Example, tokenizer: Any = None) -> Example:
    """The target as an :class:`Example` (no spans): kept as given, joined, or tokenised.

    Plain strings are split into words and punctuation (``Paris.`` -> ``Paris`` ``.``, so a span
    can end before the full stop), or by ``tokenizer`` (see :func:`resolve_tokenizer`).
    """
    if isinstance(target, Example):
        return Example(id=target.id or source.id, text=target.text, tokens=list(target.tokens), meta=dict(target.meta))
    if isinstance(target, str):
        tokens = tokenizer.tokenize(target) if tokenizer is not None else tokenize(target)
        return Example(id=source.id, text=target, tokens=tokens)
    words = list(target) if isinstance(target, Sequence) else None
    bad = None if words is None else next((i for i, w in enumerate(words) if not isinstance(w, str)), None)
    if words is None or bad is not None:
        from dsbuild.spans import ArgumentTypeError

        got = type(target).__name__ if words is None else f"token {bad} is {words[bad]!r} ({type(words[bad]).__name__})"
        raise ArgumentTypeError(f"target of {source.id!r}: expected a text (str), a list of token strings or an "
                                f"Example; {got}")
    return Example.from_words(source.id, words) if words else Example(id=source.id, text="", tokens=[])


def overlapping(spans: Sequence[Span]) -> tuple[Span, Span] | None:
    ordered = sorted(spans, key=lambda s: (s.token_start, s.token_end))
    for a, b in zip(ordered, ordered[1:]):
        if a.overlaps(b):
            return a, b
    return None


def reject_all(source: Example, target: Example, reason: str, detail: str, qc: dict[str, Any]) -> Projection:
    """A projection that rejects the sentence: every source span unprojected with the reason."""
    return Projection(
        source=source,
        target=target.with_spans([]),
        unprojected=[Unprojected(s, reason, detail) for s in source.spans],
        rejected=reason,
        qc={**qc, "reject_detail": detail},
    )


def check_source(source: Example, markers: tuple[str, str] | None = None) -> tuple[str, str] | None:
    """(reason, detail) when a source cannot be projected by a marker-based method, else None."""
    if not source.text.strip():
        return EMPTY_SOURCE, "the source text is empty"
    pair = overlapping(source.spans)
    if pair is not None:
        a, b = pair
        return OVERLAPPING_SPANS, (
            f"spans {a.label!r} [{a.token_start}, {a.token_end}) and {b.label!r} [{b.token_start}, {b.token_end}) overlap;"
            " markers cannot nest: keep one of them"
        )
    if markers is not None and any(m in source.text for m in markers):
        return MARKER_IN_SOURCE, f"the source text already contains a marker ({markers[0]!r} or {markers[1]!r})"
    return None


def mark_source(source: Example, markers: tuple[str, str], spans: Sequence[Span] | None = None) -> str:
    """The source text with ``markers`` around ``spans`` (default: all), separated by spaces."""
    spans = sorted(source.spans if spans is None else spans, key=lambda s: s.start)
    text = source.text
    out: list[str] = []
    pos = 0
    for s in spans:
        out.append(text[pos : s.start])
        out.append(f" {markers[0]} {text[s.start:s.end]} {markers[1]} ")
        pos = s.end
    out.append(text[pos:])
    return re.sub(r"\s+", " ", "".join(out)).strip()


def char_span_to_tokens(target: Example, start: int, end: int) -> tuple[int, int] | None:
    """Token range ``[i, j)`` covering characters ``[start, end)`` (tokens partly inside included)."""
    idx = [i for i, t in enumerate(target.tokens) if t.end > start and t.start < end]
    if not idx:
        return None
    return idx[0], idx[-1] + 1


def similarity(a: str, b: str) -> float:
    """String similarity in [0, 1] (rapidfuzz ratio, case-insensitive)."""
    from rapidfuzz import fuzz

    if not a or not b:
        return 0.0
    return fuzz.ratio(a.lower(), b.lower()) / 100.0


def reject_sentence(proj: Projection, reason: str, detail: str) -> Projection:
    """Reject a whole sentence (policy ``reject``): projected spans move to ``unprojected`` with
    reason ``sentence_rejected``, the target keeps no spans (same convention as the alignment projector)."""
    moved = [Unprojected(proj.source.spans[k], SENTENCE_REJECTED, f"sentence rejected: {reason}") for k in sorted(proj.mapping)]
    proj.unprojected = sorted(proj.unprojected + moved, key=lambda u: (u.span.token_start, u.span.token_end))
    proj.target = proj.target.with_spans([])
    proj.mapping = {}
    proj.rejected = reason
    proj.qc = {**proj.qc, "reject_detail": detail}
    return proj
