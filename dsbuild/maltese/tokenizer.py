"""A rule-based Maltese tokeniser following the Maltese UD treebank conventions.

Articles and prepositions fused with a hyphen are their own tokens (``il-Maġistrat`` ->
``il-`` ``Maġistrat``; ``tal-qorti`` -> ``tal-`` ``qorti``), elided forms keep their apostrophe
(``ta'``, ``b'``), numbers keep inner ``.``, ``,`` and ``/`` (``2.5``, ``10/2020``), and other
punctuation is split off. spaCy has no Maltese pipeline, so this is what the builder uses for
raw text (CSV).
"""

from __future__ import annotations

import functools
import re

from dsbuild.maltese.resources import nfc

_WORD = r"[^\W\d_](?:[^\W_]|['’](?=[^\W\d_]))*"
_TOKEN = re.compile(
    r"\d+(?:[.,/:]\d+)*"                        # numbers, dates, times
    r"|" + _WORD + r"-(?=[^\W_])"                # a hyphenated prefix (article, preposition)
    r"|" + _WORD + r"['’]"                       # elided forms: ta' b' pero'
    r"|" + _WORD +
    r"|\S",                                      # any other single character
)


@functools.lru_cache(maxsize=1)
def _hyphen_prefixes() -> frozenset[str]:
    from dsbuild.maltese.resources import closed_class_words

    return frozenset(w for w in closed_class_words() if w.endswith("-"))


def tokenize(text: str) -> list[str]:
    """Split Maltese ``text`` into tokens (NFC). Hyphenated words split only after a known
    article/preposition form (``il-``, ``tal-``, ``fil-`` ...); ``kontra-proposta`` stays one word."""
    out: list[str] = []
    prefixes = _hyphen_prefixes()
    glue = False  # the previous token was a hyphenated non-article: join this one to it
    for m in _TOKEN.finditer(nfc(text)):
        tok = m.group()
        if glue:
            out[-1] += tok
        else:
            out.append(tok)
        glue = tok.endswith("-") and len(tok) > 1 and tok.lower() not in prefixes
    return out
