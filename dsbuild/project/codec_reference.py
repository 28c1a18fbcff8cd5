"""CODEC's published algorithm (Le et al., ICLR 2024), re-implemented as a reference projector.

This is the baseline ``scripts/bench_constrained.py`` measures dsbuild's constrained search
against. It follows the authors' pipeline (github.com/duonglm38/Codec: ``pipelines/stage1..5``,
``constrained_decoding.py``, ``iterative_decode.py``) step by step, so that its cost and its
decisions are CODEC's, not dsbuild's:

1. **Templates**: the clean sources are translated (or the given targets are used unchanged).
2. **One marked source per entity** (``stage1``): the source with only that entity in markers.
   The template is scored (teacher forcing) under the clean source and under each marked source.
3. **Candidate opening positions** (``stage2``): ``delta_j = |log p(y_j | marked) - log p(y_j |
   clean)|`` per template token; every ``j`` with ``delta_j >= threshold`` (0.5), plus every ``j``
   within ``window`` (5) tokens of one with ``delta_j >= window_threshold`` (0.1). No candidate:
   no restriction. Positions are also restricted to word starts (the authors' ``white_space_only``
   option), which is what makes spans readable on target tokens.
4. **Search** (``constrained_decoding.bracket_constraint_decode``): one search per entity, a
   depth-first branch and bound over token-by-token decoding of the template with one marker pair
   to insert. Every call is ONE decoder step over a batch (``batch_size``) of hypotheses; children
   (copy the next template token, or insert the next marker) are sorted by score and recursed into
   in chunks of ``batch_size``. A heap keeps the ``n_best`` (5) complete hypotheses; once it has
   been filled and updated, a chunk stops at the first child not above the worst kept score, and
   a child is dropped unless it beats the worst kept hypothesis's accumulated score
   ``future_steps`` tokens further on (the heuristic; 1 for translate-train; a negative value
   compares with its final score, which makes the search exact).
5. **Reverse scoring** (``stage4``): the negative log-likelihood of the source entity given each
   candidate target entity under the reverse direction (``reverse_translator``; without one, the
   forward model scores the target entity given the source entity, the authors' ``--do_forward``).
6. **Re-ranking** (``stage5.re_ranking4``): candidates are kept when their string similarity to
   the source entity or to its separate translation is > 0.5, or their reverse NLL is < 5; one
   left wins; if the best similarity is >= 0.9 the most similar with the lowest NLL wins; else the
   forward-best candidate wins unless a candidate with a lower NLL is a word sub-sequence of it.
7. **Merging** (``stage5.merge_candidates``): the chosen spans of all entities are merged into
   one marked template; a sentence with an entity without candidate, or with overlapping spans, is
   dropped — recorded here as a reject (``no_placement`` / ``target_overlap``), not silently.

Differences from the authors' scripts, all neutral or in CODEC's favour for timing: the encoder
output of each marked source is computed once and reused by its search (``generate`` re-encodes);
markers are inserted only at word boundaries of the template (their ``white_space_only`` option);
multi-piece markers (``▁`` + ``[``) are emitted piece by piece, the later pieces forced.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from dsbuild.errors import ConfigError
from dsbuild.project import _common as C
from dsbuild.project.base import Projection
from dsbuild.registry import projectors
from dsbuild.spans import Example, Span

log = logging.getLogger(__name__)

NO_PLACEMENT = "no_placement"
TARGET_OVERLAP = "target_overlap"
OUTSIDE_TOKENS = "not_on_target_tokens"


def candidate_positions(delta: Sequence[float], threshold: float = 0.5, window_threshold: float = 0.1,
                        window: int = 5) -> set[int]:
    """CODEC's candidate opening positions (``stage2.get_candidates``).

    ``delta[j]`` is the absolute change of template token ``j``'s log-probability between the
    marked and the clean source. Every ``j`` with ``delta[j] >= threshold`` and every ``i`` within
    ``window`` positions of such a ``j`` with ``delta[i] >= window_threshold`` is a candidate.
    """
    out: set[int] = set()
    for j, d in enumerate(delta):
        if d >= threshold:
            lo, hi = max(0, j - window), min(len(delta), j + window + 1)
            out.update(i for i in range(lo, hi) if delta[i] >= window_threshold)
    return out


def similar(a: str, b: str) -> float:
    """``difflib`` ratio, as the authors' ``similar``."""
    return SequenceMatcher(None, a, b).ratio()


