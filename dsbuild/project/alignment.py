"""Span projection through word alignments (the offline default projection method).

For each source span the target tokens linked to its tokens are collected, cut into clusters
(a cluster ends where a target token linked to a word *outside* the span intervenes), the best
clusters are closed to a contiguous range, and its edges are repaired. Every rule uses only the
alignment, token shape (punctuation, capitalisation, length) and the source span itself, never a
word list of one language, so the same defaults serve every language pair:

1. **Evidence**: the symmetrised links (``links``) and, when the aligner gives both directions,
   their intersection (``strong``: links both directions agree on) and each direction alone.
2. **Clusters / split projections**: aligned target tokens separated by a token that belongs to
   another source word form separate clusters. ``split="best"`` keeps the clusters holding a
   strong link (the others are stray one-direction links: repeated words, function words); when
   none has one, ``weak_split="best"`` keeps the cluster with the most links, then the longest
   words (content words are longer than function words in every language: Zipf's law of
   abbreviation). ``split="closure"`` takes min..max over all clusters (the classic baseline);
   ``split="reject"`` leaves the span unprojected with reason ``split``.
3. **Copy anchor** (``copy_anchor``): if the span's own words occur (case-insensitively) inside the
   aligned range or within ``max_gap`` tokens of it, that occurrence is the span (names, acronyms
   and numbers are often copied).
4. **Edge repair** (each rule can be switched off):
   ``trim_punct`` drops punctuation at an edge unless the source span has punctuation there;
   ``trim_foreign`` drops an edge token with more links to words outside the span than inside,
   unless one of its links into the span is strong;
   ``trim_case`` drops a short (``short_word``) or partly-outside-linked lower-case edge token
   linked only one way into a span that names
   something (a capitalised source edge word) and keeps a capitalised word (articles and
   prepositions before names: ``del Parlamento Europeo``); the sentence's first word counts as
   lower-case when it is also linked outside the span (its capital is positional);
   ``short_word`` (3) drops such a lower-case edge token when every span word it is linked to has
   at most that many characters (function words and clitics, ``el`` <- ``'s``);
   ``extend_case`` adds an adjacent capitalised target token that no source word claims firmly,
   when the source span is all capitalised (name parts the aligner missed);
   ``extend_name`` extends a capitalised span end over at most ``max_gap`` free lower-case or
   punctuation tokens to a free capitalised token (``Código de Ayudas a la Siderurgia``).
   Both extensions need capitals to mark names: with ``case_signal="auto"`` they are switched off
   for a batch whose targets capitalise more than ``max_capital_rate`` (0.2) of their
   non-initial words (German: every noun), see :func:`capitalisation_rate`.
5. **Fallback**: a span with no aligned target token is found by its exact surface string in the
   target when ``string_fallback``; otherwise it is unprojected with reason ``unaligned``.
6. **Collisions**: spans are placed in order of confidence; a later span overlapping an earlier
   one is trimmed at the shared edge and repaired again (``collisions="trim"``) or unprojected
   (reason ``collision``).
7. **Confidence** per span: source coverage x target coverage x link purity, scaled by the share
   of its links found in both directions. ``min_score`` unprojects spans below a threshold.

``ensemble=True`` lets the two directions, their union and intersection vote on each span's
range (measured: no gain over the rules above on Europarl, so off by default).

Target tokens that are not the aligner's units (``sushi.``, ``(UE)``: punctuation attached by a
whitespace split) are re-tokenised into them before alignment (``retokenize="moses"``, default),
projected on the units, and the spans expressed over the user's tokens; a span edge inside a user
token widens the span to the whole token and is reported (:mod:`dsbuild.project.retokenize`).
Already-split tokens are aligned as given. Measured on Europarl en->es with the Spanish
punctuation re-attached (``scripts/eval_attached_punct.py``, eflomal seeds 1-3): F1 0.937 mean
(0.942 split; 0.869 aligned as given, seed 1); with the split run's own links the attached form
scores exactly the split form's F1 (the gap is the aligner's run-to-run variation).

Sentence policy: ``keep-partial`` keeps a sentence with some spans unprojected (each recorded in
:attr:`Projection.unprojected` with a reason); ``reject`` rejects it (reason ``unprojected_span``).

Measured on Europarl NER (799 sentences, gold tokens; ``scripts/eval_europarl.py``): these
defaults add about 2.5 F1 points over min..max closure on en->es and on es->en.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
import time
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from dsbuild.errors import ConfigError
from dsbuild.project import reasons as R
from dsbuild.project.base import Projection, SentencePolicy, Unprojected
from dsbuild.project.inputs import PreparedPair, prepare_pairs
from dsbuild.project.retokenize import UnitMap, batch_units
from dsbuild.registry import projectors
from dsbuild.spans import Example, Span, tokens_from_words

log = logging.getLogger(__name__)

Link = tuple[int, int]


@dataclass(frozen=True)
class LinkViews:
    """The alignment evidence for one sentence pair.

    ``links`` is the symmetrised alignment used to find spans; ``strong`` the links both
    directions agree on (defaults to ``links``); ``fwd``/``rev`` the directional alignments when
    known (source->target and target->source models, both as (source, target) pairs).
    """

    links: frozenset[Link]
    strong: frozenset[Link] | None = None
    fwd: frozenset[Link] | None = None
    rev: frozenset[Link] | None = None
    #: when the aligner saw the target in its own units (not the user's tokens): the links' target
    #: indices are unit indices, and this maps units back to the user's tokens
    units: UnitMap | None = None

    @classmethod
    def from_alignment(cls, alignment: Any) -> LinkViews:
        """From a :class:`dsbuild.align.base.Alignment` (directional links read when present)."""
        if isinstance(alignment, LinkViews):
            return alignment
        links = frozenset(tuple(link) for link in getattr(alignment, "links", alignment))
        fwd = getattr(alignment, "fwd", None)
        rev = getattr(alignment, "rev", None)
        fwd = frozenset(map(tuple, fwd)) if fwd is not None else None
        rev = frozenset(map(tuple, rev)) if rev is not None else None
        strong = fwd & rev if fwd is not None and rev is not None else None
        return cls(links, strong, fwd, rev)  # type: ignore[arg-type]


@dataclass
class AlignmentProjectionOptions:
    """The span-projection rules (see the module docstring). Defaults are language-independent.

    Attributes:
        split: ``best`` | ``closure`` | ``reject`` for aligned tokens in separate groups.
        weak_split: when no group has a strong link: ``best`` (most links, then longest words)
            or ``closure``.
        max_gap: longest run of tokens a group may bridge, and the reach of copy anchors and of
            name-tail extension.
        trim_punct, trim_foreign, trim_case, short_word: edge trimming (``short_word=0`` disables
            the short-word rule).
        trim_weak: also trim edge tokens linked one way to a span word that has a strong link
            elsewhere (off: it cuts multi-word translations such as ``Reino Unido``).
        copy_anchor, string_fallback: use the span's own words found in the target.
        extend_case, extend_name: capital-based extensions; ``case_signal`` (``auto`` | ``on`` |
            ``off``) and ``max_capital_rate`` decide whether capitals mark names in the target.
        collisions: ``trim`` or ``drop`` the lower-confidence of two overlapping projections.
        min_score: unproject spans whose confidence is lower.
        ensemble: let directional / union / intersection alignments vote on each span.
    """

    split: Literal["best", "closure", "reject"] = "best"
    max_gap: int = 3
    trim_punct: bool = True
    trim_foreign: bool = True
    trim_weak: bool = False
    trim_case: bool = True
    copy_anchor: bool = True
    extend_case: bool = True
    string_fallback: bool = True
    collisions: Literal["trim", "drop"] = "trim"
    min_score: float = 0.0
    ensemble: bool = False
    weak_split: Literal["best", "closure"] = "best"
    extend_name: bool = True
    short_word: int = 3
    case_signal: Literal["auto", "on", "off"] = "auto"
    max_capital_rate: float = 0.2

    def __post_init__(self) -> None:
        if self.split not in ("best", "closure", "reject"):
            raise ConfigError(f"split must be 'best', 'closure' or 'reject', not {self.split!r}")
        if self.collisions not in ("trim", "drop"):
            raise ConfigError(f"collisions must be 'trim' or 'drop', not {self.collisions!r}")
        if self.max_gap < 0:
            raise ConfigError("max_gap must be >= 0")
        if self.weak_split not in ("best", "closure"):
            raise ConfigError(f"weak_split must be 'best' or 'closure', not {self.weak_split!r}")
        if self.case_signal not in ("auto", "on", "off"):
            raise ConfigError(f"case_signal must be 'auto', 'on' or 'off', not {self.case_signal!r}")

    def for_targets(self, target_words: Iterable[Sequence[str]]) -> tuple[AlignmentProjectionOptions, float | None]:
        """These options for a batch of targets: the capital-based extensions are switched off when
        capitals do not mark names in the target language (German capitalises every noun).

        Returns the options to use and the measured capitalisation rate (``None`` if not measured).
        """
        if self.case_signal == "on":
            return self, None
        rate = capitalisation_rate(target_words) if self.case_signal == "auto" else None
        if self.case_signal == "off" or (rate is not None and rate > self.max_capital_rate):
            return replace(self, extend_case=False, extend_name=False), rate
        return self, rate


def capitalisation_rate(sentences: Iterable[Sequence[str]]) -> float:
    """Share of capitalised words among alphabetic words that do not start a sentence.

    About 0.04-0.08 in English, Spanish or French (capitals mark names), 0.3 or more in German
    (every noun): a language-independent test of whether a capital is evidence of a name.
    """
    capital = total = 0
    for words in sentences:
        first = True
        for w in words:
            if not any(ch.isalpha() for ch in w):
                continue
            if first:
                first = False
                continue
            total += 1
            capital += w[:1].isupper()
    return capital / total if total else 0.0


@dataclass
class _Candidate:
    index: int  # source span index
    start: int  # target token range [start, end)
    end: int
    score: float
    how: str  # "aligned" | "string"
    split: bool = False
    repairs: list[str] = field(default_factory=list)


def _is_punct(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper()


def _is_lower(word: str) -> bool:
    return word[:1].islower()


class _Sentence:
    """Link indexes of one sentence pair."""

    def __init__(self, source: Example, target: Example, views: LinkViews) -> None:
        self.source, self.target, self.views = source, target, views
        self.src_words = [unicodedata.normalize("NFC", w) for w in source.words]
        self.tgt_words = [unicodedata.normalize("NFC", w) for w in target.words]
        n_src, n_tgt = len(self.src_words), len(self.tgt_words)
        self.links = frozenset((i, j) for i, j in views.links if 0 <= i < n_src and 0 <= j < n_tgt)
        self.dropped_links = len(views.links) - len(self.links)
        self.strong = self.links if views.strong is None else frozenset(views.strong) & self.links
        self.s2t: list[set[int]] = [set() for _ in range(n_src)]
        self.t2s: list[set[int]] = [set() for _ in range(n_tgt)]
        for i, j in self.links:
            self.s2t[i].add(j)
            self.t2s[j].add(i)
        # index of the first target word with a letter or digit (its capital is positional)
        self.first_word = next((j for j, w in enumerate(self.tgt_words) if not _is_punct(w)), 0)


def _clusters(sent: _Sentence, inside: range, aligned: list[int], max_gap: int) -> list[list[int]]:
    """Aligned target tokens, cut where a token linked outside the span (or a long gap) intervenes."""
    clusters: list[list[int]] = [[aligned[0]]]
    for j in aligned[1:]:
        prev = clusters[-1][-1]
        gap = range(prev + 1, j)
        foreign = any(sent.t2s[g] and not (sent.t2s[g] & set(inside)) for g in gap)
        if foreign or len(gap) > max_gap:
            clusters.append([j])
        else:
            clusters[-1].append(j)
    return clusters


def _n_links(sent: _Sentence, inside: range, cluster: list[int]) -> int:
    return sum(1 for j in cluster for i in sent.t2s[j] if i in inside)


def _has_strong(sent: _Sentence, inside: range, cluster: list[int]) -> bool:
    return any((i, j) in sent.strong for j in cluster for i in sent.t2s[j] if i in inside)


def _string_match(sent: _Sentence, span: Span, taken: set[int]) -> tuple[int, int] | None:
    """The first free occurrence of the span's exact words in the target (copied names, numbers)."""
    words = sent.src_words[span.token_start : span.token_end]
    n = len(words)
    if all(_is_punct(w) for w in words):
        return None
    for a in range(len(sent.tgt_words) - n + 1):
        if sent.tgt_words[a : a + n] == words and not taken.intersection(range(a, a + n)):
            return a, a + n
    return None


