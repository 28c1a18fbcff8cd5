"""The tokeniser interface and helpers shared by the built-in tokenisers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from dsbuild.align.checks import WORD_FORMAT_CHARACTERS
from dsbuild.errors import InputError
from dsbuild.spans import Example, Token


@runtime_checkable
class Tokenizer(Protocol):
    """Splits a text into tokens with ``[start, end)`` character offsets into that text."""

    name: str
    lang: str

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of ``text``; ``text[t.start:t.end] == t.text`` for every token."""
        ...


def get_tokenizer(name_or_tokenizer: str | Tokenizer, lang: str, **options: Any) -> Tokenizer:
    """A tokenizer instance: a registered name (``whitespace``, ``spacy``, ``moses``) or an object."""
    if not isinstance(name_or_tokenizer, str):
        return name_or_tokenizer
    from dsbuild.registry import tokenizers

    return tokenizers.get(name_or_tokenizer)(lang=lang, **options)


def tokenize_example(id: str, text: str, tokenizer: Tokenizer, *, meta: dict[str, Any] | None = None) -> Example:
    """An :class:`Example` (no spans) for ``text`` tokenised by ``tokenizer``."""
    return Example(id=id, text=text, tokens=tokenizer.tokenize(text), meta=dict(meta or {}))


def locate_tokens(text: str, pieces: Sequence[str], *, tokenizer: str) -> list[Token]:
    """Find each token string in ``text`` in order (skipping whitespace) and return offsets.

    Tokenisers that return strings (Moses) are mapped back to the text this way. A piece that is
    not found verbatim at the next position is an error: the tokeniser changed the text, and
    offsets could not be trusted.
    """
    tokens: list[Token] = []
    pos = 0
    for piece in pieces:
        start = text.find(piece, pos)
        if start < 0 or text[pos:start].strip():
            raise InputError(
                f"the {tokenizer} tokeniser returned {piece!r}, which is not the next text at character {pos} "
                f"of {text[:80]!r}",
                hint="use a tokeniser that does not rewrite characters (whitespace, spacy), or normalise the text first",
            )
        tokens.append(Token(piece, start, start + len(piece)))
        pos = start + len(piece)
    return tokens


def join_format_tokens(text: str, tokens: list[Token]) -> list[Token]:
    """``tokens`` with every token made only of word-internal format characters (a ZWNJ that Moses
    splits off ``می‌خواهم``) joined to the tokens it touches: it is part of the word."""
    if not any(ch in WORD_FORMAT_CHARACTERS for t in tokens for ch in t.text):
        return tokens
    out: list[Token] = []
    glue = False  # the previous token was format characters only: join the next touching token to it
    for tok in tokens:
        only_format = all(ch in WORD_FORMAT_CHARACTERS for ch in tok.text)
        if out and out[-1].end == tok.start and (only_format or glue):
            tok = Token(text[out[-1].start:tok.end], out[-1].start, tok.end)
            out.pop()
        out.append(tok)
        glue = only_format
    return out


def join_format_words(words: list[str]) -> list[str]:
    """:func:`join_format_tokens` without offsets: a piece made only of word-internal format
    characters is joined to the pieces on both sides (a tokenizer only splits it off a word)."""
    out: list[str] = []
    glue = False
    for word in words:
        only_format = bool(word) and all(ch in WORD_FORMAT_CHARACTERS for ch in word)
        if out and (only_format or glue):
            out[-1] += word
        else:
            out.append(word)
        glue = only_format
    return out
