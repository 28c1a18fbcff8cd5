"""Constrained-decoding projection (CODEC style, Le et al. 2024), all spans of a sentence in one search.

1. The template: the clean source translated once (``targets=None``; translate-train), or the
   given target sentence (translate-test, or a translation made elsewhere). It is never altered.
2. The source with every span wrapped in markers (``[ John Smith ] visits [ Paris ]``) is
   encoded, and an exact branch-and-bound search (:mod:`dsbuild.project._search`) finds the ``n``
   best placements of ALL marker pairs in the template's token sequence under the model
   (``log p(marked template | marked source)``). The marked sequence is built by inserting the
   marker token ids between template token ids at word boundaries, so removing the markers gives
   back the template exactly (asserted).
3. Optional candidate-position pruning (``prune=True``: the loss change of each template token
   between marked and clean source, as in CODEC) restricts the opening-marker slots; KV-cache reuse and batching over
   sentences keep the cost low; the search is one batched decoder pass per round.
4. When the joint search exceeds its budget (or finds nothing), each span is searched alone
   (source with only that span marked) and conflicts are resolved by score.
5. The n-best placements are re-ranked, and target spans assigned to source spans, by the
   translation score of each span pair (forward model, and a reverse model when given) plus
   string similarity.

Every sentence ends with all its spans projected, or with reasons (``Projection.unprojected``,
``Projection.rejected``): nothing is dropped silently.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dsbuild.errors import ConfigError
from dsbuild.project import _common as C
from dsbuild.project.base import Projection, SentencePolicy, Unprojected
from dsbuild.registry import projectors
from dsbuild.spans import Example, Span

log = logging.getLogger(__name__)

NO_PLACEMENT = "no_placement"
TARGET_OVERLAP = "target_overlap"
OUTSIDE_TOKENS = "not_on_target_tokens"


@dataclass
class _Sentence:
    index: int
    source: Example
    target: Example
    qc: dict[str, Any] = field(default_factory=dict)
    forced: list[int] = field(default_factory=list)
    content: list[int] = field(default_factory=list)
    suffix: list[int] = field(default_factory=list)
    piece_chars: list[tuple[int, int] | None] = field(default_factory=list)
    open_slots: frozenset[int] = frozenset()
    close_slots: frozenset[int] = frozenset()
    enc: int = -1
    clean_enc: int = -1
    nbest: list[Any] = field(default_factory=list)  # Hypothesis (joint)
    per_span: dict[int, list[Any]] = field(default_factory=dict)  # span index -> Hypothesis list
    pair: dict[tuple[int, tuple[int, int]], float] = field(default_factory=dict)  # (span, target chars) -> score
    marked_ids: list[int] = field(default_factory=list)  # the marked source, tokenised


@projectors.register("constrained")
class ConstrainedProjector:
    """Project spans by searching the best marker placement in a fixed translation.

    Args:
        translator: a Translator whose HF backend exposes ``model`` and ``tokenizer`` (used for
            the template translation when ``targets`` is None, and for scoring). Alternatively
            pass ``model`` and ``tokenizer`` directly.
        reverse_translator: optional Translator (target -> source) whose ``score`` re-ranks
            candidates by the reverse translation score of the source span given the target span.
        markers: opening and closing marker strings; their token ids are looked up in the
            tokenizer. A tokenizer that cannot express them raises :class:`ConfigError`.
        nbest: complete placements kept per search (for re-ranking).
        nbest_margin: only placements within this many nats of the best are kept for re-ranking
            (the best and the kept ones are exact; far-worse ones cost search time and cannot win).
        max_expansions: search budget (nodes) per sentence before the per-span fallback.
        heuristic: also prune by an estimate of the completion (faster, not exact).
        prune: candidate-position pruning of opening-marker slots (CODEC's loss-change filter). Off
            by default: it needs a second full pass (the template under the clean source) that
            costs more than the search nodes it saves on sentence-length templates (measured with
            scripts/bench_constrained.py), and the search without it is exact over all slots.
        prune_threshold / prune_window / prune_window_threshold: a slot is a candidate when the
            template token's loss rises by ``prune_threshold`` nats under the marked source, or by
            ``prune_window_threshold`` within ``prune_window`` slots of such a slot.
        rerank: re-rank the n-best with span-pair translation scores and string similarity.
        pair_weight / similarity_weight: weights of those terms.
        policy: ``"reject"`` (default) rejects a sentence with any unprojected span
            (partial labels teach a tagger wrong ``O`` tags); ``"keep-partial"`` keeps the rest.
        batch_size: sentences per search batch.
        use_cache: reuse decoder keys/values of shared prefixes.
        max_cache_mb: memory for cached keys/values of pending search nodes.
        src_code / tgt_code: model language codes (NLLB, M2M100, mBART), if not derivable.
        target_tokenizer: how target strings are split into tokens: None (words and punctuation), a
            registered tokenizer name (``whitespace``, ``moses``, ``spacy``) or a tokenizer object.
    """

    name = "constrained"

    def __init__(
        self,
        translator: Any = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        reverse_translator: Any = None,
        markers: tuple[str, str] = ("[", "]"),
        nbest: int = 5,
        nbest_margin: float = 8.0,
        max_expansions: int = 150,
        fallback_max_expansions: int = 100,
        expand_per_round: int = 4,
        heuristic: bool = False,
        prune: bool = False,
        prune_threshold: float = 0.5,
        prune_window: int = 5,
        prune_window_threshold: float = 0.1,
        rerank: bool = True,
        pair_weight: float = 1.0,
        similarity_weight: float = 1.0,
        policy: SentencePolicy = "reject",
        batch_size: int = 32,
        use_cache: bool = True,
        max_cache_mb: int = 512,
        src_code: str | None = None,
        tgt_code: str | None = None,
        target_tokenizer: Any = None,
    ) -> None:
        if translator is not None and (model is None or tokenizer is None):
            model = model if model is not None else getattr(translator, "model", None)
            tokenizer = tokenizer if tokenizer is not None else getattr(translator, "tokenizer", None)
        if model is None or tokenizer is None:
            raise ConfigError(
                "the constrained projector needs a seq2seq model and its tokenizer: pass a transformers "
                "translator (its .model and .tokenizer are used) or model= and tokenizer="
            )
        if policy not in ("reject", "keep-partial"):
            raise ConfigError(f"policy must be 'reject' or 'keep-partial', not {policy!r}")
        if nbest < 1:
            raise ConfigError("nbest must be >= 1")
        from dsbuild.project._seq2seq import Seq2SeqScorer

        self.translator = translator
        self.reverse_translator = reverse_translator
        self.markers = tuple(markers)
        self.nbest = nbest
        self.nbest_margin = nbest_margin
        self.max_expansions = max_expansions
        self.fallback_max_expansions = fallback_max_expansions
        self.expand_per_round = expand_per_round
        self.heuristic = heuristic
        self.prune = prune
        self.prune_threshold = prune_threshold
        self.prune_window = prune_window
        self.prune_window_threshold = prune_window_threshold
        self.rerank = rerank
        self.pair_weight = pair_weight
        self.similarity_weight = similarity_weight
        self.policy = policy
        self.target_tokenizer = target_tokenizer
        self.batch_size = batch_size
        self.scorer = Seq2SeqScorer(model, tokenizer, src_code=src_code, tgt_code=tgt_code, use_cache=use_cache)
        self._given_codes = (src_code, tgt_code)
        self.max_cache_bytes = max_cache_mb * 2**20
        self.open_ids, self.close_ids = marker_token_ids(self.scorer, self.markers)
        self.stats: dict[str, int] = {"sentences": 0, "forward_calls": 0, "forward_rows": 0, "search_rounds": 0}

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "markers": list(self.markers),
            "marker_ids": {"open": self.open_ids, "close": self.close_ids},
            "nbest": self.nbest,
            "max_expansions": self.max_expansions,
            "heuristic": self.heuristic,
            "prune": self.prune,
            "rerank": self.rerank,
            "policy": self.policy,
        }

    # ------------------------------------------------------------------ public API
    def project(
        self,
        sources: Sequence[Example],
        targets: Sequence[str | Sequence[str] | Example] | None = None,
        *,
        src_lang: str,
        tgt_lang: str,
    ) -> list[Projection]:
        """Project every source's spans onto its template.

        ``targets=None`` translates the clean sources with the translator (translate-train);
        given targets are used as templates unchanged (translate-test: the original
        target-language sentences, with ``sources`` the labelled translations).
        """
        if targets is not None and len(targets) != len(sources):
            raise ConfigError(f"{len(sources)} sources but {len(targets)} targets: give one target per source")
        self._set_codes(src_lang, tgt_lang)
        self._src_lang, self._tgt_lang = src_lang, tgt_lang
        mode = "given" if targets is not None else "translated"
        if targets is None:
            if self.translator is None:
                raise ConfigError("targets=None needs a translator to make the templates")
            texts = [s.text for s in sources]
            todo = [i for i, t in enumerate(texts) if t.strip()]
            out = self.translator.translate([texts[i] for i in todo], src_lang, tgt_lang)
            translated = [""] * len(sources)
            for i, t in zip(todo, out):
                translated[i] = t
            targets = translated
        results: list[Projection | None] = [None] * len(sources)
        for b in range(0, len(sources), self.batch_size):
            idx = list(range(b, min(len(sources), b + self.batch_size)))
            for i, proj in zip(idx, self._project_batch([sources[i] for i in idx], [targets[i] for i in idx], mode)):
                results[i] = proj
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------------ batch pipeline
    def _set_codes(self, src_lang: str, tgt_lang: str) -> None:
        """Model language codes from the translator, when it knows them (NLLB, M2M100, mBART
        language tokens; multilingual Marian's ``>>xxx<<`` source prefix)."""
        fn = getattr(self.translator, "model_lang_code", None)
        if callable(fn):
            if self._given_codes[0] is None:
                self.scorer.src_code = fn(src_lang)
            if self._given_codes[1] is None:
                self.scorer.tgt_code = fn(tgt_lang)
        if getattr(self.translator, "family", None) == "marian-multi":
            code = self.translator.model_code(tgt_lang, "target")
            self.scorer.source_prefix = f"{code} " if code else ""

    def _project_batch(self, sources: Sequence[Example], targets: Sequence[Any], mode: str) -> list[Projection]:
        from dsbuild.project._search import MarkerSearch, Problem, strip_markers

        scorer = self.scorer
        tok = C.resolve_tokenizer(self.target_tokenizer, self._tgt_lang)
        out: list[Projection | None] = [None] * len(sources)
        work: list[_Sentence] = []
        for i, (src, tgt) in enumerate(zip(sources, targets)):
            self.stats["sentences"] += 1
            target = C.target_example(src, tgt, tok)
            qc: dict[str, Any] = {"method": self.name, "template": mode}
            bad = C.check_source(src)
            if bad is not None:
                out[i] = C.reject_all(src, target, bad[0], bad[1], qc)
                continue
            if not target.text.strip() or not target.tokens:
                out[i] = C.reject_all(src, target, C.EMPTY_TARGET, "the target (template) text is empty", qc)
                continue
            if not src.spans:
                out[i] = Projection(source=src, target=target, qc={**qc, "search": "none"})
                continue
            forced, content, suffix = scorer.target_ids(target.text)
            if not content:
                out[i] = C.reject_all(src, target, C.EMPTY_TARGET, "the template has no tokens", qc)
                continue
            marked_ids = scorer.source_ids(self._marked_source(src, src.spans))
            marked_len = len(marked_ids)
            target_len = len(forced) + len(content) + len(suffix) + len(src.spans) * (len(self.open_ids) + len(self.close_ids)) + 1
            if max(marked_len, target_len) > scorer.max_tokens:
                out[i] = C.reject_all(
                    src, target, C.TOO_LONG,
                    f"the marked source has {marked_len} and the marked template {target_len} tokens; the model takes "
                    f"{scorer.max_tokens}: split the text into sentences first", qc,
                )
                continue
            sent = _Sentence(i, src, target, qc, forced, content, suffix, marked_ids=marked_ids)
            sent.piece_chars = piece_char_spans(scorer, content, target.text)
            sent.open_slots, sent.close_slots = allowed_slots(sent.piece_chars, target)
            if not sent.open_slots or not sent.close_slots:
                out[i] = C.reject_all(src, target, OUTSIDE_TOKENS, "no word boundary of the template is a target token boundary", qc)
                continue
            escaped = sum(src.text.count(m) for m in self.markers)
            if escaped:
                sent.qc["escaped_markers"] = escaped  # source brackets shown to the model as parentheses
            work.append(sent)
        if work:
            enc = scorer.encode_ids([s.marked_ids for s in work])  # tokenised once, for the length check
            for s, e in zip(work, enc):
                s.enc = e
            problems = [
                Problem(s.enc, s.forced, s.content, s.suffix, len(s.source.spans), s.open_slots, s.close_slots) for s in work
            ]
            roots = self._prune(work, problems) if self.prune else self._root_pass(work)
            search = MarkerSearch(
                scorer, self.open_ids, self.close_ids, nbest=self.nbest, margin=self.nbest_margin, max_expansions=self.max_expansions,
                expand_per_round=self.expand_per_round, heuristic=self.heuristic, max_cache_bytes=self.max_cache_bytes,
            )
            results = search.run(problems, roots=roots)
            self.stats["search_rounds"] += search.rounds
            fallback: list[tuple[_Sentence, int]] = []
            for s, res in zip(work, results):
                s.qc.update(search="joint", exact=res.exact, expansions=res.expansions)
                if res.nbest and not res.gave_up:
                    s.nbest = res.nbest
                else:
                    s.qc["search"] = "per-span"
                    s.qc["joint_gave_up"] = res.gave_up
                    s.nbest = res.nbest  # kept as a last resort
                    fallback += [(s, k) for k in range(len(s.source.spans))]
            if fallback:
                self._per_span(fallback)
            scorer.release([s.enc for s in work] + [s.clean_enc for s in work if s.clean_enc >= 0])
            if self.rerank:
                self._pair_scores(work)
            for s in work:
                out[s.index] = self._finish(s, strip_markers)
        self.stats["forward_calls"] = scorer.forward_calls
        self.stats["forward_rows"] = scorer.forward_rows
        return out  # type: ignore[return-value]

    def _marked_source(self, source: Example, spans: Sequence[Span]) -> str:
        text = source.text
        # Brackets already in the source would read as markers: show them to the model as parentheses.
        if any(m in text for m in self.markers):
            text = text.replace(self.markers[0], "(").replace(self.markers[1], ")")
            source = Example(id=source.id, text=text, tokens=source.tokens, spans=list(source.spans))
        return C.mark_source(source, self.markers, spans)

    def _prune(self, work: list[_Sentence], problems: list[Any]) -> list[Any]:
        """CODEC's candidate filter on opening-marker slots; returns the marked root passes for reuse."""
        from dsbuild.project._seq2seq import Row

        scorer = self.scorer
        clean = scorer.encode([s.source.text for s in work])
        rows = []
        for s, e in zip(work, clean):
            s.clean_enc = e
        for s in work:
            ext = s.forced + s.content + s.suffix
            rows.append(Row(enc=s.enc, fed=[scorer.start_id] + ext[:-1], targets=ext))
        for s in work:
            ext = s.forced + s.content + s.suffix
            rows.append(Row(enc=s.clean_enc, fed=[scorer.start_id] + ext[:-1], targets=ext))
        res = scorer.run(rows, extra_ids=[self.open_ids[0], self.close_ids[0]])
        n = len(work)
        for k, (s, p) in enumerate(zip(work, problems)):
            f = len(s.forced)
            marked_lp = res[k].target_logp[f:]
            clean_lp = res[n + k].target_logp[f:]
            p.clean_logp = list(clean_lp)  # template (+ EOS) under the clean source: orders the search
            delta = [c - m for m, c in zip(marked_lp, clean_lp)]  # loss(marked) - loss(clean)
            strong = [j for j, d in enumerate(delta) if d >= self.prune_threshold]
            near = {
                j for j, d in enumerate(delta)
                if d >= self.prune_window_threshold and any(abs(j - t) <= self.prune_window for t in strong)
            }
            # the slots where the marked model itself most wants an opening marker are always kept
            open_lp = [row[0] for row in res[k].extra_logp[f:]]
            top = sorted(range(len(open_lp)), key=lambda j: -open_lp[j])[: 2 * p.n_pairs]
            cand = (set(strong) | near | set(top)) & set(p.open_slots)
            if len(cand) >= p.n_pairs:
                s.qc["open_slots"] = f"{len(cand)}/{len(p.open_slots)}"
                p.open_slots = frozenset(cand)
        return res[:n]

    def _root_pass(self, work: list[_Sentence]) -> list[Any]:
        """The marked source scoring the bare template (the search's root expansion, and the
        guesses of its speculative pass), without the clean pass that pruning needs."""
        from dsbuild.project._seq2seq import Row

        scorer = self.scorer
        rows = []
        for s in work:
            ext = s.forced + s.content + s.suffix
            rows.append(Row(enc=s.enc, fed=[scorer.start_id] + ext[:-1], targets=ext))
        return scorer.run(rows, extra_ids=[self.open_ids[0], self.close_ids[0]])

    def _per_span(self, items: list[tuple[_Sentence, int]]) -> None:
        from dsbuild.project._search import MarkerSearch, Problem

        marked = [self._marked_source(s.source, [s.source.spans[k]]) for s, k in items]
        enc = self.scorer.encode(marked)
        problems = [Problem(e, s.forced, s.content, s.suffix, 1, s.open_slots, s.close_slots) for (s, _), e in zip(items, enc)]
        search = MarkerSearch(
            self.scorer, self.open_ids, self.close_ids, nbest=self.nbest, margin=self.nbest_margin, max_expansions=self.fallback_max_expansions,
            expand_per_round=self.expand_per_round, heuristic=self.heuristic, max_cache_bytes=self.max_cache_bytes,
        )
        for (s, k), res in zip(items, search.run(problems)):
            s.per_span[k] = res.nbest
            if not res.exact:
                s.qc["exact"] = False
        self.stats["search_rounds"] += search.rounds
        self.scorer.release(enc)

    # ------------------------------------------------------------------ decisions
    def _char_span(self, s: _Sentence, o: int, c: int) -> tuple[int, int]:
        first = next(s.piece_chars[j] for j in range(o, c) if s.piece_chars[j] and s.piece_chars[j][0] < s.piece_chars[j][1])
        last = s.piece_chars[c - 1]
        assert first is not None and last is not None
        return first[0], last[1]

    def _finish(self, s: _Sentence, strip_markers: Any) -> Projection:
        from dsbuild.project._search import Problem, marked_labels

        k = len(s.source.spans)
        problem = Problem(s.enc, s.forced, s.content, s.suffix, k, s.open_slots, s.close_slots)
        # The invariant: the marked output without its markers is the template, exactly.
        for hyp in s.nbest:
            labels = marked_labels(problem, hyp.slots, self.open_ids, self.close_ids)
            assert strip_markers(labels, hyp.slots, problem, self.open_ids, self.close_ids) == s.content, "template altered"
        chosen: dict[int, tuple[int, int, float]] = {}  # source span -> (char start, char end, score)
        unprojected: list[Unprojected] = []
        if s.qc["search"] == "joint":
            chosen = self._choose_joint(s)
        else:
            chosen, unprojected = self._choose_per_span(s)
        spans: list[Span] = []
        mapping: dict[int, int] = {}
        items = []
        for i, src_span in enumerate(s.source.spans):
            if i not in chosen:
                continue
            start, end, score = chosen[i]
            rng = C.char_span_to_tokens(s.target, start, end)
            if rng is None:
                unprojected.append(Unprojected(src_span, OUTSIDE_TOKENS, f"characters [{start}, {end}) hold no target token"))
                continue
            items.append((i, s.target.span_from_tokens(rng[0], rng[1], src_span.label, score=score)))
        items.sort(key=lambda x: (x[1].token_start, x[1].token_end))
        for i, span in items:
            mapping[i] = len(spans)
            spans.append(span)
        target = s.target.with_spans(spans)
        # with_spans sorts by position: recompute the mapping against the stored order
        order = {(sp.token_start, sp.token_end, sp.label): j for j, sp in enumerate(target.spans)}
        mapping = {i: order[(sp.token_start, sp.token_end, sp.label)] for i, sp in items}
        proj = Projection(source=s.source, target=target, mapping=mapping, unprojected=unprojected, qc=s.qc)
        if unprojected and self.policy == "reject":
            C.reject_sentence(proj, unprojected[0].reason, f"{len(unprojected)} of {k} spans unprojected ({unprojected[0].detail})")
        return proj

    def _candidate_spans(self, s: _Sentence) -> set[tuple[int, int]] | None:
        """Target character spans to score against the source spans, or None when re-ranking
        cannot change anything (one placement, and labels that any assignment gets right)."""
        k = len(s.source.spans)
        if s.qc.get("search") == "joint":
            if len(s.nbest) <= 1 and len({sp.label for sp in s.source.spans}) <= 1:
                return None
            if len(s.nbest) == 1 and self._decisive_by_similarity(s):
                return None
            return {self._char_span(s, h.slots[2 * t], h.slots[2 * t + 1]) for h in s.nbest for t in range(k)}
        return {self._char_span(s, h.slots[0], h.slots[1]) for hyps in s.per_span.values() for h in hyps}

    def _decisive_by_similarity(self, s: _Sentence, margin: float = 0.5) -> bool:
        """One placement whose spans string similarity alone assigns (names copied or
        transliterated): the best assignment beats every other by ``margin``. Then the model's
        span-pair scores are not needed (and not computed)."""
        k = len(s.source.spans)
        h = s.nbest[0]
        spans = [self._char_span(s, h.slots[2 * t], h.slots[2 * t + 1]) for t in range(k)]
        sim = [[C.similarity(s.source.span_text(s.source.spans[i]), s.target.text[a:b]) for (a, b) in spans] for i in range(k)]
        if k > 6:
            return False
        totals = sorted((sum(sim[i][perm[i]] for i in range(k)) for perm in itertools.permutations(range(k))), reverse=True)
        if len(totals) > 1 and totals[0] - totals[1] < margin:
            return False
        s.pair = {(i, spans[j]): sim[i][j] for i in range(k) for j in range(k)}
        s.qc["assignment"] = "similarity"
        return True

    def _pair_scores(self, work: Sequence[_Sentence]) -> None:
        """Score (source span, target span) pairs of every sentence in one batch: mean token
        log-prob of the target span given the source span (+ the reverse model's, when given)
        + string similarity. Stored in ``s.pair``."""
        keys: list[tuple[_Sentence, int, tuple[int, int]]] = []
        for s in work:
            cands = self._candidate_spans(s)
            if cands:
                keys += [(s, i, c) for i in range(len(s.source.spans)) for c in sorted(cands)]
        if not keys:
            return
        src_texts = [s.source.span_text(s.source.spans[i]) for s, i, _ in keys]
        tgt_texts = [s.target.text[a:b] for s, _, (a, b) in keys]
        fwd = self._span_logprob(src_texts, tgt_texts)
        rev = [0.0] * len(keys)
        if self.reverse_translator is not None:
            scores = self.reverse_translator.score(tgt_texts, src_texts, self._tgt_lang, self._src_lang)
            rev = [sum(x) / max(1, len(x)) for x in scores]
        for (s, i, c), f, r, a, b in zip(keys, fwd, rev, src_texts, tgt_texts):
            s.pair[(i, c)] = f + r + self.similarity_weight * C.similarity(a, b)

    def _span_logprob(self, src_texts: list[str], tgt_texts: list[str]) -> list[float]:
        """Mean per-token log p(target span | source span) under the forward model (batched)."""
        from dsbuild.project._seq2seq import Row

        scorer = self.scorer
        uniq_src = sorted(set(src_texts))
        enc = dict(zip(uniq_src, scorer.encode(uniq_src)))
        rows = []
        for a, b in zip(src_texts, tgt_texts):
            forced, content, suffix = scorer.target_ids(b)
            ext = forced + content + suffix
            rows.append(Row(enc=enc[a], fed=[scorer.start_id] + ext[:-1], targets=ext))
        res = scorer.run(rows, keep_cache=False)
        scorer.release(list(enc.values()))
        out = []
        for row, r in zip(rows, res):
            lp = r.target_logp
            out.append(sum(lp) / max(1, len(lp)))
        return out

    def _choose_joint(self, s: _Sentence) -> dict[int, tuple[int, int, float]]:
        k = len(s.source.spans)
        cands = [(h, [self._char_span(s, h.slots[2 * t], h.slots[2 * t + 1]) for t in range(k)]) for h in s.nbest]
        if not s.pair:
            h, spans = cands[0]
            s.qc["score"] = round(h.score, 4)
            conf = math.exp(h.score / max(1, len(s.content)))
            return {i: (*spans[i], conf) for i in range(k)}  # source order = target order
        pair = s.pair
        best: tuple[float, Any, Any, Any] | None = None
        for h, spans in cands:
            perm, total = _best_assignment(k, lambda i, j: pair[(i, spans[j])])
            value = h.score + self.pair_weight * total
            if best is None or value > best[0]:
                best = (value, h, spans, perm)
        assert best is not None
        value, h, spans, perm = best
        s.qc["score"] = round(h.score, 4)
        s.qc["rerank_score"] = round(value, 4)
        s.qc["reordered"] = perm != list(range(k))
        return {i: (*spans[perm[i]], math.exp(h.score / max(1, len(s.content)))) for i in range(k)}

    def _choose_per_span(self, s: _Sentence) -> tuple[dict[int, tuple[int, int, float]], list[Unprojected]]:
        k = len(s.source.spans)
        options: list[tuple[float, int, tuple[int, int], float]] = []
        cands = {i: [(h, self._char_span(s, h.slots[0], h.slots[1])) for h in s.per_span.get(i, [])] for i in range(k)}
        pair = s.pair
        for i in range(k):
            for h, c in cands[i]:
                value = h.score + (self.pair_weight * pair[(i, c)] if pair else 0.0)
                options.append((value, i, c, math.exp(h.score / max(1, len(s.content)))))
        options.sort(key=lambda x: -x[0])
        chosen: dict[int, tuple[int, int, float]] = {}
        for value, i, (a, b), conf in options:
            if i in chosen:
                continue
            if any(a < e and st < b for st, e, _ in chosen.values()):
                continue
            chosen[i] = (a, b, conf)
        unprojected = []
        for i, span in enumerate(s.source.spans):
            if i in chosen:
                continue
            if not cands[i]:
                unprojected.append(Unprojected(span, NO_PLACEMENT, "the search found no placement within its budget"))
            else:
                unprojected.append(Unprojected(span, TARGET_OVERLAP, "every placement found overlaps a better-scoring span"))
        return chosen, unprojected


# ---------------------------------------------------------------------- helpers (also used by tests)
def marker_token_ids(scorer: Any, markers: Sequence[str]) -> tuple[list[int], list[int]]:
    """Target-side token ids of the opening and closing markers, looked up in the tokenizer.

    Raises ConfigError when the vocabulary cannot express a marker (unknown token, or ids that
    do not decode back to the marker).
    """
    tok = scorer.tokenizer
    unk = getattr(tok, "unk_token_id", None)
    out = []
    for m in markers:
        ids = scorer.target_piece_ids(m)
        if not ids or (unk is not None and unk in ids) or scorer.decode(ids).strip() != m:
            raise ConfigError(
                f"the model's vocabulary cannot express the marker {m!r} (tokenised as "
                f"{tok.convert_ids_to_tokens(ids) if ids else []}); use a marker-aware model "
                "(one fine-tuned with markers, as EasyProject/CODEC checkpoints) or other markers= that it knows"
            )
        out.append(list(ids))
    if out[0] == out[1]:
        raise ConfigError(f"markers {markers[0]!r} and {markers[1]!r} have the same token ids: use distinct markers")
    return out[0], out[1]


def piece_char_spans(scorer: Any, content: Sequence[int], text: str) -> list[tuple[int, int] | None]:
    """Character span in ``text`` of each template piece (``(p, p)`` for a piece of spaces only,
    None when the piece cannot be located, e.g. after tokenizer normalisation)."""
    import difflib

    decoded = scorer.decode(content)
    spans: list[tuple[int, int]] = []
    # sentencepiece pieces spell the text ("▁" = space): one pass when they reproduce the decoding
    pieces = scorer.tokenizer.convert_ids_to_tokens(list(content))
    spelled = "".join(p.replace("\u2581", " ") for p in pieces)
    lead = len(spelled) - len(spelled.lstrip(" "))
    if spelled[lead:] == decoded:
        pos = -lead
        for p in pieces:
            piece = p.replace("\u2581", " ")
            a, e = pos, pos + len(piece)
            a = max(a, 0)
            while a < e and decoded[a].isspace():
                a += 1
            spans.append((a, max(a, e)))
            pos = e
    else:  # other tokenizers: the end of each piece is the length of the decoded prefix
        ends = [len(scorer.decode(content[: i + 1])) for i in range(len(content))]
        prev = 0
        for e in ends:
            e = max(e, prev)
            a = prev
            while a < e and decoded[a].isspace():
                a += 1
            spans.append((a, e))
            prev = e
    if decoded == text:
        return list(spans)
    # Map decoded offsets onto the given text through matching blocks (normalisation differences).
    matcher = difflib.SequenceMatcher(None, decoded, text, autojunk=False)
    pos: dict[int, int] = {}
    for blk in matcher.get_matching_blocks():
        for t in range(blk.size + 1):
            pos.setdefault(blk.a + t, blk.b + t)
    out: list[tuple[int, int] | None] = []
    for a, b in spans:
        if a == b:
            out.append((pos[a], pos[a]) if a in pos else None)
        elif a in pos and b in pos and (b - 1) in pos and pos[b - 1] + 1 == pos[b]:
            out.append((pos[a], pos[b]))
        else:
            out.append(None)
    return out


def allowed_slots(piece_chars: Sequence[tuple[int, int] | None], target: Example) -> tuple[frozenset[int], frozenset[int]]:
    """Slots where markers may go: word boundaries that are target-token boundaries.

    Slot ``j`` is before piece ``j``. An opening slot must be followed (after pieces of spaces
    only) by a piece starting a target token; a closing slot must follow a piece ending one.
    Of several slots with the same character position only the first is kept (so ``▁`` + ``word``
    is marked as ``▁[ ▁word`` and not inside), which makes placements and spans one-to-one.
    """
    starts = {t.start for t in target.tokens}
    ends = {t.end for t in target.tokens}
    n = len(piece_chars)

    def nonempty(j: int) -> bool:
        pc = piece_chars[j]
        return pc is not None and pc[0] < pc[1]

    opens = set()
    for j in range(n):
        if j > 0 and not nonempty(j - 1):
            continue  # not the first slot at this position
        k = j
        while k < n and piece_chars[k] is not None and not nonempty(k):
            k += 1
        if k < n and nonempty(k) and piece_chars[k][0] in starts:  # type: ignore[index]
            opens.add(j)
    closes = set()
    for j in range(1, n + 1):
        if nonempty(j - 1) and piece_chars[j - 1][1] in ends:  # type: ignore[index]
            closes.add(j)
    return frozenset(opens), frozenset(closes)


def _best_assignment(k: int, score: Any) -> tuple[list[int], float]:
    """Permutation ``perm`` (source span i -> target span perm[i]) maximising the summed score."""
    if k == 1:
        return [0], score(0, 0)
    if k <= 6:
        best_perm, best = list(range(k)), float("-inf")
        for perm in itertools.permutations(range(k)):
            total = sum(score(i, perm[i]) for i in range(k))
            if total > best + 1e-12:
                best_perm, best = list(perm), total
        return best_perm, best
    # many spans: greedy on the best remaining pair (no extra dependency; exact up to 6 spans)
    pairs = sorted(((score(i, j), i, j) for i in range(k) for j in range(k)), key=lambda x: (-x[0], x[1], x[2]))
    perm = [-1] * k
    used: set[int] = set()
    total = 0.0
    for value, i, j in pairs:
        if perm[i] < 0 and j not in used:
            perm[i] = j
            used.add(j)
            total += value
    return perm, total
