"""``datasets.Features`` for the row shapes dsbuild emits, and Example <-> row conversion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets

from dsbuild.spans import Example, Scheme, span_to_dict, tag_names


def span_feature() -> dict[str, datasets.Value]:
    """One span in a row: label, character offsets, token indices (end exclusive), covered text."""
    return {
        "label": datasets.Value("string"),
        "start": datasets.Value("int32"),
        "end": datasets.Value("int32"),
        "token_start": datasets.Value("int32"),
        "token_end": datasets.Value("int32"),
        "text": datasets.Value("string"),
    }


def ner_features(labels: Sequence[str], *, scheme: Scheme = "IOB2", tags_column: str = "ner_tags",
                 extra: dict[str, Any] | None = None) -> datasets.Features:
    """Features of a token-classification row: id, tokens, tags (ClassLabel), spans, text."""
    return datasets.Features({
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        tags_column: datasets.List(datasets.ClassLabel(names=tag_names(labels, scheme))),
        "spans": datasets.List(span_feature()),
        **(extra or {}),
    })


def example_to_row(ex: Example, *, scheme: Scheme = "IOB2", tags_column: str = "ner_tags") -> dict[str, Any]:
    """The row for :func:`ner_features` (tags as strings; datasets encodes the ClassLabel)."""
    return {
        "id": ex.id,
        "text": ex.text,
        "tokens": ex.words,
        tags_column: ex.tags(scheme),
        "spans": [span_to_dict(s, ex.text) for s in ex.spans],
    }
