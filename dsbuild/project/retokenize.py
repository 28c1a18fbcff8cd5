"""Target tokens in the aligner's units, and links mapped back to the user's tokens.

Users hand over target token lists in every tokenisation: punctuation attached to words
(``sushi.``, ``(UE)``), clitics joined, or already Moses-split. A word aligner learns its
statistics on the units it was trained on (the shipped parallel text is Moses-tokenised), so
``sushi.`` is an unknown word to it while ``sushi`` and ``.`` are not.

:func:`aligner_units` re-tokenises each user token with the aligner's tokenizer (Moses, with the
target language's rules, by default) and records which user token each unit comes from
(:class:`UnitMap`). Units never cross a user token, tokens made only of punctuation are never
split (they are already units: ``...``, ``\\[``), and for tokens that are already units
(Moses-split input; the gold tokens of Europarl, both languages) the map is ``None`` and nothing
changes.

The projector aligns the units, projects on them, and expresses each span over the user's tokens
(:func:`dsbuild.project.alignment.project_sentence`): a span boundary inside a user token is
widened to the whole token (``sushi.`` for the span ``sushi``) and reported in the projection's
``span_info`` (``widened``) and ``qc["widened_spans"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dsbuild.errors import DsbuildError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitMap:
    """The aligner units of one target sentence and the user token each comes from.

    Attributes:
        words: the units, in order (what the aligner sees).
        owner: for each unit, the index of the user token it is part of (non-decreasing).
        n_user: number of user tokens.
    """

    words: tuple[str, ...]
    owner: tuple[int, ...]
    n_user: int

    def __post_init__(self) -> None:
        if len(self.words) != len(self.owner):
            raise ValueError("one owner per unit")
        if list(self.owner) != sorted(self.owner) or set(self.owner) != set(range(self.n_user)):
            raise ValueError("every user token must own a contiguous, ordered run of units")

    @property
    def first(self) -> list[int]:
        """Index of the first unit of each user token."""
        out = [-1] * self.n_user
        for u, k in enumerate(self.owner):
            if out[k] < 0:
                out[k] = u
        return out

    @property
    def last(self) -> list[int]:
        """Index of the last unit of each user token."""
        out = [-1] * self.n_user
        for u, k in enumerate(self.owner):
            out[k] = u
        return out

    @property
    def split_tokens(self) -> int:
        """How many user tokens were split into more than one unit."""
        return len(self.words) - self.n_user

    def to_user_range(self, start: int, end: int) -> tuple[int, int, str | None]:
        """The user-token range ``[a, b)`` covering units ``[start, end)``, and which edge was
        widened because it fell inside a user token (``left``, ``right``, ``both`` or ``None``)."""
        a, b = self.owner[start], self.owner[end - 1] + 1
        left = self.first[a] != start
        right = self.last[b - 1] != end - 1
        widened = "both" if left and right else "left" if left else "right" if right else None
        return a, b, widened

    def user_links(self, links: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """``(source, unit)`` links as ``(source, user token)`` links (sorted, duplicates merged)."""
        return sorted({(i, self.owner[j]) for i, j in links})


def _has_alnum(word: str) -> bool:
    return any(ch.isalnum() for ch in word)


def token_units(word: str, tokenizer: Any) -> list[str]:
    """The aligner units of one user token (``[word]`` when it is one already).

    A token made only of punctuation is never split (``...``, ``\\[``), nor one made only of
    letters and digits (tokenizers split at punctuation and apostrophes; this also skips the
    tokenizer for most words), and pieces that do not spell the token exactly (a tokenizer that
    rewrites or drops characters) are not used.
    """
    if word.isalnum() or not _has_alnum(word):
        return [word]
    pieces = [t.text for t in tokenizer.tokenize(word)]
    return pieces if pieces and "".join(pieces) == word else [word]


def aligner_units(words: Sequence[str], tokenizer: Any, cache: dict[str, list[str]] | None = None) -> UnitMap | None:
    """The aligner units of one sentence's user tokens, or ``None`` when they are the same.

    Each user token is tokenised on its own with ``tokenizer`` (``tokenize(text) -> list[Token]``,
    any registered dsbuild tokenizer), so units never cross a user token, and tokens that are
    already units stay as they are (the Moses rules are not idempotent on tokenised text in
    context: ``'s`` would become ``' s``). ``cache`` memoises tokens (a vocabulary is small).
    Raises :class:`~dsbuild.errors.DsbuildError` (from the tokenizer) when it cannot keep offsets.
    """
    units: list[str] = []
    owner: list[int] = []
    for k, word in enumerate(words):
        pieces = cache.get(word) if cache is not None else None
        if pieces is None:
            pieces = token_units(word, tokenizer)
            if cache is not None:
                cache[word] = pieces
        units.extend(pieces)
        owner.extend([k] * len(pieces))
    if len(units) == len(words):
        return None
    return UnitMap(tuple(units), tuple(owner), len(words))


def batch_units(sentences: Sequence[Sequence[str]], tokenizer: Any, *, max_units: int | None = None) -> list[UnitMap | None]:
    """:func:`aligner_units` for each sentence; a sentence whose tokens cannot be re-tokenised
    (or would exceed ``max_units``) keeps the user's tokens, with one warning for the batch."""
    out: list[UnitMap | None] = []
    kept = 0
    example = ""
    cache: dict[str, list[str]] = {}
    for words in sentences:
        try:
            units = aligner_units(words, tokenizer, cache)
        except (DsbuildError, ValueError) as err:
            units = None
            kept += 1
            example = example or str(err)
        if units is not None and max_units is not None and len(units.words) > max_units:
            units = None
            kept += 1
            example = example or f"{len(words)} tokens become more than {max_units} units"
        out.append(units)
    if kept:
        log.warning("%d target sentence(s) keep the given tokens for alignment (could not re-tokenise them "
                    "into the aligner's units; first: %s)", kept, example)
    return out


#: punctuation that opens (is written against the next word): ``¿Qué``, ``(UE``, ``«Sí``
OPENING = frozenset("¿¡([{«“‘„‹")
_QUOTES = frozenset("\"'")


def attach_punctuation(words: Sequence[str]) -> tuple[list[str], list[int]]:
    """Undo the splitting of punctuation: the tokens a whitespace split of running text gives.

    Each token made only of punctuation is joined to the previous token (``sushi`` ``.`` ->
    ``sushi.``), or to the next one when it opens (``¿`` ``Qué`` -> ``¿Qué``; straight quotes
    alternate: opening, then closing) or starts the sentence. Returns the new tokens and, for each
    given token, the index of the new token it is part of. Used to measure projection on
    unsplit targets (``scripts/eval_attached_punct.py``).
    """
    groups: list[list[int]] = []
    pending: list[int] = []  # opening punctuation waiting for the next word
    quotes = 0
    for k, w in enumerate(words):
        if not _has_alnum(w):
            opening = all(ch in OPENING for ch in w)
            if w and all(ch in _QUOTES for ch in w):
                opening = quotes % 2 == 0
                quotes += 1
            if opening or not groups:
                pending.append(k)
                continue
            if pending:  # a closing mark right after an opening one: keep them together
                pending.append(k)
                continue
            groups[-1].append(k)
            continue
        groups.append(pending + [k])
        pending = []
    if pending:
        if groups:
            groups[-1].extend(pending)
        else:
            groups.append(pending)
    new_words = ["".join(words[k] for k in g) for g in groups]
    owner = [0] * len(words)
    for n, g in enumerate(groups):
        for k in g:
            owner[k] = n
    return new_words, owner
