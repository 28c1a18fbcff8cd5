"""The tokeniser interface and helpers shared by the built-in tokenisers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

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
