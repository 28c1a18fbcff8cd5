"""Whitespace tokeniser: every maximal run of non-whitespace characters is a token."""

from __future__ import annotations

import re

from dsbuild.registry import tokenizers
from dsbuild.spans import Token

_NON_SPACE = re.compile(r"\S+")


@tokenizers.register("whitespace")
class WhitespaceTokenizer:
    """Split on Unicode whitespace; the right choice for text that is already tokenised."""

    name = "whitespace"

    def __init__(self, lang: str = "xx") -> None:
        self.lang = lang

    def tokenize(self, text: str) -> list[Token]:
        return [Token(m.group(), m.start(), m.end()) for m in _NON_SPACE.finditer(text)]

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "lang": self.lang}