def _copy_inside(sent: _Sentence, span: Span, a: int, b: int) -> tuple[int, int] | None:
    """An occurrence of the span's own words (case-insensitive) inside the target range ``[a, b]``.

    Names, acronyms and numbers are often copied by the translator; when the copy lies in the
    aligned region it is the best evidence of the span's exact edges.
    """
    words = [w.casefold() for w in sent.src_words[span.token_start : span.token_end]]
    if all(_is_punct(w) for w in words):
        return None
    n = len(words)
    lowered = [w.casefold() for w in sent.tgt_words[a : b + 1]]
    for k in range(len(lowered) - n + 1):
        if lowered[k : k + n] == words:
            return a + k, a + k + n
    return None


def _repair(sent: _Sentence, span: Span, a: int, b: int, opt: AlignmentProjectionOptions, repairs: list[str]) -> tuple[int, int]:
    """Trim and extend the edges of the target range ``[a, b]`` (inclusive)."""
    inside = span.token_range
    src_first = sent.src_words[span.token_start]
    src_last = sent.src_words[span.token_end - 1]
    src_words = sent.src_words[span.token_start : span.token_end]

    def in_links(j: int) -> int:
        return sum(1 for i in sent.t2s[j] if i in inside)

    src_named = any(_is_capitalised(w) for w in src_words)

    def keeps_capital(lo: int, hi: int) -> bool:
        return any(_is_capitalised(w) for w in sent.tgt_words[lo : hi + 1])

    def trim_edge(j: int, src_edge: str, lo: int, hi: int) -> str | None:
        word = sent.tgt_words[j]
        n_in = in_links(j)
        if n_in == 0:
            return "unaligned-edge"
        if opt.trim_punct and _is_punct(word) and not _is_punct(src_edge):
            return "punct"
        if opt.trim_foreign:
            n_out = len(sent.t2s[j]) - n_in
            strong_in = any((i, j) in sent.strong for i in sent.t2s[j] if i in inside)
            if n_out > n_in and not strong_in:
                return "foreign"
        weak = not any((i, j) in sent.strong for i in sent.t2s[j] if i in inside)
        if opt.trim_weak and weak and all(
                any((i, k) in sent.strong for k in sent.s2t[i] if lo <= k <= hi) for i in sent.t2s[j] if i in inside):
            return "weak"
        # a sentence-initial capital says nothing about the word; it must then also be linked outside
        lower = _is_lower(word) or (j == sent.first_word and n_in < len(sent.t2s[j]))
        function_like = len(word) <= opt.short_word or n_in < len(sent.t2s[j])
        if opt.trim_case and weak and function_like and src_named and lower and keeps_capital(lo, hi):
            return "case"
        short = all(len(sent.src_words[i]) <= opt.short_word for i in sent.t2s[j] if i in inside)
        if opt.short_word and short and src_named and lower and keeps_capital(lo, hi):
            return "short"
        return None

    changed = True
    while changed and a < b:
        changed = False
        why = trim_edge(a, src_first, a + 1, b)
        if why:
            repairs.append(f"trim-left:{why}")
            a += 1
            changed = True
            continue
        why = trim_edge(b, src_last, a, b - 1)
        if why:
            repairs.append(f"trim-right:{why}")
            b -= 1
            changed = True
    if opt.extend_case and all(_is_capitalised(w) or _is_punct(w) for w in src_words) and _is_capitalised(src_first):
        n = len(sent.tgt_words)
        # the sentence's first word is capitalised whatever it is, so it is never added
        while b + 1 < n and b + 1 > sent.first_word and _free(sent, b + 1) and _is_capitalised(sent.tgt_words[b + 1]):
            b += 1
            repairs.append("extend-right:case")
        while a - 1 > sent.first_word and _free(sent, a - 1) and _is_capitalised(sent.tgt_words[a - 1]):
            a -= 1
            repairs.append("extend-left:case")
    if opt.extend_name and _is_capitalised(sent.tgt_words[b]) and (b > sent.first_word or src_named):
        b = _extend_name(sent, b, opt.max_gap, repairs)
    return a, b


