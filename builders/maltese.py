"""maltese: a Maltese dataset processed by etymology-routed pipelines (Micallef et al. 2024).

Recipe, one config per pipeline, run shard by shard (:mod:`dsbuild.pipeline`):

1. **Source**: the input examples of a split, read lazily: the shipped etymology-annotated
   sentences (default), a CoNLL-U file, token JSONL (MAPA NER), CSV text classification
   (sentiment) or a Hub dataset.
2. **Check**: examples a reader flagged, or with empty tokens or missing / misaligned / unknown
   labels, become rejects with the reason.
3. **Tag**: each token's etymology (memory + CRF classifier, loaded once per worker).
4. **Route**: the config's pipeline keeps, transliterates to Arabic script or translates word by
   word each token, by its label.
5. **To row**: original tokens, processed tokens, predicted etymology, actions and the untouched
   labels.
6. **Card**: the classifier's cross-validated accuracy (from the model), and, summed over shards
   in ``finish``: input tokens, predicted labels, what each pipeline did, and the agreement with
   the gold etymology of the input when it has one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets

from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, user_source)
from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.execution.shards import atomic_write_bytes
from dsbuild.pipeline import merge_facts
from dsbuild.maltese import resources
from dsbuild.maltese.pipelines import PipelineStats, ProcessedSentence, builtin_pipelines, get_pipeline
from dsbuild.maltese.readers import (
    MERGED_LABELS, MalteseExample, check_example, example_from_record, read_conllu, read_etymology_tsv,
    read_text_csv, read_token_jsonl,
)
from dsbuild.pipeline import MapStep, Step
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
GOLD_COLUMN = "etymology_gold"


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
    source_name: str = option("", SOURCE_NAME_HELP)
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


@dataclass
class InputLayout:
    """What the input looks like before any example is read: its splits and label columns.

    Small and plain, so it travels with the pickled builder and workers never reopen the source
    to build their configs' features.
    """

    splits: list[str]
    label_columns: list[str] = field(default_factory=list)
    #: allowed token labels (an example with another label is rejected), or ``None``: any
    label_names: list[str] | None = None
    #: Hub features of the label columns, kept as they are (ClassLabel stays ClassLabel)
    label_features: dict[str, Any] = field(default_factory=dict)
    has_sentence_label: bool = False


@dataclass
class TaggedExample:
    """An example on its way through the steps: its predicted etymology, then its processed tokens."""

    example: MalteseExample
    etymology: list[str]
    processed: ProcessedSentence | None = None


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

    # -- what is built ------------------------------------------------------------------------
    def info(self) -> DatasetInfo:
        fmt = self._format()
        sources = [
            Source(name="MLRS/malti etymology annotations and transliteration tables", license="MIT",
                   url="https://github.com/MLRS/malti", citation=CITATION,
                   description="Token etymology annotations (classifier training data), Maltese-to-Arabic "
                               "character and closed-class tables, word translation tables mt-en/mt-it/mt-ar."),
        ]
        if self.options.source:
            sources.append(user_source(self.options, self.options.source, description=f"Input dataset ({fmt})."))
        # the rows are the input's tokens and labels: the input's licence is the dataset's (MIT tables aside)
        license_, license_name = dataset_license(self.options) if self.options.source else ("mit", "")
        return DatasetInfo(
            pretty_name="Maltese selective transliteration by etymology",
            summary="Maltese sentences in which each token is routed by its predicted etymology (Arabic, "
                    "Non-Arabic, Code-Switching, Symbol, Name): transliterated to Arabic script, translated word "
                    "by word, or kept, with one output token per input token so the labels stay aligned.",
            languages=["mt"] + (["ar", "en", "it"] if any("translate" in p or "translit" in p for p in self.options.pipelines) else []),
            license=license_,
            license_name=license_name,
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
        splits = self.layout().splits
        return [ConfigSpec(name=p.name, features=features, splits=list(splits), description=p.description,
                           language="mt") for p in pipelines]

    def _features(self) -> datasets.Features:
        layout = self.layout()
        f: dict[str, Any] = {
            "id": datasets.Value("string"),
            "tokens": datasets.List(datasets.Value("string")),
            "processed_tokens": datasets.List(datasets.Value("string")),
            "processed_text": datasets.Value("string"),
            "etymology": datasets.List(datasets.ClassLabel(names=list(MERGED_LABELS))),
            "actions": datasets.List(datasets.Value("string")),
        }
        for name in layout.label_columns:
            if name == GOLD_COLUMN:
                f[name] = datasets.List(datasets.ClassLabel(names=list(MERGED_LABELS)))
            else:
                f[name] = layout.label_features.get(name, datasets.List(datasets.Value("string")))
        if layout.has_sentence_label:
            f["label"] = layout.label_features.get("label", datasets.Value("string"))
            f["text"] = datasets.Value("string")
        return datasets.Features(f)

    # -- the input ----------------------------------------------------------------------------
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

    def layout(self) -> InputLayout:
        """The input's layout, worked out once (a Hub dataset is opened for its features)."""
        if getattr(self, "_input_layout", None) is None:
            fmt = self._format()
            self._input_layout = self._hub_layout() if fmt == "hub" else self._file_layout(fmt)
        return self._input_layout

    def _file_layout(self, fmt: str) -> InputLayout:
        """Local files: the label columns follow from the format and the options alone."""
        o = self.options
        if fmt == "etymology_tsv":
            return InputLayout([o.split], [GOLD_COLUMN], label_names=list(MERGED_LABELS))
        if fmt == "conllu":
            from dsbuild.maltese.readers import CONLLU_LABELS

            return InputLayout([o.split], list(CONLLU_LABELS))
        if fmt == "jsonl":
            return InputLayout([o.split], list(o.label_fields) or ["ner_tags"], label_names=list(o.label_names) or None)
        return InputLayout([o.split], has_sentence_label=bool(o.label_column))  # csv

    def _hub_layout(self) -> InputLayout:
        """A Hub dataset: splits and label columns from its features (label columns keep their types)."""
        o = self.options
        dd = self._hub_dataset()
        feats = next(iter(dd.values())).features
        if o.tokens_field not in feats:
            raise InputError(f"no {o.tokens_field!r} column (columns: {list(feats)})", source=o.source,
                             hint="name the token column with --set tokens_field=NAME")
        if o.label_fields:
            missing = [f for f in o.label_fields if f not in feats]
            if missing:
                raise InputError(f"label columns {missing} not in {list(feats)}", source=o.source,
                                 hint="fix --set label_fields=...")
            columns = list(o.label_fields)
        else:
            columns = [k for k, v in feats.items() if k != o.tokens_field and
                       isinstance(v, (datasets.Sequence, datasets.List))]
        label_features = {k: feats[k] for k in columns}
        if o.label_field:
            if o.label_field not in feats:
                raise InputError(f"no label column {o.label_field!r}", source=o.source, hint="fix --set label_field=...")
            label_features["label"] = feats[o.label_field]
        return InputLayout(list(dd), columns, label_features=label_features, has_sentence_label=bool(o.label_field))

    def _hub_dataset(self) -> datasets.DatasetDict:
        """The Hub dataset (Arrow on disk, memory-mapped), opened once per process."""
        return self.cached("hub-dataset", self._open_hub_dataset)

    def _open_hub_dataset(self) -> datasets.DatasetDict:
        o = self.options
        try:
            dd = datasets.load_dataset(o.source, o.hub_config or None)
        except Exception as err:  # offline, unknown id, bad config: say what to do
            raise InputError(f"cannot load Hub dataset {o.source!r}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                             source=o.source, hint="check the id and --set hub_config=..., or give a local file") from None
        return datasets.DatasetDict({o.split: dd}) if isinstance(dd, datasets.Dataset) else dd

    # -- the sharded recipe -------------------------------------------------------------------
    def source(self, config: ConfigSpec, split: str) -> Iterator[MalteseExample]:
        """The examples of one split, one at a time, in file (or dataset) order."""
        fmt = self._format()
        if fmt == "hub":
            yield from self._hub_examples(split)
        elif split == self.options.split:
            yield from self._file_examples(fmt)

    def count(self, config: ConfigSpec, split: str) -> int | None:
        """Known without reading only for a Hub dataset; local files are not read twice for a progress ETA."""
        return len(self._hub_dataset()[split]) if self._format() == "hub" else None

    def steps(self, config: ConfigSpec, split: str) -> list[Step]:
        return [RejectMalformed(self.layout()), TagEtymology(self), RouteTokens(self, config.name),
                MapStep("to-row", self.to_row)]

    def _file_examples(self, fmt: str) -> Iterator[MalteseExample]:
        o, path = self.options, self._source_path()
        if fmt == "etymology_tsv":
            # this reader returns a list (it checks sentence ids across the whole file); the
            # examples are made one at a time from it and nothing is kept after the split
            for s in read_etymology_tsv(path):
                yield MalteseExample(f"{path.stem}-{s.id}", s.tokens, {GOLD_COLUMN: s.labels},
                                     raw={"line": s.line, "tokens": s.tokens})
        elif fmt == "conllu":
            yield from read_conllu(path)
        elif fmt == "jsonl":
            layout = self.layout()
            yield from read_token_jsonl(path, tokens_field=o.tokens_field, label_fields=layout.label_columns,
                                        label_names=layout.label_names)
        else:
            yield from read_text_csv(path, text_column=o.text_column, label_column=o.label_column or None,
                                     delimiter=o.csv_delimiter)

    def _hub_examples(self, split: str) -> Iterator[MalteseExample]:
        o, columns = self.options, self.layout().label_columns
        for i, row in enumerate(self._hub_dataset()[split]):
            ex = example_from_record(row, tokens_field=o.tokens_field, label_fields=columns,
                                     default_id=f"{split}-{i}", label_field=o.label_field or None)
            # keep Hub label values as they are (ClassLabel ints stay ints)
            ex.token_labels = {k: list(row[k]) for k in columns if row.get(k) is not None}
            if o.label_field:
                ex.label = row[o.label_field]
            yield ex

    def to_row(self, item: TaggedExample) -> dict[str, Any]:
        """The output row: tokens, processed tokens, etymology, actions and the input's labels unchanged."""
        ex, out, layout = item.example, item.processed, self.layout()
        assert out is not None, "the route step runs before to-row"
        row: dict[str, Any] = {"id": ex.id, "tokens": ex.tokens, "processed_tokens": out.tokens,
                               "processed_text": out.text(), "etymology": item.etymology, "actions": out.actions}
        for name in layout.label_columns:
            row[name] = ex.token_labels[name]
        if layout.has_sentence_label:
            row["label"] = ex.label
            row["text"] = ex.text if ex.text is not None else " ".join(ex.tokens)
        return row

    # -- models, loaded once per process (never pickled to workers) ----------------------------
    def classifier(self) -> Any:
        """The etymology classifier (memory + CRF)."""
        from dsbuild.maltese.etymology import load_classifier

        return self.cached("etymology-classifier", load_classifier)

    def transliterator(self) -> Any:
        """The Maltese-to-Arabic transliterator with the chosen tables."""
        from dsbuild.maltese.transliterate import Transliterator

        return self.cached("transliterator", lambda: Transliterator(self.options.transliteration))  # type: ignore[arg-type]

    # -- before and after the shards ----------------------------------------------------------
    def prepare(self, ctx: BuildContext) -> None:
        """Check the input and options, record inputs and the classifier; no example is read here."""
        dataset_license(self.options)  # a bad source_license fails before any work, not at the card
        fmt = self._format()
        self.layout()  # a Hub dataset is opened here, in the driver; workers get the layout pickled
        if fmt != "hub":
            path = self._source_path()
            if not path.is_file():
                raise InputError("file not found", source=path, hint="check the path")
            ctx.add_input(path, role=f"source ({fmt})", license="MIT" if not self.options.source else "")
        ctx.add_input(resources.data_dir() / "LICENSE_MLRS_malti_MIT.txt", role="licence of the MLRS tables",
                      license="MIT")
        classifier, translit = self.classifier(), self.transliterator()  # bad modes fail here, before any shard
        meta = classifier.meta
        ctx.add_model("etymology-classifier", revision=classifier.version, kind="memory + CRF (python-crfsuite)",
                      feature_version=meta.get("feature_version"), trained_on=meta.get("trained_on"))
        cv = meta.get("cross_validation")
        ctx.facts["maltese"] = {
            "classifier_version": classifier.version,
            "classifier_trained_on": meta.get("trained_on"),
            "classifier_cv": cv,
            "transliteration": {"mode": self.options.transliteration, "tables": translit.table_names},
            "tables_version": resources.tables_version(),
            "pipelines": {n: get_pipeline(n).describe() for n in self.options.pipelines},
            "translation_caveat": TRANSLATION_CAVEAT,
            "data_license": f"MLRS tables and annotations: {resources.DATA_LICENSE} ({resources.DATA_SOURCE})",
        }
        if cv:
            ctx.quality["etymology_classifier_cv"] = {
                "accuracy": cv["accuracy"], "accuracy_seen": cv["accuracy_seen"],
                "accuracy_unseen": cv["accuracy_unseen"], "folds": cv["folds"], "tokens": cv["tokens"],
                **{f"f1_{k}": v for k, v in cv["per_label_f1"].items()},
                "protocol": "folds by sentence, round-robin; shipped tables; unseen = exact type not in training"}
            if cv.get("novel_words"):
                nw = cv["novel_words"]
                ctx.quality["etymology_classifier_cv_novel_words"] = {
                    "accuracy": nw["accuracy"], "accuracy_seen": nw["accuracy_seen"],
                    "accuracy_unseen": nw["accuracy_unseen"], "folds": cv["folds"], "tokens": nw["tokens"],
                    "protocol": "folds by sentence, round-robin; each test fold's new word types removed from the "
                                "memory and every table; unseen = lower-cased type not in training (novel words)"}

    def finish(self, ctx: BuildContext) -> None:
        """Card facts and quality from the facts the steps recorded, summed over shards."""
        split_facts = ctx.facts.get("split_facts", {})
        facts = ctx.facts.setdefault("maltese", {})
        facts["pipeline_stats"] = {
            config: {split: f.get("pipeline_stats") or PipelineStats().to_dict() for split, f in sorted(splits.items())}
            for config, splits in sorted(split_facts.items())}
        tagging = self._tagging_totals(split_facts)
        facts["input_tokens"] = tagging.get("tokens", 0)
        facts["input_tokens_unseen_by_classifier"] = tagging.get("tokens_unseen", 0)
        facts["predicted_labels"] = dict(sorted(tagging.get("predicted_labels", {}).items()))
        log.info("maltese: etymology predicted for %d tokens (%d not in the classifier's training data)",
                 facts["input_tokens"], facts["input_tokens_unseen_by_classifier"])
        if GOLD_COLUMN in self.layout().label_columns:
            ctx.quality["etymology_on_input_gold"] = self._gold_agreement(tagging)

    def _tagging_totals(self, split_facts: dict[str, Any]) -> dict[str, Any]:
        """The tag step's counts over every split. Every config tags the same examples, so one config's
        counts describe the input (summing over configs would count each token once per pipeline)."""
        first = self.options.pipelines[0] if self.options.pipelines else None
        totals: dict[str, Any] = {}
        for _, facts in sorted(split_facts.get(first, {}).items()):
            merge_facts(totals, facts.get("tagging", {}))
        return totals

    def _gold_agreement(self, counts: dict[str, Any]) -> dict[str, Any]:
        """Accuracy of the predictions on the input's gold etymology, overall and on tokens seen / unseen
        in training, from the tag step's counts (rounded as :func:`dsbuild.maltese.etymology.score` does)."""
        return {"accuracy": _ratio(counts.get("correct", 0), counts.get("tokens", 0)) or 0.0,
                "accuracy_seen": _ratio(counts.get("correct_seen", 0), counts.get("tokens_seen", 0)),
                "accuracy_unseen": _ratio(counts.get("correct_unseen", 0), counts.get("tokens_unseen", 0)),
                "tokens": counts.get("tokens", 0), "tokens_seen": counts.get("tokens_seen", 0),
                "note": "the shipped classifier was trained on these sentences: this is not a held-out figure"
                        if not self.options.source else "tokens seen = in the classifier's training data"}


def _ratio(part: int, whole: int) -> float | None:
    """``part / whole`` to 4 decimals, or ``None`` when there is nothing to measure."""
    return round(part / whole, 4) if whole else None


# ---------------------------------------------------------------------- steps
class RejectMalformed(Step):
    """Examples a reader flagged, or with empty tokens or missing / misaligned / unknown labels -> rejects."""

    name = "check"

    def __init__(self, layout: InputLayout) -> None:
        self.layout = layout

    def run(self, items: list[MalteseExample], ctx: BuildContext) -> list[MalteseExample | Reject]:
        return [self._check(ex) for ex in items]

    def _check(self, ex: MalteseExample) -> MalteseExample | Reject:
        check_example(ex, self.layout.label_columns, self.layout.label_names)
        if ex.problem is None:
            return ex
        reason, detail = ex.problem
        return Reject(ex.id, reason, detail, ex.raw or {"tokens": ex.tokens})


class TagEtymology(Step):
    """Predict each token's etymology, and count tokens, labels and agreement with gold labels (if any)."""

    name = "tag"

    def __init__(self, builder: Maltese) -> None:
        self.builder = builder

    def setup(self, ctx: BuildContext) -> None:
        self.classifier = self.builder.classifier()
        self.gold = GOLD_COLUMN in self.builder.layout().label_columns

    def run(self, items: list[MalteseExample], ctx: BuildContext) -> list[TaggedExample]:
        predictions = self._predict(items, ctx.work_dir)
        merge_facts(ctx.facts, {"tagging": self._counts(items, predictions)})
        return [TaggedExample(ex, labels) for ex, labels in zip(items, predictions)]

    def _predict(self, items: list[MalteseExample], work_dir: Path) -> list[list[str]]:
        """The shard's predictions. Every config tags the same shards, so the first config to tag one
        keeps its predictions in the build's scratch folder and the other configs read them: the CRF
        runs once per example, not once per pipeline. (A missing or unshared folder only costs time.)"""
        key = json.dumps([self.classifier.version, [ex.tokens for ex in items]], ensure_ascii=False)
        memo = work_dir / "maltese-etymology" / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.json"
        if memo.is_file():
            return json.loads(memo.read_text(encoding="utf-8"))
        predictions = [self.classifier.predict(ex.tokens) for ex in items]
        atomic_write_bytes(memo, json.dumps(predictions, ensure_ascii=False).encode("utf-8"))
        return predictions

    def _counts(self, items: list[MalteseExample], predictions: list[list[str]]) -> dict[str, Any]:
        """Per-shard counts that add up over shards: tokens (seen / unseen in training), predicted labels,
        and with gold labels the correct predictions (overall, seen, unseen)."""
        seen = self.classifier.memory.seen
        tally: Counter[str] = Counter()
        labels: Counter[str] = Counter()
        for ex, predicted in zip(items, predictions):
            labels.update(predicted)
            gold = ex.token_labels[GOLD_COLUMN] if self.gold else [None] * len(ex.tokens)
            for token, truth, guess in zip(ex.tokens, gold, predicted):
                where = "seen" if seen(token) else "unseen"
                tally.update(["tokens", f"tokens_{where}"])
                if self.gold and truth == guess:
                    tally.update(["correct", f"correct_{where}"])
        return {**tally, "predicted_labels": dict(labels)}


class RouteTokens(Step):
    """The config's pipeline: keep, transliterate or translate each token by its predicted etymology."""

    name = "route"

    def __init__(self, builder: Maltese, pipeline: str) -> None:
        self.builder, self.pipeline_name = builder, pipeline

    def setup(self, ctx: BuildContext) -> None:
        self.pipeline = get_pipeline(self.pipeline_name)
        self.pipeline.transliterator = self.builder.transliterator()

    def run(self, items: list[TaggedExample], ctx: BuildContext) -> list[TaggedExample]:
        stats = PipelineStats()
        out = [replace(it, processed=self.pipeline.process(it.example.tokens, it.etymology, stats)) for it in items]
        merge_facts(ctx.facts, {"pipeline_stats": stats.to_dict()})
        return out
