"""Stanza tokenisation and sentence splitting: ``tokenizer="stanza"``.

Stanza's neural tokenisers are trained on Universal Dependencies treebanks, which cover languages
whose spaCy rules are thin (Basque, Maltese, Irish, ...)::

    from dsbuild.registry import tokenizers
    tok = tokenizers.get("stanza")(lang="mt")
    tok.tokenize("Il-kelb ta' Marija.")     # surface tokens with offsets into the text
    tok.sentences("Waħda. Tnejn.")          # one token list per sentence, offsets into the text

The model is loaded with ``stanza.Pipeline(lang, processors="tokenize")`` and never downloaded
implicitly (``download_method=None``): a missing model is one :class:`~dsbuild.errors.ConfigError`
line naming ``stanza.download(lang)``; ``download=True`` lets Stanza fetch it. Tokens are Stanza's
*tokens* (surface strings), not its multi-word-token *words*: Spanish ``del`` stays one token
with the offsets of ``del`` (its expansion ``de el`` has no offsets in the text).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dsbuild._optional import require
from dsbuild.errors import ConfigError
from dsbuild.registry import tokenizers
from dsbuild.spans import Token
from dsbuild.tokenize.base import join_format_tokens, locate_tokens

log = logging.getLogger(__name__)


def sentences_from_document(doc: Any, text: str) -> list[list[Token]]:
    """The tokens of a Stanza ``Document`` as dsbuild tokens, one list per sentence.

    Offsets come from Stanza's ``start_char``/``end_char`` and the token text is the slice of
    ``text`` they cover (so ``text[t.start:t.end] == t.text`` always). Tokens without offsets are
    located in ``text`` in order; whitespace-only tokens are dropped.
    """
    out: list[list[Token]] = []
    pos = 0
    for sentence in doc.sentences:
        tokens: list[Token] = []
        for tok in sentence.tokens:
            start, end = tok.start_char, tok.end_char
            if start is None or end is None or not 0 <= start < end <= len(text) or start < pos:
                [located] = locate_tokens(text[pos:], [tok.text], tokenizer="stanza")
                start, end = pos + located.start, pos + located.end
            piece = text[start:end]
            pos = end
            if piece.strip():
                tokens.append(Token(piece, start, end))
        if tokens:
            out.append(join_format_tokens(text, tokens))
    return out


@tokenizers.register("stanza")
class StanzaTokenizer:
    """Stanza's tokenizer for ``lang`` (a UD-trained neural model; also splits sentences).

    Args:
        lang: Stanza language code (``mt``, ``eu``, ``ga``, ...).
        model_dir: Stanza's resources folder (default: Stanza's own, ``$STANZA_RESOURCES_DIR``).
        package: Stanza package (treebank) name, ``default`` for the language's default.
        download: let Stanza download the model when it is missing (needs network).
        use_gpu: run the tokenizer on a GPU when one is available.
        pipeline: an already built pipeline (any callable ``text -> stanza Document``), instead of
            loading one.
    """

    name = "stanza"

    def __init__(
        self,
        lang: str = "en",
        *,
        model_dir: str | None = None,
        package: str = "default",
        download: bool = False,
        use_gpu: bool = False,
        pipeline: Callable[[str], Any] | None = None,
    ) -> None:
        self.lang = lang
        self.package = package
        self.model_dir = model_dir
        self._nlp = pipeline if pipeline is not None else self._load(lang, model_dir, package, download, use_gpu)

    @staticmethod
    def _load(lang: str, model_dir: str | None, package: str, download: bool, use_gpu: bool) -> Any:
        stanza = require("stanza", extra="stanza", purpose="the stanza tokenizer")
        options: dict[str, Any] = {"processors": "tokenize", "package": package, "use_gpu": use_gpu,
                                   "logging_level": "WARNING"}
        if model_dir is not None:
            options["dir"] = model_dir
        if not download:
            options["download_method"] = None
        try:
            return stanza.Pipeline(lang, **options)
        except (OSError, ValueError, KeyError) as err:  # FileNotFoundError: resources.json or model missing
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"no Stanza tokenize model for {lang!r} ({first}): run stanza.download({lang!r}) where a network "
                f"is available (python -c \"import stanza; stanza.download({lang!r}, processors='tokenize')\"), "
                "or pass model_dir= a folder holding it, or download=True") from None
        except Exception as err:  # network errors when download=True; stanza raises several kinds
            raise ConfigError(f"stanza could not load the tokenize model for {lang!r}: {type(err).__name__}: "
                              f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}") from None

    def sentences(self, text: str) -> list[list[Token]]:
        """Sentences of ``text``, each a list of tokens with offsets into ``text``."""
        if not text.strip():
            return []
        return sentences_from_document(self._nlp(text), text)

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of ``text`` (all sentences), ``text[t.start:t.end] == t.text``."""
        return [tok for sentence in self.sentences(text) for tok in sentence]

    def split_sentences(self, text: str) -> list[tuple[int, int]]:
        """Character ranges ``[start, end)`` of the sentences of ``text``."""
        return [(s[0].start, s[-1].end) for s in self.sentences(text)]

    def describe(self) -> dict[str, Any]:
        import importlib.metadata as md

        try:
            version = md.version("stanza")
        except md.PackageNotFoundError:
            version = None
        return {"name": self.name, "lang": self.lang, "package": self.package, "model_dir": self.model_dir,
                "stanza": version}