def _free(sent: _Sentence, j: int) -> bool:
    """A target token no source word claims firmly (unaligned, or linked one way only)."""
    return not any((i, j) in sent.strong for i in sent.t2s[j])


def _extend_name(sent: _Sentence, b: int, max_gap: int, repairs: list[str]) -> int:
    """Extend a capitalised span end over a few free lower-case/punctuation tokens to a free
    capitalised token (multi-word names whose tail the aligner left out: ``Código de Ayudas a la
    Siderurgia``, ``Estados Miembros de la UE``, ``Grupo del PPE / DE``)."""
    n = len(sent.tgt_words)
    k = b + 1
    while k < n and k - b - 1 < max_gap and _free(sent, k) and not _is_capitalised(sent.tgt_words[k]) \
            and not sent.tgt_words[k][:1].isdigit():
        k += 1
    if k < n and k > b + 1 and _free(sent, k) and _is_capitalised(sent.tgt_words[k]) and not sent.t2s[k]:
        repairs.append(f"extend-right:name+{k - b}")
        return k
    return b


def _confidence(sent: _Sentence, span: Span, a: int, b: int) -> float:
    inside = span.token_range
    tgt = range(a, b + 1)
    block = [(i, j) for i in inside for j in sent.s2t[i] if j in tgt]
    if not block:
        return 0.0
    src_cov = len({i for i, _ in block}) / len(inside)
    tgt_cov = len({j for _, j in block}) / len(tgt)
    touching = sum(len(sent.t2s[j]) for j in tgt) + sum(len(sent.s2t[i]) for i in inside)
    purity = 2 * len(block) / touching if touching else 0.0
    agreement = 0.5 + 0.5 * sum(1 for link in block if link in sent.strong) / len(block)
    return round(src_cov * tgt_cov * purity * agreement, 4)