@dataclass
class _Hyp:
    dec: list[int]  # decoder inputs so far (start token, forced prefix, emitted tokens)
    cache: Any  # CacheRef covering dec[:-1] (None for the root)
    ptr: int  # next template token index (into content + suffix)
    stage: int  # 0: open marker to place, 1: close marker to place, 2: both placed
    pending: list[int]  # marker pieces still to emit (forced)
    score: float
    acc: list[float]  # accumulated score after each decoder input (CODEC's accumulate_scores)
    open_slot: int = -1
    close_slot: int = -1


@dataclass
class _Incumbent:
    """CODEC's ``Candidate``: the n-best heap and the worst kept hypothesis (the bound)."""

    heap: list[tuple[float, int, tuple[int, int], list[float]]] = field(default_factory=list)
    score: float = float("-inf")
    acc: list[float] | None = None
    count: int = 0


@dataclass
class _Search:
    """One entity's search problem."""

    enc: int
    template: list[int]  # content + suffix ids
    n: int  # content length (markers go at slots 0..n)
    open_ok: frozenset[int]
    close_ok: frozenset[int]
    inc: _Incumbent = field(default_factory=_Incumbent)


@projectors.register("codec-reference")
class CodecReferenceProjector:
    """CODEC (Le et al. 2024) as published: a baseline for benchmarks (see the module docstring).

    Args:
        translator: a Translator with ``model`` and ``tokenizer`` (templates, entity translations
            and scoring), or pass ``model`` and ``tokenizer``.
        reverse_translator: target -> source Translator for the reverse scores (stage 4).
        markers: marker strings (their token ids are looked up).
        n_best: complete hypotheses kept per entity.
        future_steps: the heuristic bound's look-ahead (1 for translate-train; < 0: exact search).
        threshold / window_threshold / window: the candidate-position filter.
        use_candidates: apply that filter (the authors' default).
        batch_size: hypotheses per decoder step of the search, and rows per scoring batch.
        entity_translation: translate each source entity separately for the re-ranking
            similarity (the authors' ``entity_trans``); needs ``translator``.
        src_code / tgt_code: model language codes, when not derivable from the translator.
        target_tokenizer: how target strings are split into tokens (see the constrained projector).
    """

    name = "codec-reference"

    def __init__(
        self,
        translator: Any = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        reverse_translator: Any = None,
        markers: tuple[str, str] = ("[", "]"),
        n_best: int = 5,
        future_steps: int = 1,
        threshold: float = 0.5,
        window_threshold: float = 0.1,
        window: int = 5,
        use_candidates: bool = True,
        batch_size: int = 16,
        entity_translation: bool = True,
        src_code: str | None = None,
        tgt_code: str | None = None,
        target_tokenizer: Any = None,
        policy: str = "reject",
    ) -> None:
        if translator is not None and (model is None or tokenizer is None):
            model = model if model is not None else getattr(translator, "model", None)
            tokenizer = tokenizer if tokenizer is not None else getattr(translator, "tokenizer", None)
        if model is None or tokenizer is None:
            raise ConfigError("codec-reference needs a seq2seq model and its tokenizer: pass a transformers "
                              "translator or model= and tokenizer=")
        if n_best < 1 or batch_size < 1:
            raise ConfigError("n_best and batch_size must be at least 1")
        from dsbuild.project._seq2seq import Seq2SeqScorer
        from dsbuild.project.constrained import marker_token_ids

        self.translator = translator
        self.reverse_translator = reverse_translator
        self.markers = tuple(markers)
        self.n_best = n_best
        self.future_steps = future_steps
        self.threshold, self.window_threshold, self.window = threshold, window_threshold, window
        self.use_candidates = use_candidates
        self.batch_size = batch_size
        self.entity_translation = entity_translation
        self.target_tokenizer = target_tokenizer
        self.policy = policy  # CODEC drops every incomplete sentence: only "reject" is faithful
        self.scorer = Seq2SeqScorer(model, tokenizer, src_code=src_code, tgt_code=tgt_code)
        self._given_codes = (src_code, tgt_code)
        self.open_ids, self.close_ids = marker_token_ids(self.scorer, self.markers)
        self.stats: dict[str, int] = {"sentences": 0, "searches": 0, "search_calls": 0, "search_rows": 0}

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "markers": list(self.markers), "n_best": self.n_best,
                "future_steps": self.future_steps, "threshold": self.threshold, "window": self.window,
                "window_threshold": self.window_threshold, "batch_size": self.batch_size}

    # ------------------------------------------------------------------ public API
    def project(self, sources: Sequence[Example], targets: Sequence[Any] | None = None, *,
                src_lang: str, tgt_lang: str) -> list[Projection]:
        """Project every source's spans onto its template (``targets=None``: translate them)."""
        if targets is not None and len(targets) != len(sources):
            raise ConfigError(f"{len(sources)} sources but {len(targets)} targets: give one target per source")
        from dsbuild.project.constrained import ConstrainedProjector

        ConstrainedProjector._set_codes(self, src_lang, tgt_lang)  # type: ignore[arg-type]
        self._src_lang, self._tgt_lang = src_lang, tgt_lang
        mode = "given" if targets is not None else "translated"
        if targets is None:
            if self.translator is None:
                raise ConfigError("targets=None needs a translator to make the templates")
            texts = [s.text for s in sources]
            todo = [i for i, t in enumerate(texts) if t.strip()]
            done = self.translator.translate([texts[i] for i in todo], src_lang, tgt_lang)
            targets = [""] * len(sources)
            for i, t in zip(todo, done):
                targets[i] = t
        out: list[Projection] = []
        chunk = max(self.batch_size, 64)  # stages run over chunks of sentences (memory), as over a file
        for b in range(0, len(sources), chunk):
            out += self._project_chunk(list(sources[b : b + chunk]), list(targets[b : b + chunk]), mode)
        return out

    # ------------------------------------------------------------------ pipeline
    def _prepare(self, src: Example, tgt: Any, mode: str) -> tuple[Projection | None, dict[str, Any]]:
        from dsbuild.project.constrained import allowed_slots, piece_char_spans

        scorer = self.scorer
        target = C.target_example(src, tgt, C.resolve_tokenizer(self.target_tokenizer, self._tgt_lang))
        qc: dict[str, Any] = {"method": self.name, "template": mode}
        info: dict[str, Any] = {"target": target, "qc": qc}
        bad = C.check_source(src)
        if bad is not None:
            return C.reject_all(src, target, bad[0], bad[1], qc), info
        if not target.text.strip() or not target.tokens:
            return C.reject_all(src, target, C.EMPTY_TARGET, "the target (template) text is empty", qc), info
        if not src.spans:
            return Projection(source=src, target=target, qc=qc), info
        forced, content, suffix = scorer.target_ids(target.text)
        marked = [self._marked(src, sp) for sp in src.spans]
        longest = max(len(scorer.source_ids(m)) for m in marked)
        if not content or max(longest, len(forced) + len(content) + len(suffix) + 4) > scorer.max_tokens:
            return C.reject_all(src, target, C.TOO_LONG if content else C.EMPTY_TARGET,
                                f"template of {len(content)} tokens, marked source of {longest}", qc), info
        pieces = piece_char_spans(scorer, content, target.text)
        opens, closes = allowed_slots(pieces, target)
        if not opens or not closes:
            return C.reject_all(src, target, OUTSIDE_TOKENS, "no word boundary of the template is a target token boundary", qc), info
        info.update(forced=forced, content=content, suffix=suffix, marked=marked, pieces=pieces, opens=opens, closes=closes)
        return None, info

    def _marked(self, src: Example, span: Span) -> str:
        text = src.text
        if any(m in text for m in self.markers):  # source brackets would read as markers
            text = text.replace(self.markers[0], "(").replace(self.markers[1], ")")
            src = Example(id=src.id, text=text, tokens=src.tokens, spans=list(src.spans))
        return C.mark_source(src, self.markers, [span])

    def _project_chunk(self, sources: list[Example], targets: list[Any], mode: str) -> list[Projection]:
        out: list[Projection | None] = []
        work: list[tuple[int, dict[str, Any]]] = []
        for i, (src, tgt) in enumerate(zip(sources, targets)):
            self.stats["sentences"] += 1
            done, info = self._prepare(src, tgt, mode)
            out.append(done)
            if done is None:
                work.append((i, info))
        if not work:
            return out  # type: ignore[return-value]
        searches = self._stage1_2(sources, work)
        for s in searches:
            s.inc = self._search(s)
        self.scorer.release([s.enc for s in searches])
        # per entity: candidates as (forward score, (open, close)), forward-best first
        k = 0
        cands: dict[tuple[int, int], list[tuple[float, tuple[int, int]]]] = {}
        for i, info in work:
            for e in range(len(sources[i].spans)):
                heap = sorted(searches[k].inc.heap, reverse=True)
                cands[(i, e)] = [(h[0], h[2]) for h in heap]
                k += 1
        self._rerank_and_merge(sources, work, cands, out)
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ stages 1-2
    def _stage1_2(self, sources: list[Example], work: list[tuple[int, dict[str, Any]]]) -> list[_Search]:
        """Score each template under its clean source and each single-entity marked source;
        derive the candidate opening positions. Returns one search per entity."""
        from dsbuild.project._seq2seq import Row

        scorer = self.scorer
        clean = scorer.encode([sources[i].text for i, _ in work], batch_size=self.batch_size)
        marked = scorer.encode_ids([scorer.source_ids(m) for _, info in work for m in info["marked"]], batch_size=self.batch_size)
        rows = []
        k = 0
        plan: list[tuple[dict[str, Any], int, list[int]]] = []
        for (i, info), ce in zip(work, clean):
            ext = info["forced"] + info["content"] + info["suffix"]
            rows.append(Row(enc=ce, fed=[scorer.start_id] + ext[:-1], targets=ext))
            ents = marked[k : k + len(info["marked"])]
            k += len(ents)
            rows += [Row(enc=me, fed=[scorer.start_id] + ext[:-1], targets=ext) for me in ents]
            plan.append((info, 1 + len(ents), ents))
        res = []
        for b in range(0, len(rows), self.batch_size):  # the authors score in batches of batch_size
            res += scorer.run(rows[b : b + self.batch_size], keep_cache=False)
        scorer.release(clean)
        searches = []
        at = 0
        for info, width, ents in plan:
            f = len(info["forced"])
            base = res[at].target_logp[f:]
            for e, me in enumerate(ents):
                lp = res[at + 1 + e].target_logp[f:]
                delta = [abs(a - b) for a, b in zip(lp, base)]
                opens = info["opens"]
                if self.use_candidates:
                    cand = candidate_positions(delta, self.threshold, self.window_threshold, self.window)
                    if cand & opens:  # no candidate at a word start: no restriction (as the authors)
                        opens = frozenset(cand & opens)
                searches.append(_Search(me, info["content"] + info["suffix"], len(info["content"]), opens, info["closes"]))
            at += width
        return searches

    # ------------------------------------------------------------------ stage 3: the search
    def _search(self, s: _Search) -> _Incumbent:
        """Depth-first branch and bound for one entity (``bracket_constraint_decode``)."""
        self.stats["searches"] += 1
        forced = self._forced
        root = _Hyp(dec=[self.scorer.start_id] + forced, cache=None, ptr=0, stage=0, pending=[], score=0.0,
                    acc=[0.0] * (1 + len(forced)))
        self._decode(s, [root])
        return s.inc

    @property
    def _forced(self) -> list[int]:
        # the forced target prefix (language code) is the same for every template of a call
        return list(self.scorer.target_ids("x")[0])

    def _bound(self, s: _Search, h: _Hyp) -> float:
        """CODEC's ``current_best_score`` for the children of ``h``."""
        inc = s.inc
        if inc.acc is None:
            return float("-inf")
        if self.future_steps < 0:
            return inc.acc[-1]
        end = min(max(len(h.dec) + self.future_steps, -1), len(inc.acc) - 1)
        return inc.acc[end]

    def _decode(self, s: _Search, hyps: list[_Hyp]) -> None:
        """One recursive call: record finished hypotheses, run one decoder step over the others,
        then recurse into their children, best first, in chunks of ``batch_size``."""
        from dsbuild.project._seq2seq import Row

        live = []
        for h in hyps:
            if h.ptr == len(s.template):
                self._finish(s, h)
            else:
                live.append(h)
        if not live:
            return
        rows = []
        for h in live:
            want = h.pending[0] if h.pending else s.template[h.ptr]
            if h.cache is None:
                rows.append(Row(enc=s.enc, fed=list(h.dec), targets=h.dec[1:] + [want]))
            else:
                rows.append(Row(enc=s.enc, fed=[h.dec[-1]], targets=[want], cache=h.cache, prefix=h.dec[:-1],
                                cache_len=len(h.dec) - 1))
        results = self.scorer.run(rows, extra_ids=[self.open_ids[0], self.close_ids[0]])
        self.stats["search_calls"] += 1
        self.stats["search_rows"] += len(rows)
        children: list[tuple[float, int, _Hyp]] = []
        tie = itertools.count()
        for h, res in zip(live, results):
            bound = self._bound(s, h)
            for child in self._children(s, h, res):
                if child.score > bound:
                    children.append((-child.score, next(tie), child))
        children.sort(key=lambda c: (c[0], c[1]))
        ordered = [c[2] for c in children]
        at = 0
        while at < len(ordered):
            chunk = ordered[at : at + self.batch_size]
            stop = next((q for q, c in enumerate(chunk) if c.score <= s.inc.score), None)
            if stop is not None:
                chunk = chunk[:stop]
            at += self.batch_size
            if chunk:
                self._decode(s, chunk)
            if stop is not None:
                break

    def _children(self, s: _Search, h: _Hyp, res: Any) -> list[_Hyp]:
        """Copy the next template token, or insert the next marker at this slot."""
        lp_next = res.target_logp[-1]
        dec = h.dec
        cache = res.cache
        if h.pending:  # the rest of a multi-piece marker: forced
            score = h.score + lp_next
            return [_Hyp(dec + [h.pending[0]], cache, h.ptr, h.stage, h.pending[1:], score, h.acc + [score],
                         h.open_slot, h.close_slot)]
        out = []
        j = h.ptr
        if j < s.n or h.stage == 2:  # the end of the template only once both markers are in
            score = h.score + lp_next
            out.append(_Hyp(dec + [s.template[j]], cache, j + 1, h.stage, [], score, h.acc + [score],
                            h.open_slot, h.close_slot))
        if h.stage < 2 and j <= s.n:
            placing_open = h.stage == 0
            ok = j in s.open_ok if placing_open else (j in s.close_ok and j > h.open_slot)
            if ok:
                marker = self.open_ids if placing_open else self.close_ids
                score = h.score + res.extra_logp[-1][0 if placing_open else 1]
                child = _Hyp(dec + [marker[0]], cache, j, h.stage + 1, list(marker[1:]), score, h.acc + [score],
                             j if placing_open else h.open_slot, -1 if placing_open else j)
                out.append(child)
        return out

    def _finish(self, s: _Search, h: _Hyp) -> None:
        """Keep a complete hypothesis in the n-best heap (CODEC's update rule, quirks included:
        the bound is set only once a complete hypothesis displaces one of a full heap)."""
        inc = s.inc
        item = (h.score, -inc.count, (h.open_slot, h.close_slot), h.acc)
        if len(inc.heap) < self.n_best:
            heapq.heappush(inc.heap, item)
            inc.count += 1
        elif h.score > inc.score:
            heapq.heappushpop(inc.heap, item)
            inc.count += 1
            inc.score, inc.acc = inc.heap[0][0], inc.heap[0][3]

    # ------------------------------------------------------------------ stages 4-5
    def _rerank_and_merge(self, sources: list[Example], work: list[tuple[int, dict[str, Any]]],
                          cands: dict[tuple[int, int], list[tuple[float, tuple[int, int]]]], out: list[Projection | None]) -> None:
        keys: list[tuple[int, int, int]] = []
        src_texts: list[str] = []
        tgt_texts: list[str] = []
        spans_of: dict[tuple[int, int, int], tuple[int, int]] = {}
        infos = dict(work)
        for (i, e), lst in cands.items():
            info = infos[i]
            for r, (_, (o, c)) in enumerate(lst):
                a, b = _char_span(info["pieces"], o, c)
                spans_of[(i, e, r)] = (a, b)
                keys.append((i, e, r))
                src_texts.append(sources[i].span_text(sources[i].spans[e]))
                tgt_texts.append(info["target"].text[a:b])
        nll = self._reverse_nll(src_texts, tgt_texts)
        r_score = dict(zip(keys, nll))
        entity_tr = self._entity_translations(sources, work)
        for i, info in work:
            src = sources[i]
            target, qc = info["target"], info["qc"]
            chosen: list[tuple[int, int, int, float]] = []  # (start, end, entity, forward score)
            missing = None
            for e, span in enumerate(src.spans):
                lst = cands[(i, e)]
                texts = [info["target"].text[slice(*spans_of[(i, e, r)])].lower() for r in range(len(lst))]
                best = _rerank(texts, [r_score[(i, e, r)] for r in range(len(lst))],
                               src.span_text(span).lower(), entity_tr.get((i, e), "").lower())
                if best is None:
                    missing = (e, "no candidate" if not lst else "every candidate was filtered out by the re-ranking")
                    break
                a, b = spans_of[(i, e, best)]
                chosen.append((a, b, e, lst[best][0]))
            if missing is not None:
                out[i] = C.reject_all(src, target, NO_PLACEMENT, f"entity {missing[0]}: {missing[1]}", qc)
                continue
            chosen.sort()
            clash = next(((x, y) for x, y in zip(chosen, chosen[1:]) if x[1] > y[0]), None)
            if clash is not None:
                out[i] = C.reject_all(src, target, TARGET_OVERLAP,
                                      f"entities {clash[0][2]} and {clash[1][2]} chose overlapping target spans", qc)
                continue
            out[i] = self._projection(src, target, chosen, len(info["content"]) + len(info["suffix"]), qc)

    def _projection(self, src: Example, target: Example, chosen: list[tuple[int, int, int, float]], length: int,
                    qc: dict[str, Any]) -> Projection:
        spans: list[Span] = []
        order: list[int] = []
        for a, b, e, score in chosen:
            rng = C.char_span_to_tokens(target, a, b)
            if rng is None:
                return C.reject_all(src, target, OUTSIDE_TOKENS, f"characters [{a}, {b}) hold no target token", qc)
            spans.append(target.span_from_tokens(rng[0], rng[1], src.spans[e].label, score=math.exp(score / max(1, length))))
            order.append(e)
        tgt = target.with_spans(spans)
        pos = {(sp.token_start, sp.token_end, sp.label): j for j, sp in enumerate(tgt.spans)}
        mapping = {e: pos[(sp.token_start, sp.token_end, sp.label)] for e, sp in zip(order, spans)}
        return Projection(source=src, target=tgt, mapping=mapping, qc=qc)

    def _reverse_nll(self, src_texts: list[str], tgt_texts: list[str]) -> list[float]:
        """Stage 4: NLL (summed, eos included) of the source entity given the target entity under
        the reverse direction; without a reverse translator, of the target entity given the
        source entity under the forward model (the authors' ``--do_forward``)."""
        if not src_texts:
            return []
        if self.reverse_translator is not None:
            scores = []
            for b in range(0, len(src_texts), 256):
                scores += self.reverse_translator.score(tgt_texts[b : b + 256], src_texts[b : b + 256],
                                                        self._tgt_lang, self._src_lang)
            return [-sum(x) for x in scores]
        from dsbuild.project._seq2seq import Row

        scorer = self.scorer
        uniq = sorted(set(src_texts))
        enc = dict(zip(uniq, scorer.encode(uniq, batch_size=self.batch_size)))
        rows = []
        for a, b in zip(src_texts, tgt_texts):
            forced, content, suffix = scorer.target_ids(b)
            ext = forced + content + suffix
            rows.append(Row(enc=enc[a], fed=[scorer.start_id] + ext[:-1], targets=ext))
        res = []
        for b in range(0, len(rows), self.batch_size):
            res += scorer.run(rows[b : b + self.batch_size], keep_cache=False)
        scorer.release(list(enc.values()))
        skip = len(scorer.target_ids("x")[0])
        return [-sum(r.target_logp[skip:]) for r in res]

    def _entity_translations(self, sources: list[Example], work: list[tuple[int, dict[str, Any]]]) -> dict[tuple[int, int], str]:
        if not self.entity_translation or self.translator is None:
            return {}
        keys = [(i, e) for i, _ in work for e in range(len(sources[i].spans))]
        texts = [sources[i].span_text(sources[i].spans[e]) for i, e in keys]
        return dict(zip(keys, self.translator.translate(texts, self._src_lang, self._tgt_lang)))


