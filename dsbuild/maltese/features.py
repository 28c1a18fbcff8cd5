"""Token features of the Maltese etymology classifier, and the tables they read.

Two kinds of evidence, kept apart so an evaluation can say exactly what a test word was allowed
to see:

* :class:`FeatureTables`: everything read from the shipped MLRS tables: the word translation
  tables (``mt-en``, ``mt-it``, ``mt-ar``, ``en-ar``), the closed-class token tables, and what
  is derived from them (English/Italian word lists and character models from the tables'
  target sides, a character model of the Maltese keys, "silver" Semitic vs Romance word lists
  picked from the tables by edit similarities, an Arabic-script character model of the ``mt-ar``
  targets). :meth:`FeatureTables.without` removes word types from *all* of them, as for words of
  text nobody annotated (the novel-word evaluation).
* :class:`LabelledLexicon`: character-level models learned from the *training annotations*: a
  Witten-Bell character 4-gram model per etymology class and an index of consonant skeletons
  (the root of Arabic-origin words: k-t-b in kiteb, ktieb, miktub). A word's own type is always
  left out of both (leave-one-type-out), in training and at prediction alike, so the CRF learns
  how far to trust them on words it has never met.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dsbuild.maltese import resources

_MALTESE_LETTERS = {"ċ": "c_dot", "ġ": "g_dot", "ħ": "h_bar", "ż": "z_dot"}
_ARABIC_VOWEL_LETTERS = set("اويىةهأإآء")
_PUNCT_CATS = ("P", "S")
_WORD_PUNCT = ".,;:!?()\"'’“”"
#: classes the character models are trained for (Symbol tokens have no letters to model)
LM_CLASSES = ("Arabic", "Non-Arabic", "Code-Switching", "Name")
_ITALIAN_SPELLING = (("ċ", "ci"), ("ġ", "gi"), ("ż", "z"), ("ħ", "h"), ("għ", ""), ("x", "sc"), ("k", "c"),
                     ("zj", "zi"), ("j", "i"), ("w", "u"))


# -- small helpers ---------------------------------------------------------------------------------

def shape(w: str) -> str:
    """Case/digit/punctuation shape, runs collapsed, at most 8 symbols (``Xx``, ``d.d``)."""
    out: list[str] = []
    for c in w:
        s = "X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c
        if not out or out[-1] != s:
            out.append(s)
    return "".join(out)[:8]


def sim(a: str, b: str) -> float:
    """Normalised Levenshtein similarity (0 when either side is empty)."""
    from rapidfuzz.distance import Levenshtein

    if not a or not b:
        return 0.0
    return Levenshtein.normalized_similarity(a, b)


def strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


def arabic_skeleton(arabic: str) -> str:
    """Consonant skeleton of an Arabic-script word (long-vowel letters and marks dropped)."""
    return "".join(c for c in arabic if c not in _ARABIC_VOWEL_LETTERS and not unicodedata.combining(c))


_VOWELS = re.compile(r"ie|[aeiouàèìòù]")
_NON_LETTER = re.compile(r"[^a-zċġħżà-ù3]")


def maltese_skeleton(word: str) -> str:
    """Consonant skeleton of a Maltese word: għ as one consonant, vowels (and ie) dropped,
    doubled consonants written once (kiteb, ktieb, miktub -> ktb, ktb, mktb)."""
    s = _NON_LETTER.sub("", _VOWELS.sub("", word.lower().replace("għ", "3")))
    return re.sub(r"(.)\1+", r"\1", s)


def root_keys(word: str) -> list[str]:
    """Skeleton keys of ``word``: the whole skeleton, and with a verbal/nominal prefix consonant
    (j t n m) or a common suffix consonant (t n k h) peeled off when at least three remain:
    Arabic-origin inflections of one root share a key (jiktbu, kitbu, kiteb -> ktb)."""
    sk = maltese_skeleton(word)
    keys = [f"s:{sk}"] if sk else []
    core = sk
    if len(core) > 3 and core[0] in "jtnm":
        core = core[1:]
    while len(core) > 3 and core[-1] in "tnkhw":
        core = core[:-1]
    if core != sk and len(core) >= 2:
        keys.append(f"r:{core}")
    return keys


def bucket(name: str, x: float) -> list[str]:
    return [f"{name}>={t}" for t in (0.3, 0.5, 0.7, 0.85) if x >= t]


def italianise(word: str) -> str:
    """The word respelled the Italian way (k -> c, ċ -> ci, ġ -> gi, j -> i, ...)."""
    for a, b in _ITALIAN_SPELLING:
        word = word.replace(a, b)
    return word


def _per_char(lm: Any, word: str) -> float:
    return lm.score(word) / (len(word) + 1)


def _drop_article(arabic: str) -> str:
    return arabic[2:] if arabic.startswith("ال") and len(arabic) > 3 else arabic


# -- the tables ---------------------------------------------------------------------------------------

class FeatureTables:
    """Every table the word features read, and what is derived from them.

    Build the shipped one with :meth:`shipped`; :meth:`without` gives a copy with word types
    removed from every table, word list and model (compared lower-cased).
    """

    def __init__(self, translations: Mapping[str, Mapping[str, str]], closed: Mapping[str, Mapping[str, str]],
                 removed: frozenset[str] = frozenset()) -> None:
        self.translations = {d: dict(t) for d, t in translations.items()}
        self.closed = {n: dict(t) for n, t in closed.items()}
        #: lower-cased types removed from the shipped tables
        self.removed = removed
        self._features: dict[str, tuple[tuple[str, float], ...]] = {}

    @classmethod
    @functools.lru_cache(maxsize=1)
    def shipped(cls) -> FeatureTables:
        """The shipped tables, unchanged (one instance per process)."""
        return cls({d: resources.translation_table(d) for d in resources.TRANSLATION_TABLES},
                   {n: resources.token_table(n) for n in resources.TOKEN_TABLES})

    def without(self, types: Iterable[str]) -> FeatureTables:
        """A copy with every row whose key, lower-cased, is one of ``types`` (lower-cased) removed from
        every translation and closed-class table; derived word lists and models are rebuilt without them."""
        drop = frozenset(t.lower() for t in types)
        if not drop:
            return self
        return FeatureTables({d: {k: v for k, v in t.items() if k.lower() not in drop} for d, t in self.translations.items()},
                             {n: {k: v for k, v in t.items() if k.lower() not in drop} for n, t in self.closed.items()},
                             self.removed | drop)

    def knows(self, word: str) -> list[str]:
        """Names of the tables and word lists in which ``word`` (lower-cased) still occurs (for checks)."""
        l = word.lower()
        hits = [d for d, t in self.translations.items() if any(k.lower() == l for k in t)]
        hits += [n for n, t in self.closed.items() if any(k.lower() == l for k in t)]
        lex = self.lexicons
        hits += [name for name in ("en", "it", "mt_words", "silver_semitic", "silver_romance") if l in lex[name]]
        return hits

    def in_closed(self, table: str, lower: str) -> bool:
        """Whether the lower-cased word has a row in the closed-class table ``table``."""
        return lower in self.closed[table]

    # -- lookups --------------------------------------------------------------------------------
    def lookup(self, direction: str, word: str) -> str | None:
        table = self.translations[direction]
        return table.get(word) or table.get(word.lower())

    def closed_class(self, word: str) -> str | None:
        """The closed-class table entry of ``word`` (small table first), or ``None``."""
        for name in resources.TOKEN_TABLES:
            hit = self.closed[name].get(word) or self.closed[name].get(word.lower())
            if hit is not None:
                return hit
        return None

    def transliterate(self, word: str) -> str:
        """Arabic-script form: the closed-class table if it has the word, else the character rules."""
        hit = self.closed_class(word)
        if hit is not None:
            return hit.rstrip("+")
        return _rule_transliterator()(word)

    # -- derived word lists and models ----------------------------------------------------------
    @functools.cached_property
    def lexicons(self) -> dict[str, Any]:
        """English and Italian word lists and character models from the tables' target sides, models
        of the Maltese keys and of silver Semitic / Romance keys, and of the Arabic-script targets."""
        from dsbuild.maltese.transliterate import CharNgramLM

        out: dict[str, Any] = {}
        for lang, direction in (("en", "mt-en"), ("it", "mt-it")):
            words = {x for value in self.translations[direction].values() for x in _words_of(value)}
            out[lang] = frozenset(words - self.removed)
            out[f"{lang}_lm"] = CharNgramLM(sorted(out[lang]), order=3)
        mt = sorted({k.lower() for k in self.translations["mt-en"] if k.isalpha()} - self.removed)
        out["mt_words"] = frozenset(mt)
        out["mt_lm"] = CharNgramLM(mt, order=3)
        semitic, romance = self._silver()
        out["silver_semitic"], out["silver_romance"] = frozenset(semitic), frozenset(romance)
        out["mt_semitic_lm"] = CharNgramLM(semitic, order=3)
        out["mt_romance_lm"] = CharNgramLM(romance, order=3)
        out["silver_roots"] = _root_index((w, "semitic") for w in semitic)
        for w in romance:
            for k in root_keys(w):
                out["silver_roots"][k]["romance"] += 1
        out["ar_lm"] = CharNgramLM(self._arabic_words(), order=3)
        return out

    def _silver(self) -> tuple[list[str], list[str]]:
        """Maltese keys that look Semitic (their Arabic-script form matches their Arabic translation,
        their Latin ones do not) or Romance/English (the reverse). From the tables alone, never from
        the annotations, so they cannot leak labels."""
        en, it, ar = (self.translations[d] for d in ("mt-en", "mt-it", "mt-ar"))
        rules = _rule_transliterator()
        semitic, romance = set(), set()
        for key, en_value in en.items():
            word = key.lower()
            if not word.isalpha() or len(word) < 3 or word in self.removed:
                continue
            sk = arabic_skeleton(rules(word))
            s_ar = max((sim(sk, arabic_skeleton(_drop_article(a))) for a in ar.get(key, "").split()), default=0.0)
            s_lat = max(sim(word, en_value.lower()), sim(strip_accents(word), strip_accents(it.get(key, "").lower())))
            if s_ar >= 0.75 and s_lat < 0.5:
                semitic.add(word)
            elif s_lat >= 0.6 and s_ar < 0.5:
                romance.add(word)
        return sorted(semitic), sorted(romance)

    def _arabic_words(self) -> list[str]:
        """Arabic-script words of the ``mt-ar`` targets (the ranking model of the transliteration tables)."""
        words = []
        for value in self.translations["mt-ar"].values():
            for w in value.split():
                w = arabic_skeleton(_drop_article(w))
                if w and all("\u0600" <= c <= "\u06ff" for c in w):
                    words.append(w)
        return sorted(words)

    # -- features -------------------------------------------------------------------------------
    def word_features(self, w: str) -> tuple[tuple[str, float], ...]:
        """Context-free features of one token type from these tables (cached per type)."""
        hit = self._features.get(w)
        if hit is None:
            hit = self._features[w] = tuple(sorted(_word_features(w, self).items()))
        return hit


def _words_of(value: str) -> set[str]:
    out = set()
    for x in value.lower().split():
        x = x.strip(_WORD_PUNCT)
        if x.isalpha():
            out.add(x)
    return out


@functools.lru_cache(maxsize=1)
def _rule_transliterator() -> Any:
    """Character-rule transliterator without word tables (the tables are looked up by :class:`FeatureTables`)."""
    from dsbuild.maltese.transliterate import Transliterator

    return Transliterator(use_word_tables=False)


def _root_index(pairs: Iterable[tuple[str, str]]) -> dict[str, Counter[str]]:
    index: dict[str, Counter[str]] = defaultdict(Counter)
    for word, label in pairs:
        for k in root_keys(word):
            index[k][label] += 1
    return index


# -- features of one word ---------------------------------------------------------------------------

def _word_features(w: str, tables: FeatureTables) -> dict[str, float]:
    l = w.lower()
    f: dict[str, float] = {"bias": 1.0, f"w={l}": 1.0, f"shape={shape(w)}": 1.0}
    letters = [c for c in w if c.isalpha()]
    if not letters:
        if all(unicodedata.category(c)[0] in _PUNCT_CATS for c in w):
            f["punct"] = 1.0
        if any(c.isdigit() for c in w):
            f["has_digit"] = 1.0
        if w.isdigit():
            f["all_digit"] = 1.0
        return f
    _spelling_features(w, l, letters, f)
    for table in resources.TOKEN_TABLES:
        if tables.in_closed(table, l):
            f[f"closed:{table}"] = 1.0
    core = l.strip("-'’")
    _ngram_features(core, f)
    if core.isalpha():
        _lexicon_features(core, tables, f)
    _translation_features(w, l, core, tables, f)
    return f


def _spelling_features(w: str, l: str, letters: list[str], f: dict[str, float]) -> None:
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


def _ngram_features(core: str, f: dict[str, float]) -> None:
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


def _lexicon_features(core: str, tables: FeatureTables, f: dict[str, float]) -> None:
    """English / Italian word lists and character models, silver Semitic vs Romance models and roots."""
    lex = tables.lexicons
    for lang in ("en", "it"):
        if core in lex[lang]:
            f[f"in_{lang}_lex"] = 1.0
    lp = {k: _per_char(lex[f"{k}_lm"], core) for k in ("en", "it", "mt")}
    itspell = italianise(core)
    lp["it_spelled"] = _per_char(lex["it_lm"], itspell)
    if itspell != core and itspell in lex["it"]:
        f["in_it_lex_respelled"] = 1.0
    lp["semitic"] = _per_char(lex["mt_semitic_lm"], core)
    lp["romance"] = _per_char(lex["mt_romance_lm"], core)
    for a, b in (("en", "mt"), ("it", "mt"), ("en", "it"), ("it_spelled", "mt"), ("semitic", "romance")):
        d = lp[a] - lp[b]
        f[f"lm_{a}_{b}"] = max(-3.0, min(3.0, d))
        f[f"lm_{a}_{b}>0"] = 1.0 if d > 0 else 0.0
    f.update(silver_root_features(core, tables))
    # how Arabic the word's consonants look once written in Arabic script (Arabic-origin words do)
    ar = _per_char(lex["ar_lm"], arabic_skeleton(tables.transliterate(core)))
    f["ar_plaus"] = max(-6.0, ar) / 6.0
    for b in (-4.0, -3.5, -3.0, -2.5, -2.0):
        if ar >= b:
            f[f"ar_plaus>={b}"] = 1.0


def _translation_features(w: str, l: str, core: str, tables: FeatureTables, f: dict[str, float]) -> None:
    en, it = tables.lookup("mt-en", w), tables.lookup("mt-it", w)
    ar, enar = tables.lookup("mt-ar", w), tables.lookup("en-ar", w)
    if en is None:
        f["no_translation"] = 1.0
    else:
        en_l, it_l = en.lower(), strip_accents((it or "").lower())
        base = strip_accents(core)
        if en_l == l:
            f["en_same"] = 1.0
        if it_l == base:
            f["it_same"] = 1.0
        if " " in en.strip():
            f["en_multiword"] = 1.0
        s_en, s_it = sim(base, en_l), sim(base, it_l)
        f["sim_en"], f["sim_it"] = s_en, s_it
        for name, x in (("sim_en", s_en), ("sim_it", s_it), ("sim_best_lat", max(s_en, s_it))):
            for b in bucket(name, x):
                f[b] = 1.0
        if s_en > s_it + 0.15:
            f["closer_en"] = 1.0
        elif s_it > s_en + 0.15:
            f["closer_it"] = 1.0
    if ar:
        translit = tables.transliterate(w)
        ar_words = [_drop_article(x) for x in ar.split()]
        sk = arabic_skeleton(translit)
        s_ar = max((sim(translit, a) for a in ar_words), default=0.0)
        s_ar_sk = max((sim(sk, arabic_skeleton(a)) for a in ar_words), default=0.0)
        f["sim_ar"], f["sim_ar_sk"] = s_ar, s_ar_sk
        for name, x in (("sim_ar", s_ar), ("sim_ar_sk", s_ar_sk)):
            for b in bucket(name, x):
                f[b] = 1.0
        if enar and enar == ar:
            f["enar_eq_mtar"] = 1.0
        if any(c.isascii() and c.isalpha() for c in ar):
            f["ar_untranslated"] = 1.0


# -- character models learned from the training annotations ------------------------------------------

class WittenBellLM:
    """Character n-gram model (Witten-Bell interpolation) whose :meth:`score` can leave one word out:
    its own n-gram counts are subtracted first, as if it had never been trained on."""

    def __init__(self, words: Iterable[str], order: int = 4) -> None:
        self.order = order
        self.grams: Counter[str] = Counter()  # history + character, histories of 0..order-1 characters
        self.hist: Counter[str] = Counter()
        for w in words:
            g, h = self._grams(w)
            self.grams.update(g)
            self.hist.update(h)
        self.followers: Counter[str] = Counter(g[:-1] for g in self.grams)
        self.uniform = 1.0 / (len({g[-1] for g in self.grams}) + 1)

    def _grams(self, word: str) -> tuple[Counter[str], Counter[str]]:
        s = "\x02" * (self.order - 1) + word + "\x03"
        grams: Counter[str] = Counter()
        hist: Counter[str] = Counter()
        for i in range(self.order - 1, len(s)):
            for n in range(self.order):
                grams[s[i - n:i + 1]] += 1
                hist[s[i - n:i]] += 1
        return grams, hist

    def score(self, word: str, leave_out: bool = False) -> float:
        """Log-probability per character of ``word`` (with its end mark), optionally leaving it out."""
        minus_g, minus_h = self._grams(word) if leave_out else (Counter(), Counter())
        dropped = Counter(g[:-1] for g in minus_g if self.grams[g] - minus_g[g] <= 0)
        s = "\x02" * (self.order - 1) + word + "\x03"
        total = 0.0
        for i in range(self.order - 1, len(s)):
            p = self.uniform
            for n in range(self.order):
                h, g = s[i - n:i], s[i - n:i + 1]
                ch = self.hist[h] - minus_h[h]
                if ch <= 0:
                    break  # a longer history is unseen too
                t = max(self.followers[h] - dropped[h], 1)
                p = (max(self.grams[g] - minus_g[g], 0) + t * p) / (ch + t)
            total += math.log(p)
        return total / (len(s) - self.order + 1)


@dataclass
class LabelledLexicon:
    """Character models and root index learned from labelled word types (the training memory).

    ``types`` maps a lower-cased word type to the set of labels it was annotated with. Each class
    model is trained on the distinct forms (:func:`_lm_form`) of its types; a word's own form is
    left out of every model and root count that holds it.
    """

    types: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_counts(cls, lower_counts: Mapping[str, Mapping[str, int]]) -> LabelledLexicon:
        return cls({t: frozenset(y for y, n in c.items() if n > 0) for t, c in lower_counts.items()
                    if any(n > 0 for n in c.values())})

    @functools.cached_property
    def forms(self) -> dict[str, frozenset[str]]:
        by_class: dict[str, set[str]] = {y: set() for y in LM_CLASSES}
        for t, ys in self.types.items():
            form = _lm_form(t)
            if form.isalpha():
                for y in ys & set(LM_CLASSES):
                    by_class[y].add(form)
        return {y: frozenset(v) for y, v in by_class.items()}

    @functools.cached_property
    def models(self) -> dict[str, WittenBellLM]:
        return {y: WittenBellLM(sorted(words)) for y, words in self.forms.items()}

    @functools.cached_property
    def roots(self) -> dict[str, Counter[str]]:
        return _root_index((w, y) for y, words in sorted(self.forms.items()) for w in sorted(words))

    def features(self, word: str) -> dict[str, float]:
        """Class-model and root features of ``word``, its own form left out (cached per word: the
        same word recurs across a corpus, and scoring it under every class model is the costly part)."""
        cache: dict[str, dict[str, float]] = self.__dict__.setdefault("_feature_cache", {})
        if word not in cache:
            if len(cache) >= 200_000:  # bounded memory on corpora with millions of word types
                cache.clear()
            cache[word] = self._features(word)
        return cache[word]

    def _features(self, word: str) -> dict[str, float]:
        core = _lm_form(word)
        if not core.isalpha() or not self.types:
            return {}
        own = {y for y, words in self.forms.items() if core in words}
        lp = {y: m.score(core, leave_out=y in own) for y, m in self.models.items()}
        f: dict[str, float] = {f"clm_best={max(LM_CLASSES, key=lambda y: (lp[y], y))}": 1.0}
        for a, b in (("Arabic", "Non-Arabic"), ("Code-Switching", "Non-Arabic"), ("Code-Switching", "Arabic"),
                     ("Name", "Arabic"), ("Name", "Non-Arabic")):
            d = max(-3.0, min(3.0, lp[a] - lp[b]))
            f[f"clm_{a}-{b}"] = d
            for t in (-1.0, -0.3, 0.0, 0.3, 1.0):
                if d >= t:
                    f[f"clm_{a}-{b}>={t}"] = 1.0
        for k in root_keys(core):
            counts = Counter(self.roots.get(k, {}))
            counts.subtract(own)
            live = {y: n for y, n in counts.items() if n > 0}
            if not live:
                f[f"root{k[0]}=none"] = 1.0
                continue
            total = sum(live.values())
            for y, n in live.items():
                f[f"root{k[0]}={y}"] = n / total
        return f


def _lm_form(word: str) -> str:
    """The form the character models see: lower-cased, accents and edge hyphens/apostrophes off."""
    return strip_accents(word.lower().strip("-'’"))


def silver_root_features(word: str, tables: FeatureTables) -> dict[str, float]:
    """How the silver (table-derived) Semitic and Romance words sharing ``word`` 's root keys split."""
    f: dict[str, float] = {}
    roots = tables.lexicons["silver_roots"]
    l = word.lower().strip("-'’")
    if not l.isalpha():
        return f
    for k in root_keys(l):
        c = roots.get(k)
        if c:
            total = sum(c.values())
            f[f"sroot{k[0]}_semitic"] = c["semitic"] / total
    return f