def _candidate(sent: _Sentence, k: int, span: Span, opt: AlignmentProjectionOptions) -> _Candidate | Unprojected:
    inside = span.token_range
    aligned = sorted({j for i in inside for j in sent.s2t[i]})
    if not aligned:
        return Unprojected(span, R.UNALIGNED, "no target token is aligned to the span")
    clusters = _clusters(sent, inside, aligned, opt.max_gap)
    split = len(clusters) > 1
    if split and opt.split == "reject":
        return Unprojected(span, R.SPLIT, f"aligned target tokens fall in {len(clusters)} separate groups: {clusters}")
    if split and opt.split == "closure":
        a, b = aligned[0], aligned[-1]
    else:  # drop clusters held only by weak (one-direction) links when another has strong ones
        strong = [c for c in clusters if _has_strong(sent, inside, c)]
        if strong:
            kept = strong
        elif opt.weak_split == "best":
            # no cluster is confirmed by both directions: keep the one with the most links, then the
            # one with the longest words (content words are longer than function words in every
            # language: Zipf's law of abbreviation)
            kept = [max(clusters, key=lambda c: (_n_links(sent, inside, c), sum(len(sent.tgt_words[j]) for j in c)))]
        else:
            kept = clusters
        a, b = kept[0][0], kept[-1][-1]
    repairs: list[str] = []
    if opt.copy_anchor:
        hit = _copy_inside(sent, span, max(0, a - opt.max_gap), min(len(sent.tgt_words) - 1, b + opt.max_gap))
        if hit is not None:
            return _Candidate(k, hit[0], hit[1], _confidence(sent, span, hit[0], hit[1] - 1), "aligned", split, ["copy-anchor"])
    a, b = _repair(sent, span, a, b, opt, repairs)
    return _Candidate(k, a, b + 1, _confidence(sent, span, a, b), "aligned", split, repairs)


def _voters(source: Example, target: Example, views: LinkViews) -> list[_Sentence]:
    """Extra alignment views that vote with the symmetrised one: each direction, union, intersection."""
    if views.fwd is None or views.rev is None:
        return []
    strong = views.fwd & views.rev
    return [_Sentence(source, target, LinkViews(links, strong)) for links in
            (views.fwd, views.rev, views.fwd | views.rev, strong)]


def _vote(main: _Candidate | Unprojected, others: list[_Candidate | Unprojected], n: int) -> _Candidate | Unprojected:
    """The target range most views agree on (ties keep the symmetrised view's answer)."""
    votes: dict[tuple[int, int], int] = {}
    for c in [main, *others]:
        if isinstance(c, _Candidate):
            votes[(c.start, c.end)] = votes.get((c.start, c.end), 0) + 1
    if not votes:
        return main
    best = max(votes.values())
    if isinstance(main, _Candidate) and votes[(main.start, main.end)] == best:
        winner = main
    else:
        winner = next(c for c in others if isinstance(c, _Candidate) and votes[(c.start, c.end)] == best)
    winner.repairs.append(f"votes:{best}/{n}")
    return winner


