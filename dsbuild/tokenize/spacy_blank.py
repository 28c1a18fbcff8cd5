"""spaCy rule-based tokeniser from a blank pipeline (``spacy.blank(lang)``; no model download)."""

from __future__ import annotations

import logging
from typing import Any

from dsbuild.registry import tokenizers
from dsbuild.spans import Token

log = logging.getLogger(__name__)


@tokenizers.register("spacy")
class SpacyBlankTokenizer:
    """spaCy's language-specific tokenisation rules; unknown languages use the ``xx`` pipeline."""

    name = "spacy"

    def __init__(self, lang: str = "xx") -> None:
        import spacy  # lazy: spaCy is an optional dependency and slow to import

        self.lang = lang
        try:
            self._nlp = spacy.blank(lang)
            self.pipeline = lang
        except (ImportError, KeyError, ValueError) as err:  # spaCy raises ImportError for unknown codes
            log.info("spaCy has no blank pipeline for %r (%s); using the multi-language 'xx' rules", lang, err)
            self._nlp = spacy.blank("xx")
            self.pipeline = "xx"

    def tokenize(self, text: str) -> list[Token]:
        doc = self._nlp.make_doc(text)
        return [Token(t.text, t.idx, t.idx + len(t.text)) for t in doc if not t.is_space and t.text.strip()]

    def describe(self) -> dict[str, Any]:
        import spacy

        return {"name": self.name, "lang": self.lang, "pipeline": self.pipeline, "spacy": spacy.__version__}
