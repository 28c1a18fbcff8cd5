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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets

from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.features import example_to_row, ner_features, span_feature
from builders.europarl_ner import AGERRI_CITATION
from dsbuild.registry import builders
from dsbuild.spans import Example, span_to_dict, tags_to_spans

log = logging.getLogger(__name__)

EUROPARL_DIR = Path(__file__).parent / "data" / "europarl_ner"
DEFAULT_SOURCE = EUROPARL_DIR / "en-europarl.test.conll02"
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
    translator: str = option("given", "translator: hf-seq2seq (an MT model) or given (translations you have)")
    model: str = option("", "hf-seq2seq: model Hub id or local folder, e.g. facebook/nllb-200-distilled-600M")
    revision: str = option("", "hf-seq2seq: model revision (branch, tag or commit)")
    beam_size: int = option(4, "hf-seq2seq: beam size")
    batch_size: int = option(16, "hf-seq2seq: sentences per batch")
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
        if o.translator == "hf-seq2seq" and not o.model:
            raise ConfigError("translate-train: translator hf-seq2seq needs --set model=HUB_ID_OR_FOLDER")
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
            sources.append(Source(name=o.source, license="see the source dataset",
                                  description="Labelled source data translated by this build."))
        if any(self._uses_shipped_parallel(lang) for lang in o.target_langs):
            from builders.europarl_ner import PARALLEL_SOURCES

            pair = "-".join(sorted({o.src_lang, *o.target_langs} & {"en", "es"}))
            if pair in PARALLEL_SOURCES:
                sources.append(PARALLEL_SOURCES[pair])
        return DatasetInfo(
            pretty_name=f"translate-train: {o.source or 'Europarl NER (en)'} -> {', '.join(o.target_langs)}",
            summary=(f"Token-classification data in {', '.join(o.target_langs)} made by translating "
                     f"{o.source or 'the English Europarl NER sample'} ({o.src_lang}) and projecting its labelled "
                     f"spans with the {o.method!r} method."),
            languages=sorted({o.src_lang, *o.target_langs}),
            license="unknown",
            task_categories=["token-classification"],
            task_ids=["named-entity-recognition"],
            multilinguality="translation",
            source_datasets=[f"extended|{o.source}"] if o.source else ["extended|europarl"],
            annotations_creators=["machine-generated"],
            language_creators=["machine-generated"] if o.translator != "given" else ["found"],
            tags=["label-projection", "translate-train", o.method],
            sources=sources,
            method=(f"Translator {o.translator}" + (f" ({o.model})" if o.model else "") + f"; projection method "
                    f"{o.method}; sentence policy {o.policy}."),
            limitations="Labels are projected automatically: expect missed or shifted spans where the translation "
                        "reorders or paraphrases names. QC columns let you filter by projection confidence.",
        )

    def configs(self) -> list[ConfigSpec]:
        self._check_options()
        labels = getattr(self, "labels", None)
        if labels is None:  # configs() before prepare(): read the labels now
            self._load_source()
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

    # ------------------------------------------------------------------ source data
    def _load_source(self, ctx: BuildContext | None = None) -> None:
        o = self.options
        path = Path(o.source) if o.source else DEFAULT_SOURCE
        if path.is_dir():  # a local dataset folder: load_dataset reads it like a Hub dataset
            data = self._read_hub(str(path))
            if ctx is not None:
                ctx.facts["source_hub"] = {"name": str(path), "config": o.source_config or None}
        elif not o.source or path.exists():
            data = {"train" if o.source else "test": self._read_local(path)}
            if ctx is not None:
                ctx.add_input(path, role=f"{o.src_lang} labelled source", license="" if o.source else "Europarl terms")
        else:
            data = self._read_hub(o.source)
            if ctx is not None:
                ctx.facts["source_hub"] = {"name": o.source, "config": o.source_config or None}
        if o.splits:
            missing = [s for s in o.splits if s not in data]
            if missing:
                raise ConfigError(f"translate-train: split(s) {missing} not in the source (it has {sorted(data)})")
            data = {s: data[s] for s in o.splits}
        if o.max_examples > 0:
            data = {s: exs[: o.max_examples] for s, exs in data.items()}
        self.data = data
        self.split_names = list(data)
        self.labels = sorted({s.label for exs in data.values() for ex in exs for s in ex.spans}) or ["MISC"]

    def _read_local(self, path: Path) -> list[Example]:
        o = self.options
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            from dsbuild.io.jsonl import read_jsonl

            return read_jsonl(path, scheme=o.scheme, tokens_key=o.tokens_column,
                              tags_key=o.tags_column if o.tags_column != "ner_tags" else None)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            names = _classlabel_names(table.schema.metadata, o.tags_column)
            return [self._row_example(row, str(row.get("id") or f"{path.stem}-{i}"), names, str(path), i + 1)
                    for i, row in enumerate(table.to_pylist())]
        if suffix in CONLL_SUFFIXES or not suffix:
            from dsbuild.io.conll import read_conll

            return read_conll(path, scheme=o.scheme, id_prefix=path.stem.split(".")[0] if o.source else "europarl-en")
        raise ConfigError(f"translate-train: cannot read {path}: use a CoNLL file ({', '.join(CONLL_SUFFIXES)}), "
                          f".jsonl or .parquet, or a Hub dataset name")

    def _read_hub(self, name: str) -> dict[str, list[Example]]:
        o = self.options
        try:
            ds = datasets.load_dataset(name, o.source_config or None)
        except Exception as err:  # datasets raises many types; the user needs one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"translate-train: cannot load source {name!r}: {first[:200]} (not a local file either)") from None
        out: dict[str, list[Example]] = {}
        for split, dset in ds.items():
            feat = dset.features.get(o.tags_column)
            if o.tokens_column not in dset.features or feat is None:
                raise ConfigError(f"translate-train: {name} split {split} has no {o.tokens_column!r} / {o.tags_column!r} "
                                  f"columns (columns: {', '.join(dset.column_names)}); set tokens_column / tags_column")
            inner = getattr(feat, "feature", None)
            names = list(inner.names) if isinstance(inner, datasets.ClassLabel) else None
            out[split] = [self._row_example(row, str(row.get("id") or f"{split}-{i}"), names, f"{name}/{split}", i + 1)
                          for i, row in enumerate(dset)]
        return out

    def _row_example(self, row: dict[str, Any], ex_id: str, names: list[str] | None, source: str, line: int) -> Example:
        o = self.options
        if o.tokens_column not in row or o.tags_column not in row:
            raise InputError(f"row has no {o.tokens_column!r} or {o.tags_column!r}", source=source, line=line,
                             hint="set tokens_column / tags_column to the right column names")
        tags = row[o.tags_column]
        if names is not None or (tags and isinstance(tags[0], int)):
            if names is None:
                raise InputError("integer tags but no label names", source=source, line=line,
                                 hint="store tags as strings or as a ClassLabel feature")
            tags = [names[t] for t in tags]
        return Example.from_words(ex_id, [str(t) for t in row[o.tokens_column]], tags=tags, scheme=o.scheme,
                                  meta={"source": source, "line": line})

    # ------------------------------------------------------------------ prepare
    def prepare(self, ctx: BuildContext) -> None:
        self._check_options()
        self._load_source(ctx)
        o = self.options
        self.translators: dict[str, Any] = {}
        ctx.add_seed("aligner/sampling", o.seed)
        from dsbuild.project.parallel import shipped_parallel_paths

        for lang in o.target_langs:
            if self._uses_shipped_parallel(lang):
                for path in shipped_parallel_paths(o.src_lang, lang) or ():
                    ctx.add_input(path, role="extra parallel text for the word aligner", license="Europarl terms")
        ctx.facts["translate_train"] = {"method": o.method, "translator": o.translator, "src_lang": o.src_lang,
                                        "policy": o.policy, "per_language": {}}
        if o.translator == "hf-seq2seq":
            self.mt = self._hf_translator()
            d = self.mt.describe()
            ctx.add_model(d["model"], revision=d["revision"], kind="machine translation", family=d["family"],
                          **d["params"])
            ctx.facts["translate_train"]["translator_description"] = d
        else:
            self.mt = None
            # every target language needs its translations before anything is built
            self.given = {lang: self._given_translator(lang, ctx) for lang in o.target_langs}

    def _hf_translator(self) -> Any:
        from dsbuild.registry import translators

        o = self.options
        kwargs: dict[str, Any] = {"revision": o.revision or None, "beam_size": o.beam_size, "batch_size": o.batch_size,
                                  "seed": o.seed, "long_inputs": "split" if o.long_inputs == "split" else "error",
                                  "cache": Path(o.cache_dir) if o.cache_dir else None}
        kwargs.update(o.translator_options)
        try:
            return translators.get("hf-seq2seq")(o.model, **kwargs)
        except TypeError as err:
            raise ConfigError(f"translate-train: bad translator_options {o.translator_options}: {err}") from None

    def _given_translator(self, lang: str, ctx: BuildContext) -> Any:
        """The given translator for ``lang``: the user's file, or the shipped Europarl side."""
        from dsbuild.registry import translators

        o = self.options
        if o.translations:
            path = Path(o.translations.replace("{lang}", lang))
            tr = translators.get("given")(path=path, key=o.translations_key)
            ctx.add_input(path, role=f"given {lang} translations")
            return tr
        if o.source or lang not in DEFAULT_GIVEN:
            raise ConfigError(f"translate-train: no translations into {lang!r}: give --set translations=FILE "
                              f"(columns source,target), or use --set translator=hf-seq2seq --set model=...")
        from dsbuild.io.conll import read_conll

        targets = read_conll(DEFAULT_GIVEN[lang], id_prefix="europarl-en")  # same ids as the English side
        ctx.add_input(DEFAULT_GIVEN[lang], role=f"given {lang} translations (Europarl side)", license="Europarl terms")
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
        return make_projector(o.method, target_tokenizer=o.target_tokenizer, policy=o.policy, translator=self.mt,
                              **options)

    def _uses_shipped_parallel(self, lang: str) -> bool:
        """Whether the aligner also trains on the parallel text shipped for this language pair."""
        from dsbuild.project.parallel import shipped_parallel_paths

        o = self.options
        return (o.method == "alignment" and o.extra_parallel and o.aligner == "eflomal"
                and "extra_src" not in o.aligner_options and shipped_parallel_paths(o.src_lang, lang) is not None)

    # ------------------------------------------------------------------ generate
    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        o = self.options
        lang = config.name
        examples = self.data[split]
        ctx.read(len(examples))
        translator = self.mt if self.mt is not None else self.given[lang]
        if self.mt is None:
            ctx.add_model("given-translations", revision=translator.describe()["revision"], kind="translations",
                          entries=translator.describe()["entries"])
        rejects: dict[int, Reject] = {}
        for i, ex in enumerate(examples):
            if not ex.tokens or not ex.text.strip():
                rejects[i] = Reject(ex.id, "empty-sentence", "the source sentence has no tokens", ex.to_dict())
        todo = [i for i in range(len(examples)) if i not in rejects]
        if self.mt is not None:
            if o.long_inputs == "reject":
                too_long = self.mt.too_long([examples[i].text for i in todo], o.src_lang)
                for i, bad in zip(todo, too_long):
                    if bad:
                        rejects[i] = Reject(examples[i].id, "too-long", f"more than {self.mt.max_input_tokens} source "
                                            f"tokens for the MT model", examples[i].to_dict())
                todo = [i for i in todo if i not in rejects]
        translations: dict[int, str] = {}
        with ctx.timer(f"translate/{lang}"):
            if self.mt is None:
                found = translator.lookup([examples[i].text for i in todo], o.src_lang, lang,
                                          ids=[examples[i].id for i in todo])
                for i, t in zip(todo, found):
                    if t is None or not t.strip():
                        rejects[i] = Reject(examples[i].id, "no-translation", f"no given {lang} translation "
                                            f"(looked up by {translator.key})", examples[i].to_dict())
                    else:
                        translations[i] = t
            elif o.method != "markers":  # markers translates the marked source itself
                out = self.mt.translate([examples[i].text for i in todo], o.src_lang, lang)
                for i, t in zip(todo, out):
                    if t.strip():
                        translations[i] = t
                    else:
                        rejects[i] = Reject(examples[i].id, "empty-translation", "the MT model returned an empty text",
                                            examples[i].to_dict())
        todo = [i for i in todo if i not in rejects]
        projector = self._projector(lang)
        with ctx.timer(f"project/{lang}"):
            targets = None if o.method == "markers" else [translations[i] for i in todo]
            projections = projector.project([examples[i] for i in todo], targets, src_lang=o.src_lang, tgt_lang=lang) \
                if todo else []
        describe = getattr(projector, "describe", None)
        ctx.facts["translate_train"]["projector"] = _stable(describe() if callable(describe) else {"method": o.method})
        results: dict[int, dict[str, Any] | Reject] = dict(rejects)
        for i, proj in zip(todo, projections):
            results[i] = self._row_or_reject(examples[i], proj)
        kept = sum(1 for r in results.values() if not isinstance(r, Reject))
        reasons = Counter(r.reason for r in results.values() if isinstance(r, Reject))
        spans_in = sum(len(ex.spans) for ex in examples)
        spans_out = sum(len(r["spans"]) for r in results.values() if not isinstance(r, Reject))
        per_lang = ctx.facts["translate_train"]["per_language"].setdefault(lang, {})
        per_lang[split] = {"input": len(examples), "kept": kept, "rejected": len(examples) - kept,
                           "reject_reasons": dict(sorted(reasons.items())), "source_spans": spans_in,
                           "projected_spans_kept": spans_out}
        ctx.facts["current"] = per_lang[split]
        if self.mt is not None:
            ctx.facts["translate_train"]["translator_stats"] = dict(self.mt.stats)
        if self.mt is None and not o.source and lang in DEFAULT_GIVEN:
            ctx.quality.setdefault("projection_vs_human_labels", {})[f"{lang}/{split}"] = self._gold_score(lang, results)
        for i in range(len(examples)):
            yield results[i]

    def _gold_score(self, lang: str, results: dict[int, dict[str, Any] | Reject]) -> dict[str, Any]:
        """Projected spans vs the human labels of the shipped target side (same text), micro P/R/F1.

        Spans are compared by label and character offsets; the gold spans of rejected sentences
        count as missed, so the figure measures the whole pipeline, not only what was kept.
        """
        from dsbuild.io.conll import read_conll

        gold = {ex.id: {(s.label, s.start, s.end) for s in ex.spans}
                for ex in read_conll(DEFAULT_GIVEN[lang], id_prefix="europarl-en")}
        tp = fp = fn = 0
        for r in results.values():
            if isinstance(r, Reject):
                fn += len(gold.get(r.id, ()))
                continue
            pred = {(s["label"], s["start"], s["end"]) for s in r["spans"]}
            g = gold.get(r["id"], set())
            tp, fp, fn = tp + len(pred & g), fp + len(pred - g), fn + len(g - pred)
        p = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        return {"precision": round(p, 4), "recall": round(rc, 4), "f1": round(2 * p * rc / (p + rc), 4) if p + rc else 0.0,
                "gold_spans": tp + fn, "projected_spans": tp + fp}

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
        facts = ctx.facts.get("translate_train", {})
        for lang, splits in facts.get("per_language", {}).items():
            total_in = sum(s["input"] for s in splits.values())
            kept = sum(s["kept"] for s in splits.values())
            ctx.quality.setdefault("kept_rate", {})[lang] = round(kept / total_in, 4) if total_in else None
            spans_in = sum(s["source_spans"] for s in splits.values())
            spans_out = sum(s["projected_spans_kept"] for s in splits.values())
            ctx.quality.setdefault("projected_span_rate", {})[lang] = round(spans_out / spans_in, 4) if spans_in else None


_UNSTABLE_KEYS = ("priors_cache", "priors_reused", "cache_dir", "device", "dtype")


def _stable(value: Any) -> Any:
    """``value`` without timings, cache paths and cache-hit flags, which differ between identical builds."""
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