def project_sentence(
    source: Example,
    target: Example,
    alignment: Any,
    options: AlignmentProjectionOptions | None = None,
    *,
    policy: SentencePolicy = "keep-partial",
) -> Projection:
    """Project ``source``'s spans onto ``target`` (tokens only) given the word alignment.

    ``alignment`` is a :class:`LinkViews`, an :class:`~dsbuild.align.base.Alignment` or an
    iterable of 0-indexed ``(source_index, target_index)`` links. No aligner runs here: this is
    the pure projection step, usable with alignments from any tool.

    When ``alignment`` is a :class:`LinkViews` with ``units`` (the target as the aligner's units,
    see :mod:`dsbuild.project.retokenize`), the spans are projected on the units and expressed
    over ``target``'s tokens; a span edge inside a token widens the span to the whole token
    (reported in ``span_info[k]["widened"]`` and ``qc["widened_spans"]``).
    """
    opt = options or AlignmentProjectionOptions()
    views = LinkViews.from_alignment(alignment)
    if views.units is not None:
        return _project_units(source, target, views, opt, policy)
    sent = _Sentence(source, target, views)
    voters = _voters(source, target, views) if opt.ensemble else []
    unprojected: list[Unprojected] = []
    candidates: list[_Candidate] = []
    for k, span in enumerate(source.spans):
        cand = _candidate(sent, k, span, opt)
        if voters:
            cand = _vote(cand, [_candidate(v, k, span, opt) for v in voters], len(voters) + 1)
        if isinstance(cand, Unprojected):
            unprojected.append(cand)
        else:
            candidates.append(cand)

    placed: list[_Candidate] = []
    taken: set[int] = set()
    for cand in sorted(candidates, key=lambda c: (-c.score, c.index)):
        a, b = cand.start, cand.end
        clash = taken.intersection(range(a, b))
        if clash and opt.collisions == "trim":
            while a < b and a in taken:
                a += 1
            while b > a and (b - 1) in taken:
                b -= 1
            if a < b and not taken.intersection(range(a, b)):
                cand.repairs.append("trim:collision")
                ra, rb = _repair(sent, source.spans[cand.index], a, b - 1, opt, cand.repairs)
                if not taken.intersection(range(ra, rb + 1)):  # repairs may extend: never into a placed span
                    a, b = ra, rb + 1
                cand.start, cand.end = a, b
                cand.score = _confidence(sent, source.spans[cand.index], a, b - 1)
                clash = set()
        if clash:
            other = next(c for c in placed if c.start < cand.end and cand.start < c.end)
            unprojected.append(Unprojected(source.spans[cand.index], R.COLLISION,
                                           f"target tokens [{cand.start}, {cand.end}) are taken by the projection of source span "
                                           f"{other.index} ({source.spans[other.index].label}), which has higher confidence"))
            continue
        if cand.score < opt.min_score:
            unprojected.append(Unprojected(source.spans[cand.index], R.LOW_CONFIDENCE,
                                           f"confidence {cand.score} < min_score {opt.min_score}"))
            continue
        placed.append(cand)
        taken.update(range(cand.start, cand.end))

    if opt.string_fallback:
        still: list[Unprojected] = []
        for u in unprojected:
            hit = _string_match(sent, u.span, taken) if u.reason == R.UNALIGNED else None
            if hit is None:
                still.append(u)
                continue
            k = source.spans.index(u.span)
            placed.append(_Candidate(k, hit[0], hit[1], 0.5, "string", repairs=["string-match"]))
            taken.update(range(*hit))
        unprojected = still
    return _finish(sent, placed, unprojected, policy)


def _finish(sent: _Sentence, placed: list[_Candidate], unprojected: list[Unprojected], policy: SentencePolicy) -> Projection:
    source, target = sent.source, sent.target
    placed.sort(key=lambda c: (c.start, c.end))
    for x, y in zip(placed, placed[1:]):  # guaranteed by the placement loop; a bug if it fails
        assert x.end <= y.start, f"overlapping projections {x} {y} in {source.id}"
    spans = [target.span_from_tokens(c.start, c.end, source.spans[c.index].label, c.score) for c in placed]
    out_target = replace(target, spans=spans, meta=dict(target.meta))
    mapping = {c.index: n for n, c in enumerate(placed)}
    qc: dict[str, Any] = {
        "method": "alignment",
        "n_source_spans": len(source.spans),
        "n_projected": len(placed),
        "n_unprojected": len(unprojected),
        "n_links": len(sent.links),
        "n_split": sum(c.split for c in placed),
        "n_repaired": sum(bool([r for r in c.repairs if r != "string-match"]) for c in placed),
        "n_string_match": sum(c.how == "string" for c in placed),
        "min_score": min((c.score for c in placed), default=None),
        "unaligned_target_share": round(sum(1 for s in sent.t2s if not s) / len(sent.t2s), 4) if sent.t2s else 0.0,
    }
    if sent.dropped_links:
        qc["out_of_range_links"] = sent.dropped_links
    unprojected.sort(key=lambda u: (u.span.token_start, u.span.token_end))
    proj = Projection(source=source, target=out_target, mapping=mapping, unprojected=unprojected, qc=qc)
    if unprojected and policy == "reject":
        return reject_projection(proj, R.UNPROJECTED_SPAN, f"{len(unprojected)} of {len(source.spans)} spans unprojected "
                                 f"({', '.join(sorted({u.reason for u in unprojected}))})")
    return proj


