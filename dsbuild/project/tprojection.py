"""T-Projection (García-Ferrero et al. 2023): generate candidate target spans, pick the best by NMTScore.

For each sentence pair:

1. **Candidates** (token ranges of the target): every target n-gram of 1 to ``max_ngram`` tokens
   (at most ``2 x`` the source span's length + 1, and not starting or ending with punctuation unless
   the source span does); the spans other projectors propose (``candidate_projectors``, default
   ``alignment``; every source span's projection becomes a candidate for every source span); and,
   when ``generator`` is given, the spans a seq2seq candidate generator writes (the paper
   fine-tunes mT5: it reads the target sentence followed by ``<Person>[None]</Person>`` for each
   source label and writes ``<Person>Nueva York</Person>``; only generated texts found in the
   target are kept, and only for source spans of that label).
2. **NMTScore** of each (source span, candidate) pair (Vamvas and Sennrich 2022, ``score_direct``
   as T-Projection calls it): the length-normalised translation probability of the candidate
   given the source span, ``exp(mean token log-prob)``, under the MT model, and - when a reverse
   model is available - of the source span given the candidate; the score is the average of the
   two directions. With ``normalize`` each direction is divided by the probability of the text
   given itself (NMTScore's normalisation; needs a model that reads the text's own language:
   NLLB, M2M100, mBART; ``auto`` uses it exactly then). Every unique pair in a batch is scored in
   one batched ``score`` call per direction (``stats["score_calls"]`` counts them).
3. **One assignment per sentence**: source spans get non-overlapping candidates maximising the
   summed score, exactly (branch and bound over each span's ``exact_top`` best candidates, or no
   candidate) for up to ``exact_max_spans`` spans, greedily by score beyond. Ties go to the
   candidate more projectors proposed, then the earlier one.

Spans whose best available candidate scores below ``min_score`` are unprojected
(``low_confidence``), spans with no candidate left (``collision``) or none at all
(``no_candidate``) likewise; ``Projection.span_info`` holds each span's score, both directions and
candidate sources. The MT model's own numbers decide everything: no word list of any language.
"""

from __future__ import annotations

import logging
import math
import re
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dsbuild.errors import ConfigError
from dsbuild.project import _common as C
from dsbuild.project import reasons as R
from dsbuild.project.base import Projection, SentencePolicy, Unprojected
from dsbuild.registry import projectors
from dsbuild.spans import Example, Span

log = logging.getLogger(__name__)

NO_CANDIDATE = "no_candidate"
MULTILINGUAL_FAMILIES = ("nllb", "m2m100", "mbart")
#: T-Projection's label names in the generator's prompt (utils/label_names.py); others are used as they are
GENERATOR_LABEL_NAMES = {"PER": "Person", "LOC": "Location", "ORG": "Organization", "MISC": "Miscellaneous",
                         "TARGET": "Target"}
_SCORE_DIGITS = 6  # scores are rounded: batch padding changes the last float bits, not the decisions


@dataclass
class Candidate:
    """A target token range ``[start, end)`` proposed for one or more source spans."""

    start: int
    end: int
    sources: set[str] = field(default_factory=set)
    labels: set[str] | None = None  # generator candidates only fit spans of these labels


@dataclass
class _Pair:
    """A sentence pair being projected."""

    index: int
    source: Example
    target: Example
    qc: dict[str, Any]
    cands: dict[tuple[int, int], Candidate] = field(default_factory=dict)


def resolve_translator(spec: Any, what: str) -> Any:
    """A translator object: given as one, or an ``hf-seq2seq`` model by Hub name or folder."""
    if spec is None or not isinstance(spec, str):
        return spec
    from dsbuild.registry import translators

    return translators.get("hf-seq2seq")(spec, cache=False, progress=False, threads=1)


