"""Cross-validation protocols for the Maltese etymology classifier, and model selection apart from them.

A :class:`Protocol` says how sentences are dealt into folds (round-robin, or shuffled as
scikit-learn's ``KFold(shuffle=True, random_state=seed)`` does) and whether the test words are
*novel*:

* usual (``novel=False``): a test word unseen in the training folds still has its rows in the
  shipped tables (every annotated type has an ``mt-en`` row), so table features are available;
* novel (``novel=True``): each test fold's new word types (lower-cased types that occur in no
  training sentence) are removed from the training memory (they are absent by construction) and
  from *every* table the features read (translations, closed-class tables, and every word list and
  model derived from them), as for words of text nobody annotated.

Every run keeps, per token, whether it was seen in training exactly and lower-cased, so one run
gives both readings of "unseen": exact type (dsbuild's usual figure) and lower-cased type (the
published protocol's, and the definition of a novel word).

:func:`nested_cv` chooses among candidate settings on inner folds of each outer training part
only, so the outer figures are never used to choose.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dsbuild.errors import ConfigError
from dsbuild.maltese.etymology import Scores, score_flags, tables_without, train
from dsbuild.maltese.features import FeatureTables
from dsbuild.maltese.readers import AnnotatedSentence

log = logging.getLogger(__name__)

SeenBy = Literal["exact", "lower"]


@dataclass(frozen=True)
class Protocol:
    """How a cross-validation is run; :meth:`describe` says it in words (printed with every figure)."""

    folds: int = 10
    split: Literal["round-robin", "shuffled"] = "round-robin"
    seed: int = 0
    novel: bool = False

    def fold_ids(self, n: int) -> list[int]:
        """The fold of each of ``n`` sentences."""
        if self.folds < 2 or self.folds > n:
            raise ConfigError(f"folds must be between 2 and the number of sentences ({n}), got {self.folds}")
        if self.split == "round-robin":
            return [i % self.folds for i in range(n)]
        if self.split != "shuffled":
            raise ConfigError(f"fold split {self.split!r} is not 'round-robin' or 'shuffled'")
        # scikit-learn KFold(n_splits, shuffle=True, random_state=seed): shuffled indices cut into
        # contiguous folds, the first n % folds of them one longer
        order = np.arange(n)
        np.random.RandomState(self.seed).shuffle(order)
        sizes = np.full(self.folds, n // self.folds)
        sizes[: n % self.folds] += 1
        ids = [0] * n
        start = 0
        for k, size in enumerate(sizes):
            for i in order[start:start + size]:
                ids[int(i)] = k
            start += size
        return ids

    def describe(self) -> str:
        split = "round-robin" if self.split == "round-robin" else f"shuffled KFold, seed {self.seed}"
        tables = ("each test fold's new words removed from the memory and from every table (novel words)"
                  if self.novel else "shipped tables (every annotated word has its table rows)")
        return f"{self.folds}-fold CV by sentence ({split}); {tables}"


@dataclass
class CVResult:
    """Per-token outcomes of one cross-validation: gold, predicted, seen (exact / lower-cased), fold."""

    protocol: Protocol
    gold: list[str] = field(default_factory=list)
    pred: list[str] = field(default_factory=list)
    seen_exact: list[bool] = field(default_factory=list)
    seen_lower: list[bool] = field(default_factory=list)
    fold: list[int] = field(default_factory=list)
    chosen: list[dict[str, Any]] = field(default_factory=list)

    def scores(self, seen_by: SeenBy = "exact", fold: int | None = None) -> Scores:
        """Pooled scores (or one fold's); *unseen* = the token's type, exact or lower-cased, is not in
        its training folds."""
        keep = [i for i in range(len(self.gold)) if fold is None or self.fold[i] == fold]
        seen = self.seen_exact if seen_by == "exact" else self.seen_lower
        return score_flags([self.gold[i] for i in keep], [self.pred[i] for i in keep], [seen[i] for i in keep])

    def per_fold(self, seen_by: SeenBy = "exact") -> list[Scores]:
        return [self.scores(seen_by, k) for k in range(self.protocol.folds)]

    def fold_mean(self, seen_by: SeenBy = "lower") -> dict[str, float]:
        """Accuracy overall / seen / unseen as the mean over folds of each fold's figure (how the
        published script averages: scikit-learn reports per fold, then ``np.mean`` over folds)."""
        folds = self.per_fold(seen_by)
        out = {}
        for key in ("accuracy", "accuracy_seen", "accuracy_unseen"):
            values = [getattr(f, key) for f in folds if getattr(f, key) is not None]
            out[key] = float(np.mean(values)) if values else 0.0
        return out


def new_types(train_s: Sequence[AnnotatedSentence], test_s: Sequence[AnnotatedSentence]) -> frozenset[str]:
    """Lower-cased word types of ``test_s`` that occur in no sentence of ``train_s``."""
    known = {t.lower() for s in train_s for t in s.tokens}
    return frozenset({t.lower() for s in test_s for t in s.tokens} - known)


def fold_tables(train_s: Sequence[AnnotatedSentence], test_s: Sequence[AnnotatedSentence],
                novel: bool) -> FeatureTables:
    """The tables a fold's model reads: the shipped ones, without the test fold's new words if ``novel``."""
    shipped = FeatureTables.shipped()
    return tables_without(shipped, new_types(train_s, test_s)) if novel else shipped


def _predict_fold(train_s: Sequence[AnnotatedSentence], test_s: Sequence[AnnotatedSentence], novel: bool,
                  params: dict[str, Any] | None, work: Path) -> list[list[str]]:
    clf = train(train_s, work, params=params, tables=fold_tables(train_s, test_s, novel))
    return [clf.predict(s.tokens) for s in test_s]


def _record(result: CVResult, train_s: Sequence[AnnotatedSentence], test_s: Sequence[AnnotatedSentence],
            pred: list[list[str]], k: int) -> None:
    exact = {t for s in train_s for t in s.tokens}
    lower = {t.lower() for t in exact}
    for s, p in zip(test_s, pred):
        for t, g, y in zip(s.tokens, s.labels, p):
            result.gold.append(g)
            result.pred.append(y)
            result.seen_exact.append(t in exact)
            result.seen_lower.append(t.lower() in lower)
            result.fold.append(k)


def split_folds(sentences: Sequence[AnnotatedSentence], protocol: Protocol, k: int,
                ) -> tuple[list[AnnotatedSentence], list[AnnotatedSentence]]:
    """Training and test sentences of fold ``k`` (file order kept within each)."""
    ids = protocol.fold_ids(len(sentences))
    return ([s for s, f in zip(sentences, ids) if f != k], [s for s, f in zip(sentences, ids) if f == k])


def run_cv(sentences: Sequence[AnnotatedSentence], protocol: Protocol, params: dict[str, Any] | None = None,
           *, progress: bool = False) -> CVResult:
    """Cross-validate one setting under ``protocol``."""
    from tqdm.auto import tqdm

    result = CVResult(protocol)
    with tempfile.TemporaryDirectory() as tmp:
        for k in tqdm(range(protocol.folds), desc="etymology cv", disable=not progress, leave=False):
            train_s, test_s = split_folds(sentences, protocol, k)
            _record(result, train_s, test_s, _predict_fold(train_s, test_s, protocol.novel, params, Path(tmp) / str(k)), k)
    return result


def objective(result: CVResult) -> float:
    """What selection maximises: token accuracy of a novel-word run (every token counts once, so
    novel words weigh by how often they occur)."""
    return result.scores().accuracy


def select(sentences: Sequence[AnnotatedSentence], candidates: Sequence[dict[str, Any]], inner: Protocol,
           ) -> tuple[int, list[float]]:
    """Index of the candidate setting with the best :func:`objective` under ``inner`` CV on
    ``sentences`` (ties: the earlier candidate), and every candidate's objective."""
    values = [objective(run_cv(sentences, inner, c)) for c in candidates]
    best = max(range(len(candidates)), key=lambda i: (values[i], -i))
    return best, values


