"""Marker-based projection (EasyProject style, Chen et al. 2023).

Each source span is wrapped in markers (``Only France and [ Britain ] backed``), the marked
source is translated, and the marked spans are read back from the translation; the target text
is the translation with the markers removed.

Reading is robust to what models do with markers: spaces around them or not (``[Paris]``),
doubled markers (``[[ Paris ]]``), fullwidth or lenticular brackets (``［``, ``【``). A sentence
whose markers cannot be resolved (unbalanced, nested, empty, a different number of spans than the
source) is rejected with the reason; nothing is dropped silently.

Labels go to the marked target spans by order when that is unambiguous (one span, or all spans
of the same label), else by string similarity to the source span and to its separate
translation (exact match, then similarity > ``similarity_threshold``), else by elimination
(one span left on each side). What remains ambiguous is a reject.

Decisions: a source text that already contains a marker is rejected (``marker_in_source``): the
translation's brackets could not be told apart from ours. Overlapping source spans are rejected
(``overlapping_spans``): markers do not nest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dsbuild.errors import ConfigError
from dsbuild.project import _common as C
from dsbuild.project.base import Projection, SentencePolicy, Unprojected
from dsbuild.registry import projectors
from dsbuild.spans import Example, Span

log = logging.getLogger(__name__)

UNBALANCED = "markers_unbalanced"
EMPTY_MARKED = "empty_marked_span"
COUNT_MISMATCH = "marker_count_mismatch"
AMBIGUOUS = "labels_ambiguous"

#: look-alike brackets models emit for ``[`` / ``]``
BRACKET_VARIANTS = {"［": "[", "］": "]", "【": "[", "】": "]", "〔": "[", "〕": "]", "〚": "[", "〛": "]"}


@dataclass(frozen=True)
class MarkedSpan:
    """A span read from a marked translation: character offsets into the cleaned text."""

    start: int
    end: int
    text: str


class MarkerParseError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_marked(text: str, markers: tuple[str, str] = ("[", "]")) -> tuple[str, list[MarkedSpan]]:
    """Remove markers from a translation and return (clean text, marked spans in order).

    Raises :class:`MarkerParseError` (with a reason code) when the markers are unbalanced,
    nested or enclose nothing.
    """
    open_m, close_m = markers
    if markers == ("[", "]"):
        for k, v in BRACKET_VARIANTS.items():
            text = text.replace(k, v)
    # events: (clean position, kind); the clean text drops markers and the spaces they leave doubled
    clean: list[str] = []
    events: list[tuple[int, str]] = []
    i = 0
    while i < len(text):
        if text.startswith(open_m, i) or text.startswith(close_m, i):
            kind = "open" if text.startswith(open_m, i) else "close"
            events.append((len(clean), kind))
            i += len(open_m if kind == "open" else close_m)
            # swallow the spaces after a marker when the clean text already ends in a space (or is empty)
            while i < len(text) and text[i].isspace() and (not clean or clean[-1].isspace()):
                i += 1
            continue
        clean.append(text[i])
        i += 1
    raw = "".join(clean)
    stripped = raw.rstrip()
    lead = len(raw) - len(raw.lstrip())
    out_text = stripped[lead:]
    spans: list[MarkedSpan] = []
    start: int | None = None
    last_kind = None
    last_pos = -1
    for pos, kind in events:
        doubled = kind == last_kind and raw[last_pos:pos].strip() == ""
        last_kind, last_pos = kind, pos
        if doubled:
            continue  # "[[ x ]]" or "[ [ x" : one marker written twice
        if kind == "open":
            if start is not None:
                raise MarkerParseError(UNBALANCED, f"an opening marker at character {pos} inside an open span (nested or unclosed)")
            start = pos
        else:
            if start is None:
                raise MarkerParseError(UNBALANCED, f"a closing marker at character {pos} without an opening marker")
            a, b = start, pos
            while a < b and raw[a].isspace():
                a += 1
            while b > a and raw[b - 1].isspace():
                b -= 1
            if a == b:
                raise MarkerParseError(EMPTY_MARKED, f"markers enclose no text at character {pos}")
            a, b = max(a - lead, 0), min(b - lead, len(out_text))
            spans.append(MarkedSpan(a, b, out_text[a:b]))
            start = None
    if start is not None:
        raise MarkerParseError(UNBALANCED, "an opening marker is never closed")
    return out_text, spans


@projectors.register("markers")
class MarkerProjector:
    """Project spans by translating the marked source (EasyProject).

    Args:
        translator: any Translator (``translate`` is used; the model should be marker-aware).
        markers: opening and closing marker strings.
        translate_spans: translate each source span separately when labels must be assigned by
            similarity (EasyProject's matching against the span translation).
        similarity_threshold: minimum similarity for a fuzzy match.
        policy: ``"reject"`` (default) or ``"keep-partial"`` (keep the spans that could be
            assigned, record the rest in ``unprojected``).
    """

    name = "markers"
    #: this method produces its own target text (the marked translation without markers)
    translates = True

    def __init__(
        self,
        translator: Any,
        *,
        markers: tuple[str, str] = ("[", "]"),
        translate_spans: bool = True,
        similarity_threshold: float = 0.5,
        policy: SentencePolicy = "reject",
        target_tokenizer: Any = None,
    ) -> None:
        if translator is None or not callable(getattr(translator, "translate", None)):
            raise ConfigError("the markers projector needs a translator (an object with translate(texts, src_lang, tgt_lang))")
        if policy not in ("reject", "keep-partial"):
            raise ConfigError(f"policy must be 'reject' or 'keep-partial', not {policy!r}")
        if len(markers) != 2 or not all(markers) or markers[0] == markers[1]:
            raise ConfigError(f"markers must be two distinct non-empty strings, not {markers!r}")
        self.translator = translator
        self.markers = (markers[0], markers[1])
        self.translate_spans = translate_spans
        self.similarity_threshold = similarity_threshold
        self.policy = policy
        self.target_tokenizer = target_tokenizer

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "markers": list(self.markers),
            "translate_spans": self.translate_spans,
            "similarity_threshold": self.similarity_threshold,
            "policy": self.policy,
        }

    def project(
        self,
        sources: Sequence[Example],
        targets: Sequence[str | Sequence[str] | Example] | None = None,
        *,
        src_lang: str,
        tgt_lang: str,
    ) -> list[Projection]:
        """Translate the marked sources and read the spans back.

        ``targets`` are not needed (this method makes its own translation); when given they are
        not used, and ``qc["given_target_unused"]`` says so.
        """
        if targets is not None:
            log.info("markers projection translates the marked sources itself; the %d given targets are not used", len(targets))
        tok = C.resolve_tokenizer(self.target_tokenizer, tgt_lang)
        out: list[Projection | None] = [None] * len(sources)
        todo: list[int] = []
        for i, src in enumerate(sources):
            bad = C.check_source(src, self.markers if src.spans else None)
            if bad is not None:
                out[i] = C.reject_all(src, Example(id=src.id, text="", tokens=[]), bad[0], bad[1], self._qc(targets))
            else:
                todo.append(i)
        marked = [C.mark_source(sources[i], self.markers) for i in todo]
        translations = self.translator.translate(marked, src_lang, tgt_lang) if marked else []
        pending: list[tuple[int, str, list[MarkedSpan]]] = []
        for i, translation in zip(todo, translations):
            src = sources[i]
            qc = self._qc(targets)
            qc["marked_translation"] = translation
            try:
                text, marked_spans = parse_marked(translation, self.markers)
            except MarkerParseError as err:
                text = _strip_all(translation, self.markers)
                out[i] = C.reject_all(src, C.target_example(src, text, tok), err.reason, err.detail, qc)
                continue
            target = C.target_example(src, text, tok)
            if not text.strip() and src.text.strip():
                out[i] = C.reject_all(src, target, C.EMPTY_TARGET, "the translation is empty", qc)
                continue
            out[i] = Projection(source=src, target=target, qc=qc)
            pending.append((i, text, marked_spans))
        # separate translations of source spans, only for sentences that need matching
        need = [(i, ms) for i, _, ms in pending if not _order_ok(sources[i].spans, ms)]
        span_tr: dict[tuple[int, int], str] = {}
        if self.translate_spans and need:
            keys = [(i, k) for i, _ in need for k in range(len(sources[i].spans))]
            texts = [sources[i].span_text(sources[i].spans[k]) for i, k in keys]
            for key, tr in zip(keys, self.translator.translate(texts, src_lang, tgt_lang)):
                span_tr[key] = tr
        for i, _text, marked_spans in pending:
            proj = out[i]
            assert proj is not None
            self._assign(i, proj, marked_spans, span_tr)
        return out  # type: ignore[return-value]

    def _qc(self, targets: Any) -> dict[str, Any]:
        qc: dict[str, Any] = {"method": self.name}
        if targets is not None:
            qc["given_target_unused"] = True
        return qc

    # ------------------------------------------------------------------ label assignment
    def _assign(self, i: int, proj: Projection, marked: list[MarkedSpan], span_tr: dict[tuple[int, int], str]) -> None:
        src = proj.source
        k, m = len(src.spans), len(marked)
        if k != m:
            proj.qc["marked_spans"] = m
        if k != m and self.policy == "reject":
            # the model lost or invented a marker: EasyProject drops such sentences; we record why
            detail = f"{k} spans in the source but {m} marked in the translation"
            proj.unprojected = [Unprojected(s, COUNT_MISMATCH, detail) for s in src.spans]
            proj.rejected = COUNT_MISMATCH
            proj.qc["reject_detail"] = detail
            return
        if _order_ok(src.spans, marked):
            pairs, how = {j: j for j in range(k)}, ["order"]
        else:
            pairs, how = self._match(i, src, marked, span_tr)
        spans: list[tuple[int, Span]] = []
        unprojected: list[Unprojected] = []
        for j, span in enumerate(src.spans):
            if j not in pairs:
                if k != m:
                    unprojected.append(Unprojected(span, COUNT_MISMATCH, f"{k} spans in the source but {m} marked in the translation"))
                else:
                    unprojected.append(Unprojected(span, AMBIGUOUS, "the marked spans could not be told apart by order, similarity or elimination"))
                continue
            ms = marked[pairs[j]]
            rng = C.char_span_to_tokens(proj.target, ms.start, ms.end)
            if rng is None:
                unprojected.append(Unprojected(span, EMPTY_MARKED, f"marked text {ms.text!r} holds no token"))
                continue
            spans.append((j, proj.target.span_from_tokens(rng[0], rng[1], span.label, score=1.0)))
        target = proj.target.with_spans([sp for _, sp in spans])
        index = {(sp.token_start, sp.token_end, sp.label): t for t, sp in enumerate(target.spans)}
        proj.target = target
        proj.mapping = {j: index[(sp.token_start, sp.token_end, sp.label)] for j, sp in spans}
        proj.unprojected = unprojected
        proj.qc["assignment"] = "+".join(how) if how else "none"
        if unprojected and self.policy == "reject":
            C.reject_sentence(proj, unprojected[0].reason, f"{len(unprojected)} of {k} spans unprojected ({unprojected[0].detail})")

    def _match(self, i: int, src: Example, marked: list[MarkedSpan], span_tr: dict[tuple[int, int], str]) -> tuple[dict[int, int], list[str]]:
        """Exact, then fuzzy (> threshold) matching, then elimination."""
        k, m = len(src.spans), len(marked)
        sim = [[0.0] * m for _ in range(k)]
        for a in range(k):
            refs = [src.span_text(src.spans[a])]
            if (i, a) in span_tr:
                refs.append(span_tr[(i, a)])
            for b in range(m):
                sim[a][b] = max(C.similarity(r, marked[b].text) for r in refs)
        pairs: dict[int, int] = {}
        how: list[str] = []
        used: set[int] = set()
        candidates = sorted(((sim[a][b], a, b) for a in range(k) for b in range(m)), key=lambda x: (-x[0], x[1], x[2]))
        for value, a, b in candidates:
            if value <= self.similarity_threshold:
                break
            if a in pairs or b in used:
                continue
            # a fuzzy match must be unambiguous: no other free marked span as close to this source span
            rivals = [b2 for b2 in range(m) if b2 != b and b2 not in used and abs(sim[a][b2] - value) < 1e-9]
            if rivals:
                continue
            pairs[a] = b
            used.add(b)
            how.append("exact" if value >= 1.0 else "similarity")
        left_src = [a for a in range(k) if a not in pairs]
        left_tgt = [b for b in range(m) if b not in used]
        if len(left_src) == 1 and len(left_tgt) == 1:
            pairs[left_src[0]] = left_tgt[0]
            how.append("elimination")
        elif left_src and len(left_src) == len(left_tgt) and len({src.spans[a].label for a in left_src}) == 1:
            for a, b in zip(left_src, left_tgt):  # same label everywhere: order among the rest is harmless
                pairs[a] = b
            how.append("order")
        return pairs, sorted(set(how), key=how.index)


def _order_ok(spans: Sequence[Span], marked: Sequence[MarkedSpan]) -> bool:
    """Order decides when the counts agree and any permutation gives the same labels."""
    return len(spans) == len(marked) and (len(spans) <= 1 or len({s.label for s in spans}) == 1)


def _strip_all(text: str, markers: tuple[str, str]) -> str:
    for m in markers:
        text = text.replace(m, " ")
    if markers == ("[", "]"):
        for k in BRACKET_VARIANTS:
            text = text.replace(k, " ")
    return " ".join(text.split())
