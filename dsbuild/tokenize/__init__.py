"""Pluggable tokenisers that keep character offsets.

Every tokeniser is registered in :data:`dsbuild.registry.tokenizers` as a factory taking the
language code and returning an object with ``tokenize(text) -> list[Token]``::

    from dsbuild.registry import tokenizers
    tok = tokenizers.get("moses")(lang="es")
    tok.tokenize("¿Qué tal?")   # [Token('¿', 0, 1), Token('Qué', 1, 4), ...]

Built-ins: ``whitespace`` (split on whitespace), ``spacy`` (``spacy.blank(lang)``, falling back to
the multi-language ``xx`` pipeline), ``moses`` (sacremoses), ``stanza`` (Stanza's UD-trained
tokenizer, ``stanza.Pipeline(lang, processors="tokenize")``, with sentence splitting; for languages
spaCy's rules handle poorly, such as Basque and Maltese). Token offsets always point into the
original text (``text[t.start:t.end] == t.text``), so spans projected onto tokens map back to
characters exactly.
"""

from dsbuild.tokenize.base import Tokenizer, get_tokenizer, tokenize_example

__all__ = ["Tokenizer", "get_tokenizer", "tokenize_example"]