def _is_punct(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


@projectors.register("tprojection")
class TProjectionProjector:
    """Project spans by ranking candidate target spans with a translation model (T-Projection).

    Args:
        translator: the MT model (source -> target) that scores candidates: a Translator with
            ``score`` (``hf-seq2seq``) or a model name / folder (loaded as ``hf-seq2seq``).
        model: alias of ``translator`` given as a name or folder.
        reverse_translator: a target -> source Translator (or name / folder) for the second
            NMTScore direction. Default ``auto``: the translator itself when it is multilingual
            (NLLB, M2M100, mBART), else forward direction only. ``None``: forward only.
        normalize: NMTScore's self-normalisation (``auto``: when the model reads both languages).
        max_ngram: longest target n-gram candidate (tokens).
        candidate_projectors: registered projectors whose spans become candidates (default
            ``["alignment"]`` when the aligner can be built; ``[]`` for n-grams only).
        projector_options: keyword arguments per candidate projector name, e.g.
            ``{"alignment": {"aligner_options": {"extra_src": ..., "extra_tgt": ...}}}``.
        generator: a seq2seq candidate generator: a Hub name or folder (the paper's fine-tuned
            mT5) or an object with ``propose(targets, labels) -> [[(label, text), ...], ...]``.
        generator_options: options of :class:`Seq2SeqCandidateGenerator` (``num_beams``...).
        exact_max_spans / exact_top: exact assignment up to this many spans per sentence, over
            each span's best ``exact_top`` candidates; greedy beyond.
        min_score: spans whose chosen candidate scores lower are unprojected (``low_confidence``).
        policy: ``keep-partial`` (default) or ``reject`` a sentence with an unprojected span.
        target_tokenizer: how target strings are tokenised (None: words and punctuation; a
            registered tokenizer name or object); token lists and Examples are used as given.
    """

    name = "tprojection"

    def __init__(
        self,
        translator: Any = None,
        *,
        model: str | None = None,
        reverse_translator: Any = "auto",
        normalize: bool | Literal["auto"] = "auto",
        max_ngram: int = 6,
        candidate_projectors: Sequence[str] | Literal["auto"] = "auto",
        projector_options: dict[str, dict[str, Any]] | None = None,
        generator: Any = None,
        generator_options: dict[str, Any] | None = None,
        exact_max_spans: int = 6,
        exact_top: int = 6,
        min_score: float = 0.0,
        policy: SentencePolicy = "keep-partial",
        target_tokenizer: Any = None,
    ) -> None:
        if translator is None and model is not None:
            translator = model
        if translator is None:
            raise ConfigError("the tprojection projector needs a translation model to score candidates: pass "
                              "translator= (an hf-seq2seq translator) or model= (a Hub name or model folder)")
        if policy not in ("keep-partial", "reject"):
            raise ConfigError(f"policy must be 'keep-partial' or 'reject', not {policy!r}")
        if max_ngram < 1 or exact_top < 1 or exact_max_spans < 0:
            raise ConfigError("max_ngram and exact_top must be >= 1, exact_max_spans >= 0")
        if normalize not in (True, False, "auto"):
            raise ConfigError(f"normalize must be true, false or 'auto', not {normalize!r}")
        self.translator = resolve_translator(translator, "translator")
        if not callable(getattr(self.translator, "score", None)):
            raise ConfigError("tprojection: the translator has no score() method; use an hf-seq2seq model")
        family = getattr(self.translator, "family", None)
        if reverse_translator == "auto":
            reverse_translator = self.translator if family in MULTILINGUAL_FAMILIES else None
        self.reverse = resolve_translator(reverse_translator, "reverse_translator")
        self.normalize = (family in MULTILINGUAL_FAMILIES) if normalize == "auto" else bool(normalize)
        self.max_ngram = max_ngram
        self.projector_options = {k: dict(v) for k, v in (projector_options or {}).items()}
        self.candidate_projectors = self._candidate_projector_names(candidate_projectors)
        self._candidate_objs: dict[str, Any] = {}
        if generator is not None and isinstance(generator, str):
            generator = Seq2SeqCandidateGenerator(generator, **(generator_options or {}))
        elif generator_options:
            raise ConfigError("generator_options need generator= (a seq2seq model name or folder)")
        if generator is not None and not callable(getattr(generator, "propose", None)):
            raise ConfigError("generator must be a model name / folder or an object with propose(targets, labels)")
        self.generator = generator
        self.exact_max_spans = exact_max_spans
        self.exact_top = exact_top
        self.min_score = min_score
        self.policy = policy
        self.target_tokenizer = target_tokenizer
        self.stats: dict[str, int] = {"sentences": 0, "score_calls": 0, "scored_pairs": 0, "candidates": 0}
        self.timings: dict[str, float] = {}

    def _candidate_projector_names(self, names: Sequence[str] | str) -> list[str]:
        if names == "auto":
            from dsbuild.registry import aligners

            aligner = self.projector_options.get("alignment", {}).get("aligner", "eflomal")
            return ["alignment"] if not isinstance(aligner, str) or aligner in aligners else []
        if isinstance(names, str):
            names = [names]
        bad = [n for n in names if n in ("tprojection", "ensemble")]
        if bad:
            raise ConfigError(f"candidate_projectors cannot include {bad}: they would call tprojection again")
        for n in names:
            projectors.get(n)  # an unknown name fails now, with close matches
        return list(names)

    def _candidate_projector(self, name: str) -> Any:
        if name not in self._candidate_objs:
            opts = dict(self.projector_options.get(name, {}))
            opts.setdefault("policy", "keep-partial")  # every proposal counts, even from a partial sentence
            if name != "alignment":
                opts.setdefault("translator", self.translator)
            self._candidate_objs[name] = projectors.get(name)(**opts)
        return self._candidate_objs[name]

    def describe(self) -> dict[str, Any]:
        """Settings for provenance."""
        def model(t: Any) -> Any:
            d = getattr(t, "describe", None)
            return d() if callable(d) else type(t).__name__

        gen = self.generator
        return {
            "method": self.name, "policy": self.policy, "max_ngram": self.max_ngram,
            "candidate_projectors": list(self.candidate_projectors),
            "generator": (gen.describe() if callable(getattr(gen, "describe", None)) else type(gen).__name__) if gen else None,
            "score": "NMTScore direct: exp(mean token log-prob), " + ("both directions averaged" if self.reverse is not None
                                                                       else "forward direction only")
                     + (", self-normalised" if self.normalize else ""),
            "normalize": self.normalize, "both_directions": self.reverse is not None,
            "assignment": f"exact up to {self.exact_max_spans} spans (top {self.exact_top} candidates each), greedy beyond",
            "min_score": self.min_score, "translator": model(self.translator),
            "reverse_translator": model(self.reverse) if self.reverse is not None and self.reverse is not self.translator
            else ("same model" if self.reverse is not None else None),
        }

    # ------------------------------------------------------------------ public API
    def project(
        self,
        sources: Sequence[Example],
        targets: Sequence[str | Sequence[str] | Example] | None = None,
        *,
        src_lang: str,
        tgt_lang: str,
        proposals: Sequence[Sequence[Projection]] | None = None,
    ) -> list[Projection]:
        """Project each source's spans onto its target (text, token list or Example).

        ``targets=None`` translates the sources first (translate-train). ``proposals``: the
        projections of other methods on the same targets (one list per method), used as
        candidates instead of running ``candidate_projectors`` (the ensemble passes them).
        """
        t0 = time.perf_counter()
        targets = self._targets(sources, targets, src_lang, tgt_lang)
        tok = C.resolve_tokenizer(self.target_tokenizer, tgt_lang)
        out: list[Projection | None] = [None] * len(sources)
        work: list[_Pair] = []
        for i, (src, tgt) in enumerate(zip(sources, targets)):
            self.stats["sentences"] += 1
            target = C.target_example(src, tgt, tok)
            qc: dict[str, Any] = {"method": self.name}
            bad = C.check_source(src)
            if bad is not None:
                out[i] = C.reject_all(src, target, bad[0], bad[1], qc)
            elif not target.tokens:
                out[i] = C.reject_all(src, target, C.EMPTY_TARGET, "the target text is empty", qc)
            elif not src.spans:
                out[i] = Projection(source=src, target=target.with_spans([]), qc={**qc, "n_candidates": 0})
            else:
                work.append(_Pair(i, src, target, qc))
        t1 = time.perf_counter()
        self._add_candidates(work, proposals, src_lang, tgt_lang)
        t2 = time.perf_counter()
        scores = self._score(work, src_lang, tgt_lang)
        t3 = time.perf_counter()
        for p in work:
            out[p.index] = self._assign(p, scores)
        t4 = time.perf_counter()
        for key, dt in (("prepare", t1 - t0), ("candidates", t2 - t1), ("score", t3 - t2), ("assign", t4 - t3)):
            self.timings[key] = self.timings.get(key, 0.0) + dt
        return out  # type: ignore[return-value]

    def _targets(self, sources: Sequence[Example], targets: Any, src_lang: str, tgt_lang: str) -> list[Any]:
        if targets is None:
            texts = [s.text for s in sources]
            todo = [i for i, t in enumerate(texts) if t.strip()]
            done = self.translator.translate([texts[i] for i in todo], src_lang, tgt_lang) if todo else []
            translated = [""] * len(sources)
            for i, t in zip(todo, done):
                translated[i] = t
            return translated
        if len(targets) != len(sources):
            raise ConfigError(f"{len(sources)} sources but {len(targets)} targets: give one target per source")
        return list(targets)

    # ------------------------------------------------------------------ candidates
    def _add_candidates(self, work: list[_Pair], proposals: Sequence[Sequence[Projection]] | None,
                        src_lang: str, tgt_lang: str) -> None:
        for p in work:
            for a, b in ngram_ranges(p.target.words, self.max_ngram):
                p.cands[(a, b)] = Candidate(a, b, {"ngram"})
        if not work:
            return
        if proposals is None and self.candidate_projectors:
            proposals = []
            for name in self.candidate_projectors:
                res = self._candidate_projector(name).project([p.source for p in work], [p.target for p in work],
                                                              src_lang=src_lang, tgt_lang=tgt_lang)
                proposals.append(res)
        for k, member in enumerate(proposals or []):
            for p, proj in zip(work, _select(member, work)):
                self._add_proposal(p, proj, f"proposal-{k}" if getattr(proj, "qc", None) is None
                                   else str(proj.qc.get("method", f"proposal-{k}")))
        if self.generator is not None:
            outs = self.generator.propose([p.target.words for p in work], [[s.label for s in p.source.spans] for p in work])
            for p, found in zip(work, outs):
                for label, text in found:
                    for a, b in find_in_tokens(p.target.words, text):
                        c = p.cands.setdefault((a, b), Candidate(a, b, set(), set()))
                        c.sources.add("generator")
                        if c.labels is not None:
                            c.labels.add(label)

    @staticmethod
    def _add_proposal(p: _Pair, proj: Projection | None, name: str) -> None:
        """The spans another method projected on this target (matched by characters) become candidates."""
        if proj is None or proj.target.text != p.target.text:
            return  # a method that made its own translation (markers) proposes for another text
        for sp in proj.target.spans:
            rng = C.char_span_to_tokens(p.target, sp.start, sp.end)
            if rng is None:
                continue
            c = p.cands.setdefault(rng, Candidate(rng[0], rng[1], set()))
            c.sources.add(name)
            c.labels = None  # a projector's span fits any label

    def _fits(self, span: Span, c: Candidate) -> bool:
        """Whether a candidate is considered for this source span (length and punctuation filters
        apply to n-grams only; generator candidates only to spans of their label)."""
        if c.labels is not None and span.label not in c.labels:
            return False
        if c.sources != {"ngram"}:
            return True
        n = span.token_end - span.token_start
        return (c.end - c.start) <= 2 * n + 1

    # ------------------------------------------------------------------ scoring
    def _span_candidates(self, p: _Pair, k: int) -> list[Candidate]:
        span = p.source.spans[k]
        src_words = p.source.words[span.token_start : span.token_end]
        out = []
        for c in p.cands.values():
            if not self._fits(span, c):
                continue
            if c.sources == {"ngram"} and not _edge_ok(src_words, p.target.words[c.start : c.end]):
                continue
            out.append(c)
        return sorted(out, key=lambda c: (c.start, c.end))

    def _score(self, work: list[_Pair], src_lang: str, tgt_lang: str) -> dict[tuple[str, str], tuple[float, float | None]]:
        """NMTScore directions of every unique (source span text, candidate text) pair: one batched
        ``score`` call per direction (and per self-normalisation)."""
        keys: set[tuple[str, str]] = set()
        for p in work:
            for k, span in enumerate(p.source.spans):
                for c in self._span_candidates(p, k):
                    keys.add((p.source.span_text(span), _text(p.target, c)))
        pairs = sorted(keys)
        self.stats["scored_pairs"] += len(pairs)
        if not pairs:
            return {}
        src_t = [a for a, _ in pairs]
        tgt_t = [b for _, b in pairs]
        fwd = self._mean_logp(self.translator, src_t, tgt_t, src_lang, tgt_lang)
        if self.normalize:
            selfs = self._self_logp(self.translator, tgt_t, tgt_lang, src_lang, tgt_lang)
            fwd = [f - selfs[b] for f, b in zip(fwd, tgt_t)]
        rev: list[float | None] = [None] * len(pairs)
        if self.reverse is not None:
            rv = self._mean_logp(self.reverse, tgt_t, src_t, tgt_lang, src_lang)
            if self.normalize:
                selfs = self._self_logp(self.reverse, src_t, src_lang, tgt_lang, src_lang)
                rv = [r - selfs[a] for r, a in zip(rv, src_t)]
            rev = list(rv)
        return {key: (math.exp(f), None if r is None else math.exp(r)) for key, f, r in zip(pairs, fwd, rev)}

    def _mean_logp(self, translator: Any, src: list[str], tgt: list[str], src_lang: str, tgt_lang: str) -> list[float]:
        self.stats["score_calls"] += 1
        return [sum(x) / max(1, len(x)) for x in translator.score(src, tgt, src_lang, tgt_lang)]

    def _self_logp(self, translator: Any, texts: list[str], lang: str, model_src: str, model_tgt: str) -> dict[str, float]:
        """Mean log-prob of each text given itself: the model reads and writes ``lang`` when it is
        multilingual; a bilingual model reads the text through its source side (its usual
        direction: the only one it has)."""
        uniq = sorted(set(texts))
        multi = getattr(translator, "family", None) in MULTILINGUAL_FAMILIES
        a, b = (lang, lang) if multi else (model_src, model_tgt)
        return dict(zip(uniq, self._mean_logp(translator, uniq, uniq, a, b)))

    # ------------------------------------------------------------------ assignment
    def _assign(self, p: _Pair, scores: dict[tuple[str, str], tuple[float, float | None]]) -> Projection:
        spans = p.source.spans
        options: list[list[tuple[float, Candidate]]] = []
        info: dict[int, dict[str, Any]] = {}
        for k, span in enumerate(spans):
            src_text = p.source.span_text(span)
            scored = []
            for c in self._span_candidates(p, k):
                f, r = scores[(src_text, _text(p.target, c))]
                scored.append((round(f if r is None else (f + r) / 2, _SCORE_DIGITS), c))
            scored.sort(key=lambda x: (-x[0], -len(x[1].sources), x[1].start, x[1].end))
            options.append(scored)
            info[k] = {"candidates": len(scored)}
        exact = len(spans) <= self.exact_max_spans
        chosen = (_exact_assignment if exact else _greedy_assignment)(options, self.exact_top)
        self.stats["candidates"] += len(p.cands)
        p.qc.update(n_candidates=len(p.cands), assignment="exact" if exact else "greedy",
                    candidate_sources=_source_counts(p.cands.values()))
        picks: dict[int, tuple[int, int, float]] = {}
        unprojected: list[Unprojected] = []
        for k, span in enumerate(spans):
            pick = chosen.get(k)
            if pick is None:
                reason = NO_CANDIDATE if not options[k] else R.COLLISION
                detail = ("no target n-gram or proposal fits the span" if not options[k]
                          else "every candidate overlaps a span assigned to another source span")
                unprojected.append(Unprojected(span, reason, detail))
                continue
            score, c = pick
            f, r = scores[(p.source.span_text(span), _text(p.target, c))]
            info[k].update(nmt_score=score, forward=round(f, _SCORE_DIGITS),
                           reverse=None if r is None else round(r, _SCORE_DIGITS), sources=sorted(c.sources))
            if score < self.min_score:
                unprojected.append(Unprojected(span, R.LOW_CONFIDENCE, f"NMTScore {score:.4f} < min_score {self.min_score}"))
                continue
            picks[k] = (c.start, c.end, score)
        proj = build_projection(p.source, p.target, picks, unprojected, p.qc, info)
        if unprojected and self.policy == "reject":
            C.reject_sentence(proj, R.UNPROJECTED_SPAN, f"{len(unprojected)} of {len(spans)} spans unprojected "
                                                       f"({', '.join(sorted({u.reason for u in unprojected}))})")
        return proj


# ---------------------------------------------------------------------- helpers (also used by the ensemble)
def build_projection(source: Example, target: Example, picks: dict[int, tuple[int, int, float]],
                     unprojected: list[Unprojected], qc: dict[str, Any], info: dict[int, dict[str, Any]]) -> Projection:
    """A :class:`Projection` from chosen token ranges ``{source span: (start, end, score)}`` (non-overlapping)."""
    items = sorted(picks.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]))
    for (_, x), (_, y) in zip(items, items[1:]):
        assert x[1] <= y[0], f"overlapping projections in {source.id}"  # the assignment guarantees it
    spans = [target.span_from_tokens(a, b, source.spans[k].label, score) for k, (a, b, score) in items]
    out_target = target.with_spans(spans)
    mapping = {k: n for n, (k, _) in enumerate(items)}
    unprojected = sorted(unprojected, key=lambda u: (u.span.token_start, u.span.token_end))
    qc = {**qc, "n_source_spans": len(source.spans), "n_projected": len(items), "n_unprojected": len(unprojected),
          "min_score": min((s for _, (_, _, s) in items), default=None)}
    return Projection(source=source, target=out_target, mapping=mapping, unprojected=unprojected, qc=qc, span_info=info)