def nested_cv(sentences: Sequence[AnnotatedSentence], candidates: Sequence[dict[str, Any]], outer: Protocol,
              inner_folds: int = 3, *, also: Sequence[Protocol] = (), progress: bool = False,
              ) -> list[CVResult]:
    """Nested cross-validation: for each outer fold, the setting is chosen by ``inner_folds``-fold
    novel-word CV (round-robin) on that fold's training sentences only, then trained on them and
    scored on the outer test fold under ``outer`` and under each protocol in ``also`` (same folds,
    other table modes). Returns one result per protocol, ``outer`` first; ``chosen`` lists each
    fold's setting."""
    from tqdm.auto import tqdm

    protocols = [outer, *also]
    if any(p.fold_ids(len(sentences)) != outer.fold_ids(len(sentences)) for p in also):
        raise ConfigError("nested_cv: the extra protocols must deal sentences into the same folds")
    results = [CVResult(p) for p in protocols]
    inner = Protocol(inner_folds, "round-robin", novel=True)
    with tempfile.TemporaryDirectory() as tmp:
        for k in tqdm(range(outer.folds), desc="nested cv", disable=not progress, leave=False):
            train_s, test_s = split_folds(sentences, outer, k)
            best, values = select(train_s, candidates, inner) if len(candidates) > 1 else (0, [])
            log.info("outer fold %d: chose %s (inner objectives %s)", k, candidates[best], values)
            for p, result in zip(protocols, results):
                pred = _predict_fold(train_s, test_s, p.novel, candidates[best], Path(tmp) / f"{k}-{p.novel}")
                _record(result, train_s, test_s, pred, k)
                result.chosen.append(dict(candidates[best]))
    return results
