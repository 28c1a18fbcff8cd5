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
   trust a lowercase or near match.

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
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from dsbuild.errors import ConfigError, InputError
from dsbuild.maltese import resources
from dsbuild.maltese.readers import FINE_TO_MERGED, MERGED_LABELS, AnnotatedSentence, read_etymology_tsv
from dsbuild.maltese.resources import nfc

log = logging.getLogger(__name__)

#: bump when features change: a model trained with other features must not be loaded
FEATURE_VERSION = "6"
DEFAULT_PARAMS: dict[str, Any] = {"c1": 0.0, "c2": 0.3, "max_iterations": 200,
                                  "feature.possible_transitions": True}
MODEL_DIRNAME = "etymology_model"

_MALTESE_LETTERS = {"ċ": "c_dot", "ġ": "g_dot", "ħ": "h_bar", "ż": "z_dot"}
_ARABIC_VOWEL_LETTERS = set("اويىةهأإآء")
_PUNCT_CATS = ("P", "S")


# -- features ----------------------------------------------------------------------------------

def _shape(w: str) -> str:
    out = []
    for c in w:
        s = "X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c
        if not out or out[-1] != s:
            out.append(s)
    return "".join(out)[:8]


def _sim(a: str, b: str) -> float:
    from rapidfuzz.distance import Levenshtein

    if not a or not b:
        return 0.0
    return Levenshtein.normalized_similarity(a, b)


def _strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


def _skeleton(arabic: str) -> str:
    """Consonant skeleton of an Arabic-script word (long-vowel letters and marks dropped)."""
    return "".join(c for c in arabic if c not in _ARABIC_VOWEL_LETTERS and not unicodedata.combining(c))


def _bucket(name: str, x: float) -> list[str]:
    return [f"{name}>={t}" for t in (0.3, 0.5, 0.7, 0.85) if x >= t]


@functools.lru_cache(maxsize=1)
def _lexicons() -> dict[str, Any]:
    """English and Italian word lists and character models from the translation tables' target sides,
    and a model of Maltese word forms from their source side: evidence of unadapted English and of
    Romance vocabulary that generalises beyond the annotated tokens."""
    from dsbuild.maltese.transliterate import CharNgramLM

    out: dict[str, Any] = {}
    for lang, direction in (("en", "mt-en"), ("it", "mt-it")):
        words = set()
        for value in resources.translation_table(direction).values():
            for x in value.lower().split():
                x = x.strip(".,;:!?()\"'’“”")
                if x.isalpha():
                    words.add(x)
        out[lang] = frozenset(words)
        out[f"{lang}_lm"] = CharNgramLM(sorted(words), order=3)
    mt = sorted({k.lower() for k in resources.translation_table("mt-en") if k.isalpha()})
    out["mt_lm"] = CharNgramLM(mt, order=3)
    semitic, romance = _silver_lexicons()
    out["mt_semitic_lm"] = CharNgramLM(semitic, order=3)
    out["mt_romance_lm"] = CharNgramLM(romance, order=3)
    return out


def _silver_lexicons() -> tuple[list[str], list[str]]:
    """Maltese words of the translation tables that look Semitic (their Arabic-script form matches
    their Arabic translation, their Latin ones do not) or Romance/English (the reverse). Built from
    the tables alone, never from the annotations, so it cannot leak labels."""
    from dsbuild.maltese.transliterate import Transliterator

    tr = Transliterator(use_word_tables=False)
    en, it, ar = (resources.translation_table(d) for d in ("mt-en", "mt-it", "mt-ar"))
    semitic, romance = set(), set()
    for key, en_value in en.items():
        word = key.lower()
        if not word.isalpha() or len(word) < 3:
            continue
        ar_words = [x[2:] if x.startswith("ال") and len(x) > 3 else x for x in ar.get(key, "").split()]
        sk = _skeleton(tr(word))
        s_ar = max((_sim(sk, _skeleton(a)) for a in ar_words), default=0.0)
        s_lat = max(_sim(word, en_value.lower()), _sim(_strip_accents(word), _strip_accents(it.get(key, "").lower())))
        if s_ar >= 0.75 and s_lat < 0.5:
            semitic.add(word)
        elif s_lat >= 0.6 and s_ar < 0.5:
            romance.add(word)
    return sorted(semitic), sorted(romance)


_ITALIAN_SPELLING = (("ċ", "ci"), ("ġ", "gi"), ("ż", "z"), ("ħ", "h"), ("għ", ""), ("x", "sc"), ("k", "c"),
                     ("zj", "zi"), ("j", "i"), ("w", "u"))