def _project_units(source: Example, target: Example, views: LinkViews, opt: AlignmentProjectionOptions,
                   policy: SentencePolicy) -> Projection:
    """Project on the aligner's units, then express the spans over the user's target tokens."""
    units = views.units
    assert units is not None
    if units.n_user != len(target.tokens):
        raise ValueError(f"the unit map of {target.id} covers {units.n_user} tokens, the target has {len(target.tokens)}")
    unit_target = Example(id=target.id, text=" ".join(units.words), tokens=tokens_from_words(units.words))
    inner = project_sentence(source, unit_target, replace(views, units=None), opt, policy="keep-partial")
    unprojected = list(inner.unprojected)
    placed: list[tuple[int, int, int, float | None]] = []  # (source span, user start, user end, score)
    span_info: dict[int, dict[str, Any]] = {}
    taken: set[int] = set()
    # highest confidence first, as in the placement on units: a widened span never takes a token
    # already holding a more confident span
    order = sorted(inner.mapping.items(), key=lambda kv: (-(inner.target.spans[kv[1]].score or 0.0), kv[0]))
    for k, n in order:
        s = inner.target.spans[n]
        a, b, widened = units.to_user_range(s.token_start, s.token_end)
        if taken.intersection(range(a, b)):
            unprojected.append(Unprojected(source.spans[k], R.COLLISION,
                                           f"aligner units [{s.token_start}, {s.token_end}) widen to target tokens "
                                           f"[{a}, {b}), which hold a span of higher confidence"))
            continue
        taken.update(range(a, b))
        placed.append((k, a, b, s.score))
        if widened is not None or units.split_tokens:
            span_info[k] = {"aligner_units": [s.token_start, s.token_end], "widened": widened}
    placed.sort(key=lambda x: (x[1], x[2]))
    spans = [target.span_from_tokens(a, b, source.spans[k].label, score) for k, a, b, score in placed]
    mapping = {k: n for n, (k, _, _, _) in enumerate(placed)}
    unprojected.sort(key=lambda u: (u.span.token_start, u.span.token_end))
    qc = {**inner.qc, "n_projected": len(placed), "n_unprojected": len(unprojected),
          "aligner_units": len(units.words), "split_tokens": units.split_tokens,
          "widened_spans": sum(1 for k, *_ in placed if span_info.get(k, {}).get("widened"))}
    proj = Projection(source=source, target=replace(target, spans=spans, meta=dict(target.meta)), mapping=mapping,
                      unprojected=unprojected, qc=qc, span_info=span_info)
    if unprojected and policy == "reject":
        return reject_projection(proj, R.UNPROJECTED_SPAN, f"{len(unprojected)} of {len(source.spans)} spans unprojected "
                                 f"({', '.join(sorted({u.reason for u in unprojected}))})")
    return proj


def reject_projection(proj: Projection, reason: str, detail: str) -> Projection:
    """Reject a whole sentence: its projected spans move to ``unprojected`` (reason ``sentence_rejected``)."""
    moved = [Unprojected(proj.source.spans[k], R.SENTENCE_REJECTED, f"sentence rejected: {reason}") for k in proj.mapping]
    unprojected = sorted(proj.unprojected + moved, key=lambda u: (u.span.token_start, u.span.token_end))
    return replace(proj, target=proj.target.with_spans([]), mapping={}, unprojected=unprojected, rejected=reason,
                   qc={**proj.qc, "reject_detail": detail})


