"""Rule-based Maltese (Latin script) -> Arabic script transliteration (after Micallef et al. 2023).

Order of work for one token:

1. NFC-normalise; look the token up in the closed-class word tables (exact, then lowercase).
   A table output ending in ``+`` attaches to the next token: the ``+`` is dropped from the
   token's text and ``attach_next`` is set (:func:`join` renders the sentence accordingly).
2. Otherwise rewrite characters of the lowercased word, framed by word-boundary markers:
   at each position the longest matching source wins, ties going to the table first in
   priority order: boundary rules, digraphs (``għ``, ``ie``),
   doubled consonants (shadda), single characters, punctuation, Arabic letters as themselves.
3. Remove Arabic diacritics (``dediac.map``), unless asked not to.

Characters no table covers pass through unchanged and are counted (``unmapped``).
Accented vowels (à è ì ò ù), which the tables lack, are read as their plain vowel first.

The deterministic tables give one output. The non-deterministic tables give several targets per
rule; :meth:`Transliterator.alternatives` returns outputs ranked by a character n-gram model
trained on the Arabic side of the ``mt-ar`` word table (beam search over the rule lattice).
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dsbuild.errors import ConfigError
from dsbuild.maltese import resources
from dsbuild.maltese.resources import MapRule, char_table, nfc

log = logging.getLogger(__name__)

Mode = Literal["deterministic", "non_deterministic"]
BOS, EOS = "\x02", "\x03"
_ACCENTS = str.maketrans("àèìòùáéíóúâêîôûÀÈÌÒÙ", "aeiouaeiouaeiouAEIOU")
_CACHE_SIZE = 200_000

# (mode, vowels) -> table names in priority order
_TABLE_ORDER: dict[str, tuple[str, ...]] = {
    "deterministic": ("special_deterministic", "malti2arabi_2char", "shadda", "malti2arabi_1char_vowels_{vowels}"),
    "non_deterministic": ("special", "alif_initial", "final_vowels", "malti2arabi_2char", "shadda", "malti2arabi_1char"),
}
# punctuation and Arabic letters map to themselves (or Arabic punctuation) in both modes
_SHARED_TABLES = (("non_deterministic", "everything_else"), ("non_deterministic", "arabic2arabic"))


@dataclass(frozen=True)
class Transliteration:
    """The transliteration of one token.

    Attributes:
        text: Arabic-script output (no ``+`` marker).
        attach_next: the output attaches to the next token without a space (closed-class ``+``).
        source: ``"table"`` (closed-class word table) or ``"rules"`` (character rewriting).
        unmapped: characters that no table covered and that passed through unchanged.
    """

    text: str
    attach_next: bool = False
    source: str = "rules"
    unmapped: tuple[str, ...] = ()


@dataclass
class TransliterationStats:
    """Counts gathered while transliterating: tokens, table hits, unmapped characters."""

    tokens: int = 0
    from_table: int = 0
    unmapped_chars: Counter[str] = field(default_factory=Counter)

    def add(self, t: Transliteration) -> None:
        self.tokens += 1
        self.from_table += t.source == "table"
        self.unmapped_chars.update(t.unmapped)

    def to_dict(self) -> dict[str, object]:
        return {"tokens": self.tokens, "from_closed_class_table": self.from_table,
                "unmapped_chars": sum(self.unmapped_chars.values()),
                "unmapped_by_char": dict(sorted(self.unmapped_chars.items(), key=lambda kv: (-kv[1], kv[0])))}


def _rules_from(tables: Iterable[Sequence[MapRule]]) -> list[dict[str, list[str]]]:
    """One ``source -> [targets]`` dict per table, boundary words encoded as marker characters."""
    out = []
    for table in tables:
        d: dict[str, list[str]] = {}
        for rule in table:
            src = rule.source.replace("<BOS>", BOS).replace("<EOS>", EOS)
            d.setdefault(src, [])
            if rule.target not in d[src]:
                d[src].append(rule.target)
        out.append(d)
    return out


class CharNgramLM:
    """An interpolated character n-gram model over Arabic-script words (for ranking outputs)."""

    def __init__(self, words: Iterable[str], order: int = 3) -> None:
        self.order = order
        self.counts: list[Counter[str]] = [Counter() for _ in range(order + 1)]
        for w in words:
            s = BOS * (order - 1) + w + EOS
            for n in range(1, order + 1):
                for i in range(order - 1 if n < order else 0, len(s) - n + 1):
                    self.counts[n][s[i:i + n]] += 1
        self.total = sum(self.counts[1].values())
        self.vocab = len(self.counts[1]) + 1
        self._lambdas = [0.0, 0.1, 0.3, 0.6][: order + 1] if order == 3 else [0.0] + [1.0 / order] * order

    def logprob_char(self, history: str, c: str) -> float:
        p = 0.0
        for n in range(1, self.order + 1):
            h = history[len(history) - (n - 1):] if n > 1 else ""
            if n == 1:
                p += self._lambdas[1] * (self.counts[1][c] + 1) / (self.total + self.vocab)
                continue
            denom = self.counts[n - 1][h]
            if denom:
                p += self._lambdas[n] * self.counts[n][h + c] / denom
        return math.log(p)

    def score(self, word: str) -> float:
        """Total log-probability of ``word`` (with its end marker)."""
        s = BOS * (self.order - 1) + word + EOS
        return sum(self.logprob_char(s[:i], s[i]) for i in range(self.order - 1, len(s)))


@functools.lru_cache(maxsize=1)
def default_lm() -> CharNgramLM:
    """Character trigram model of the Arabic side of the shipped ``mt-ar`` word table."""
    marks = {r.source for r in char_table("non_deterministic", "dediac")}
    words = []
    for value in resources.translation_table("mt-ar").values():
        for w in value.split():
            w = "".join(c for c in w if c not in marks)
            if w and all("\u0600" <= c <= "\u06ff" for c in w):
                words.append(w)
    return CharNgramLM(words, order=3)


class Transliterator:
    """Maltese -> Arabic script, from the shipped mapping tables.

    Args:
        mode: ``"deterministic"`` (one output per token) or ``"non_deterministic"`` (rules with
            several targets; :meth:`transliterate` returns the best-ranked, :meth:`alternatives`
            the ranked list).
        vowels: deterministic mode only: ``"long"`` writes vowels as long letters (ا ي و),
            ``"short"`` as short-vowel marks (which diacritic removal then drops).
        use_word_tables: look closed-class words up in the token tables first.
        dediacritise: remove Arabic diacritics (short vowels, shadda) at the end.
        beam: beam width for ranked alternatives.

    Results are cached per token type, so running text costs one dict lookup per token.
    """

    def __init__(self, mode: Mode = "deterministic", *, vowels: Literal["long", "short"] = "long",
                 use_word_tables: bool = True, dediacritise: bool = True, beam: int = 8) -> None:
        if mode not in _TABLE_ORDER:
            raise ConfigError(f"transliteration mode {mode!r} is not one of {', '.join(_TABLE_ORDER)}")
        if vowels not in ("long", "short"):
            raise ConfigError(f"vowels {vowels!r} is not 'long' or 'short'")
        self.mode, self.vowels, self.beam = mode, vowels, beam
        self.use_word_tables, self.dediacritise = use_word_tables, dediacritise
        names = [n.format(vowels=vowels) for n in _TABLE_ORDER[mode]]
        self.table_names = [f"char_mappings_{mode}/{n}.map" for n in names] + \
                           [f"char_mappings_{m}/{n}.map" for m, n in _SHARED_TABLES]
        self._tables = _rules_from([char_table(mode, n) for n in names] + [char_table(m, n) for m, n in _SHARED_TABLES])
        self._longest = max(len(src) for t in self._tables for src in t)
        self._first_target: dict[str, str] = {}
        for table in self._tables:
            for src, targets in table.items():
                self._first_target.setdefault(src, targets[0])
        sources = sorted(self._first_target, key=lambda x: (-len(x), x))
        self._rules_re = re.compile("|".join(map(re.escape, sources)) + "|.", re.DOTALL)
        self._marks = frozenset(r.source for r in char_table("non_deterministic", "dediac"))
        self._delete_marks = {ord(c): None for c in self._marks if len(c) == 1}
        self._words = resources.closed_class_words() if use_word_tables else {}
        self._cache: dict[str, Transliteration] = {}
        self._alt_cache: dict[tuple[str, int], list[tuple[str, float]]] = {}

    # -- public API ---------------------------------------------------------------------------
    def transliterate(self, token: str) -> Transliteration:
        """Transliterate one token (cached per token type)."""
        hit = self._cache.get(token)
        if hit is None:
            hit = self._transliterate(token)
            if len(self._cache) < _CACHE_SIZE:
                self._cache[token] = hit
        return hit

    def __call__(self, token: str) -> str:
        return self.transliterate(token).text

    def transliterate_tokens(self, tokens: Sequence[str], stats: TransliterationStats | None = None) -> list[Transliteration]:
        """Transliterate a token sequence; ``stats`` (if given) gathers counts."""
        out = [self.transliterate(t) for t in tokens]
        if stats is not None:
            for t in out:
                stats.add(t)
        return out

    def alternatives(self, token: str, k: int = 5) -> list[tuple[str, float]]:
        """Up to ``k`` outputs for ``token``, best first, each with its log-probability under the
        character n-gram model. A closed-class table hit is the only alternative (score 0)."""
        key = (token, k)
        if key in self._alt_cache:
            return self._alt_cache[key]
        table_hit = self._table_lookup(nfc(token))
        if table_hit is not None:
            result = [(table_hit.text, 0.0)]
        else:
            lm = default_lm()
            result = []
            for out, _ in self._beam(self._encode(token), max(k, self.beam), lm):
                if out not in (r[0] for r in result):
                    result.append((out, lm.score(out)))
            result.sort(key=lambda r: -r[1])
            result = result[:k]
        self._alt_cache[key] = result
        return result

    # -- internals ----------------------------------------------------------------------------
    def _table_lookup(self, token: str) -> Transliteration | None:
        target = self._words.get(token)
        if target is None:
            target = self._words.get(token.lower())
        if target is None:
            return None
        attach = target.endswith("+")
        return Transliteration(target[:-1] if attach else target, attach_next=attach, source="table")

    def _encode(self, token: str) -> str:
        return BOS + nfc(token).lower().translate(_ACCENTS) + EOS

    def _matches(self, s: str, i: int) -> tuple[int, list[str]] | None:
        """The winning rule at position ``i``: (source length, targets).

        The longest source wins (``<BOS>a`` over ``<BOS>``, ``għ`` over ``g``); among sources of
        the same length, the table earlier in priority order wins."""
        for n in range(min(self._longest, len(s) - i), 0, -1):
            piece = s[i:i + n]
            for table in self._tables:
                targets = table.get(piece)
                if targets is not None:
                    return n, targets
        return None

    def _strip(self, text: str) -> str:
        if not self.dediacritise:
            return text
        return text.translate(self._delete_marks)

    def _transliterate(self, token: str) -> Transliteration:
        token = nfc(token)
        hit = self._table_lookup(token) if self._words else None
        if hit is not None:
            return hit
        if self.mode == "non_deterministic":
            best = self.alternatives(token, 1)
            text = best[0][0] if best else ""
            attach = len(text) > 1 and text.endswith("+")  # special.map: a final hyphen attaches
            return Transliteration(text[:-1] if attach else text, attach_next=attach,
                                   unmapped=self._unmapped(self._encode(token)))
        return self._rewrite(self._encode(token))

    def _rewrite(self, s: str) -> Transliteration:
        """Deterministic rewriting of encoded word ``s`` in one regex pass (same rule choice as
        :meth:`_matches`: alternatives are tried longest first, ties in table priority order)."""
        pieces = self._rules_re.findall(s)
        get = self._first_target.get
        out = [get(p) for p in pieces]
        unmapped: tuple[str, ...] = ()
        if None in out:  # characters no table covers: pass through, counted (boundary markers vanish)
            unmapped = tuple(p for p, o in zip(pieces, out) if o is None and p not in (BOS, EOS))
            out = [o if o is not None else ("" if p in (BOS, EOS) else p) for p, o in zip(pieces, out)]
        return Transliteration(self._strip("".join(out)), unmapped=unmapped)  # type: ignore[arg-type]

    def _rewrite_reference(self, s: str) -> Transliteration:
        """The same rewriting position by position (kept to test :meth:`_rewrite` against)."""
        out: list[str] = []
        unmapped: list[str] = []
        i = 0
        while i < len(s):
            m = self._matches(s, i)
            if m is None:
                c = s[i]
                if c not in (BOS, EOS):
                    out.append(c)
                    unmapped.append(c)
                i += 1
                continue
            n, targets = m
            out.append(targets[0])
            i += n
        return Transliteration(self._strip("".join(out)), unmapped=tuple(unmapped))

    def _unmapped(self, s: str) -> tuple[str, ...]:
        unmapped, i = [], 0
        while i < len(s):
            m = self._matches(s, i)
            if m is None:
                if s[i] not in (BOS, EOS):
                    unmapped.append(s[i])
                i += 1
            else:
                i += m[0]
        return tuple(unmapped)

    def _beam(self, s: str, width: int, lm: CharNgramLM) -> list[tuple[str, float]]:
        """Beam search over the rule lattice of encoded word ``s``; returns (output, score)."""
        hist0 = BOS * (lm.order - 1)
        beams: list[tuple[str, float]] = [("", 0.0)]
        i = 0
        while i < len(s):
            m = self._matches(s, i)
            if m is None:
                n, targets = 1, ([s[i]] if s[i] not in (BOS, EOS) else [""])
            else:
                n, targets = m
            grown: dict[str, float] = {}
            for out, score in beams:
                for t in targets:
                    t = self._strip(t)
                    new = out + t
                    sc = score
                    h = hist0 + out
                    for c in t:
                        sc += lm.logprob_char(h, c)
                        h += c
                    if grown.get(new, -math.inf) < sc:
                        grown[new] = sc
            beams = sorted(grown.items(), key=lambda kv: (-kv[1], kv[0]))[:width]
            i += n
        return beams


def join(results: Sequence[Transliteration]) -> str:
    """Render transliterated tokens as text: space-separated, except after ``attach_next``."""
    parts: list[str] = []
    for r in results:
        parts.append(r.text)
        parts.append("" if r.attach_next else " ")
    return "".join(parts[:-1]) if parts else ""


@functools.lru_cache(maxsize=4)
def default_transliterator(mode: Mode = "deterministic") -> Transliterator:
    """A shared transliterator (tables loaded once per process)."""
    return Transliterator(mode)
