"""translate-dataset: carry any dataset's structure into other languages, item by item, with per-item QC.

The pieces (see ``/README.md``, section "Translated benchmarks"):

* :mod:`.spec`: the field spec (translate, translate_each, keep, spans, consistent) and the
  protected patterns;
* :mod:`.given`: given translations keyed by item id and field;
* :mod:`.protect`: masking protected patterns before MT and checking them after;
* :mod:`.qc`: per-item QC checks and chrF statistics;
* :mod:`.steps`: the sharded steps (check, translate, project spans, QC, policy, to-row);
* :mod:`.base`: :class:`TranslateDatasetBase`, the builder base class the ``translate-dataset``
  builder and its recipes (``mcq-translate``, ``nlu-multi``, ``ifeval-translate``) subclass.
"""

from __future__ import annotations

from dsbuild.translate_dataset.given import MISSING, GivenFields
from dsbuild.translate_dataset.items import METHODS, SourceItem, Target, WorkItem
from dsbuild.translate_dataset.qc import QC_FLAGS, QCSettings
from dsbuild.translate_dataset.spec import (BUILTIN_PATTERNS, DatasetSpec, FieldSpec, ProtectedPattern, answer_index,
                                            patterns_from)

__all__ = ["BUILTIN_PATTERNS", "DatasetSpec", "FieldSpec", "GivenFields", "METHODS", "MISSING", "ProtectedPattern",
           "QCSettings", "QC_FLAGS", "SourceItem", "Target", "TranslateDatasetBase", "WorkItem", "answer_index",
           "patterns_from"]


def __getattr__(name: str):  # the base class pulls in datasets: import it when asked for
    if name == "TranslateDatasetBase":
        from dsbuild.translate_dataset.base import TranslateDatasetBase

        return TranslateDatasetBase
    raise AttributeError(name)