def _italianise(word: str) -> str:
    for a, b in _ITALIAN_SPELLING:
        word = word.replace(a, b)
    return word


def _per_char(lm: Any, word: str) -> float:
    return lm.score(word) / (len(word) + 1)


@functools.lru_cache(maxsize=200_000)
def word_features(w: str) -> tuple[tuple[str, float], ...]:
    """Features of one token type, independent of context (cached)."""
    from dsbuild.maltese.transliterate import default_transliterator

    l = w.lower()
    f: dict[str, float] = {"bias": 1.0, f"w={l}": 1.0, f"shape={_shape(w)}": 1.0}
    letters = [c for c in w if c.isalpha()]
    if not letters:
        if all(unicodedata.category(c)[0] in _PUNCT_CATS for c in w):
            f["punct"] = 1.0
        if any(c.isdigit() for c in w):
            f["has_digit"] = 1.0
        if w.isdigit():
            f["all_digit"] = 1.0
        return tuple(sorted(f.items()))
    if w[0].isupper():
        f["init_cap"] = 1.0
    if len(letters) > 1 and all(c.isupper() for c in letters):
        f["all_caps"] = 1.0
    if any(c.isdigit() for c in w):
        f["has_digit"] = 1.0
    if "-" in w:
        f["ends_hyphen" if w.endswith("-") else "has_hyphen"] = 1.0
    if "'" in w or "’" in w:
        f["has_apos"] = 1.0
    for c, name in _MALTESE_LETTERS.items():
        if c in l:
            f[name] = 1.0
    for dg in ("għ", "ie", "ij", "zz", "zzj", "jon", "ment", "tà"):
        if dg in l:
            f[f"has_{dg}"] = 1.0
    for c in "cyw":
        if c in l:
            f[f"has_{c}"] = 1.0
    if any(c not in "abċdefġghħijklmnopqrstuvwxżzàèìòù'’-" for c in l):
        f["non_maltese_char"] = 1.0
    f[f"len={min(len(l), 12)}"] = 1.0
    for table in resources.TOKEN_TABLES:
        if l in resources.token_table(table):
            f[f"closed:{table}"] = 1.0
    core = l.strip("-'’")
    for n in (1, 2, 3, 4):
        if len(core) >= n:
            f[f"pre{n}={core[:n]}"] = 1.0
            f[f"suf{n}={core[-n:]}"] = 1.0
    padded = f"<{core}>"
    common = resources.common_ngrams()
    n_common = n_total = 0
    for n in (2, 3):
        for i in range(len(padded) - n + 1):
            g = padded[i:i + n]
            f[f"ng={g}"] = 1.0
            inner = g.strip("<>")
            if len(inner) == n:
                n_total += 1
                if inner in common:
                    n_common += 1
                    f[f"common={inner}"] = 1.0
    if n_total:
        f["common_frac"] = n_common / n_total
    # English / Italian lexicons and character models
    if core.isalpha():
        lex = _lexicons()
        for lang in ("en", "it"):
            if core in lex[lang]:
                f[f"in_{lang}_lex"] = 1.0
        lp = {k: _per_char(lex[f"{k}_lm"], core) for k in ("en", "it", "mt")}
        # the word respelled the Italian way (k -> c, ċ -> ci, ġ -> g, j -> i, ...) under the Italian model
        itspell = _italianise(core)
        lp["it_spelled"] = _per_char(lex["it_lm"], itspell)
        if itspell != core and itspell in lex["it"]:
            f["in_it_lex_respelled"] = 1.0
        lp["semitic"] = _per_char(lex["mt_semitic_lm"], core)
        lp["romance"] = _per_char(lex["mt_romance_lm"], core)
        for a, b in (("en", "mt"), ("it", "mt"), ("en", "it"), ("it_spelled", "mt"), ("semitic", "romance")):
            d = lp[a] - lp[b]
            f[f"lm_{a}_{b}"] = max(-3.0, min(3.0, d))
            f[f"lm_{a}_{b}>0"] = 1.0 if d > 0 else 0.0
    # word translation tables
    tables = {d: resources.translation_table(d) for d in resources.TRANSLATION_TABLES}
    en = tables["mt-en"].get(w) or tables["mt-en"].get(l)
    it = tables["mt-it"].get(w) or tables["mt-it"].get(l)
    ar = tables["mt-ar"].get(w) or tables["mt-ar"].get(l)
    enar = tables["en-ar"].get(w) or tables["en-ar"].get(l)
    if en is None:
        f["no_translation"] = 1.0
    else:
        en_l, it_l = en.lower(), _strip_accents((it or "").lower())
        base = _strip_accents(core)
        if en_l == l:
            f["en_same"] = 1.0
        if it_l == base:
            f["it_same"] = 1.0
        if " " in en.strip():
            f["en_multiword"] = 1.0
        s_en, s_it = _sim(base, en_l), _sim(base, it_l)
        f["sim_en"], f["sim_it"] = s_en, s_it
        for name, x in (("sim_en", s_en), ("sim_it", s_it), ("sim_best_lat", max(s_en, s_it))):
            for b in _bucket(name, x):
                f[b] = 1.0
        if s_en > s_it + 0.15:
            f["closer_en"] = 1.0
        elif s_it > s_en + 0.15:
            f["closer_it"] = 1.0
    if ar:
        translit = default_transliterator().transliterate(w).text
        ar_words = [x[2:] if x.startswith("ال") and len(x) > 3 else x for x in ar.split()]
        sk = _skeleton(translit)
        s_ar = max((_sim(translit, a) for a in ar_words), default=0.0)
        s_ar_sk = max((_sim(sk, _skeleton(a)) for a in ar_words), default=0.0)
        f["sim_ar"], f["sim_ar_sk"] = s_ar, s_ar_sk
        for name, x in (("sim_ar", s_ar), ("sim_ar_sk", s_ar_sk)):
            for b in _bucket(name, x):
                f[b] = 1.0
        if enar and enar == ar:
            f["enar_eq_mtar"] = 1.0
        if any(c.isascii() and c.isalpha() for c in ar):
            f["ar_untranslated"] = 1.0
    return tuple(sorted(f.items()))


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