def ngram_ranges(words: Sequence[str], max_n: int) -> list[tuple[int, int]]:
    """Token ranges of every n-gram of 1..``max_n`` tokens."""
    return [(a, a + n) for a in range(len(words)) for n in range(1, max_n + 1) if a + n <= len(words)]


def _edge_ok(src_words: Sequence[str], cand_words: Sequence[str]) -> bool:
    """An n-gram may start / end with punctuation only where the source span does."""
    if _is_punct(cand_words[0]) and not _is_punct(src_words[0]):
        return False
    return not (_is_punct(cand_words[-1]) and not _is_punct(src_words[-1]))


def _text(target: Example, c: Candidate) -> str:
    return target.text[target.tokens[c.start].start : target.tokens[c.end - 1].end]


def _source_counts(cands: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in cands:
        for s in c.sources:
            counts[s] = counts.get(s, 0) + 1
    return dict(sorted(counts.items()))


def _select(member: Sequence[Projection | None], work: Sequence[_Pair]) -> list[Projection | None]:
    """The proposals for the pairs in ``work``: ``member`` holds one per pair, or one per input sentence."""
    if len(member) == len(work):
        return list(member)
    return [member[p.index] if p.index < len(member) else None for p in work]


def _overlaps(c: Candidate, taken: Sequence[Candidate]) -> bool:
    return any(c.start < t.end and t.start < c.end for t in taken)


def _greedy_assignment(options: list[list[tuple[float, Candidate]]], top: int) -> dict[int, tuple[float, Candidate]]:
    """Best remaining (score, span, candidate) first; a candidate overlapping a taken one is skipped."""
    flat = sorted(((s, -len(c.sources), c.start, c.end, k, c) for k, opts in enumerate(options) for s, c in opts),
                  key=lambda x: (-x[0], x[1], x[2], x[3], x[4]))
    chosen: dict[int, tuple[float, Candidate]] = {}
    for s, _, _, _, k, c in flat:
        if k not in chosen and not _overlaps(c, [x for _, x in chosen.values()]):
            chosen[k] = (s, c)
    return chosen


def _exact_assignment(options: list[list[tuple[float, Candidate]]], top: int) -> dict[int, tuple[float, Candidate]]:
    """Non-overlapping candidates (or none) per span maximising the summed score: branch and bound
    over each span's ``top`` best candidates, spans with the highest best score first. The first
    optimum found in candidate order wins ties (deterministic)."""
    order = sorted(range(len(options)), key=lambda k: (-(options[k][0][0] if options[k] else 0.0), k))
    opts = [options[k][:top] for k in order]
    best_rest = [0.0] * (len(order) + 1)
    for i in range(len(order) - 1, -1, -1):
        best_rest[i] = best_rest[i + 1] + (opts[i][0][0] if opts[i] else 0.0)
    best: list[Any] = [-1.0, {}]
    current: dict[int, tuple[float, Candidate]] = {}

    def search(i: int, total: float) -> None:
        if total + best_rest[i] <= best[0] + 1e-12:
            return
        if i == len(order):
            best[0], best[1] = total, dict(current)
            return
        for s, c in opts[i]:
            if not _overlaps(c, [x for _, x in current.values()]):
                current[order[i]] = (s, c)
                search(i + 1, total + s)
                del current[order[i]]
        search(i + 1, total)  # this span gets nothing

    search(0, 0.0)
    chosen: dict[int, tuple[float, Candidate]] = best[1]
    # spans beyond the exact window may still fit a lower-ranked free candidate
    for i, k in enumerate(order):
        if k in chosen:
            continue
        for s, c in options[k][top:]:
            if not _overlaps(c, [x for _, x in chosen.values()]):
                chosen[k] = (s, c)
                break
    return chosen


# ---------------------------------------------------------------------- the seq2seq candidate generator
def find_in_tokens(words: Sequence[str], text: str) -> list[tuple[int, int]]:
    """Token ranges where ``text``'s words occur in ``words``: exact, else case- and punctuation-insensitive
    (as T-Projection's ``subfinder``); text not in the target is a hallucination and gives nothing."""
    pattern = text.split()
    if not pattern:
        return []

    def find(ws: Sequence[str], pat: Sequence[str]) -> list[tuple[int, int]]:
        n = len(pat)
        return [(a, a + n) for a in range(len(ws) - n + 1) if list(ws[a : a + n]) == list(pat)]

    hits = find(words, pattern)
    if hits:
        return hits
    strip = str.maketrans("", "", string.punctuation)
    norm = [w.lower().translate(strip) for w in words]
    pat = [w.lower().translate(strip) for w in pattern]
    if not any(pat):
        return []
    return find(norm, pat)


class Seq2SeqCandidateGenerator:
    """T-Projection's candidate generator: any Hugging Face seq2seq model (the paper fine-tunes mT5).

    Input: the target words followed by ``<Name>[None]</Name>`` per source span label; output
    (beam search, ``num_beams`` sequences): ``<Name>text</Name>`` items, parsed back to
    ``(label, text)``. ``label_names`` maps labels to the names in the prompt (default
    T-Projection's: PER -> Person, LOC -> Location, ORG -> Organization, MISC -> Miscellaneous).
    """

    def __init__(self, model: str | Any, *, tokenizer: Any = None, num_beams: int = 10,
                 num_return_sequences: int | None = None, max_new_tokens: int = 64, batch_size: int = 8,
                 label_names: dict[str, str] | None = None, max_input_tokens: int = 512) -> None:
        if isinstance(model, str):
            model, tokenizer = self._load(model)
        if tokenizer is None:
            raise ConfigError("Seq2SeqCandidateGenerator: give a model name / folder, or model= and tokenizer=")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.model_id = getattr(getattr(model, "config", None), "_name_or_path", type(model).__name__)
        self.num_beams = num_beams
        self.num_return = min(num_return_sequences or num_beams, num_beams)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self.label_names = {**GENERATOR_LABEL_NAMES, **(label_names or {})}
        self.calls = 0

    @staticmethod
    def _load(name: str) -> tuple[Any, Any]:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(name)
            model = AutoModelForSeq2SeqLM.from_pretrained(name)
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"candidate generator {name!r} could not be loaded ({first}); give a seq2seq model "
                              "folder or a Hub name available offline") from None
        return model, tok

    def describe(self) -> dict[str, Any]:
        return {"model": str(self.model_id), "num_beams": self.num_beams, "num_return_sequences": self.num_return}

    def prompt(self, words: Sequence[str], labels: Sequence[str]) -> str:
        """The generator's input: the target sentence and one empty slot per source label."""
        slots = "".join(f"<{self.label_names.get(lb, lb)}>[None]</{self.label_names.get(lb, lb)}>" for lb in labels)
        return " ".join(words) + " " + slots

    def parse(self, text: str, labels: Sequence[str]) -> list[tuple[str, str]]:
        """``(label, text)`` items of one generated sequence (labels not in ``labels`` are ignored)."""
        by_name = {self.label_names.get(lb, lb): lb for lb in labels}
        if not by_name:
            return []
        names = "|".join(re.escape(n) for n in sorted(by_name, key=len, reverse=True))
        out = []
        for m in re.finditer(rf"<({names})>(.*?)</\1>", text):
            inner = " ".join(m.group(2).split())
            if inner and inner != "[None]":
                out.append((by_name[m.group(1)], inner))
        return out

    def propose(self, targets: Sequence[Sequence[str]], labels: Sequence[Sequence[str]]) -> list[list[tuple[str, str]]]:
        """Candidate ``(label, text)`` items per target sentence (deduplicated, in beam order)."""
        import torch

        prompts = [self.prompt(w, lb) for w, lb in zip(targets, labels)]
        out: list[list[tuple[str, str]]] = []
        for b in range(0, len(prompts), self.batch_size):
            batch = prompts[b : b + self.batch_size]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=self.max_input_tokens)
            with torch.inference_mode():
                gen = self.model.generate(**enc, num_beams=self.num_beams, num_return_sequences=self.num_return,
                                          max_new_tokens=self.max_new_tokens, do_sample=False)
            self.calls += 1
            texts = self.tokenizer.batch_decode(gen, skip_special_tokens=True)
            for r in range(len(batch)):
                seen: dict[tuple[str, str], None] = {}
                for t in texts[r * self.num_return : (r + 1) * self.num_return]:
                    for item in self.parse(t, labels[b + r]):
                        seen.setdefault(item, None)
                out.append(list(seen))
        return out
