"""maltese: a Maltese dataset processed by etymology-routed pipelines (Micallef et al. 2024).

Recipe: read a Maltese dataset (Hub id, CoNLL-U, token JSONL such as MAPA NER, CSV text
classification such as sentiment; default: the shipped etymology-annotated sentences) ->
predict each token's etymology (memory + CRF classifier) -> for each pipeline, route every
token by its label (keep / transliterate to Arabic script / translate word by word) -> one
config per pipeline, each row with the original tokens, the processed tokens, the predicted
etymology and the untouched labels -> card with the classifier's measured accuracy.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from tqdm.auto import tqdm

from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.maltese import resources
from dsbuild.maltese.pipelines import PipelineStats, builtin_pipelines, get_pipeline
from dsbuild.maltese.readers import (
    MERGED_LABELS, MalteseExample, check_example, example_from_record, read_conllu, read_etymology_tsv,
    read_text_csv, read_token_jsonl,
)
from dsbuild.registry import builders

log = logging.getLogger(__name__)

FORMATS = ("auto", "etymology_tsv", "conllu", "jsonl", "csv", "hub")
CITATION = """@inproceedings{micallef-etal-2024-cross,
  title = {Cross-Lingual Transfer from Related Languages: Treating Low-Resource {M}altese as Multilingual Code-Switching},
  author = {Micallef, Kurt and Habash, Nizar and Borg, Claudia and Eryani, Fadhl and Bouamor, Houda},
  booktitle = {Proceedings of EACL 2024},
  year = {2024}
}"""
TRANSLATION_CAVEAT = (
    "Translated tokens come from word-level machine-translation tables (mt-en, mt-it, mt-ar) "
    "looked up one word at a time, without context: every occurrence of a word form gets the same "
    "single translation, often the wrong sense (ta' -> 'give'), and a token may become several words "
    "kept in one slot. Tokens missing from a table are kept unchanged (counted in the card).")


@dataclass
class MalteseOptions:
    source: str = option("", "Hub dataset id (or a local folder load_dataset reads), or a local .conllu / "
                             ".jsonl / .csv / .tsv file (default: the shipped etymology-annotated sentences)")
    format: str = option("auto", "source format: auto (from the file suffix; Hub id otherwise), "
                                 "etymology_tsv, conllu, jsonl, csv, hub")
    split: str = option("train", "split name for a local file")
    hub_config: str = option("", "config name of a Hub dataset")
    tokens_field: str = option("tokens", "jsonl/hub: the field holding the token list")
    label_fields: list[str] = option([], "jsonl/hub: token-level label fields kept with the tokens "
                                         "(default jsonl: ner_tags; hub: every list field as long as tokens)")
    label_field: str = option("", "hub: a sentence-level label field (text classification)")
    label_names: list[str] = option([], "jsonl: the allowed token labels (integer labels index this list); "
                                        "an example with another label is rejected (unknown-label)")
    text_column: str = option("text", "csv: the text column")
    label_column: str = option("label", "csv: the label column (empty: none)")
    csv_delimiter: str = option(",", "csv: field delimiter")
    pipelines: list[str] = option(list(builtin_pipelines()), "pipelines to emit, one config each")
    transliteration: str = option("deterministic", "transliteration tables: deterministic or non_deterministic "
                                                   "(best-ranked alternative)")


@builders.register("maltese")
class Maltese(Builder):
    name = "maltese"
    version = "1.0.0"
    description = ("Maltese tokens routed by predicted etymology: transliterated to Arabic script, translated "
                   "word by word or kept; one config per pipeline, labels aligned.")
    Options = MalteseOptions
    card_template = "maltese.md.j2"
    history = [("1.0.0", "First release: memory+CRF etymology classifier, rule-based transliteration, "
                         "9 pipelines, readers for CoNLL-U, token JSONL, CSV and Hub datasets.")]

    # -- the source --------------------------------------------------------------------------
    def _format(self) -> str:
        o = self.options
        if o.format not in FORMATS:
            raise ConfigError(f"maltese: format {o.format!r} is not one of {', '.join(FORMATS)}")
        if o.format != "auto":
            return o.format
        if not o.source:
            return "etymology_tsv"
        suffix = Path(o.source).suffix.lower()
        by_suffix = {".conllu": "conllu", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "etymology_tsv"}
        if suffix in by_suffix:
            return by_suffix[suffix]
        if Path(o.source).is_file():
            raise ConfigError(f"maltese: cannot tell the format of {o.source}; pass --set format=conllu|jsonl|csv|etymology_tsv")
        return "hub"

    def _source_path(self) -> Path:
        return Path(self.options.source) if self.options.source else resources.annotations_path()

    def info(self) -> DatasetInfo:
        fmt = self._format()
        sources = [
            Source(name="MLRS/malti etymology annotations and transliteration tables", license="MIT",
                   url="https://github.com/MLRS/malti", citation=CITATION,
                   description="Token etymology annotations (classifier training data), Maltese-to-Arabic "
                               "character and closed-class tables, word translation tables mt-en/mt-it/mt-ar."),
        ]
        if self.options.source:
            sources.append(Source(name=self.options.source, license="see the source dataset",
                                  description=f"Input dataset ({fmt})."))
        return DatasetInfo(
            pretty_name="Maltese selective transliteration by etymology",
            summary="Maltese sentences in which each token is routed by its predicted etymology (Arabic, "
                    "Non-Arabic, Code-Switching, Symbol, Name): transliterated to Arabic script, translated word "
                    "by word, or kept, with one output token per input token so the labels stay aligned.",
            languages=["mt"] + (["ar", "en", "it"] if any("translate" in p or "translit" in p for p in self.options.pipelines) else []),
            license="mit" if not self.options.source else "other",
            task_categories=["token-classification"] if fmt != "csv" and not self.options.label_field else ["text-classification"],
            multilinguality="multilingual",
            annotations_creators=["machine-generated"],
            language_creators=["found", "machine-generated"],
            tags=["maltese", "transliteration", "code-switching", "etymology"],
            sources=sources,
            method="Etymology per token from a memory + CRF classifier; routing per pipeline; rule-based "
                   "transliteration from the MLRS tables; word-by-word lookup in the MLRS translation tables.",
            limitations=TRANSLATION_CAVEAT,
        )

    def configs(self) -> list[ConfigSpec]:
        pipelines = [get_pipeline(n) for n in self.options.pipelines]
        if not pipelines:
            raise ConfigError("maltese: no pipelines selected; pass --set pipelines=raw,transliterate_arabic")
        features = self._features()
        return [ConfigSpec(name=p.name, features=features, splits=list(self._splits()), description=p.description,
                           language="mt") for p in pipelines]

    # -- reading ------------------------------------------------------------------------------
    def _splits(self) -> list[str]:
        if not hasattr(self, "_examples"):
            self._load()
        return list(self._examples)

    def _load(self) -> None:
        """Read the source once into ``self._examples`` (split -> examples) and label metadata."""
        fmt = self._format()
        o = self.options
        self._label_columns: list[str] = []
        self._label_features: dict[str, Any] = {}
        self._has_sentence_label = False
        self._label_names: list[str] | None = None
        if fmt == "etymology_tsv":
            path = self._source_path()
            sentences = read_etymology_tsv(path)
            self._label_columns = ["etymology_gold"]
            self._label_names = list(MERGED_LABELS)
            exs = [MalteseExample(f"{path.stem}-{s.id}", s.tokens, {"etymology_gold": s.labels},
                                  raw={"line": s.line, "tokens": s.tokens}) for s in sentences]
            self._examples = {o.split: exs}
        elif fmt == "conllu":
            from dsbuild.maltese.readers import CONLLU_LABELS

            self._label_columns = list(CONLLU_LABELS)
            self._examples = {o.split: list(read_conllu(self._source_path()))}
        elif fmt == "jsonl":
            self._label_columns = list(o.label_fields) or ["ner_tags"]
            self._label_names = list(o.label_names) or None
            self._examples = {o.split: list(read_token_jsonl(self._source_path(), tokens_field=o.tokens_field,
                                                             label_fields=self._label_columns,
                                                             label_names=self._label_names))}
        elif fmt == "csv":
            self._has_sentence_label = bool(o.label_column)
            self._examples = {o.split: list(read_text_csv(self._source_path(), text_column=o.text_column,
                                                          label_column=o.label_column or None,
                                                          delimiter=o.csv_delimiter))}
        else:
            self._load_hub()
        for exs in self._examples.values():
            for ex in exs:
                check_example(ex, self._label_columns, self._label_names)

    def _load_hub(self) -> None:
        o = self.options
        try:
            dd = datasets.load_dataset(o.source, o.hub_config or None)
        except Exception as err:  # offline, unknown id, bad config: say what to do
            raise InputError(f"cannot load Hub dataset {o.source!r}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                             source=o.source, hint="check the id and --set hub_config=..., or give a local file") from None
        if isinstance(dd, datasets.Dataset):
            dd = datasets.DatasetDict({o.split: dd})
        first = next(iter(dd.values()))
        feats = first.features
        if o.tokens_field not in feats:
            raise InputError(f"no {o.tokens_field!r} column (columns: {list(feats)})", source=o.source,
                             hint="name the token column with --set tokens_field=NAME")
        if o.label_fields:
            missing = [f for f in o.label_fields if f not in feats]
            if missing:
                raise InputError(f"label columns {missing} not in {list(feats)}", source=o.source,
                                 hint="fix --set label_fields=...")
            self._label_columns = list(o.label_fields)
        else:
            self._label_columns = [k for k, v in feats.items() if k != o.tokens_field and
                                   isinstance(v, (datasets.Sequence, datasets.List))]
        self._label_features = {k: feats[k] for k in self._label_columns}
        if o.label_field:
            if o.label_field not in feats:
                raise InputError(f"no label column {o.label_field!r}", source=o.source, hint="fix --set label_field=...")
            self._has_sentence_label = True
            self._label_features["label"] = feats[o.label_field]
        self._examples = {}
        for split, ds in dd.items():
            exs = []
            for i, row in enumerate(ds):
                ex = example_from_record(row, tokens_field=o.tokens_field, label_fields=self._label_columns,
                                         default_id=f"{split}-{i}", label_field=o.label_field or None)
                # keep Hub label values as they are (ClassLabel ints stay ints)
                ex.token_labels = {k: list(row[k]) for k in self._label_columns if row.get(k) is not None}
                if o.label_field:
                    ex.label = row[o.label_field]
                exs.append(ex)
            self._examples[split] = exs

    def _features(self) -> datasets.Features:
        if not hasattr(self, "_examples"):
            self._load()
        f: dict[str, Any] = {
            "id": datasets.Value("string"),
            "tokens": datasets.List(datasets.Value("string")),
            "processed_tokens": datasets.List(datasets.Value("string")),
            "processed_text": datasets.Value("string"),
            "etymology": datasets.List(datasets.ClassLabel(names=list(MERGED_LABELS))),
            "actions": datasets.List(datasets.Value("string")),
        }
        for name in self._label_columns:
            if name == "etymology_gold":
                f[name] = datasets.List(datasets.ClassLabel(names=list(MERGED_LABELS)))
            else:
                f[name] = self._label_features.get(name, datasets.List(datasets.Value("string")))
        if self._has_sentence_label:
            f["label"] = self._label_features.get("label", datasets.Value("string"))
            f["text"] = datasets.Value("string")
        return datasets.Features(f)

    # -- building -----------------------------------------------------------------------------
    def prepare(self, ctx: BuildContext) -> None:
        from dsbuild.maltese.etymology import load_classifier
        from dsbuild.maltese.transliterate import Transliterator

        self._load()
        if self._format() != "hub":
            ctx.add_input(self._source_path(), role=f"source ({self._format()})",
                          license="MIT" if not self.options.source else "")
        root = resources.data_dir()
        ctx.add_input(root / "LICENSE_MLRS_malti_MIT.txt", role="licence of the MLRS tables", license="MIT")
        self.classifier = load_classifier()
        self.translit = Transliterator(self.options.transliteration)  # type: ignore[arg-type]
        meta = self.classifier.meta
        ctx.add_model("etymology-classifier", revision=self.classifier.version, kind="memory + CRF (python-crfsuite)",
                      feature_version=meta.get("feature_version"), trained_on=meta.get("trained_on"))
        self._predictions: dict[str, list[str]] = {}
        unseen = total = 0
        todo = [ex for exs in self._examples.values() for ex in exs]
        for ex in tqdm(todo, desc="maltese: etymology", unit="ex", leave=False, disable=len(todo) < 1000):
            if ex.problem is None:
                self._predictions[ex.id] = self.classifier.predict(ex.tokens)
                total += len(ex.tokens)
                unseen += sum(not self.classifier.memory.seen(t) for t in ex.tokens)
        log.info("maltese: etymology predicted for %d tokens (%d not in the classifier's training data)", total, unseen)
        cv = meta.get("cross_validation")
        ctx.facts["maltese"] = {
            "classifier_version": self.classifier.version,
            "classifier_trained_on": meta.get("trained_on"),
            "classifier_cv": cv,
            "transliteration": {"mode": self.options.transliteration, "tables": self.translit.table_names},
            "tables_version": resources.tables_version(),
            "pipelines": {n: get_pipeline(n).describe() for n in self.options.pipelines},
            "translation_caveat": TRANSLATION_CAVEAT,
            "data_license": f"MLRS tables and annotations: {resources.DATA_LICENSE} ({resources.DATA_SOURCE})",
            "input_tokens": total,
            "input_tokens_unseen_by_classifier": unseen,
            "predicted_labels": dict(sorted(Counter(y for p in self._predictions.values() for y in p).items())),
        }
        if cv:
            ctx.quality["etymology_classifier_cv"] = {
                "accuracy": cv["accuracy"], "accuracy_seen": cv["accuracy_seen"],
                "accuracy_unseen": cv["accuracy_unseen"], "folds": cv["folds"], "tokens": cv["tokens"],
                **{f"f1_{k}": v for k, v in cv["per_label_f1"].items()}}
        if "etymology_gold" in self._label_columns:
            from dsbuild.maltese.etymology import score

            good = [ex for exs in self._examples.values() for ex in exs if ex.problem is None]
            s = score([ex.token_labels["etymology_gold"] for ex in good], [self._predictions[ex.id] for ex in good],
                      [ex.tokens for ex in good], self.classifier.memory)
            ctx.quality["etymology_on_input_gold"] = {
                "accuracy": s.accuracy, "accuracy_seen": s.accuracy_seen, "accuracy_unseen": s.accuracy_unseen,
                "tokens": s.tokens, "tokens_seen": s.tokens_seen,
                "note": "the shipped classifier was trained on these sentences: this is not a held-out figure"
                        if not self.options.source else "tokens seen = in the classifier's training data"}

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        pipeline = get_pipeline(config.name)
        pipeline.transliterator = self.translit
        stats = PipelineStats()
        for ex in self._examples[split]:
            ctx.read()
            if ex.problem is not None:
                reason, detail = ex.problem
                yield Reject(ex.id, reason, detail, ex.raw or {"tokens": ex.tokens})
                continue
            labels = self._predictions[ex.id]
            out = pipeline.process(ex.tokens, labels, stats)
            row: dict[str, Any] = {"id": ex.id, "tokens": ex.tokens, "processed_tokens": out.tokens,
                                   "processed_text": out.text(), "etymology": labels, "actions": out.actions}
            for name in self._label_columns:
                row[name] = ex.token_labels[name]
            if self._has_sentence_label:
                row["label"] = ex.label
                row["text"] = ex.text if ex.text is not None else " ".join(ex.tokens)
            yield row
        # split facts survive a resumed build (the executor keeps them with the split's marker)
        ctx.facts.setdefault("current", {})["pipeline_stats"] = stats.to_dict()

    def finish(self, ctx: BuildContext) -> None:
        per_config = ctx.facts.get("split_facts", {})
        ctx.facts.setdefault("maltese", {})["pipeline_stats"] = {
            config: {split: facts.get("pipeline_stats", {}) for split, facts in sorted(splits.items())}
            for config, splits in sorted(per_config.items())}