@projectors.register("alignment")
class AlignmentProjector:
    """Project spans by word alignment: tokenise targets, align all pairs in one batch, project.

    Args:
        aligner: a registered aligner name (default ``eflomal``) or an aligner object with
            ``align(src_tokens, tgt_tokens) -> list[Alignment]``. When it also has
            ``align_directions`` (eflomal), both directions are used as evidence (their
            intersection marks strong links) and symmetrised with its ``symmetrization``.
        aligner_options: keyword arguments for the aligner factory (e.g. ``extra_src``/``extra_tgt``
            parallel text, ``symmetrization``, ``seed``).
        target_tokenizer: how target texts given as strings are tokenised (``moses``, the default,
            like the shipped parallel text; ``spacy``; ``whitespace`` for pre-tokenised text; or a
            tokenizer object); token lists and Examples are used as given.
        policy: ``keep-partial`` (default) or ``reject`` (a sentence with an unprojected span is
            rejected).
        alignment_cache: a folder where directional alignments are cached by content hash
            (aligners with ``align_directions`` only); ``None`` (default) caches nothing.
        max_tokens: sentences longer than this (either side) are rejected with ``too_long``
            (default: the aligner's limit, 1,024 for eflomal).
        retokenize: the aligner's units for target tokens (see :mod:`dsbuild.project.retokenize`):
            ``moses`` (default; the tokenisation of the shipped parallel text, with the target
            language's rules) splits attached punctuation and clitics off the user's tokens before
            alignment, and the spans are mapped back onto the user's tokens; any registered
            tokenizer name or tokenizer object; ``None`` aligns the user's tokens as given.
            Tokens that are already units (Moses-split input) are left as they are. Needs the
            target language: :meth:`project` passes it, :meth:`align` takes ``tgt_lang``.
        **rules: fields of :class:`AlignmentProjectionOptions`.
    """

    name = "alignment"

    def __init__(
        self,
        aligner: str | Any = "eflomal",
        *,
        aligner_options: dict[str, Any] | None = None,
        target_tokenizer: str | Any = "moses",
        policy: SentencePolicy = "keep-partial",
        max_tokens: int | None = None,
        alignment_cache: str | os.PathLike[str] | None = None,
        retokenize: str | Any | None = "moses",
        **rules: Any,
    ) -> None:
        if policy not in ("keep-partial", "reject"):
            raise ConfigError(f"policy must be 'keep-partial' or 'reject', not {policy!r}")
        if retokenize in ("off", "none", False):
            retokenize = None
        if isinstance(retokenize, str):
            from dsbuild.registry import tokenizers

            tokenizers.get(retokenize)  # an unknown name fails here, with close matches
        elif retokenize is not None and not callable(getattr(retokenize, "tokenize", None)):
            raise ConfigError(f"retokenize must be a tokenizer name (moses, spacy, ...), a tokenizer object or None, "
                              f"not {retokenize!r}")
        self.retokenize = retokenize
        self._retokenizers: dict[str, Any] = {}
        unknown = set(rules) - set(AlignmentProjectionOptions.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown alignment-projection option(s) {sorted(unknown)}; "
                              f"options: {sorted(AlignmentProjectionOptions.__dataclass_fields__)}")
        self.options = AlignmentProjectionOptions(**rules)
        self.policy = policy
        self.aligner_spec = aligner
        self.aligner_options = dict(aligner_options or {})
        self.target_tokenizer = target_tokenizer
        self._aligner: Any = None
        self._max_tokens = max_tokens
        self.alignment_cache = Path(alignment_cache) if alignment_cache else None
        self.timings: dict[str, float] = {}
        self.capital_rate: float | None = None  # measured on the last batch (see case_signal)

    @property
    def aligner(self) -> Any:
        """The aligner object (built from the registry on first use)."""
        if self._aligner is None:
            if isinstance(self.aligner_spec, str):
                from dsbuild.registry import aligners

                self._aligner = aligners.get(self.aligner_spec)(**self.aligner_options)
            else:
                self._aligner = self.aligner_spec
        return self._aligner

    @property
    def max_tokens(self) -> int:
        if self._max_tokens is not None:
            return self._max_tokens
        if isinstance(self.aligner_spec, str) and self.aligner_spec == "eflomal" and self._aligner is None:
            from dsbuild.align.eflomal_aligner import MAX_TOKENS

            return MAX_TOKENS
        return int(getattr(self.aligner, "max_tokens", None) or getattr(self.aligner, "max_length", None) or 1024)

    def describe(self) -> dict[str, Any]:
        """Settings for provenance: rules, policy, tokenizer and the aligner's own description."""
        aligner = self.aligner
        describe = getattr(aligner, "describe", None)
        tok = self.target_tokenizer
        tok = tok if isinstance(tok, str) else getattr(tok, "name", type(tok).__name__)
        case = None if self.capital_rate is None else {
            "target_capital_rate": round(self.capital_rate, 4),
            "capital_extensions": self.capital_rate <= self.options.max_capital_rate}
        retok = self.retokenize
        retok = retok if retok is None or isinstance(retok, str) else getattr(retok, "name", type(retok).__name__)
        return {"method": self.name, "policy": self.policy, "rules": asdict(self.options), "target_tokenizer": tok,
                "retokenize": retok,
                "case_signal": case,
                "max_tokens": self.max_tokens,
                "aligner": describe() if callable(describe) else {"name": getattr(aligner, "name", type(aligner).__name__)}}

    def project(
        self,
        sources: Sequence[Example],
        targets: Sequence[str | Sequence[str] | Example],
        *,
        src_lang: str,
        tgt_lang: str,
    ) -> list[Projection]:
        """Project each source's spans onto its target (text, token list or Example).

        All valid pairs are aligned in one batch (statistical aligners learn from the batch).
        Invalid pairs (empty, too long, control characters, tokens with spaces) come back
        rejected with a reason; see :mod:`dsbuild.project.inputs`.
        """
        t0 = time.perf_counter()
        prepared = prepare_pairs(sources, targets, tokenizer=self.target_tokenizer, tgt_lang=tgt_lang,
                                 max_tokens=self.max_tokens)
        ok = [p for p in prepared if p.reject is None]
        t1 = time.perf_counter()
        views = self.align([p.src_words for p in ok], [p.tgt_words for p in ok], tgt_lang=tgt_lang) if ok else []
        t2 = time.perf_counter()
        out = self.project_aligned(prepared, views)
        t3 = time.perf_counter()
        for key, dt in (("prepare", t1 - t0), ("align", t2 - t1), ("project", t3 - t2)):
            self.timings[key] = self.timings.get(key, 0.0) + dt
        return out

    def units(self, tgt: Sequence[Sequence[str]], tgt_lang: str | None) -> list[UnitMap | None]:
        """The aligner units of each target (``None``: the given tokens are the units); see ``retokenize``."""
        if self.retokenize is None or tgt_lang is None:
            return [None] * len(tgt)
        if isinstance(self.retokenize, str):
            if tgt_lang not in self._retokenizers:
                from dsbuild.tokenize.base import get_tokenizer

                self._retokenizers[tgt_lang] = get_tokenizer(self.retokenize, tgt_lang)
            tokenizer = self._retokenizers[tgt_lang]
        else:
            tokenizer = self.retokenize
        return batch_units(tgt, tokenizer, max_units=self.max_tokens)

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]], *,
              tgt_lang: str | None = None) -> list[LinkViews]:
        """Align token lists with the aligner; both directions kept when it offers them.

        With ``tgt_lang`` and ``retokenize`` set, target tokens that are not the aligner's units
        are re-tokenised first (the views then carry the :class:`UnitMap`); without ``tgt_lang``
        the tokens are aligned as given.

        With ``alignment_cache`` set, directional links are stored on disk under a hash of the
        pairs, the aligner's settings and its extra corpus, so a re-run (a resumed or repeated
        build) with the same inputs skips the aligner and gets identical links.
        """
        unit_maps = self.units(tgt, tgt_lang)
        if any(u is not None for u in unit_maps):
            n_split = sum(u.split_tokens for u in unit_maps if u is not None)
            log.info("re-tokenised %d of %d target sentences into the aligner's units (%d more units)",
                     sum(u is not None for u in unit_maps), len(tgt), n_split)
            tgt = [list(u.words) if u is not None else t for u, t in zip(unit_maps, tgt)]
            views = self._align_units(src, tgt)
            return [replace(v, units=u) if u is not None else v for v, u in zip(views, unit_maps)]
        return self._align_units(src, tgt)

    def _align_units(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[LinkViews]:
        aligner = self.aligner
        directions = getattr(aligner, "align_directions", None)
        if callable(directions):
            from dsbuild.align.symmetrize import symmetrize

            method = getattr(aligner, "symmetrization", "grow-diag-final-and")
            cached = _links_cache_path(self.alignment_cache, aligner, src, tgt) if self.alignment_cache else None
            hit = _read_links(cached, len(src)) if cached is not None else None
            if hit is not None:
                log.info("reusing cached alignments %s", cached)
                fwd, rev = hit
            else:
                fwd, rev = directions(src, tgt)
                if cached is not None:
                    _write_links(cached, fwd, rev)
            views = []
            for f, r in zip(fwd, rev):
                f_set, r_set = frozenset(map(tuple, f)), frozenset(map(tuple, r))
                views.append(LinkViews(frozenset(map(tuple, symmetrize(f_set, r_set, method))), f_set & r_set, f_set, r_set))
        else:
            views = [LinkViews.from_alignment(a) for a in aligner.align(src, tgt)]
        if len(views) != len(src):
            raise RuntimeError(f"the aligner returned {len(views)} alignments for {len(src)} sentence pairs")
        return views  # type: ignore[return-value]

    def project_aligned(self, prepared: Sequence[PreparedPair], alignments: Iterable[Any]) -> list[Projection]:
        """The projection step alone, for prepared pairs and the alignments of the valid ones (in order)."""
        it = iter(alignments)
        out: list[Projection] = []
        options, self.capital_rate = self.options.for_targets(p.tgt_words for p in prepared if p.reject is None)
        for p in prepared:
            if p.reject is not None:
                out.append(p.reject)
                continue
            proj = project_sentence(p.source, p.target, next(it), options, policy=self.policy)
            if p.qc:
                proj.qc.update(p.qc)
            out.append(proj)
        return out


# ---------------------------------------------------------------------- alignment cache
def _links_cache_path(folder: Path, aligner: Any, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> Path | None:
    """Where the links of these pairs under this aligner's settings are cached (None: uncacheable)."""
    describe = getattr(aligner, "describe", None)
    if not callable(describe):
        return None
    settings = describe()
    if settings.get("deterministic") is False or settings.get("seed", 0) is None:
        return None  # an unseeded aligner gives different links every run: nothing to reuse
    settings = json.loads(json.dumps(settings, default=str))
    extra = settings.get("extra_corpus") or {}
    for volatile in ("priors_cache", "priors_reused", "priors_train_s", "pairs_read", "pairs_used",
                     "pairs_skipped_invalid", "pairs_skipped_empty"):
        extra.pop(volatile, None)
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(type(aligner).__qualname__.encode())
    for corpus in (getattr(aligner, "extra_src", None), getattr(aligner, "extra_tgt", None)):
        if corpus is None:
            h.update(b"\x00none")
        elif isinstance(corpus, (str, os.PathLike)):
            h.update(Path(corpus).read_bytes())
        else:
            for line in corpus:
                h.update((line if isinstance(line, str) else " ".join(line)).encode() + b"\n")
    for s, t in zip(src, tgt):
        h.update(" ".join(s).encode() + b"\t" + " ".join(t).encode() + b"\n")
    return folder / f"links-{h.hexdigest()[:24]}.json.gz"


def _write_links(path: Path, fwd: Sequence[Sequence[Link]], rev: Sequence[Sequence[Link]]) -> None:
    """Store links atomically: other processes see the old state or the whole new file, never part of it.

    The temporary name is unique (``mkstemp``): a name made of the pid alone is shared by two
    threads, and by two containers (pid 1 in both) writing to one cache folder.
    """
    data = {"fwd": [[list(x) for x in f] for f in fwd], "rev": [[list(x) for x in r] for r in rev]}
    blob = gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name is: no empty file after a crash
        os.replace(tmp, path)  # two writers of one key write identical links; the last rename wins
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_links(path: Path, n_pairs: int) -> tuple[list[list[Link]], list[list[Link]]] | None:
    """The cached links for ``n_pairs`` pairs, or ``None`` (a miss) if absent or unreadable.

    A truncated or otherwise damaged file (a crash before the file reached the disk, an old
    writer without the atomic rename) is recomputed and overwritten rather than failing the build.
    """
    try:
        data = json.loads(gzip.decompress(path.read_bytes()))
        fwd = [[(int(i), int(j)) for i, j in f] for f in data["fwd"]]
        rev = [[(int(i), int(j)) for i, j in r] for r in data["rev"]]
    except FileNotFoundError:
        return None
    except (OSError, EOFError, zlib.error, ValueError, TypeError, KeyError) as err:  # gzip, JSON, shape errors
        log.warning("ignoring damaged alignment cache %s (%s: %s); aligning again", path, type(err).__name__, err)
        return None
    if len(fwd) != n_pairs or len(rev) != n_pairs:
        log.warning("ignoring alignment cache %s: %d/%d alignments for %d pairs; aligning again",
                    path, len(fwd), len(rev), n_pairs)
        return None
    return fwd, rev
