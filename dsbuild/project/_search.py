"""Branch-and-bound search for marker placements in a fixed template (private helper).

Problem: a template (token ids ``y_0..y_{n-1}``, then EOS) is fixed. ``k`` pairs of markers
(``open``, ``close``; each a short id sequence) must be inserted at *slots* (slot ``j`` = before
``y_j``; slot ``n`` = before EOS) so that pair ``i`` covers ``[open_i, close_i)`` with
``open_i < close_i <= open_{i+1}``. The score of a placement is the model's log-probability of
the marked sequence given the marked source. Removing the markers gives back the template, by
construction.

Search: every log-probability is <= 0, so the score of a prefix bounds the score of every
completion. A node is a prefix ending in a marker. Expanding a node costs ONE teacher-forced
decoder pass over the rest of the template (continuing from the node's cached keys/values),
which yields at once

* the exact score of the node's pending marker pieces,
* ``log p(y_i | prefix, y_<i)`` for every remaining template token, and
* ``log p(first marker piece | prefix, y_<i)`` at every remaining slot,

so the exact prefix score of EVERY child (next marker at any slot) is known from that one pass.
Nodes whose bound cannot beat the n-th best complete score are pruned; the search stops when
nothing is left, and the n best are then exact. Nodes are expanded in order of an estimate (the
bound plus the parent's scores of the remaining tokens), several per problem per round and all
problems of a batch in one forward, which finds good incumbents early without affecting exactness.
The optional heuristic bound also prunes nodes whose *estimate* is below the incumbent (faster,
not exact).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from dsbuild.project._seq2seq import CacheRef, Row, RowResult, Seq2SeqScorer

log = logging.getLogger(__name__)


@dataclass
class Problem:
    """One search: where to put ``n_pairs`` marker pairs in ``content`` given the source ``enc``."""

    enc: int
    forced: list[int]  # forced target prefix (e.g. a language code): fed, not scored
    content: list[int]  # the template ids
    suffix: list[int]  # end of sequence ids (scored)
    n_pairs: int
    open_slots: frozenset[int]
    close_slots: frozenset[int]
    #: log-probs of the template tokens (and EOS) given the CLEAN source, when known: the search
    #: orders nodes by ``bound + clean scores of the rest`` (the template scores about that well
    #: once its markers are in place), which finds the best placement first. Ordering only.
    clean_logp: list[float] | None = None

    @property
    def n(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class Hypothesis:
    """A complete placement: ``slots = (open_0, close_0, open_1, close_1, ...)`` and its log-probability."""

    slots: tuple[int, ...]
    score: float


@dataclass
class SearchResult:
    nbest: list[Hypothesis]
    exact: bool  # proven optimal: not given up, and no heuristic pruning
    expansions: int
    gave_up: bool = False  # the budget ran out before the search space was exhausted


@dataclass
class _Node:
    slots: tuple[int, ...]
    cursor: int  # next template index to emit
    labels: list[int]  # forced + marked template up to cursor + marker pieces
    bound: float  # exact log-prob of labels, except the ``pending`` last pieces
    pending: int
    estimate: float
    cache: CacheRef | None
    cache_len: int  # decoder inputs covered by ``cache`` (0 when none)
    first_slot: int = -1  # first slot this node places its next marker at (-1: its cursor)
    upper: float | None = None  # a tighter admissible bound than ``bound`` (pruning only)

    @property
    def cap(self) -> float:
        return self.bound if self.upper is None else min(self.bound, self.upper)


@dataclass
class _State:
    problem: Problem
    heap: list[tuple[float, int, _Node]] = field(default_factory=list)
    nbest: list[Hypothesis] = field(default_factory=list)
    expansions: int = 0
    gave_up: bool = False
    prefetched: dict[tuple[int, ...], tuple[int, int, RowResult, bool]] = field(default_factory=dict)
    root_cache: CacheRef | None = None

    def threshold(self, n: int, margin: float = float("inf")) -> float:
        """Scores at or below this cannot enter the n-best: below the n-th best, or more than
        ``margin`` below the best."""
        nth = self.nbest[n - 1].score if len(self.nbest) >= n else float("-inf")
        within = self.nbest[0].score - margin if self.nbest else float("-inf")
        return max(nth, within)


def marked_labels(problem: Problem, slots: Sequence[int], open_ids: Sequence[int], close_ids: Sequence[int]) -> list[int]:
    """The label sequence (forced + marked template + suffix) of a placement."""
    out = list(problem.forced)
    marks = sorted(((s, i) for i, s in enumerate(slots)), key=lambda x: (x[0], x[1]))
    m = 0
    for j in range(problem.n + 1):
        while m < len(marks) and marks[m][0] == j:
            out += list(open_ids if marks[m][1] % 2 == 0 else close_ids)
            m += 1
        if j < problem.n:
            out.append(problem.content[j])
    return out + list(problem.suffix)


def strip_markers(labels: Sequence[int], slots: Sequence[int], problem: Problem, open_ids: Sequence[int], close_ids: Sequence[int]) -> list[int]:
    """Inverse of :func:`marked_labels`: remove the inserted marker pieces (by position, not by id)."""
    out = list(labels)
    pos = len(problem.forced)
    removed: list[int] = []
    marks = sorted(((s, i) for i, s in enumerate(slots)), key=lambda x: (x[0], x[1]))
    m = 0
    for j in range(problem.n + 1):
        while m < len(marks) and marks[m][0] == j:
            width = len(open_ids if marks[m][1] % 2 == 0 else close_ids)
            removed.extend(range(pos, pos + width))
            pos += width
            m += 1
        pos += 1
    drop = set(removed)
    return [t for i, t in enumerate(out) if i not in drop][len(problem.forced) : len(out) - len(drop) - len(problem.suffix)]


def valid_placements(problem: Problem) -> Iterator[tuple[int, ...]]:
    """Every valid placement (for exhaustive enumeration in tests)."""
    n, k = problem.n, problem.n_pairs

    def rec(start: int, left: int) -> Iterator[tuple[int, ...]]:
        if left == 0:
            yield ()
            return
        for o in range(start, n - left + 1):
            if o not in problem.open_slots:
                continue
            for c in range(o + 1, n + 1):
                if c not in problem.close_slots:
                    continue
                for rest in rec(c, left - 1):
                    yield (o, c) + rest

    yield from rec(0, k)


def exhaustive_search(
    scorer: Seq2SeqScorer, problem: Problem, open_ids: Sequence[int], close_ids: Sequence[int], nbest: int = 5, batch: int = 256
) -> list[Hypothesis]:
    """Score every valid placement with a full teacher-forced pass (no cache, no pruning)."""
    hyps: list[Hypothesis] = []
    placements = list(valid_placements(problem))
    skip = len(problem.forced)
    for b in range(0, len(placements), batch):
        chunk = placements[b : b + batch]
        rows = []
        for slots in chunk:
            labels = marked_labels(problem, slots, open_ids, close_ids)
            rows.append(Row(enc=problem.enc, fed=[scorer.start_id] + labels[:-1], targets=labels))
        for slots, res in zip(chunk, scorer.run(rows, keep_cache=False)):
            hyps.append(Hypothesis(slots, float(sum(res.target_logp[skip:]))))
    hyps.sort(key=lambda h: (-h.score, h.slots))
    return hyps[:nbest]


class MarkerSearch:
    """Exact (or heuristic) n-best marker placement for many problems at once.

    Args:
        scorer: the model wrapper (with the marked sources already encoded).
        open_ids / close_ids: marker piece ids (looked up from the tokenizer by the caller).
        nbest: hypotheses kept per problem.
        margin: only hypotheses within ``margin`` nats of the best are kept (and searched for):
            the best and every kept hypothesis are still exact, far-worse ones are not sought.
        max_expansions: node budget per problem; when exceeded the search gives up
            (``exact=False``; the incumbents found so far are returned).
        expand_per_round: nodes expanded per problem in one batched forward.
        heuristic: also prune nodes whose estimate is below the incumbent (not exact).
        max_cache_bytes: keys/values kept for pending nodes; beyond it the lowest-priority nodes
            drop their cache and are recomputed when expanded (memory bounded, result unchanged).
        window: template tokens a node's pass covers past its cursor (None: the whole rest). A
            node whose children may lie further gets a continuation node (same prefix, later
            slots) that is expanded only if its bound is still competitive: most of the template
            after a missing marker is never scored.
        speculate / max_guesses: with a root pass given, expand the nodes along up to
            ``max_guesses`` guessed placements in one batch first (see :meth:`_speculate`).
    """

    def __init__(
        self,
        scorer: Seq2SeqScorer,
        open_ids: Sequence[int],
        close_ids: Sequence[int],
        *,
        nbest: int = 5,
        margin: float = float("inf"),
        max_expansions: int = 200,
        expand_per_round: int = 4,
        heuristic: bool = False,
        max_cache_bytes: int = 512 * 2**20,
        speculate: bool = True,
        max_guesses: int = 2,
        window: int | None = 8,
        guess_min_logp: float = -3.0,
    ) -> None:
        self.scorer = scorer
        self.open_ids = list(open_ids)
        self.close_ids = list(close_ids)
        self.nbest = nbest
        self.margin = margin
        self.max_expansions = max_expansions
        self.expand_per_round = expand_per_round
        self.heuristic = heuristic
        self.max_cache_bytes = max_cache_bytes
        self.speculate = speculate
        self.window = window
        self.guess_min_logp = guess_min_logp
        self.max_guesses = max_guesses
        self.speculated_rows = 0
        self.rounds = 0
        self._tie = itertools.count()
        self._pending_bytes = 0
        self._clean_memo: dict[int, list[float]] = {}

    def run(self, problems: Sequence[Problem], roots: Sequence[RowResult] | None = None) -> list[SearchResult]:
        """Search every problem; ``roots`` are optional results of the root pass already run
        (the marked source scoring the bare template, e.g. for candidate pruning), reused as is."""
        states = [_State(p) for p in problems]
        start = self.scorer.start_id
        if roots is not None and self.speculate:
            self._speculate(states, roots)
        for k, st in enumerate(states):
            p = st.problem
            if p.n_pairs == 0:
                continue
            root = _Node((), 0, list(p.forced), 0.0, 0, 0.0, None, 0)
            if roots is not None:  # a full pass over the template (window end n)
                st.expansions += 1
                self._expand(st, root, p.n, roots[k])
            else:
                self._push(st, root)
        while True:
            rows: list[Row] = []
            owners: list[tuple[_State, _Node]] = []
            for st in states:
                if st.gave_up:
                    continue
                thr = st.threshold(self.nbest, self.margin)
                taken = 0
                # one node per round until a first complete placement exists (a greedy dive for an
                # incumbent), then several: siblings expanded before any incumbent are mostly wasted
                per_round = self.expand_per_round if st.nbest else 1
                while st.heap and taken < per_round:
                    node = st.heap[0][2]
                    if node.cap <= thr or (self.heuristic and node.estimate <= thr):
                        heapq.heappop(st.heap)
                        continue
                    if st.expansions >= self.max_expansions:
                        st.gave_up = True
                        break
                    heapq.heappop(st.heap)
                    st.expansions += 1
                    taken += 1
                    rows.append(self._row(st.problem, node, self._window_end(st.problem, node)))
                    owners.append((st, node))
                if st.gave_up:
                    st.heap.clear()
            if not rows:
                break
            self.rounds += 1
            results = self.scorer.run(rows, extra_ids=[self.open_ids[0], self.close_ids[0]])
            for (st, node), row, res in zip(owners, rows, results):
                self._expand(st, node, row.window_end, res)
            # a full memory check walks every pending node: only when new caches could exceed the budget
            fresh = {id(r.cache.layers[0][0]): r.cache.nbytes() for r in results if r.cache is not None}
            self._pending_bytes += sum(fresh.values())
            if self._pending_bytes > self.max_cache_bytes:
                self._pending_bytes = self._bound_memory(states)
        out = []
        for st in states:
            if st.gave_up:
                log.debug("search gave up after %d expansions", st.expansions)
            # the heuristic bound prunes by an estimate: its result is never proven
            out.append(SearchResult(list(st.nbest), exact=not st.gave_up and not self.heuristic, expansions=st.expansions, gave_up=st.gave_up))
        return out

    def _window_end(self, p: Problem, node: _Node, at_least: int = 0, window: int | None = -1) -> int:
        """Last slot a node's pass covers: all of the template for a node with every marker
        placed (its complete score needs it), else ``window`` tokens past its cursor."""
        window = self.window if window == -1 else window
        if len(node.slots) == 2 * p.n_pairs or window is None:
            return p.n
        return min(p.n, max(node.cursor + window, at_least))

    def _row(self, p: Problem, node: _Node, end: int) -> Row:
        """The decoder row expanding ``node`` up to slot ``end``: its outputs predict the pending
        marker pieces, template tokens ``cursor..end`` (``end == n``: EOS and the rest of the
        suffix), and give the marker probability at every slot in between."""
        start = self.scorer.start_id
        full = node.labels + p.content[node.cursor : end] + (p.suffix if end == p.n else [p.content[end]])
        dec = ([start] + full)[:-1]
        L = node.cache_len if node.cache is not None else 0
        row = Row(enc=p.enc, fed=dec[L:], targets=full[L:], cache=node.cache, prefix=dec[:L], cache_len=L if L else None)
        row.window_end = end  # type: ignore[attr-defined]
        return row

    # ------------------------------------------------------------------ speculation
    def _speculate(self, states: Sequence[_State], roots: Sequence[RowResult]) -> None:
        """Expand the nodes along guessed placements of every problem in ONE batched pass.

        The root pass shows where the model wants a marker: the first marker piece is likely at
        those slots, and the template token after them scores much worse than under the clean
        source. From those slots we guess whole placements and expand every node along them at
        once (each row continues the root's cache up to the first marker). Expanded nodes are
        kept; when the exact search reaches one of them it uses the stored pass instead of
        computing it, so a right guess turns ``2k + 1`` sequential rounds into one, and a wrong
        guess only costs rows. Exactness does not depend on the guess.
        """
        rows: list[Row] = []
        owners: list[tuple[_State, tuple[int, ...]]] = []
        for st, root in zip(states, roots):
            p = st.problem
            if p.n_pairs == 0 or root.cache is None:
                continue
            st.root_cache = root.cache
            for guess in _guess_placements(p, root, self.max_guesses, self.guess_min_logp):
                # ONE row per guess: the fully marked template. Up to its next marker, its outputs
                # are exactly those of every node along the guess (same prefix), so each of those
                # nodes is expanded up to the slot of its next marker from this single pass.
                node = _Node(guess, p.n, marked_labels(p, guess, self.open_ids, self.close_ids)[: -len(p.suffix) or None],
                             0.0, 0, 0.0, root.cache, 1 + len(p.forced) + guess[0])
                rows.append(self._row(p, node, p.n))
                owners.append((st, guess))
        if not rows:
            return
        self.rounds += 1
        for (st, guess), res in zip(owners, self.scorer.run(rows, extra_ids=[self.open_ids[0], self.close_ids[0]])):
            L = 1 + len(st.problem.forced) + guess[0]
            for m in range(1, len(guess) + 1):
                end = guess[m] if m < len(guess) else st.problem.n
                st.prefetched.setdefault(guess[:m], (L, end, res, m < len(guess)))
        self.speculated_rows += len(rows)

    # ------------------------------------------------------------------ internals
    def _push(self, st: _State, node: _Node) -> None:
        heapq.heappush(st.heap, (-node.estimate, next(self._tie), node))

    def _expand(self, st: _State, node: _Node, end: int, res: RowResult, partial: bool = False) -> None:
        """Use one pass over ``node`` (covering slots ``cursor..end``): score its pending marker
        pieces, complete it, or create its children (and a continuation when ``end < n``).

        ``partial``: the pass is a longer sequence's that puts a marker at slot ``end``, so the
        template token at ``end`` was not scored under this node's prefix."""
        p = st.problem
        L = node.cache_len if node.cache is not None else 0
        lp = res.target_logp  # lp[q] predicts full[L + q] (see _row)
        n_lab = len(node.labels)
        exact = node.bound + sum(lp[n_lab - node.pending - L : n_lab - L]) if node.pending else node.bound
        thr = st.threshold(self.nbest, self.margin)
        if exact <= thr:
            return
        base = n_lab - L  # index in lp of template token y_cursor
        content_lp = lp[base : base + min(end, p.n) - node.cursor]
        if len(node.slots) == 2 * p.n_pairs:
            assert end == p.n
            score = exact + sum(content_lp) + sum(lp[base + p.n - node.cursor :])
            if score > thr:
                self._add_complete(st, Hypothesis(node.slots, score))
            return
        placing_open = len(node.slots) % 2 == 0
        marker = self.open_ids if placing_open else self.close_ids
        which = 0 if placing_open else 1
        pairs_left = p.n_pairs - len(node.slots) // 2
        clean_rest = self._clean_rest(p)
        first = node.cursor if node.first_slot < 0 else node.first_slot
        running = 0.0
        # loop invariants hoisted: this loop runs for every slot of every expanded node
        n, cursor, extra = p.n, node.cursor, res.extra_logp
        slots_ok = p.open_slots if placing_open else p.close_slots
        lowest = 0 if placing_open else (node.slots[-1] + 1 if node.slots else 0)  # a close follows its open
        highest = n - pairs_left if placing_open else n  # room for the remaining opens
        last_scored = min(end, n)
        for j in range(cursor, end + 1):
            if j >= first and lowest <= j <= highest and j in slots_ok:
                bound = exact + running + extra[base + j - cursor][which]
                if bound > thr:
                    estimate = bound + clean_rest[j] if clean_rest else bound
                    if not (self.heuristic and estimate <= thr):
                        self._child(st, node, j, marker, bound, estimate, res, n_lab)
                        thr = st.threshold(self.nbest, self.margin)
            if j < last_scored:
                running += content_lp[j - cursor]
                if exact + running <= thr:
                    return  # every later slot only adds negative terms: no continuation either
        if end < p.n:
            # the rest of the template from slot end + 1, continuing this pass's cache
            if partial:
                # y_end was not scored under this prefix, but the marker pieces were: p(y_end) is
                # at most 1 - p(marker pieces other than y_end), which keeps the bound admissible
                y = p.content[end]
                ids = {self.open_ids[0]: 0, self.close_ids[0]: 1}
                mass = sum(math.exp(res.extra_logp[base + end - node.cursor][w]) for t, w in ids.items() if t != y)
                labels = node.labels + p.content[node.cursor : end]
                bound, cursor = exact + running, end  # exact score of ``labels``
                upper = bound + math.log1p(-min(mass, 1.0 - 1e-12))
            else:
                labels = node.labels + p.content[node.cursor : end + 1]
                bound, cursor = exact + running + lp[base + end - node.cursor], end + 1
                upper = bound
            if upper > thr:
                estimate = upper + clean_rest[end + 1] if clean_rest else upper
                cont = _Node(node.slots, cursor, labels, bound, 0, estimate, res.cache, len(labels), first_slot=end + 1, upper=upper)
                if res.cache is None:
                    cont.cache_len = 0
                self._push(st, cont)

    def _child(self, st: _State, node: _Node, j: int, marker: list[int], bound: float, estimate: float, res: RowResult, n_lab: int) -> None:
        """A node with the next marker at slot ``j``; expanded at once when speculation did its pass."""
        p = st.problem
        child_labels = node.labels + p.content[node.cursor : j] + marker
        cache_len = n_lab + (j - node.cursor) + 1  # decoder inputs [start] + labels up to marker[0]
        # the child's prefix is the parent's pass up to the marker: share its cache
        child = _Node(node.slots + (j,), j, child_labels, bound, len(marker) - 1, estimate, res.cache, cache_len)
        pre = st.prefetched.pop(child.slots, None)
        if pre is not None and st.expansions < self.max_expansions:
            child.cache, child.cache_len = st.root_cache, pre[0]
            st.expansions += 1
            self._expand(st, child, pre[1], pre[2], partial=pre[3])
        else:
            self._push(st, child)

    def _clean_rest(self, p: Problem) -> list[float]:
        """clean_rest[j] = sum of the clean log-probs of y_j.. and EOS (memoised per problem)."""
        if p.clean_logp is None:
            return []
        cached = self._clean_memo.get(id(p))
        if cached is None:
            acc = 0.0
            cached = [0.0] * (p.n + 2)
            for j in range(len(p.clean_logp) - 1, -1, -1):
                acc += p.clean_logp[j]
                if j <= p.n:
                    cached[j] = acc
            self._clean_memo[id(p)] = cached
        return cached

    def _add_complete(self, st: _State, hyp: Hypothesis) -> None:
        st.nbest.append(hyp)
        st.nbest.sort(key=lambda h: (-h.score, h.slots))
        del st.nbest[self.nbest :]
        best = st.nbest[0].score
        st.nbest = [h for h in st.nbest if h.score >= best - self.margin]

    def _bound_memory(self, states: Sequence[_State]) -> int:
        """Drop caches of the lowest-priority pending nodes when the kept keys/values exceed the budget."""
        entries = [(entry[0], entry[2]) for st in states for entry in st.heap if entry[2].cache is not None]
        refs: dict[int, int] = {}
        sizes: dict[int, int] = {}
        memo: dict[int, tuple[int, int]] = {}
        for _, node in entries:
            key = id(node.cache)
            if key not in memo:
                memo[key] = _storage(node.cache)  # type: ignore[arg-type]
            ptr, size = memo[key]
            refs[ptr] = refs.get(ptr, 0) + 1
            sizes[ptr] = size
        total = sum(sizes.values())
        if total <= self.max_cache_bytes:
            return total
        entries.sort(key=lambda e: -e[0])  # heap keys are -estimate: worst first
        for _, node in entries:
            ptr, _ = memo[id(node.cache)]
            node.cache, node.cache_len = None, 0
            refs[ptr] -= 1
            if refs[ptr] == 0:
                total -= sizes[ptr]
            if total <= self.max_cache_bytes:
                break
        return total


def _storage(cache: CacheRef) -> tuple[int, int]:
    """(identity, bytes) of the batch tensors a cache reference keeps alive."""
    return id(cache.layers[0][0]), cache.nbytes()


def _guess_placements(p: Problem, root: RowResult, max_guesses: int, min_logp: float = -3.0) -> list[tuple[int, ...]]:
    """Likely placements from the root pass (marked source, no marker yet).

    Under the marked source the model gives the first marker piece a high probability at the
    slots where markers belong (even before any marker is written). The ``2k`` markers go to
    such slots in order (open, close, open, ...); a slot may hold ``] [`` (one span ends where
    the next starts). Patterns are ranked by ``sum log p(marker) over used slots + sum
    log(1 - p(marker)) over skipped ones``. Only a guess: the search verifies everything.
    """
    import math

    f = len(p.forced)
    lp: dict[int, float] = {}
    for j in range(p.n + 1):
        pos = f + j
        if pos < len(root.extra_logp):
            lp[j] = max(root.extra_logp[pos][0], root.extra_logp[pos][1])
    cands = sorted(j for j in sorted(lp, key=lambda j: -lp[j])[: 2 * p.n_pairs + 3] if lp[j] >= min_logp)

    def skip_cost(j: int) -> float:
        return math.log1p(-min(math.exp(lp[j]), 1 - 1e-9))

    need = 2 * p.n_pairs
    skip = {j: skip_cost(j) for j in cands}
    found: list[tuple[float, tuple[int, ...]]] = []

    def cutoff() -> float:
        """Score of the ``max_guesses``-th best pattern so far (every term is <= 0, so a partial
        pattern scoring below it cannot finish among the best: pruned, the result unchanged)."""
        if len(found) < max_guesses:
            return float("-inf")
        return sorted(found, key=lambda x: (-x[0], x[1]))[max_guesses - 1][0]

    n_cands, n, opens, closes = len(cands), p.n, p.open_slots, p.close_slots

    def rec(i: int, placed: tuple[int, ...], score: float) -> None:
        m = len(placed)
        # too many markers, too few candidates left (each takes at most two), or hopeless score
        if m > need or m + 2 * (n_cands - i) < need or score < floor[0]:
            return
        if i == n_cands:
            if m == need:
                found.append((score, placed))
                floor[0] = cutoff()
            return
        j = cands[i]
        rec(i + 1, placed, score + skip[j])
        if m % 2 == 0:
            if j in opens and j < n:
                rec(i + 1, placed + (j,), score + lp[j])
        elif j in closes and j > placed[-1]:
            rec(i + 1, placed + (j,), score + lp[j])
            if j in opens and j < n:
                rec(i + 1, placed + (j, j), score + lp[j])

    floor = [float("-inf")]
    rec(0, (), 0.0)
    found.sort(key=lambda x: (-x[0], x[1]))
    return [g for _, g in found[:max_guesses]]