def sentence_features(tokens: Sequence[str], memory: Memory | None = None,
                      exclude: Counter[tuple[str, str, str]] | None = None) -> list[dict[str, float]]:
    """CRF feature dicts for every token of a sentence (token, neighbours, memory)."""
    base = [dict(word_features(t)) for t in tokens]
    mem = [memory.features(t, exclude) if memory is not None else {} for t in tokens]
    out = []
    n = len(tokens)
    for i, t in enumerate(tokens):
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
            if 0 <= j < n:
                nb = base[j]
                if abs(off) == 1:  # (word identities two tokens away did not help in CV)
                    f[f"{tag}:w={tokens[j].lower()}"] = 1.0
                    for k in ("init_cap", "all_caps", "punct", "ends_hyphen", "en_same", "has_digit",
                              "closed:small_closed_class", "closed:additional_closed_class"):
                        if k in nb:
                            f[f"{tag}:{k}"] = 1.0
                    for k, v in mem[j].items():
                        if k.startswith("memx_only") or k.startswith("meml_only"):
                            f[f"{tag}:{k}"] = v
            else:
                f[f"{tag}:none"] = 1.0
        out.append(f)
    return out


# -- the classifier --------------------------------------------------------------------------------

def _crfsuite() -> Any:
    try:
        import pycrfsuite
    except ImportError:
        raise ConfigError("the Maltese etymology classifier needs python-crfsuite: pip install 'dsbuild[crf]'") from None
    return pycrfsuite


@dataclass
class EtymologyClassifier:
    """Memory + CRF etymology classifier. Build with :func:`train` or :func:`load_classifier`."""

    memory: Memory
    model_path: Path
    meta: dict[str, Any]

    def __post_init__(self) -> None:
        pycrfsuite = _crfsuite()
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(self.model_path))

    @property
    def version(self) -> str:
        """Short id of this model: feature version and checksum of the CRF file and memory."""
        return self.meta.get("version", "unknown")

    def predict(self, tokens: Sequence[str]) -> list[str]:
        """Merged etymology label for each token of one sentence."""
        if not tokens:
            return []
        tokens = [nfc(t) for t in tokens]
        crf = [FINE_TO_MERGED.get(y, y) for y in self._tagger.tag(sentence_features(tokens, self.memory))]
        return [self.memory.single_label(t) or y for t, y in zip(tokens, crf)]

    def predict_many(self, sentences: Iterable[Sequence[str]]) -> list[list[str]]:
        return [self.predict(s) for s in sentences]


