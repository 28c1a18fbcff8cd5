"""Token-level etymology classifier for Maltese (after Micallef et al. 2024).

Labels (merged): Arabic, Non-Arabic, Code-Switching, Symbol, Name.

Two stages:

1. **Memory**: a token seen in training with exactly one label gets that label.
2. **CRF** (python-crfsuite) over the sentence for everything else, with features of each token
   and its neighbours: shape flags (case, digits, punctuation, hyphen, apostrophe), the Maltese
   letters ċ ġ ħ ż and digraphs għ ie, letters foreign to Maltese (c y), closed-class
   membership (the transliteration token tables), prefixes/suffixes, character n-grams (marked
   when in the shipped list of common Maltese n-grams), and the word translation tables:
   whether the English/Italian translation is the word itself, the edit similarity of the word
   to its English and Italian translations and of its Arabic-script transliteration to its
   Arabic translation (Arabic-origin words look like their Arabic translations), whether
   translating it as English agrees with translating it as Maltese (unadapted English),
   membership in English/Italian word lists and scores under character models of English,
   Italian, Maltese, and of "silver" Semitic vs Romance Maltese words picked from the tables by
   those similarities (no annotation is used for them). Training tokens also carry "memory"
   features computed without their own sentence (jackknifed), so the CRF learns how far to
   trust a lowercase or near match. Since feature version 7 (defaults ``class_lm`` and
   ``script_roots``): scores under character 4-gram models per etymology class and the labels
   of words sharing a Maltese root skeleton, both learned from the training annotations with the
   word's own type left out, and how Arabic the word's consonants look in Arabic script
   (:mod:`dsbuild.maltese.features`).

Evaluation protocols (usual, novel words, the published one, nested selection) are in
:mod:`dsbuild.maltese.evaluation`; ``scripts/etymology_cv.py`` prints them side by side.

Training is deterministic (L-BFGS, fixed data order). The trained model ships in
``builders/data/maltese/etymology_model/`` (``crf.model`` + ``meta.json``);
:func:`load_classifier` loads it, training it once into the user cache if it is missing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from dsbuild.errors import ConfigError, InputError
from dsbuild.maltese import resources
from dsbuild.maltese.features import FeatureTables, LabelledLexicon
from dsbuild.maltese.readers import FINE_TO_MERGED, MERGED_LABELS, AnnotatedSentence, read_etymology_tsv
from dsbuild.maltese.resources import nfc

log = logging.getLogger(__name__)

#: bump when features or training change: a model trained otherwise must not be loaded (the user
#: cache folder is keyed by it too, so a cached model of another version is retrained)
FEATURE_VERSION = "7"
#: CRF parameters (python-crfsuite) and dsbuild's own training options:
#: ``class_lm``: character models per etymology class and root index from the training memory (on);
#: ``script_roots``: the Arabic-script plausibility and silver-root features of the tables (on);
#: ``novel_copies``: number of inner parts for the novel-word copies (0: none; see :func:`_novel_copies`;
#: costs several times the training time, not evaluated to the end);
#: ``class_lm=False, script_roots=False`` (and the copies off) is the feature set of version 6.
DEFAULT_PARAMS: dict[str, Any] = {"c1": 0.0, "c2": 0.3, "max_iterations": 200,
                                  "feature.possible_transitions": True, "class_lm": True, "novel_copies": 0,
                                  "script_roots": True}
_DSBUILD_PARAMS = ("fine_labels", "class_lm", "novel_copies", "script_roots")
_SCRIPT_ROOT_FEATURES = ("ar_plaus", "sroot")
MODEL_DIRNAME = "etymology_model"


def word_features(w: str) -> tuple[tuple[str, float], ...]:
    """Context-free features of one token type from the shipped tables (cached)."""
    return FeatureTables.shipped().word_features(w)


@dataclass
class Memory:
    """Label counts per token (exact and lowercase) seen in training."""

    exact: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    lower: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @classmethod
    def from_sentences(cls, sentences: Iterable[AnnotatedSentence]) -> Memory:
        m = cls()
        for s in sentences:
            m.add(s.tokens, s.labels)
        return m

    def add(self, tokens: Sequence[str], labels: Sequence[str], sign: int = 1) -> None:
        for t, y in zip(tokens, labels):
            self.exact[t][y] += sign
            self.lower[t.lower()][y] += sign

    def single_label(self, token: str) -> str | None:
        """The label of ``token`` if it was seen in training with exactly one label."""
        c = self.exact.get(token)
        if not c:
            return None
        labels = [y for y, n in c.items() if n > 0]
        return labels[0] if len(labels) == 1 else None

    def seen(self, token: str) -> bool:
        c = self.exact.get(token)
        return bool(c) and any(n > 0 for n in c.values())

    def features(self, token: str, exclude: Counter[tuple[str, str, str]] | None = None) -> dict[str, float]:
        """Memory features of ``token``; ``exclude`` holds counts to subtract (own sentence)."""
        f: dict[str, float] = {}
        for kind, table, key in (("x", self.exact, token), ("l", self.lower, token.lower())):
            counts = table.get(key)
            if not counts:
                f[f"mem{kind}=none"] = 1.0
                continue
            live = {y: n - (exclude[(kind, key, y)] if exclude else 0) for y, n in counts.items()}
            live = {y: n for y, n in live.items() if n > 0}
            if not live:
                f[f"mem{kind}=none"] = 1.0
                continue
            total = sum(live.values())
            for y, n in live.items():
                f[f"mem{kind}={y}"] = n / total
            if len(live) == 1:
                f[f"mem{kind}_only={next(iter(live))}"] = 1.0
        return f

    def to_dict(self) -> dict[str, Any]:
        return {"exact": {k: dict(v) for k, v in sorted(self.exact.items()) if any(n > 0 for n in v.values())},
                "lower": {k: dict(v) for k, v in sorted(self.lower.items()) if any(n > 0 for n in v.values())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Memory:
        m = cls()
        for k, v in d["exact"].items():
            m.exact[k] = Counter(v)
        for k, v in d["lower"].items():
            m.lower[k] = Counter(v)
        return m


@dataclass(frozen=True)
class FeatureSources:
    """What the features of a sentence may read: the tables, and (``class_lm``) the character models
    learned from the training memory."""

    tables: FeatureTables
    lexicon: LabelledLexicon | None = None
    script_roots: bool = True

    @classmethod
    def for_memory(cls, memory: Memory, params: dict[str, Any] | None = None,
                   tables: FeatureTables | None = None) -> FeatureSources:
        """Sources for a model trained with ``params`` whose training memory is ``memory``."""
        p = {**DEFAULT_PARAMS, **(params or {})}
        lexicon = LabelledLexicon.from_counts(memory.lower) if p.get("class_lm") else None
        return cls(tables or FeatureTables.shipped(), lexicon, bool(p.get("script_roots")))


def sentence_features(tokens: Sequence[str], memory: Memory | None = None,
                      exclude: Counter[tuple[str, str, str]] | None = None,
                      sources: FeatureSources | None = None) -> list[dict[str, float]]:
    """CRF feature dicts for every token of a sentence (token, neighbours, memory)."""
    sources = sources or FeatureSources(FeatureTables.shipped())
    base = [dict(sources.tables.word_features(t)) for t in tokens]
    if not sources.script_roots:
        base = [{k: v for k, v in f.items() if not k.startswith(_SCRIPT_ROOT_FEATURES)} for f in base]
    if sources.lexicon is not None:
        for f, t in zip(base, tokens):
            f.update(sources.lexicon.features(t))
    mem = [memory.features(t, exclude) if memory is not None else {} for t in tokens]
    return [_token_features(i, tokens, base, mem) for i in range(len(tokens))]


def _token_features(i: int, tokens: Sequence[str], base: list[dict[str, float]],
                    mem: list[dict[str, float]]) -> dict[str, float]:
    n = len(tokens)
    f = dict(base[i])
    f.update(mem[i])
    if i == 0:
        f["BOS"] = 1.0
    if i == n - 1:
        f["EOS"] = 1.0
    if "init_cap" in f and i > 0 and tokens[i - 1] not in (".", "!", "?", ":", '"', "“"):
        f["cap_mid_sentence"] = 1.0
    for off, tag in ((-1, "p"), (1, "n"), (-2, "pp"), (2, "nn")):
        j = i + off
        if not 0 <= j < n:
            f[f"{tag}:none"] = 1.0
            continue
        if abs(off) != 1:  # (word identities two tokens away did not help in CV)
            continue
        nb = base[j]
        f[f"{tag}:w={tokens[j].lower()}"] = 1.0
        for k in ("init_cap", "all_caps", "punct", "ends_hyphen", "en_same", "has_digit",
                  "closed:small_closed_class", "closed:additional_closed_class"):
            if k in nb:
                f[f"{tag}:{k}"] = 1.0
        for k, v in mem[j].items():
            if k.startswith("memx_only") or k.startswith("meml_only"):
                f[f"{tag}:{k}"] = v
    return f


# -- the classifier --------------------------------------------------------------------------------

def _crfsuite() -> Any:
    try:
        import pycrfsuite
    except ImportError:
        raise ConfigError("the Maltese etymology classifier needs python-crfsuite: pip install 'dsbuild[crf]'") from None
    return pycrfsuite


@dataclass
class EtymologyClassifier:
    """Memory + CRF etymology classifier. Build with :func:`train` or :func:`load_classifier`.

    ``tables`` are the tables its features read (default: the shipped ones); an evaluation of
    novel words passes tables with the test words removed.
    """

    memory: Memory
    model_path: Path
    meta: dict[str, Any]
    tables: FeatureTables | None = None

    def __post_init__(self) -> None:
        pycrfsuite = _crfsuite()
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(self.model_path))
        self.sources = FeatureSources.for_memory(self.memory, self.meta.get("params"), self.tables)

    @property
    def version(self) -> str:
        """Short id of this model: feature version and checksum of the CRF file and memory."""
        return self.meta.get("version", "unknown")

    def with_tables(self, tables: FeatureTables) -> EtymologyClassifier:
        """The same model reading other tables (for the novel-word evaluation)."""
        return EtymologyClassifier(self.memory, self.model_path, self.meta, tables)

    def predict(self, tokens: Sequence[str]) -> list[str]:
        """Merged etymology label for each token of one sentence."""
        if not tokens:
            return []
        tokens = [nfc(t) for t in tokens]
        feats = sentence_features(tokens, self.memory, sources=self.sources)
        crf = [FINE_TO_MERGED.get(y, y) for y in self._tagger.tag(feats)]
        return [self.memory.single_label(t) or y for t, y in zip(tokens, crf)]

    def predict_many(self, sentences: Iterable[Sequence[str]]) -> list[list[str]]:
        return [self.predict(s) for s in sentences]


def _own_counts(s: AnnotatedSentence) -> Counter[tuple[str, str, str]]:
    own: Counter[tuple[str, str, str]] = Counter()
    for t, y in zip(s.tokens, s.labels):
        own[("x", t, y)] += 1
        own[("l", t.lower(), y)] += 1
    return own


def _novel_copies(sentences: Sequence[AnnotatedSentence], parts: int, sources: FeatureSources,
                  ) -> Iterable[tuple[AnnotatedSentence, list[dict[str, float]]]]:
    """Training copies in which some words are new, as words of unannotated text are.

    The training sentences are dealt round-robin into ``parts`` parts; for each part, the words
    (lower-cased) that no other part has are removed from the memory and from every table, and the
    part's sentences holding such a word are featurised again. The CRF so learns both how table
    features look for a word in the tables and what is left for a word in none of them.
    """
    for j in range(parts):
        inside = [s for i, s in enumerate(sentences) if i % parts == j]
        outside = [s for i, s in enumerate(sentences) if i % parts != j]
        known = {t.lower() for s in outside for t in s.tokens}
        new = {t.lower() for s in inside for t in s.tokens} - known
        if not new:
            continue
        memory = Memory.from_sentences(outside)
        part_sources = FeatureSources(tables_without(sources.tables, new), sources.lexicon, sources.script_roots)
        for s in inside:
            if any(t.lower() in new for t in s.tokens):
                yield s, sentence_features(s.tokens, memory, sources=part_sources)


_TABLES_CACHE: dict[tuple[int, frozenset[str]], FeatureTables] = {}


def tables_without(tables: FeatureTables, types: Iterable[str]) -> FeatureTables:
    """``tables.without(types)``, kept for reuse within the process (cross-validation asks for the
    same removals once per candidate setting; rebuilding the derived models takes a second or two)."""
    key = (id(tables), frozenset(t.lower() for t in types))
    hit = _TABLES_CACHE.get(key)
    if hit is None:
        if len(_TABLES_CACHE) >= 64:
            _TABLES_CACHE.pop(next(iter(_TABLES_CACHE)))
        hit = _TABLES_CACHE[key] = tables.without(key[1])
    return hit


def _fit_crf(sentences: Sequence[AnnotatedSentence], memory: Memory, model_path: Path,
             params: dict[str, Any] | None = None, tables: FeatureTables | None = None) -> None:
    p = {**DEFAULT_PARAMS, **(params or {})}
    trainer = _crfsuite().Trainer(verbose=False)
    trainer.set_params({k: v for k, v in p.items() if k not in _DSBUILD_PARAMS})
    sources = FeatureSources.for_memory(memory, p, tables)
    fine = bool(p.get("fine_labels"))

    def targets(s: AnnotatedSentence) -> list[str]:
        return list(s.fine_labels if fine and s.fine_labels else s.labels)

    for s in sentences:
        trainer.append(sentence_features(s.tokens, memory, _own_counts(s), sources), targets(s))
    for s, feats in _novel_copies(sentences, int(p.get("novel_copies") or 0), sources):
        trainer.append(feats, targets(s))
    trainer.train(str(model_path))


def train(sentences: Sequence[AnnotatedSentence], out_dir: str | Path, *, params: dict[str, Any] | None = None,
          source: str = "", tables: FeatureTables | None = None) -> EtymologyClassifier:
    """Train on ``sentences`` and save ``crf.model`` + ``meta.json`` in ``out_dir``.

    ``tables``: the tables the features read (default: the shipped ones; the novel-word evaluation
    passes tables without the test fold's new words). They are not saved: a loaded model reads the
    shipped tables.
    """
    if not sentences:
        raise ConfigError("cannot train the etymology classifier on zero sentences")
    _check_labels(sentences)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    memory = Memory.from_sentences(sentences)
    tmp_model = out_dir / "crf.model.tmp"
    _fit_crf(sentences, memory, tmp_model, params, tables)
    os.replace(tmp_model, out_dir / "crf.model")
    mem = memory.to_dict()
    digest = hashlib.sha256((out_dir / "crf.model").read_bytes() + json.dumps(mem, sort_keys=True).encode()).hexdigest()
    meta = {
        "version": f"crf-f{FEATURE_VERSION}-{digest[:10]}",
        "feature_version": FEATURE_VERSION,
        "params": {**DEFAULT_PARAMS, **(params or {})},
        "labels": list(MERGED_LABELS),
        "trained_on": {"source": source, "sentences": len(sentences), "tokens": sum(len(s.tokens) for s in sentences)},
        "memory": mem,
    }
    tmp = out_dir / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, ensure_ascii=False, sort_keys=True, indent=0) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "meta.json")
    log.debug("trained etymology classifier %s on %d sentences", meta["version"], len(sentences))
    meta.pop("memory")
    return EtymologyClassifier(memory, out_dir / "crf.model", meta, tables)


def _check_labels(sentences: Sequence[AnnotatedSentence]) -> None:
    for s in sentences:
        bad = set(s.labels) - set(MERGED_LABELS)
        if bad:
            raise InputError(f"unknown labels {sorted(bad)}", example_id=s.id, hint="use " + ", ".join(MERGED_LABELS))


#: the settings of the classifier before issue 15 (feature version 6), the baseline cards compare with
BASELINE_PARAMS: dict[str, Any] = {"class_lm": False, "script_roots": False, "novel_copies": 0}


def record_cv(model_dir: str | Path, pooled: Scores, folds: int, *, novel: Scores | None = None,
              protocol: str = "", baseline: tuple[Scores, Scores] | None = None) -> None:
    """Store cross-validation figures in a model's ``meta.json`` (cards report them): ``pooled``
    under the usual protocol, and ``novel`` with each test fold's new words removed from every table
    (its *unseen* = lower-cased type not in the training folds); ``baseline``: the same two figures
    (usual, novel) of the :data:`BASELINE_PARAMS` setting on the same folds."""
    path = Path(model_dir) / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["cross_validation"] = {"folds": folds, "by": "sentence, round-robin", **pooled.to_dict(),
                                "unseen": "exact token type not in the training folds",
                                "tables": "shipped (every annotated word has its table rows)"}
    if protocol:
        meta["cross_validation"]["protocol"] = protocol
    if novel is not None:
        meta["cross_validation"]["novel_words"] = {
            **novel.to_dict(), "unseen": "lower-cased token type not in the training folds (novel words)",
            "tables": "each test fold's new word types removed from the memory and from every table"}
    if baseline is not None:
        meta["cross_validation"]["baseline"] = {
            "setting": "feature version 6 (before issue 15): " + json.dumps(BASELINE_PARAMS, sort_keys=True),
            "usual": baseline[0].to_dict(), "novel_words": baseline[1].to_dict()}
    tmp = path.with_name("meta.json.tmp")
    tmp.write_text(json.dumps(meta, ensure_ascii=False, sort_keys=True, indent=0) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load_model_dir(path: str | Path) -> EtymologyClassifier:
    """Load a classifier saved by :func:`train`."""
    path = Path(path)
    meta_path, model_path = path / "meta.json", path / "crf.model"
    if not meta_path.is_file() or not model_path.is_file():
        raise InputError("not an etymology model folder (needs crf.model and meta.json)", source=path,
                         hint="train one with `python -m dsbuild etymology train --out DIR`")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("feature_version") != FEATURE_VERSION:
        raise InputError(f"model built with feature version {meta.get('feature_version')!r}, this dsbuild uses "
                         f"{FEATURE_VERSION!r}", source=path, hint="retrain with `python -m dsbuild etymology train`")
    return EtymologyClassifier(Memory.from_dict(meta.pop("memory")), model_path, meta)


def shipped_model_dir() -> Path:
    """Where the shipped model lives."""
    return resources.data_dir() / MODEL_DIRNAME


def _cache_root() -> Path:
    """``$DSBUILD_CACHE``, else ``$XDG_CACHE_HOME/dsbuild`` (``~/.cache/dsbuild``)."""
    from dsbuild.cachedir import cache_root

    return cache_root()


def _cache_dir() -> Path:
    key = hashlib.sha256(json.dumps(DEFAULT_PARAMS, sort_keys=True).encode()).hexdigest()[:6]
    return _cache_root() / "maltese" / f"etymology-f{FEATURE_VERSION}-{key}-{resources.file_sha256(resources.annotations_path())[:12]}"


@functools.lru_cache(maxsize=1)
def load_classifier() -> EtymologyClassifier:
    """The shipped classifier (trained on all shipped annotations); if it is missing or was built
    with other features, train it once into the user cache (``DSBUILD_CACHE``) and reuse it.
    ``DSBUILD_ETYMOLOGY_MODEL`` points at another model folder."""
    if os.environ.get("DSBUILD_ETYMOLOGY_MODEL"):
        return load_model_dir(os.environ["DSBUILD_ETYMOLOGY_MODEL"])
    shipped = shipped_model_dir()
    try:
        return load_model_dir(shipped)
    except InputError as err:
        log.info("shipped etymology model unusable (%s); using the cache", err)
    cached = _cache_dir()
    # The lock file lives outside maltese/, which holds model folders only.
    return _load_or_train_cached(cached, _cache_root() / "locks" / f"{cached.name}.lock")


def _load_or_train_cached(cached: Path, lock: Path) -> EtymologyClassifier:
    """The model in the cache folder ``cached``, trained into it first if it is missing or damaged.

    Several processes may start at once: the file ``lock`` lets one train while the others wait
    and then load its model (without it, every process trains, and the rename of its model onto a
    folder another process has just put in place fails with "Directory not empty").
    """
    model = _load_cached(cached)
    if model is not None:
        return model
    cached.parent.mkdir(parents=True, exist_ok=True)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        model = _load_cached(cached)  # trained by another process while we waited?
        if model is None:
            _train_into(cached)
            model = load_model_dir(cached)
    return model


def _load_cached(cached: Path) -> EtymologyClassifier | None:
    """The cached model, or ``None`` if the folder is absent or damaged (then it is retrained)."""
    try:
        return load_model_dir(cached)
    except (InputError, ValueError, KeyError) as err:  # ValueError, KeyError: a damaged meta.json
        if cached.exists():
            log.warning("cached etymology model %s unusable (%s); training it again", cached, err)
        return None


def _train_into(cached: Path) -> None:
    """Train on the shipped annotations into a temporary folder, then rename it to ``cached``.

    Call with the cache lock held. The temporary folder is on the same file system (the rename is
    atomic); a damaged folder already at ``cached`` is moved into it first and deleted with it.
    """
    log.info("training the etymology classifier once into %s", cached)
    sentences = read_etymology_tsv(resources.annotations_path())
    with tempfile.TemporaryDirectory(dir=cached.parent, prefix=f".{cached.name}.") as tmp:
        train(sentences, Path(tmp) / "model", source=resources.annotations_path().name)
        if cached.exists():
            os.replace(cached, Path(tmp) / "damaged")
        os.replace(Path(tmp) / "model", cached)


# -- evaluation --------------------------------------------------------------------------------------

@dataclass
class Scores:
    """Accuracy overall / on seen / on unseen tokens, per-label F1, and the token counts."""

    accuracy: float
    accuracy_seen: float | None
    accuracy_unseen: float | None
    per_label_f1: dict[str, float]
    tokens: int
    tokens_seen: int
    tokens_unseen: int

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "accuracy_seen": self.accuracy_seen, "accuracy_unseen": self.accuracy_unseen,
                "per_label_f1": self.per_label_f1, "tokens": self.tokens, "tokens_seen": self.tokens_seen,
                "tokens_unseen": self.tokens_unseen}


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], tokens: Sequence[Sequence[str]],
          memory: Memory) -> Scores:
    """Score predictions; a token is *seen* when it occurs (exactly) in the training memory."""
    flat_g, flat_p, seen = [], [], []
    for g_s, p_s, t_s in zip(gold, pred, tokens):
        if len(g_s) != len(p_s):
            raise ValueError("gold and predicted label sequences differ in length")
        flat_g += list(g_s)
        flat_p += list(p_s)
        seen += [memory.seen(t) for t in t_s]
    return score_flags(flat_g, flat_p, seen)


def score_flags(gold: Sequence[str], pred: Sequence[str], seen: Sequence[bool]) -> Scores:
    """Score token labels; ``seen[i]`` says whether token ``i`` counts as seen in training."""
    n = c = ns = cs = 0
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p, was_seen in zip(gold, pred, seen):
        ok = g == p
        n += 1
        c += ok
        ns += was_seen
        cs += ok and was_seen
        if ok:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    nu, cu = n - ns, c - cs
    f1 = {}
    for y in MERGED_LABELS:
        denom = 2 * tp[y] + fp[y] + fn[y]
        f1[y] = round(2 * tp[y] / denom, 4) if denom else 0.0
    return Scores(round(c / n, 4) if n else 0.0, round(cs / ns, 4) if ns else None, round(cu / nu, 4) if nu else None,
                  f1, n, ns, nu)


def evaluate(classifier: EtymologyClassifier, sentences: Sequence[AnnotatedSentence]) -> Scores:
    """Score ``classifier`` on annotated sentences (seen = in the classifier's training memory)."""
    pred = [classifier.predict(s.tokens) for s in sentences]
    return score([s.labels for s in sentences], pred, [s.tokens for s in sentences], classifier.memory)


def fold_of(index: int, folds: int) -> int:
    """Fold of the ``index``-th sentence: round-robin, so every fold spans the whole file."""
    return index % folds


def cross_validate(sentences: Sequence[AnnotatedSentence], folds: int = 10, *, params: dict[str, Any] | None = None,
                   progress: bool = True, novel: bool = False) -> tuple[Scores, list[Scores]]:
    """K-fold cross-validation by sentence (round-robin folds); pooled and per-fold scores, *unseen*
    by exact type. ``novel``: each test fold's new words are also removed from every table the
    features read (see :mod:`dsbuild.maltese.evaluation` for the other protocols)."""
    from dsbuild.maltese.evaluation import Protocol, run_cv

    result = run_cv(sentences, Protocol(folds, "round-robin", novel=novel), params, progress=progress)
    return result.scores(), result.per_fold()