def _char_span(pieces: Sequence[tuple[int, int] | None], o: int, c: int) -> tuple[int, int]:
    """Characters covered by template pieces ``o..c-1`` (pieces of spaces only are skipped)."""
    inside = [p for p in pieces[o:c] if p is not None and p[0] < p[1]]
    if not inside:
        return (0, 0)
    return inside[0][0], inside[-1][1]


def _words(text: str) -> str:
    return re.sub(" +", " ", re.sub(r"([?,.!:'\"])", r" \1 ", text).strip())


def _rerank(texts: Sequence[str], r_scores: Sequence[float], src_entity: str, entity_tr: str) -> int | None:
    """The authors' ``re_ranking4`` for one entity: the index of the chosen candidate, or None.

    ``texts`` are the candidate target entities (lower-cased) in forward-score order,
    ``r_scores`` their reverse NLLs (lower is better).
    """
    kept = []
    for r, text in enumerate(texts):
        lex = max(similar(text, src_entity), similar(text, entity_tr))
        if lex > 0.5 or r_scores[r] < 5.0:
            kept.append((round(r_scores[r], 4), r, lex, text))
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0][1]
    max_ratio = max(k[2] for k in kept)
    if max_ratio >= 0.9:
        return sorted((k[0], k[1]) for k in kept if k[2] == max_ratio)[0][1]
    r1, rank1, _, entity1 = kept[0]
    e1 = f" {_words(entity1)} "
    for rn, rank_n, _, entity_n in sorted(kept):
        if rn < r1 and f" {_words(entity_n)} " in e1:
            return rank_n
    return rank1
