"""The data that flows through a translate-dataset build: source items, targets, work items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dsbuild.translate_dataset.given import GivenFields

#: ``translation_method`` values
METHODS: tuple[str, ...] = ("source", "human", "machine", "back-translation", "given")


@dataclass
class SourceItem:
    """One source item.

    Attributes:
        id: the item id, kept in every config (configs are item-aligned by it).
        fields: field name -> value, as read (only the spec'd fields are used).
        where: ``file:line`` (or ``dataset/split:row``) for messages and rejects.
        extra: recipe data carried to the row by :meth:`TranslateDatasetBase.extra_columns`; never
            sent to a translator.
    """

    id: str
    fields: dict[str, Any]
    where: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    """One output config other than the source config.

    Attributes:
        config: config name (``am``, ``am-mt``).
        lang: language of the config's text.
        method: ``translation_method`` of its rows (``human``, ``machine``, ``back-translation``, ``given``).
        translator: a registered translator name (``hf-seq2seq``, ...) or ``given``.
        model, revision: the MT model (Hub id or folder) and its revision; empty for ``given``.
        translator_options: more keyword arguments for the translator factory.
        given: the translations of a ``given`` target.
        from_lang: the language its text was translated from (default: the source language).
        reference: config name whose given translation each row is chrF-scored against
            (``qc_chrf_reference``), or ``"source"`` for the source items; None: not scored.
        projector, projector_options: span projection method (a registered projector) and options.
        script: expected script of ``lang`` (``ETHIOPIC``) when the built-in table lacks it.
        model_lang: the code the MT model knows ``lang`` by, when it differs (None: ``lang``).
        description: one line for the card.
    """

    config: str
    lang: str
    method: str = "machine"
    translator: str = "given"
    model: str = ""
    revision: str = ""
    translator_options: dict[str, Any] = field(default_factory=dict)
    given: GivenFields | None = None
    from_lang: str | None = None
    reference: str | None = None
    projector: str = "alignment"
    projector_options: dict[str, Any] = field(default_factory=dict)
    script: str | None = None
    model_lang: str | None = None
    description: str = ""

    @property
    def is_source(self) -> bool:
        return self.translator == "source"


@dataclass
class WorkItem:
    """An item on its way through the steps of one config.

    Attributes:
        source: the source item.
        target: output value per spec'd field (translated, projected or kept).
        flags: QC flags so far (``protected-lost``...); recipe steps may append.
        qc: QC column values (``qc_length_ratio``...).
        extra: recipe row columns (starts as a copy of ``source.extra``).
        segments: (field, index or None, source text, target text) of each translated text.
    """

    source: SourceItem
    target: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    qc: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    segments: list[tuple[str, int | None, str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.source.id

    def flag(self, name: str) -> None:
        """Add a QC flag once."""
        if name not in self.flags:
            self.flags.append(name)


__all__ = ["METHODS", "SourceItem", "Target", "WorkItem"]
