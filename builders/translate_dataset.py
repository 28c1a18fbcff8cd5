"""translate-dataset: translate any dataset item by item, its structure kept, with per-item QC.

Recipe (one config per target language, plus the source config; every row keeps the source id,
so configs are item-aligned):

1. **Source**: a local JSONL / CSV / Parquet file, a dataset folder (``save_to_disk`` output or a
   folder of data files) or a Hub id (``datasets.load_dataset``, streamed).
2. **Field spec** (``spec=FILE.yaml`` or ``--set fields={question: translate, options:
   translate_each, answer: {kind: keep, answer_for: options}}``): per field ``translate``,
   ``translate_each``, ``keep``, ``spans`` (projected with ``projector``), ``consistent``; and
   protected patterns (``protect=[winogrande-blank, urls, ...]``, ``protect_regex={name: REGEX}``).
3. **Translate** with any registered translator (``hf-seq2seq``, ...; protected matches masked)
   or ``given`` translations keyed by item id and field (``translations=FILE`` with ``{lang}``).
4. **QC** per item (``qc_flags`` and columns); flags in ``reject_on`` reject the item.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import datasets

from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, display_name, user_source)
from dsbuild.builder import BuildContext, DatasetInfo, Reject
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.registry import builders
from dsbuild.translate_dataset import (DatasetSpec, GivenFields, QCSettings, SourceItem, Target, TranslateDatasetBase,
                                       patterns_from)
from dsbuild.translate_dataset.qc import QC_FLAGS

LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


@dataclass
class TranslateDatasetOptions:
    source: str = option("", "input: a local .jsonl/.csv/.tsv/.parquet file, a dataset folder, or a Hub dataset id")
    source_config: str = option("", "config (subset) name of a Hub dataset")
    splits: list[str] = option([], "splits to translate (default: all; a single file is split 'train')")
    spec: str = option("", "field spec YAML file (id, fields, protect, protect_regex); or use fields/protect below")
    fields: dict = option({}, "field spec inline: {question: translate, options: translate_each, answer: "
                              "{kind: keep, answer_for: options}, ...} (kinds: translate, translate_each, keep, "
                              "spans, consistent)")
    id_field: str = option("id", "the item id field (default 'id'; when the source has none, ids are SPLIT-N)")
    protect: list[str] = option([], "protected built-in patterns kept verbatim: winogrande-blank, placeholders, "
                                    "urls, numbers, code, emails")
    protect_regex: dict = option({}, "more protected patterns: {name: REGEX}")
    src_lang: str = option("en", "language code of the source")
    target_langs: list[str] = option(["es"], "target language codes, one config each")
    translator: str = option("given", "translator: given (translations you have), hf-seq2seq, or any registered one")
    method: str = option("", "translation_method of the target rows: human, machine, back-translation or given "
                             "(default: given for the given translator, machine otherwise)")
    model: str = option("", "MT model: Hub id or local folder (hf-seq2seq and other model translators)")
    revision: str = option("", "MT model revision (branch, tag or commit)")
    translator_options: dict = option({}, "more translator options, e.g. {beam_size: 4, batch_size: 16, threads: 1}")
    translations: str = option("", "given: translations file (.jsonl/.csv/.parquet; wide: id + one column per field, "
                                   "or long: id, field, target); {lang} is replaced by the target language")
    projector: str = option("alignment", "span fields: projection method (any registered projector)")
    projector_options: dict = option({}, "span fields: options of the projector")
    reject_on: list[str] = option(["protected-lost", "options-collapsed"], "QC flags that reject an item "
                                                                          f"(flags: {', '.join(QC_FLAGS)})")
    length_ratio: list[float] = option([0.33, 3.0], "bounds of target/source characters; outside: flag length-ratio")
    backtranslation_model: str = option("", "QC: a reverse MT model (target -> source) for back-translation chrF")
    backtranslation_options: dict = option({}, "QC: options of the reverse hf-seq2seq translator, e.g. {threads: 1, "
                                               "beam_size: 1}")
    min_backtranslation_chrf: float = option(30.0, "QC: back-translation chrF under this flags the item")
    max_items: int = option(0, "translate only the first N items of each split (0 = all)")
    source_name: str = option("", SOURCE_NAME_HELP)
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


@builders.register("translate-dataset")
class TranslateDataset(TranslateDatasetBase):
    name = "translate-dataset"
    version = "1.0.0"
    description = ("Translate any dataset item by item (JSONL/CSV/Parquet, folder or Hub), structure kept: fields "
                   "translated, kept, spans projected, protected patterns verbatim, per-item QC.")
    Options = TranslateDatasetOptions
    card_template = "translate-dataset.md.j2"
    history = [("1.0.0", "First release: field spec, protected patterns, given and model translators, per-item QC.")]

    # ------------------------------------------------------------------ hooks
    def spec(self) -> DatasetSpec:
        if getattr(self, "_spec", None) is None:
            o = self.options
            if o.spec and o.fields:
                raise ConfigError("translate-dataset: give the field spec either as spec=FILE or as fields=..., not both")
            if o.spec:
                spec = DatasetSpec.from_yaml(o.spec)
                extra = patterns_from(o.protect, o.protect_regex, where="option protect")
                spec = DatasetSpec(spec.fields, spec.id_field, spec.protect + extra) if extra else spec
            elif o.fields:
                spec = DatasetSpec.from_mapping({"id": o.id_field, "fields": o.fields, "protect": o.protect,
                                                 "protect_regex": o.protect_regex}, where="option fields")
            else:
                raise ConfigError("translate-dataset: no field spec; give --set spec=SPEC.yaml or "
                                  "--set 'fields={question: translate, answer: keep}'")
            self._spec = spec
        return self._spec

    def src_lang(self) -> str:
        return self.options.src_lang

    def qc_settings(self) -> QCSettings:
        o = self.options
        unknown = [f for f in o.reject_on if f not in QC_FLAGS]
        if unknown:
            raise ConfigError(f"translate-dataset: reject_on {unknown} are not QC flags ({', '.join(QC_FLAGS)})")
        if len(o.length_ratio) != 2 or not 0 <= o.length_ratio[0] < o.length_ratio[1]:
            raise ConfigError(f"translate-dataset: length_ratio must be [low, high] with 0 <= low < high, "
                              f"not {o.length_ratio}")
        return QCSettings(reject_on=tuple(o.reject_on), length_ratio=(o.length_ratio[0], o.length_ratio[1]),
                          backtranslation_model=o.backtranslation_model,
                          backtranslation_options=dict(o.backtranslation_options),
                          min_backtranslation_chrf=o.min_backtranslation_chrf)

    def targets(self) -> list[Target]:
        o = self.options
        if o.translator != "given":
            from dsbuild.registry import translators

            translators.get(o.translator)  # an unknown name: one line with close matches
            if not o.model:
                raise ConfigError(f"translate-dataset: translator {o.translator} needs --set model=HUB_ID_OR_FOLDER")
        method = o.method or ("given" if o.translator == "given" else "machine")
        return [Target(config=lang, lang=lang, method=method, translator=o.translator, model=o.model,
                       revision=o.revision, translator_options=dict(o.translator_options),
                       given=self._given(lang) if o.translator == "given" else None,
                       projector=o.projector, projector_options=dict(o.projector_options),
                       description=f"{o.src_lang} -> {lang} ({method})")
                for lang in o.target_langs]

    def _given(self, lang: str) -> GivenFields:
        o = self.options
        if not o.translations:
            raise ConfigError("translate-dataset: translator given needs --set translations=FILE (id + one column "
                              "per translated field; {lang} in the name is replaced), or use --set "
                              "translator=hf-seq2seq --set model=...")
        return self.cached(f"given/{lang}", lambda: GivenFields.from_file(o.translations.replace("{lang}", lang),
                                                                           lang=lang))

    def split_names(self) -> list[str]:
        o = self.options
        kind = self._kind()
        names = ["train"] if kind == "file" else list(self._dataset().keys())
        if o.splits:
            missing = [s for s in o.splits if s not in names]
            if missing:
                raise ConfigError(f"translate-dataset: split(s) {missing} not in the source (it has {sorted(names)})")
            names = list(o.splits)
        return names

    def read_source(self, split: str) -> Iterator[SourceItem | Reject]:
        o = self.options
        rows = self._rows_local(Path(o.source)) if self._kind() == "file" else self._rows_dataset(split)
        items = (self._item(row, split, where, n) for n, (where, row) in enumerate(rows, 1))
        return islice(items, o.max_items) if o.max_items > 0 else items

    # ------------------------------------------------------------------ reading
    def _kind(self) -> str:
        o = self.options
        if not o.source:
            raise ConfigError("translate-dataset: give the source: --set source=FILE.jsonl|.csv|.parquet, a dataset "
                              "folder or a Hub dataset id")
        path = Path(o.source)
        if path.is_dir():
            return "folder"
        if path.is_file() or path.suffix.lower() in LOCAL_SUFFIXES:
            if not path.is_file():
                raise ConfigError(f"translate-dataset: source file {path} not found (option source)")
            return "file"
        return "hub"

    def _rows_local(self, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".json"):
            from dsbuild.io.jsonl import iter_json_objects

            for line, row in iter_json_objects(path, hint="one JSON object (an item) per line"):
                yield f"{path.name}:{line}", row
        elif suffix in (".csv", ".tsv"):
            from dsbuild.io.conll import read_utf8_text

            reader = csv.DictReader(io.StringIO(read_utf8_text(path), newline=""),
                                    delimiter="\t" if suffix == ".tsv" else ",")
            for n, row in enumerate(reader):
                yield f"{path.name}:{n + 2}", self._decode_lists(dict(row))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            n = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1000):
                for row in batch.to_pylist():
                    n += 1
                    yield f"{path.name}:{n}", row
        else:
            raise ConfigError(f"translate-dataset: cannot read {path.name}: use .jsonl, .csv, .tsv or .parquet")

    def _decode_lists(self, row: dict[str, Any]) -> dict[str, Any]:
        """CSV cells of list-valued fields hold JSON lists (``["a", "b"]``): decode them."""
        for f in self.spec().fields:
            value = row.get(f.name)
            if f.kind in ("translate_each", "spans", "consistent") and isinstance(value, str) and value.startswith("["):
                try:
                    row[f.name] = json.loads(value)
                except ValueError:
                    pass  # left a string: the check step rejects it as not-a-list, naming item and field
        return row

    def _dataset(self) -> Any:
        """The folder or Hub dataset as a dict of splits (streamed from the Hub), once per process."""
        o = self.options

        def load() -> Any:
            path = Path(o.source)
            try:
                if path.is_dir() and any((path / n).is_file() for n in ("dataset_dict.json", "state.json")):
                    loaded = datasets.load_from_disk(str(path))
                    return loaded if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
                return datasets.load_dataset(o.source, o.source_config or None, streaming=not path.is_dir())
            except Exception as err:  # datasets raises many types; the user needs one line
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise ConfigError(f"translate-dataset: cannot load source {display_name(o.source)!r}: {first[:200]}") from None

        return self.cached("source-dataset", load)

    def _rows_dataset(self, split: str) -> Iterator[tuple[str, dict[str, Any]]]:
        name = display_name(self.options.source)
        for n, row in enumerate(self._dataset()[split], 1):
            yield f"{name}/{split}:{n}", dict(row)

    def _item(self, row: dict[str, Any], split: str, where: str, n: int) -> SourceItem:
        spec = self.spec()
        if spec.id_field in row and row[spec.id_field] not in (None, ""):
            item_id = str(row[spec.id_field])
        elif spec.id_field == "id":
            item_id = f"{split}-{n}"  # no ids in the source: the position, stable across configs
        else:
            raise InputError(f"no {spec.id_field!r} id field", source=where,
                             hint="give every item an id, or set id_field to the right column")
        return SourceItem(item_id, {k: v for k, v in row.items() if k != spec.id_field}, where=where)

    # ------------------------------------------------------------------ prepare / info
    def prepare_recipe(self, ctx: BuildContext) -> None:
        o = self.options
        dataset_license(o)
        self.spec()
        self.qc_settings()
        if self._kind() == "file":
            ctx.add_input(o.source, role=f"{o.src_lang} source items")
        else:
            ctx.facts["source_dataset"] = {"name": display_name(o.source), "config": o.source_config or None}
        for t in self.targets():
            if t.given is not None:
                path = Path(o.translations.replace("{lang}", t.lang))
                ctx.add_input(path, role=f"given {t.lang} translations")

    def info(self) -> DatasetInfo:
        o = self.options
        shown = o.source_name or display_name(o.source) or "(no source)"
        license_, license_name = dataset_license(o)
        return DatasetInfo(
            pretty_name=f"translate-dataset: {shown} -> {', '.join(o.target_langs)}",
            summary=(f"{shown} ({o.src_lang}) translated item by item into {', '.join(o.target_langs)} with the "
                     f"{o.translator!r} translator; structure kept, per-item QC columns."),
            languages=sorted({o.src_lang, *o.target_langs}), license=license_, license_name=license_name,
            task_categories=["translation"], multilinguality="translation",
            source_datasets=[f"extended|{Path(o.source).stem if Path(o.source).exists() else o.source}"] if o.source else ["original"],
            annotations_creators=["found"],
            language_creators=["found"] if o.translator == "given" else ["machine-generated"],
            tags=["translated-benchmark", "translate-dataset"],
            sources=[user_source(o, o.source, description="Items translated by this build.")] if o.source else [],
            method=f"Translator {o.translator}" + (f" ({display_name(o.model)})" if o.model else "")
                   + f"; QC flags rejecting: {', '.join(o.reject_on) or 'none'}.",
            limitations="QC flags are heuristics: a flag marks an item to look at, not a wrong translation; "
                        "unflagged items can still be wrong.")


__all__ = ["TranslateDataset", "TranslateDatasetOptions"]
