"""Input checks and token normalisation shared by the aligners.

Aligners work on whitespace tokens. A token that contains whitespace or a control character would
be split or mangled silently by the aligner's own reader, so it is an error here. Unicode
normalisation is applied consistently (NFC by default) so that a word typed in NFD and the same
word in NFC are one vocabulary item.

The aligners themselves refuse only whitespace and control characters inside tokens
(:func:`token_problem`). Which characters are not text at all (:func:`disallowed_characters`, the
projectors' input check ``control_characters``), by Unicode category:

* ``Cc`` control characters (U+0000-U+001F, U+007F-U+009F: NUL, BEL, ESC...): rejected. Tab,
  newline and CR are separators in running text, never parts of tokens.
* ``Cf`` format characters that are part of how words are spelt: **kept**. Zero-width non-joiner
  and joiner (U+200C, U+200D: Persian, Hindi, Malayalam, emoji sequences), word joiner (U+2060),
  the Mongolian vowel separator (U+180E), the implicit direction marks LRM / RLM / ALM (U+200E,
  U+200F, U+061C, common in Arabic-script and Hebrew text), prepended concatenation marks
  (U+0600-U+0605, U+06DD, U+070F, U+0890-U+0891, U+08E2, U+110BD, U+110CD: Arabic and Syriac
  number signs) and the emoji tag characters (U+E0020-U+E007F).
* The soft hyphen (U+00AD, ``Cf``) is **kept** too: it is an invisible hyphenation point inside a
  word, so a sentence with one is valid text. :class:`Normalization` ignores it when comparing
  tokens, so ``Ver\u00adsion`` and ``Version`` are one word for the aligner.
* Every other ``Cf`` character (zero-width space U+200B, byte-order mark U+FEFF inside text,
  bidi embeddings / overrides / isolates U+202A-U+202E, U+2066-U+2069, invisible operators
  U+2061-U+2064...) is rejected: it is not part of a word's spelling and makes tokens that look
  equal differ (or, for overrides, display in another order than they are stored).
* ``Cs`` (lone surrogates: not encodable) and ``Co`` (private use: glyphs with no shared meaning,
  usually PDF-extraction debris) are rejected.

Callers that prefer to *reject* bad pairs instead of stopping on the first error call
:func:`pair_problems` first, move the pairs it names to their rejects table, and align the rest.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from dsbuild.errors import InputError

#: Format characters (Unicode category Cf) that belong to the spelling of words; kept everywhere.
WORD_FORMAT_CHARACTERS = frozenset(
    "\u00ad"  # soft hyphen
    "\u061c\u200e\u200f"  # Arabic letter mark, left-to-right / right-to-left marks
    "\u180e"  # Mongolian vowel separator
    "\u200c\u200d\u2060"  # zero-width non-joiner, zero-width joiner, word joiner
    "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd"  # number signs
)
_TAG_CHARACTERS = range(0xE0020, 0xE0080)  # emoji tag sequences (subdivision flags)
_SOFT_HYPHEN = "\u00ad"


def is_disallowed_character(ch: str) -> bool:
    """True for a character that is not text (see the module docstring for the policy)."""
    category = unicodedata.category(ch)
    if category == "Cf":
        return ch not in WORD_FORMAT_CHARACTERS and ord(ch) not in _TAG_CHARACTERS
    return category in ("Cc", "Cs", "Co")


def disallowed_characters(text: str, *, allowed: str = "") -> list[str]:
    """The characters of ``text`` that are not text, as sorted ``U+XXXX`` codes.

    Control characters, stray format characters, surrogates and private-use characters are
    reported; format characters that belong to words (ZWJ, ZWNJ, soft hyphen... see
    :data:`WORD_FORMAT_CHARACTERS`) are not. Characters in ``allowed`` (e.g. tab and newline
    where they separate words) are never reported.
    """
    if text.isprintable():  # fast path: no control, format, surrogate or private-use character
        return []
    return sorted({f"U+{ord(ch):04X}" for ch in text if ch not in allowed and is_disallowed_character(ch)})


def describe_characters(codes: Sequence[str]) -> str:
    """``["U+0007"]`` -> ``"U+0007 (BELL, control character)"``: codes with their names and kinds."""
    return ", ".join(f"{code} ({_char_name(chr(int(code[2:], 16)))})" for code in codes)


def _char_name(ch: str) -> str:
    """``BELL, control character``: the Unicode name (control characters have none) and the kind."""
    names = {"\x00": "NULL", "\x07": "BELL", "\x08": "BACKSPACE", "\x1b": "ESCAPE", "\x7f": "DELETE"}
    category = unicodedata.category(ch)
    kind = {"Cc": "control character", "Cf": "invisible format character", "Cs": "surrogate",
            "Co": "private-use character"}.get(category, category)
    name = unicodedata.name(ch, "") or names.get(ch, "")
    return f"{name}, {kind}" if name else kind


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
        token = token.replace(_SOFT_HYPHEN, "") or token  # an invisible hyphenation point, not spelling
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
    """Why ``token`` cannot be aligned (empty, whitespace, a control character), or ``None``.

    Only what would break an aligner is refused here: whitespace and ``Cc`` control characters.
    Format characters (ZWJ, ZWNJ, even a stray zero-width space) are aligned like any other
    character; the projectors' input checks apply the stricter :func:`disallowed_characters`.
    """
    if not isinstance(token, str):
        return f"token {token!r} is not a string"
    if token == "":
        return "empty token"
    for ch in token:
        if ch.isspace():
            return f"token {token!r} contains whitespace ({unicodedata.name(ch, hex(ord(ch)))})"
        if unicodedata.category(ch) == "Cc":
            return f"token {token!r} contains control character {describe_characters([f'U+{ord(ch):04X}'])}"
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
