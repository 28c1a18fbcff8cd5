"""Moses tokeniser (sacremoses), with offsets recovered by locating each token in the text."""

from __future__ import annotations

from typing import Any

from dsbuild._optional import require
from dsbuild.registry import tokenizers
from dsbuild.spans import Token
from dsbuild.tokenize.base import join_format_tokens, join_format_words, locate_tokens


@tokenizers.register("moses")
class MosesTokenizer:
    """The Moses tokenizer of statistical MT, as used to prepare text for word aligners.

    Runs with ``escape=False`` so tokens stay verbatim substrings of the text.
    """

    name = "moses"

    def __init__(self, lang: str = "en", aggressive_dash_splits: bool = False) -> None:
        sacremoses = require("sacremoses", extra="tokenizers", purpose="the moses tokenizer")

        self.lang = lang
        self.aggressive_dash_splits = aggressive_dash_splits
        self._moses = sacremoses.MosesTokenizer(lang=lang)

    def tokenize(self, text: str) -> list[Token]:
        pieces = self._moses.tokenize(text, escape=False, aggressive_dash_splits=self.aggressive_dash_splits)
        # Moses splits a ZWNJ/ZWJ off its word (``می‌خواهم``): it is part of the word's spelling
        return join_format_tokens(text, locate_tokens(text, pieces, tokenizer="moses"))

    def tokenize_words(self, text: str) -> list[str]:
        """Token strings only (faster; for training text where offsets are not needed)."""
        return join_format_words(self._moses.tokenize(text, escape=False,
                                                      aggressive_dash_splits=self.aggressive_dash_splits))

    def describe(self) -> dict[str, Any]:
        sacremoses = require("sacremoses", extra="tokenizers", purpose="the moses tokenizer")
        return {"name": self.name, "lang": self.lang, "aggressive_dash_splits": self.aggressive_dash_splits,
                "sacremoses": getattr(sacremoses, "__version__", "unknown")}