def _fit_crf(sentences: Sequence[AnnotatedSentence], memory: Memory, model_path: Path,
             params: dict[str, Any] | None = None, fine: bool = False) -> None:
    trainer = _crfsuite().Trainer(verbose=False)
    trainer.set_params({k: v for k, v in {**DEFAULT_PARAMS, **(params or {})}.items() if k != "fine_labels"})
    for s in sentences:
        own: Counter[tuple[str, str, str]] = Counter()
        for t, y in zip(s.tokens, s.labels):
            own[("x", t, y)] += 1
            own[("l", t.lower(), y)] += 1
        targets = s.fine_labels if fine and s.fine_labels else s.labels
        trainer.append(sentence_features(s.tokens, memory, own), list(targets))
    trainer.train(str(model_path))


def train(sentences: Sequence[AnnotatedSentence], out_dir: str | Path, *, params: dict[str, Any] | None = None,
          source: str = "") -> EtymologyClassifier:
    """Train on ``sentences`` and save ``crf.model`` + ``meta.json`` in ``out_dir``."""
    if not sentences:
        raise ConfigError("cannot train the etymology classifier on zero sentences")
    _check_labels(sentences)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    memory = Memory.from_sentences(sentences)
    tmp_model = out_dir / "crf.model.tmp"
    fine = bool({**DEFAULT_PARAMS, **(params or {})}.get("fine_labels"))
    _fit_crf(sentences, memory, tmp_model, params, fine=fine)
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
    return EtymologyClassifier(memory, out_dir / "crf.model", meta)


def _check_labels(sentences: Sequence[AnnotatedSentence]) -> None:
    for s in sentences:
        bad = set(s.labels) - set(MERGED_LABELS)
        if bad:
            raise InputError(f"unknown labels {sorted(bad)}", example_id=s.id, hint="use " + ", ".join(MERGED_LABELS))


def record_cv(model_dir: str | Path, pooled: Scores, folds: int) -> None:
    """Store cross-validation figures in a model's ``meta.json`` (cards report them)."""
    path = Path(model_dir) / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["cross_validation"] = {"folds": folds, "by": "sentence, round-robin", **pooled.to_dict()}
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
    return Path(os.environ.get("DSBUILD_CACHE")
                or os.path.join(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "dsbuild"))


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
    n = c = ns = cs = nu = cu = 0
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g_s, p_s, t_s in zip(gold, pred, tokens):
        if len(g_s) != len(p_s):
            raise ValueError("gold and predicted label sequences differ in length")
        for g, p, t in zip(g_s, p_s, t_s):
            ok = g == p
            n += 1
            c += ok
            if memory.seen(t):
                ns += 1
                cs += ok
            else:
                nu += 1
                cu += ok
            if ok:
                tp[g] += 1
            else:
                fp[p] += 1
                fn[g] += 1
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
                   progress: bool = True) -> tuple[Scores, list[Scores]]:
    """K-fold cross-validation by sentence; returns pooled scores and per-fold scores."""
    from tqdm.auto import tqdm

    if folds < 2 or folds > len(sentences):
        raise ConfigError(f"folds must be between 2 and the number of sentences ({len(sentences)}), got {folds}")
    gold: list[list[str]] = []
    pred: list[list[str]] = []
    toks: list[list[str]] = []
    seen_flags: list[list[bool]] = []
    per_fold: list[Scores] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in tqdm(range(folds), desc="etymology cv", disable=not progress, leave=False):
            train_s = [s for i, s in enumerate(sentences) if fold_of(i, folds) != k]
            test_s = [s for i, s in enumerate(sentences) if fold_of(i, folds) == k]
            clf = train(train_s, Path(tmp) / f"fold{k}", params=params)
            p = [clf.predict(s.tokens) for s in test_s]
            per_fold.append(score([s.labels for s in test_s], p, [s.tokens for s in test_s], clf.memory))
            gold += [s.labels for s in test_s]
            pred += p
            toks += [s.tokens for s in test_s]
            seen_flags += [[clf.memory.seen(t) for t in s.tokens] for s in test_s]
    # pool: seen/unseen relative to each token's own training folds
    pooled_memory = _FlagMemory(seen_flags)
    return score(gold, pred, [[f"{i}:{j}" for j in range(len(s))] for i, s in enumerate(toks)], pooled_memory), per_fold


class _FlagMemory(Memory):
    """A memory whose ``seen`` answers from precomputed flags keyed ``"sentence:token"``."""

    def __init__(self, flags: list[list[bool]]) -> None:
        super().__init__()
        self._flags = {f"{i}:{j}" for i, s in enumerate(flags) for j, f in enumerate(s) if f}

    def seen(self, token: str) -> bool:
        return token in self._flags
