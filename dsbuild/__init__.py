"""dsbuild: build multilingual NLP datasets by translation, label projection and transliteration.

Public API (stable names)::

    from dsbuild import Example, Span, Token, read_conll, read_jsonl, tags_to_spans, spans_to_tags
    from dsbuild import registry, build
"""

from __future__ import annotations

import logging

from dsbuild.errors import ConfigError, DsbuildError, InputError, UnknownNameError
from dsbuild.io import read_conll, read_jsonl, write_conll, write_jsonl
from dsbuild.spans import Example, Span, Token, convert_tags, spans_to_tags, tag_names, tags_to_spans

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__", "Example", "Span", "Token", "tags_to_spans", "spans_to_tags", "convert_tags", "tag_names",
    "read_conll", "read_jsonl", "write_conll", "write_jsonl",
    "DsbuildError", "InputError", "ConfigError", "UnknownNameError",
]
