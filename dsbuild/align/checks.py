"""Input checks and token normalisation shared by the aligners.

Aligners work on whitespace tokens. A token that contains whitespace or a control character would
be split or mangled silently by the aligner's own reader, so it is an error here. Unicode
normalisation is applied consistently (NFC by default) so that a word typed in NFD and the same
word in NFC are one vocabulary item.

Callers that prefer to *reject* bad pairs instead of stopping on the first error call
:func:`pair_problems` first, move the pairs it names to their rejects table, and align the rest.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from dsbuild.errors import InputError


@dataclass(frozen=True)
class Normalization:
    """How tokens are normalised before alignment (recorded in ``describe()``).

    Attributes:
        unicode_form: ``NFC`` (default), ``NFKC``, or ``none``.
        lowercase: compare tokens case-insensitively.
        strip_accents: drop combining marks (``é`` -> ``e``), for corpora whose diacritics are
            inconsistent (for example Romanian with and without comma-below letters).
    """

    unicode_form: str = "NFC"
    lowercase: bool = True
    strip_accents: bool = False

    def __post_init__(self) -> None:
        if self.unicode_form not in ("NFC", "NFKC", "none"):
            from dsbuild.errors import ConfigError

            raise ConfigError(f"unicode_form must be NFC, NFKC or none, got {self.unicode_form!r}")

    def __call__(self, token: str) -> str:
        if self.strip_accents:
            token = "".join(c for c in unicodedata.normalize("NFD", token) if not unicodedata.combining(c))
        if self.unicode_form != "none":
            token = unicodedata.normalize(self.unicode_form, token)
        elif self.strip_accents:
            token = unicodedata.normalize("NFC", token)
        if self.lowercase:
            token = token.lower()
        return token

    def as_dict(self) -> dict[str, object]:
        return {"unicode_form": self.unicode_form, "lowercase": self.lowercase, "strip_accents": self.strip_accents}


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be aligned (empty, whitespace, control character), or ``None``."""
    if not isinstance(token, str):
        return f"token {token!r} is not a string"
    if token == "":
        return "empty token"
    for ch in token:
        if ch.isspace():
            return f"token {token!r} contains whitespace ({unicodedata.name(ch, hex(ord(ch)))})"
        if unicodedata.category(ch) == "Cc":
            return f"token {token!r} contains control character U+{ord(ch):04X}"
    return None


def pair_problems(
    src: Sequence[Sequence[str]],
    tgt: Sequence[Sequence[str]],
    *,
    max_tokens: int | None = None,
) -> dict[int, str]:
    """Per-pair reasons why a pair cannot be aligned: ``{pair_index: reason}``.

    Checks every token (see :func:`token_problem`) and, when ``max_tokens`` is given, the
    sentence length. Empty sentences are *not* problems: they get an empty alignment.

    Raises:
        InputError: ``src`` and ``tgt`` have different numbers of sentences.
    """
    check_same_count(src, tgt)
    problems: dict[int, str] = {}
    for k, (s, t) in enumerate(zip(src, tgt)):
        if isinstance(s, str) or isinstance(t, str):
            problems[k] = "a sentence must be a list of tokens, not a string"
            continue
        if max_tokens is not None:
            if len(s) > max_tokens or len(t) > max_tokens:
                side = "source" if len(s) > max_tokens else "target"
                problems[k] = (f"{side} sentence has {max(len(s), len(t))} tokens, over the aligner's limit of "
                               f"{max_tokens}")
                continue
        for side, sent in (("source", s), ("target", t)):
            for pos, token in enumerate(sent):
                reason = token_problem(token)
                if reason:
                    problems[k] = f"{side} token {pos}: {reason}"
                    break
            if k in problems:
                break
    return problems


def check_same_count(src: Sequence[object], tgt: Sequence[object], *, source: str | None = None) -> None:
    """Raise :class:`InputError` unless both sides hold the same number of sentences."""
    if len(src) != len(tgt):
        raise InputError(
            f"{len(src)} source sentences but {len(tgt)} target sentences",
            source=source,
            hint="pass line-aligned source and target sides (one sentence per line on both sides)",
        )


def check_pairs(
    src: Sequence[Sequence[str]],
    tgt: Sequence[Sequence[str]],
    *,
    max_tokens: int | None = None,
    source: str | None = None,
) -> None:
    """Raise :class:`InputError` for the first pair :func:`pair_problems` finds."""
    problems = pair_problems(src, tgt, max_tokens=max_tokens)
    if problems:
        k = min(problems)
        more = f" ({len(problems) - 1} more pairs have problems)" if len(problems) > 1 else ""
        raise InputError(
            f"pair {k}: {problems[k]}{more}",
            source=source,
            example_id=str(k),
            hint="call dsbuild.align.pair_problems() first and reject those pairs, or clean the tokens "
            "(split on whitespace, remove control characters, shorten over-long sentences)",
        )
