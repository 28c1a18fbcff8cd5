"""translate-train: machine-translate a labelled token-classification dataset and project its spans.

Recipe, per target language (one config each):

1. **Source**: any token-classification data: a Hub dataset through ``datasets.load_dataset``
   (``--set source=conll2003``), or a local CoNLL, token-JSONL or Parquet file. Default: the
   English side of the Europarl NER sample shipped with dsbuild.
2. **Checks**: empty sentences, sentences over the MT model's input limit
   (``long_inputs=reject``) and sentences without a translation (``given`` translator) become
   rejects with a reason.
3. **Translate** with the chosen translator: ``hf-seq2seq`` (NLLB, M2M100, Marian, mBART by name
   or path; cached on disk, so a killed build resumes without re-translating) or ``given``
   (translations you already have). Default: ``given`` with the Spanish side of the same Europarl
   sample, so the default build runs offline with no model.
4. **Project** the spans with a registered projection method (``alignment`` - word alignment,
   offline default; ``markers`` - EasyProject-style marker translation; ``constrained`` -
   constrained decoding of marker placement in a fixed translation).
5. **Output** one row per kept sentence: target text, tokens, tags, spans, the source sentence and
   QC columns; every other sentence is a reject with its reason. The card names the models with
   revisions, the method and the kept / rejected counts per language.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import datasets

from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, display_name, portable_value, user_source)
from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.pipeline import Step
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.features import example_to_row, ner_features, span_feature
from builders.europarl_ner import AGERRI_CITATION
from dsbuild.registry import builders
from dsbuild.spans import Example, span_to_dict, tags_to_spans

log = logging.getLogger(__name__)

EUROPARL_DIR = Path(__file__).parent / "data" / "europarl_ner"
DEFAULT_SOURCE = EUROPARL_DIR / "en-europarl.test.conll02"
MODEL_TRANSLATORS = ("hf-seq2seq", "ct2")  # translators that run an MT model (translate, score, too_long)
DEFAULT_GIVEN = {"es": EUROPARL_DIR / "es-europarl.test.conll02"}
CONLL_SUFFIXES = (".conll", ".conll02", ".conll03", ".conllu", ".iob", ".iob2", ".bio", ".txt", ".tsv")
@dataclass
class TranslateTrainOptions:
    source: str = option("", "input data: a Hub dataset name (load_dataset), or a local CoNLL / .jsonl / .parquet "
                             "file; empty = the shipped English Europarl NER sample")
    source_config: str = option("", "config (subset) name of a Hub dataset")
    splits: list[str] = option([], "splits to translate (default: all splits of the source)")
    tokens_column: str = option("tokens", "column with the token lists (Hub / Parquet / JSONL)")
    tags_column: str = option("ner_tags", "column with the tags (strings, or ClassLabel integers)")
    scheme: Literal["IOB1", "IOB2", "BIOES"] = option("IOB2", "tag scheme of the source")
    src_lang: str = option("en", "language code of the source data")
    target_langs: list[str] = option(["es"], "target language codes, one config each (ISO 639-1/3 or model codes)")
    translator: str = option("given", "translator: hf-seq2seq (an MT model), ct2 (the same model on CTranslate2) "
                                      "or given (translations you have)")
    model: str = option("", "hf-seq2seq: model Hub id or local folder, e.g. facebook/nllb-200-distilled-600M")
    revision: str = option("", "hf-seq2seq: model revision (branch, tag or commit)")
    beam_size: int = option(4, "hf-seq2seq: beam size")
    batch_size: int = option(16, "hf-seq2seq: sentences per batch")
    compute_type: str = option("", "ct2: int8, int8_float16, float16 or float32 (default: auto)")
    translator_options: dict = option({}, "more translator options (e.g. {sampling: true, seed: 1, device: cuda})")
    translations: str = option("", "given: translations file (.jsonl/.csv/.tsv/.parquet with source/target "
                                   "or id/target columns); a {lang} placeholder is replaced by the target "
                                   "language; empty = the shipped Spanish Europarl side (default source only)")
    translations_key: Literal["source", "id"] = option("source", "given: look translations up by source text or id")
    method: str = option("alignment", "projection method: alignment, markers or constrained")
    aligner: str = option("eflomal", "alignment: word aligner")
    aligner_options: dict = option({}, "alignment: aligner options (e.g. {extra_src: FILE, extra_tgt: FILE})")
    extra_parallel: bool = option(True, "alignment: also train the aligner on the shipped en-es Europarl text "
                                         "when the pair is en-es")
    method_options: dict = option({}, "more options of the projection method")
    target_tokenizer: str = option("moses", "how translations are tokenised: moses, whitespace or spacy")
    policy: Literal["keep-partial", "reject"] = option("reject", "a sentence with an unprojected span: reject "
                                                                 "it (default; partial labels teach wrong O tags) "
                                                                 "or keep the projected spans")
    long_inputs: Literal["reject", "split"] = option("reject", "hf-seq2seq: inputs over the model limit are "
                                                             "rejected, or split into sentences")
    max_examples: int = option(0, "translate only the first N examples of each split (0 = all)")
    cache_dir: str = option("", "hf-seq2seq: translation cache folder (default $DSBUILD_CACHE/translations)")
    seed: int = option(1, "seed for the aligner and for sampling")
    source_name: str = option("", SOURCE_NAME_HELP)
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


@builders.register("translate-train")
class TranslateTrain(Builder):
    name = "translate-train"
    version = "1.0.0"
    description = ("Translate a token-classification dataset into other languages and project its spans "
                   "(alignment, markers or constrained decoding); one config per target language.")
    Options = TranslateTrainOptions
    card_template = "translate-train.md.j2"
    history = [("1.0.0", "First release: hf-seq2seq and given translators; alignment, markers and constrained "
                         "projection; rejects with reasons and QC columns.")]

    # ------------------------------------------------------------------ info / configs
    def _check_options(self) -> None:
        o = self.options
        if not o.target_langs:
            raise ConfigError("translate-train: give at least one target language, e.g. --set target_langs=[es,de]")
        if len(set(o.target_langs)) != len(o.target_langs):
            raise ConfigError(f"translate-train: target_langs has duplicates: {o.target_langs}")
        if o.src_lang in o.target_langs:
            raise ConfigError(f"translate-train: the source language {o.src_lang!r} is also a target language")
        if o.translator in MODEL_TRANSLATORS and not o.model:
            raise ConfigError(f"translate-train: translator {o.translator} needs --set model=HUB_ID_OR_FOLDER")
        if o.compute_type and o.translator != "ct2":
            raise ConfigError(f"translate-train: compute_type is a ct2 option; add --set translator=ct2 "
                              f"(translator is {o.translator!r})")
        if o.translator == "given" and o.method in ("markers", "constrained"):
            raise ConfigError(f"translate-train: method {o.method!r} translates with a model; use "
                              f"--set translator=hf-seq2seq --set model=... (the given translator only fits 'alignment')")
        from dsbuild.registry import projectors, translators

        translators.get(o.translator)
        projectors.get(o.method)

    def info(self) -> DatasetInfo:
        o = self.options
        sources = []
        if not o.source:
            sources.append(Source(
                name="ixa-ehu/ner-evaluation-corpus-europarl", license="Europarl terms: no known copyright restrictions",
                url="https://github.com/ixa-ehu/ner-evaluation-corpus-europarl", citation=AGERRI_CITATION,
                description="English sentences with gold NER labels (source side); with the default given "
                            "translator, the Spanish side of the same sample is the translation."))
        else:
            sources.append(user_source(o, o.source, description="Labelled source data translated by this build."))
        if any(self._uses_shipped_parallel(lang) for lang in o.target_langs):
            from builders.europarl_ner import PARALLEL_SOURCES

            pair = "-".join(sorted({o.src_lang, *o.target_langs} & {"en", "es"}))
            if pair in PARALLEL_SOURCES:
                sources.append(PARALLEL_SOURCES[pair])
        # a local source by its name (its folder is this machine's business), a Hub id as given
        shown = (o.source_name or display_name(o.source)) if o.source else ""
        # the rows are the source, translated: its licence is the dataset's (Europarl terms fit no Hub id)
        license_, license_name = dataset_license(o) if o.source else ("unknown", "")
        return DatasetInfo(
            pretty_name=f"translate-train: {shown or 'Europarl NER (en)'} -> {', '.join(o.target_langs)}",
            summary=(f"Token-classification data in {', '.join(o.target_langs)} made by translating "
                     f"{shown or 'the English Europarl NER sample'} ({o.src_lang}) and projecting its labelled "
                     f"spans with the {o.method!r} method."),
            languages=sorted({o.src_lang, *o.target_langs}),
            license=license_,
            license_name=license_name,
            task_categories=["token-classification"],
            task_ids=["named-entity-recognition"],
            multilinguality="translation",
            source_datasets=[f"extended|{self._source_dataset_id()}"] if o.source else ["extended|europarl"],
            annotations_creators=["machine-generated"],
            language_creators=["machine-generated"] if o.translator != "given" else ["found"],
            tags=["label-projection", "translate-train", o.method],
            sources=sources,
            method=(f"Translator {o.translator}" + (f" ({o.model})" if o.model else "") + f"; projection method "
                    f"{o.method}; sentence policy {o.policy}."),
            limitations="Labels are projected automatically: expect missed or shifted spans where the translation "
                        "reorders or paraphrases names. QC columns let you filter by projection confidence.",
        )

    def _source_dataset_id(self) -> str:
        """The source for ``source_datasets``: a Hub id as given, a local file or folder by its stem
        (its folder is this machine's business, and the Hub allows no ``/`` path there)."""
        src = self.options.source
        return Path(src).stem if self._source_kind() in ("file", "folder") else src

    def configs(self) -> list[ConfigSpec]:
        self._check_options()
        labels = getattr(self, "labels", None)
        if labels is None:  # configs() before prepare(): read the labels now
            self._scan_source()
            labels = self.labels
        extra = {
            "source_id": datasets.Value("string"),
            "source_text": datasets.Value("string"),
            "source_tokens": datasets.List(datasets.Value("string")),
            "source_spans": datasets.List(span_feature()),
            "qc_source_spans": datasets.Value("int32"),
            "qc_projected_spans": datasets.Value("int32"),
            "qc_complete": datasets.Value("bool"),
            "qc_min_score": datasets.Value("float32"),
            "qc_length_ratio": datasets.Value("float32"),
            "qc": datasets.Value("string"),
        }
        return [ConfigSpec(name=lang, features=ner_features(labels, extra=extra), splits=list(self.split_names),
                           language=lang, description=f"{self.options.src_lang} -> {lang}: translated text, "
                                                      f"projected spans and tags, source sentence, QC columns.")
                for lang in self.options.target_langs]

    # ------------------------------------------------------------------ source data (lazy)
    def _source_kind(self) -> str:
        """``shipped`` (default sample), ``file`` (CoNLL/JSONL/Parquet), ``folder`` or ``hub``."""
        o = self.options
        if not o.source:
            return "shipped"
        path = Path(o.source)
        return "folder" if path.is_dir() else "file" if path.exists() else "hub"

    def _split_names(self) -> list[str]:
        o = self.options
        kind = self._source_kind()
        if kind in ("shipped", "file"):
            names = ["train" if o.source else "test"]
        else:
            names = list(self._hub().keys())
        if o.splits:
            missing = [s for s in o.splits if s not in names]
            if missing:
                raise ConfigError(f"translate-train: split(s) {missing} not in the source (it has {sorted(names)})")
            names = list(o.splits)
        return names

    def read_split(self, split: str) -> Iterator[Example]:
        """The source examples of one split, read lazily (``max_examples`` applied)."""
        o = self.options
        kind = self._source_kind()
        if kind in ("shipped", "file"):
            examples = self._iter_local(Path(o.source) if o.source else DEFAULT_SOURCE)
        else:
            examples = self._iter_hub(split)
        return islice(examples, o.max_examples) if o.max_examples > 0 else examples

    def _scan_source(self) -> None:
        """One streaming pass: split names, example counts and the label set (nothing kept in memory)."""
        labels: set[str] = set()
        self.split_names = self._split_names()
        self.split_sizes: dict[str, int] = {}
        for split in self.split_names:
            n = 0
            for ex in self.read_split(split):
                n += 1
                labels.update(s.label for s in ex.spans)
            self.split_sizes[split] = n
        self.labels = sorted(labels) or ["MISC"]

    def _iter_local(self, path: Path) -> Iterator[Example]:
        o = self.options
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            from dsbuild.io.jsonl import iter_jsonl

            return iter_jsonl(path, scheme=o.scheme, tokens_key=o.tokens_column,
                              tags_key=o.tags_column if o.tags_column != "ner_tags" else None)
        if suffix == ".parquet":
            return self._iter_parquet(path)
        if suffix in CONLL_SUFFIXES or not suffix:
            from dsbuild.io.conll import iter_conll

            return iter_conll(path, scheme=o.scheme, id_prefix=path.stem.split(".")[0] if o.source else "europarl-en")
        raise ConfigError(f"translate-train: cannot read {path}: use a CoNLL file ({', '.join(CONLL_SUFFIXES)}), "
                          f".jsonl or .parquet, or a Hub dataset name")

    def _iter_parquet(self, path: Path) -> Iterator[Example]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        names = _classlabel_names(parquet.schema_arrow.metadata, self.options.tags_column)
        i = 0
        for batch in parquet.iter_batches(batch_size=1000):  # streamed: one batch in memory
            for row in batch.to_pylist():
                # the file by name: ``source`` lands in the example's meta, and so in rejects.parquet
                yield self._row_example(row, str(row.get("id") or f"{path.stem}-{i}"), names, path.name, i + 1)
                i += 1

    def _hub(self) -> Any:
        """The Hub dataset (or local dataset folder) as streaming splits, opened once per process."""
        o = self.options

        def load() -> Any:
            try:
                return datasets.load_dataset(o.source, o.source_config or None, streaming=True)
            except Exception as err:  # datasets raises many types; the user needs one line
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise ConfigError(f"translate-train: cannot load source {o.source!r}: {first[:200]} "
                                  f"(not a local file either)") from None

        return self.cached("hub-source", load)

    def _iter_hub(self, split: str) -> Iterator[Example]:
        o = self.options
        dset = self._hub()[split]
        features = dset.features or {}
        feat = features.get(o.tags_column)
        if features and (o.tokens_column not in features or feat is None):
            raise ConfigError(f"translate-train: {o.source} split {split} has no {o.tokens_column!r} / "
                              f"{o.tags_column!r} columns (columns: {', '.join(features)}); set tokens_column / tags_column")
        inner = getattr(feat, "feature", None)
        names = list(inner.names) if isinstance(inner, datasets.ClassLabel) else None
        for i, row in enumerate(dset):
            # a local dataset folder by name (``source`` reaches rejects.parquet), a Hub id as given
            yield self._row_example(row, str(row.get("id") or f"{split}-{i}"), names, f"{display_name(o.source)}/{split}", i + 1)

    def _row_example(self, row: dict[str, Any], ex_id: str, names: list[str] | None, source: str, line: int) -> Example:
        """One Parquet / Hub row as an Example.

        Tokens must be strings and tags all strings or all ClassLabel ids: a number or ``null``
        among them is an InputError naming the source and row, never the text ``"3"`` / ``"None"``.
        """
        o = self.options
        if o.tokens_column not in row or o.tags_column not in row:
            raise InputError(f"row has no {o.tokens_column!r} or {o.tags_column!r}", source=source, line=line,
                             hint="set tokens_column / tags_column to the right column names")
        tokens, tags = row[o.tokens_column], row[o.tags_column]

        def is_str(value: Any) -> bool:
            return isinstance(value, str)

        def is_id(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def wrong_type(column: str, values: Any, expected: str, ok: Any) -> InputError:
            if isinstance(values, (list, tuple)):
                i = next(i for i, v in enumerate(values) if not ok(v))
                got = "null" if values[i] is None else f"{values[i]!r} ({type(values[i]).__name__})"
                what = f"item {i} of column {column!r} is {got}"
            else:
                what = f"column {column!r} holds {values!r:.40} ({type(values).__name__}), not a list"
            return InputError(f"{what}; expected {expected}", source=source, line=line, example_id=ex_id,
                              hint=f"store {column!r} as {expected} without nulls, or set tokens_column / "
                                   "tags_column to the right columns")

        if not isinstance(tokens, (list, tuple)) or not all(map(is_str, tokens)):
            raise wrong_type(o.tokens_column, tokens, "a list of token strings", is_str)
        tag_ok = is_id if isinstance(tags, (list, tuple)) and tags and is_id(tags[0]) else is_str
        if not isinstance(tags, (list, tuple)) or not all(map(tag_ok, tags)):
            raise wrong_type(o.tags_column, tags, "a list of tag strings (or of ClassLabel ids)", tag_ok)
        if tag_ok is is_id:
            if names is None:
                raise InputError("integer tags but no label names", source=source, line=line,
                                 hint="store tags as strings or as a ClassLabel feature")
            bad = next((t for t in tags if not 0 <= t < len(names)), None)
            if bad is not None:
                raise InputError(f"tag id {bad} is out of range for {len(names)} label names", source=source,
                                 line=line, example_id=ex_id, hint="check the ClassLabel names of the tags column")
            tags = [names[t] for t in tags]
        try:
            return Example.from_words(ex_id, list(tokens), tags=list(tags), scheme=o.scheme,
                                      meta={"source": source, "line": line})
        except InputError as err:
            raise InputError(err.message, source=source, line=line, example_id=ex_id, hint=err.hint) from None

    # ------------------------------------------------------------------ prepare
    def prepare(self, ctx: BuildContext) -> None:
        """Check options, scan the source once (splits, sizes, labels), record inputs. No model loads here."""
        self._check_options()
        dataset_license(self.options)  # a bad source_license fails before any work, not at the card
        self._scan_source()
        o = self.options
        kind = self._source_kind()
        if kind in ("shipped", "file"):
            path = Path(o.source) if o.source else DEFAULT_SOURCE
            ctx.add_input(path, role=f"{o.src_lang} labelled source", license="" if o.source else "Europarl terms")
        else:
            ctx.facts["source_hub"] = {"name": display_name(o.source), "config": o.source_config or None}
        ctx.add_seed("aligner/sampling", o.seed)
        from dsbuild.project.parallel import shipped_parallel_paths

        for lang in o.target_langs:
            if self._uses_shipped_parallel(lang):
                for path in shipped_parallel_paths(o.src_lang, lang) or ():
                    ctx.add_input(path, role="extra parallel text for the word aligner", license="Europarl terms")
            if o.translator == "given":
                self._record_given_input(lang, ctx)
        ctx.facts["translate_train"] = {"method": o.method, "translator": o.translator, "src_lang": o.src_lang,
                                        "policy": o.policy, "per_language": {}}

    def _record_given_input(self, lang: str, ctx: BuildContext) -> None:
        o = self.options
        if o.translations:
            path = Path(o.translations.replace("{lang}", lang))
            if not path.is_file():
                raise ConfigError(f"translate-train: translations file {path} not found (option translations)")
            ctx.add_input(path, role=f"given {lang} translations")
        elif o.source or lang not in DEFAULT_GIVEN:
            raise ConfigError(f"translate-train: no translations into {lang!r}: give --set translations=FILE "
                              f"(columns source,target), or use --set translator=hf-seq2seq --set model=...")
        else:
            ctx.add_input(DEFAULT_GIVEN[lang], role=f"given {lang} translations (Europarl side)", license="Europarl terms")

    # ------------------------------------------------------------------ sharded recipe
    def source(self, config: ConfigSpec, split: str) -> Iterator[Example]:
        return self.read_split(split)

    def count(self, config: ConfigSpec, split: str) -> int | None:
        return getattr(self, "split_sizes", {}).get(split)

    def steps(self, config: ConfigSpec, split: str) -> list[Step]:
        lang = config.name
        return [CheckSource(self, lang), Translate(self, lang), Project(self, lang), ToRow(self, lang)]

    def translator(self) -> Any:
        """The MT model (hf-seq2seq), loaded once per worker on the worker's device."""
        return self.cached("mt", self._hf_translator)

    def given(self, lang: str) -> Any:
        """The given translator for ``lang``, loaded once per worker."""
        return self.cached(f"given/{lang}", lambda: self._given_translator(lang))

    def projector(self, lang: str) -> Any:
        return self.cached(f"projector/{lang}", lambda: self._projector(lang))

    def gold_target(self, lang: str) -> dict[str, set[tuple[str, int, int]]] | None:
        """Human labels of the shipped target side (default build only), for the projection score."""
        o = self.options
        if o.translator != "given" or o.source or o.translations or lang not in DEFAULT_GIVEN:
            return None

        def load() -> dict[str, set[tuple[str, int, int]]]:
            from dsbuild.io.conll import read_conll

            return {ex.id: {(s.label, s.start, s.end) for s in ex.spans}
                    for ex in read_conll(DEFAULT_GIVEN[lang], id_prefix="europarl-en")}

        return self.cached(f"gold/{lang}", load)

    def _hf_translator(self) -> Any:
        from dsbuild.registry import translators

        o = self.options
        kwargs: dict[str, Any] = {"revision": o.revision or None, "beam_size": o.beam_size, "batch_size": o.batch_size,
                                  "seed": o.seed, "long_inputs": "split" if o.long_inputs == "split" else "error",
                                  "cache": Path(o.cache_dir) if o.cache_dir else None}
        if self.worker.device and "device" not in o.translator_options:
            kwargs["device"] = self.worker.device  # --devices: one device per worker
        kwargs.update(o.translator_options)
        try:
            if o.translator == "ct2" and o.compute_type:
                kwargs.setdefault("compute_type", o.compute_type)
            return translators.get(o.translator if o.translator in MODEL_TRANSLATORS else "hf-seq2seq")(o.model, **kwargs)
        except TypeError as err:
            raise ConfigError(f"translate-train: bad translator_options {o.translator_options}: {err}") from None

    def _given_translator(self, lang: str) -> Any:
        """The given translator for ``lang``: the user's file, or the shipped Europarl side."""
        from dsbuild.registry import translators

        o = self.options
        if o.translations:
            return translators.get("given")(path=Path(o.translations.replace("{lang}", lang)), key=o.translations_key)
        from dsbuild.io.conll import read_conll

        targets = read_conll(DEFAULT_GIVEN[lang], id_prefix="europarl-en")  # same ids as the English side
        return translators.get("given")({t.id: t.text for t in targets}, key="id")

    def _projector(self, lang: str) -> Any:
        from dsbuild.project import make_projector

        o = self.options
        options = dict(o.method_options)
        if o.method == "alignment":
            aligner_options = {"seed": o.seed, **o.aligner_options}
            if self._uses_shipped_parallel(lang) and "extra_src" not in aligner_options:
                from dsbuild.project.parallel import parallel_text

                # tokenised like the translations, so the aligner sees the same kind of tokens
                aligner_options.update(parallel_text(o.src_lang, lang, tokenizer=o.target_tokenizer))
            return make_projector("alignment", aligner=o.aligner, aligner_options=aligner_options,
                                  target_tokenizer=o.target_tokenizer, policy=o.policy, **options)
        return make_projector(o.method, target_tokenizer=o.target_tokenizer, policy=o.policy,
                              translator=self.translator(), **options)

    def _uses_shipped_parallel(self, lang: str) -> bool:
        """Whether the aligner also trains on the parallel text shipped for this language pair."""
        from dsbuild.project.parallel import shipped_parallel_paths

        o = self.options
        return (o.method == "alignment" and o.extra_parallel and o.aligner == "eflomal"
                and "extra_src" not in o.aligner_options and shipped_parallel_paths(o.src_lang, lang) is not None)

    def _row_or_reject(self, source: Example, proj: Any) -> dict[str, Any] | Reject:
        if proj.rejected:
            detail = "; ".join(f"{u.span.label} {source.span_text(u.span)!r}: {u.reason}"
                               + (f" ({u.detail})" if u.detail else "") for u in proj.unprojected)
            return Reject(source.id, str(proj.rejected), detail or str(proj.qc.get("detail", "")),
                          {"source": source.to_dict(), "target_text": proj.target.text})
        target = proj.target
        try:
            row = example_to_row(Example(id=source.id, text=target.text, tokens=target.tokens, spans=target.spans))
        except InputError as err:  # overlapping projected spans cannot be written as tags
            return Reject(source.id, "invalid-projection", str(err), {"source": source.to_dict(), "target_text": target.text})
        scores = [s.score for s in target.spans if s.score is not None]
        qc = {k: v for k, v in proj.qc.items() if _json_safe(v)}
        row.update({
            "source_id": source.id,
            "source_text": source.text,
            "source_tokens": source.words,
            "source_spans": [span_to_dict(s, source.text) for s in source.spans],
            "qc_source_spans": len(source.spans),
            "qc_projected_spans": len(target.spans),
            "qc_complete": not proj.unprojected,
            "qc_min_score": min(scores) if scores else None,
            "qc_length_ratio": round(len(target.tokens) / max(1, len(source.tokens)), 4),
            "qc": json.dumps({**qc, "unprojected": [{"label": u.span.label, "text": source.span_text(u.span),
                                                     "reason": u.reason} for u in proj.unprojected]},
                             sort_keys=True, ensure_ascii=False, default=str),
        })
        return row

    def finish(self, ctx: BuildContext) -> None:
        """Per-language tables, rates and the gold score, from the facts summed over shards."""
        facts = ctx.facts.setdefault("translate_train", {})
        stats: dict[str, int] = {}
        for lang, splits in ctx.facts.get("split_facts", {}).items():
            for split, f in splits.items():
                facts.setdefault("per_language", {}).setdefault(lang, {})[split] = {
                    "input": f.get("input", 0), "kept": f.get("kept", 0), "rejected": f.get("input", 0) - f.get("kept", 0),
                    "reject_reasons": dict(sorted(f.get("reject_reasons", {}).items())),
                    "source_spans": f.get("source_spans", 0), "projected_spans_kept": f.get("projected_spans_kept", 0)}
                for key, n in f.get("translator_stats", {}).items():
                    stats[key] = stats.get(key, 0) + n
                if "gold" in f:
                    ctx.quality.setdefault("projection_vs_human_labels", {})[f"{lang}/{split}"] = _prf(f["gold"])
        if stats:
            facts["translator_stats"] = stats
        for lang, splits in facts.get("per_language", {}).items():
            total_in = sum(s["input"] for s in splits.values())
            kept = sum(s["kept"] for s in splits.values())
            ctx.quality.setdefault("kept_rate", {})[lang] = round(kept / total_in, 4) if total_in else None
            spans_in = sum(s["source_spans"] for s in splits.values())
            spans_out = sum(s["projected_spans_kept"] for s in splits.values())
            ctx.quality.setdefault("projected_span_rate", {})[lang] = round(spans_out / spans_in, 4) if spans_in else None


# ---------------------------------------------------------------------- steps
@dataclass
class Item:
    """A source sentence on its way through the steps."""

    source: Example
    translation: str | None = None
    projection: Any = None


def _reject(ctx: BuildContext, ex: Example, reason: str, detail: str, example: dict[str, Any] | None = None) -> Reject:
    """A reject, counted by reason for the card."""
    _count_reason(ctx, reason)
    return Reject(ex.id, reason, detail, example if example is not None else ex.to_dict())


def _count_reason(ctx: BuildContext, reason: str) -> None:
    reasons = ctx.facts.setdefault("reject_reasons", {})
    reasons[reason] = reasons.get(reason, 0) + 1


class CheckSource(Step):
    """Empty sentences, and (hf-seq2seq, ``long_inputs=reject``) sentences over the model's limit."""

    name = "check"

    def __init__(self, builder: TranslateTrain, lang: str) -> None:
        self.builder, self.lang = builder, lang

    def run(self, items: list[Example], ctx: BuildContext) -> list[Item | Reject]:
        o = self.builder.options
        ctx.facts["input"] = ctx.facts.get("input", 0) + len(items)
        ctx.facts["source_spans"] = ctx.facts.get("source_spans", 0) + sum(len(ex.spans) for ex in items)
        gold = self.builder.gold_target(self.lang)
        if gold is not None:  # every input's human spans: those of rejected sentences count as missed
            counts = ctx.facts.setdefault("gold", {})
            counts["gold_spans"] = counts.get("gold_spans", 0) + sum(len(gold.get(ex.id, ())) for ex in items)
        out: list[Item | Reject] = [Item(ex) if ex.tokens and ex.text.strip() else
                                    _reject(ctx, ex, "empty-sentence", "the source sentence has no tokens")
                                    for ex in items]
        if o.translator in MODEL_TRANSLATORS and o.long_inputs == "reject":
            live = [i for i, it in enumerate(out) if isinstance(it, Item)]
            mt = self.builder.translator()
            too_long = mt.too_long([items[i].text for i in live], o.src_lang) if live else []
            for i, bad in zip(live, too_long):
                if bad:
                    out[i] = _reject(ctx, items[i], "too-long", f"more than {mt.max_input_tokens} source tokens "
                                                                f"for the MT model")
        return out


class Translate(Step):
    """Translate each sentence (hf-seq2seq, cached on disk) or look its translation up (given)."""

    name = "translate"

    def __init__(self, builder: TranslateTrain, lang: str) -> None:
        self.builder, self.lang = builder, lang

    def setup(self, ctx: BuildContext) -> None:
        if self.builder.options.translator == "given":
            d = self.builder.given(self.lang).describe()
            ctx.add_model("given-translations", revision=d["revision"], kind="translations", entries=d["entries"])
        else:
            # a local model folder by name: model and description reach the card
            d = portable_value(self.builder.translator().describe())
            ctx.add_model(d["model"], revision=d["revision"], kind="machine translation", family=d["family"],
                          **d["params"])
            ctx.settings.setdefault("translate_train", {})["translator_description"] = d

    def run(self, items: list[Item], ctx: BuildContext) -> list[Item | Reject]:
        o = self.builder.options
        texts = [it.source.text for it in items]
        if o.translator == "given":
            given = self.builder.given(self.lang)
            found = given.lookup(texts, o.src_lang, self.lang, ids=[it.source.id for it in items])
            return [_reject(ctx, it.source, "no-translation", f"no given {self.lang} translation (looked up by "
                                                              f"{given.key})") if not (t and t.strip())
                    else Item(it.source, t) for it, t in zip(items, found)]
        if o.method == "markers":  # markers translates the marked source itself, in the project step
            return list(items)
        mt = self.builder.translator()
        before = dict(mt.stats)
        out = mt.translate(texts, o.src_lang, self.lang)
        _add_counts(ctx.facts.setdefault("translator_stats", {}), before, mt.stats)
        return [Item(it.source, t) if t.strip() else
                _reject(ctx, it.source, "empty-translation", "the MT model returned an empty text")
                for it, t in zip(items, out)]


class Project(Step):
    """Project the source spans onto the translations with the chosen method."""

    name = "project"

    def __init__(self, builder: TranslateTrain, lang: str) -> None:
        self.builder, self.lang = builder, lang

    def run(self, items: list[Item], ctx: BuildContext) -> list[Item]:
        o = self.builder.options
        projector = self.builder.projector(self.lang)
        targets = None if o.method == "markers" else [it.translation for it in items]
        mt = self.builder.translator() if o.translator in MODEL_TRANSLATORS else None
        before = dict(mt.stats) if mt is not None else {}
        projections = projector.project([it.source for it in items], targets, src_lang=o.src_lang, tgt_lang=self.lang)
        if mt is not None:  # markers and constrained call the MT model here: count those calls too
            _add_counts(ctx.facts.setdefault("translator_stats", {}), before, mt.stats)
        describe = getattr(projector, "describe", None)
        ctx.settings.setdefault("translate_train", {}).setdefault(
            "projector", _stable(portable_value(describe() if callable(describe) else {"method": o.method})))
        return [Item(it.source, it.translation, proj) for it, proj in zip(items, projections)]


class ToRow(Step):
    """A row with QC columns, or a reject (unprojected spans under ``policy=reject``, invalid projection)."""

    name = "to-row"

    def __init__(self, builder: TranslateTrain, lang: str) -> None:
        self.builder, self.lang = builder, lang

    def run(self, items: list[Item], ctx: BuildContext) -> list[dict[str, Any] | Reject]:
        out = [self.builder._row_or_reject(it.source, it.projection) for it in items]
        f = ctx.facts
        for r in out:
            if isinstance(r, Reject):
                _count_reason(ctx, r.reason)
            else:
                f["kept"] = f.get("kept", 0) + 1
                f["projected_spans_kept"] = f.get("projected_spans_kept", 0) + len(r["spans"])
        gold = self.builder.gold_target(self.lang)
        if gold is not None:
            self._score(out, items, gold, ctx.facts.setdefault("gold", {}))
        return out

    @staticmethod
    def _score(out: list[dict[str, Any] | Reject], items: list[Item], gold: dict[str, set], counts: dict[str, int]) -> None:
        """True positives and projected spans of kept rows (gold spans are counted by CheckSource)."""
        for r in out:
            if isinstance(r, Reject):
                continue
            pred = {(s["label"], s["start"], s["end"]) for s in r["spans"]}
            counts["tp"] = counts.get("tp", 0) + len(pred & gold.get(r["id"], set()))
            counts["projected"] = counts.get("projected", 0) + len(pred)


def _prf(counts: dict[str, int]) -> dict[str, Any]:
    """Micro P/R/F1 from summed counts; gold spans of rejected sentences count as missed."""
    tp, projected, gold = counts.get("tp", 0), counts.get("projected", 0), counts.get("gold_spans", 0)
    p = tp / projected if projected else 0.0
    r = tp / gold if gold else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "gold_spans": gold, "projected_spans": projected}


def _add_counts(into: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    """Add what a counter dict gained between ``before`` and ``after`` (this shard's share)."""
    for key, value in after.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            into[key] = into.get(key, 0) + value - before.get(key, 0)


_UNSTABLE_KEYS = ("priors_cache", "priors_reused", "cache_dir", "device", "dtype")


def _stable(value: Any) -> Any:
    """``value`` without timings, cache paths and cache-hit flags, which differ between identical builds.

    (Local paths, e.g. an aligner's ``extra_src`` file, are named portably before this, by ``portable_value``.)
    """
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items()
                if k not in _UNSTABLE_KEYS and not k.endswith(("_s", "_seconds", "_time"))}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _classlabel_names(metadata: dict[bytes, bytes] | None, column: str) -> list[str] | None:
    """Label names of a ClassLabel tags column in a Parquet file written by ``datasets``."""
    if not metadata or b"huggingface" not in metadata:
        return None
    try:
        feats = json.loads(metadata[b"huggingface"])["info"]["features"][column]
    except (KeyError, ValueError):
        return None
    inner = feats.get("feature", {}) if isinstance(feats, dict) else {}
    return list(inner["names"]) if isinstance(inner, dict) and "names" in inner else None


__all__ = ["TranslateTrain", "TranslateTrainOptions", "tags_to_spans"]
