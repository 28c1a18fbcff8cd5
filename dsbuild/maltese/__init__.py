"""Maltese: etymology classification, Maltese-to-Arabic transliteration, etymology-routed pipelines.

After Micallef et al. (EACL 2024): Maltese is Semitic but written in Latin script with a large
Italian/English vocabulary, so transliterating only the Arabic-origin tokens (and translating
or keeping the rest) helps transfer from Arabic models.

    from dsbuild.maltese import load_classifier, Transliterator, get_pipeline, tokenize

    tokens = tokenize("Il-Prim Ministru qal li l-gvern se jaħdem.")
    labels = load_classifier().predict(tokens)          # Arabic / Non-Arabic / Code-Switching / Symbol / Name
    out = get_pipeline("transliterate_arabic").process(tokens, labels)
    out.tokens                                          # one output token per input token
    Transliterator("non_deterministic").alternatives("kelma", 3)   # ranked Arabic-script spellings

Submodules import their heavy dependencies lazily; the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_classifier": "dsbuild.maltese.etymology",
    "EtymologyClassifier": "dsbuild.maltese.etymology",
    "cross_validate": "dsbuild.maltese.etymology",
    "evaluate": "dsbuild.maltese.etymology",
    "train": "dsbuild.maltese.etymology",
    "Transliterator": "dsbuild.maltese.transliterate",
    "Transliteration": "dsbuild.maltese.transliterate",
    "join": "dsbuild.maltese.transliterate",
    "Pipeline": "dsbuild.maltese.pipelines",
    "get_pipeline": "dsbuild.maltese.pipelines",
    "builtin_pipelines": "dsbuild.maltese.pipelines",
    "tokenize": "dsbuild.maltese.tokenizer",
    "read_etymology_tsv": "dsbuild.maltese.readers",
    "MERGED_LABELS": "dsbuild.maltese.readers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dsbuild.maltese' has no attribute {name!r}")
