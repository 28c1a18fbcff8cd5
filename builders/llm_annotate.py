"""llm-annotate: label texts with an LLM teacher, and measure the teacher against human labels.

After Kuzman & Ljubešić (arXiv 2411.19638): an LLM labels news texts zero-shot from the label
definitions (by default the 17 top-level IPTC Media Topics), its agreement with human labels is
measured on a human-labelled test split, and a student classifier can be trained on its labels
(``scripts/student.py``). Recipe:

1. **Source**: a local JSONL / CSV / TSV / Parquet file or a Hub dataset (``datasets.load_dataset``,
   streamed). Default: the MasakhaNEWS test splits shipped with dsbuild (eng, amh, ibo, xho, pcm;
   human labels mapped to IPTC).
2. **Splits** (one pass in ``prepare``, see :mod:`dsbuild.annotate.splits`): duplicates by
   normalised text are rejects; ``test_fraction`` of the human-labelled texts, stratified per
   language and label, form the **test** split (human labels are the ground truth); the rest is
   labelled by the teacher and split into **train** / **dev** per language.
3. **Check**: empty texts are rejects; texts over ``max_words`` words are truncated (flagged) or
   rejected (``on_too_long``).
4. **Annotate** with a registered LLM backend (``openai``, ``transformers``, ``vllm``, or the
   offline stand-in ``definition-overlap``, which is not an LLM): one prompt per text from a Jinja
   template with the label definitions; ``self_consistency`` samples per text give a majority
   label and an agreement score. ``constrain`` / ``json_output`` ask for structured output (a label
   enum, or a JSON object ``{"topic": ...}``); ``decode=score`` picks the label of highest
   log-probability (``transformers``). Answers are cached on disk by the backend, so a killed build
   resumes without asking again. A server's context-length error is a ``too-long`` reject.
5. **Parse**: answers outside the schema are rejects (``unparseable`` / ``out-of-schema``) with the
   raw answer kept; in the test split the human-labelled text is kept and the teacher's failure
   counts as a wrong answer.
6. **Quality**: teacher vs human accuracy, macro-F1, Cohen's kappa, Krippendorff's alpha, per-label
   F1, per language; a confusion-matrix PNG shipped with the dataset.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import datasets
import yaml

import dsbuild.annotate.baseline_teacher  # noqa: F401  (registers the definition-overlap backend)
from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, display_name, portable_value, user_source)
from dsbuild.annotate import agreement
from dsbuild.annotate.parse import ParseResult, parse_answer
from dsbuild.annotate.prompt import PromptTemplate, prompt_hash
from dsbuild.annotate.schema import DATA_DIR, SHIPPED, LabelSchema, label_keywords, load_schema
from dsbuild.annotate.splits import SPLIT_NAMES, Record, SplitPlan, assign_splits, text_key
from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.io.jsonl import iter_csv_dicts, iter_json_objects
from dsbuild.pipeline import Step
from dsbuild.registry import builders

log = logging.getLogger(__name__)

MASAKHANEWS_DIR = DATA_DIR / "masakhanews"
#: shipped MasakhaNEWS folders and the language code their rows carry (ISO 639-1 where there is one)
MASAKHANEWS_LANGS = {"eng": "en", "amh": "am", "ibo": "ig", "xho": "xh", "pcm": "pcm"}
MASAKHANEWS_CITATION = """@inproceedings{Adelani2023MasakhaNEWSNT,
  title={MasakhaNEWS: News Topic Classification for African languages},
  author={David Ifeoluwa Adelani and Marek Masiak and Israel Abebe Azime and Jesujoba Oluwadara Alabi and Atnafu Lambebo Tonja and others},
  booktitle={Proceedings of IJCNLP-AACL 2023},
  year={2023}
}"""
KUZMAN_CITATION = """@article{kuzman2024llmteacherstudent,
  title={{LLM Teacher-Student Framework for Text Classification With No Manually Annotated Data: A Case Study in IPTC News Topic Classification}},
  author={Kuzman, Taja and Ljube{\\v{s}}i{\\'c}, Nikola},
  journal={arXiv preprint arXiv:2411.19638},
  year={2024}
}"""
MASAKHANEWS_LICENSE_NOTE = ("AFL-3.0 per the Hugging Face dataset card (masakhane/masakhanews); a pending, unmerged "
                            "change on the GitHub repository (PR #2) proposes a non-commercial licence (CC BY-NC-SA 4.0 "
                            "wording, commercial use only with the authors' approval). Article texts: BBC News "
                            "language services and Isolezwe")
LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
CONFIG = "default"
PICTURE = "confusion_matrix.png"


@dataclass
class LlmAnnotateOptions:
    source: str = option("", "texts to label: a local .jsonl/.csv/.tsv/.parquet file or a Hub dataset id; empty = "
                             "the shipped MasakhaNEWS test texts (eng, amh, ibo, xho, pcm) with their human labels")
    source_config: str = option("", "Hub source: config (subset) name")
    source_split: str = option("", "Hub source: split to read (default: every split, in order)")
    text_column: str = option("text", "column with the text; 'headline+text' joins columns with a newline")
    id_column: str = option("id", "column with a unique id (absent: ids are made from the row number)")
    language_column: str = option("language", "column with the language code (absent: option language)")
    language: str = option("und", "language code of every text when there is no language column")
    label_column: str = option("label", "column with human labels (the test split's ground truth); absent or "
                                        "empty cells: unlabelled texts")
    label_map: dict = option({}, "human label -> schema label (e.g. {sports: sport}); a value '' makes those "
                                 "texts unlabelled")
    schema: str = option("iptc", "label schema: iptc (17 top-level IPTC Media Topics), a YAML file, or an IPTC "
                                 "mapping .json file")
    iptc_level: int = option(1, "IPTC mapping .json schema: topic level (1 = top level)")
    template: str = option("", "Jinja prompt template file using {{ text }} (and labels); empty = the default")
    system_prompt: str = option("", "system message sent before each prompt (empty: none, as in the paper)")
    backend: str = option("definition-overlap", "LLM backend: openai, transformers, vllm, or definition-overlap "
                                                "(offline stand-in baseline, NOT an LLM)")
    model: str = option("", "model: Hub id or folder (transformers, vllm) or the server's model name (openai)")
    revision: str = option("", "model revision (branch, tag or commit)")
    base_url: str = option("", "openai: server URL, e.g. http://localhost:8000/v1 (default: OPENAI_BASE_URL or OpenAI)")
    backend_options: dict = option({}, "more backend options (e.g. {concurrency: 8, timeout: 60, device: cuda})")
    cache_dir: str = option("", "answer cache folder (default $DSBUILD_CACHE/llm)")
    decode: Literal["generate", "score"] = option("generate", "generate an answer, or score each label's "
                                                              "log-probability (transformers; single-label)")
    constrain: bool = option(False, "ask the backend to constrain answers to the label names where it can (openai: "
                                    "response_format JSON schema with an enum; vllm: guided choice or JSON)")
    json_output: bool = option(False, "ask for a JSON object {\"topic\": ...} through the server's structured output "
                                      "(openai response_format, vllm guided JSON; transformers ignores it), as the "
                                      "paper's teacher did")
    temperature: float = option(0.0, "sampling temperature (0 = greedy, as in the paper)")
    max_tokens: int = option(64, "answer length limit in tokens")
    top_p: float = option(1.0, "nucleus sampling")
    seed: int = option(1, "seed of sampling and of the split assignment")
    multi_label: bool = option(False, "several labels per text")
    self_consistency: int = option(1, "samples per text (k); the majority label is kept with its agreement share")
    max_words: int = option(512, "texts longer than this many words are too long (the paper cut at 512 words)")
    on_too_long: Literal["truncate", "reject"] = option("truncate", "too-long texts: prompt with the first max_words "
                                                                    "words (flagged), or reject them")
    test_fraction: float = option(0.3, "share of the human-labelled texts kept as the human-labelled test split "
                                       "(per language and label)")
    dev_fraction: float = option(0.1, "share of the teacher-labelled texts in the dev split (per language)")
    max_examples: int = option(0, "read only the first N texts (0 = all)")
    batch_size: int = option(16, "prompts per backend call")
    terms_of_use: str = option("", "the teacher model's terms of use / licence, for the card (e.g. the provider's "
                                   "terms on using outputs to train models)")
    source_name: str = option("", SOURCE_NAME_HELP)
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


@dataclass
class Item:
    """One text on its way through the steps."""

    index: int
    id: str
    text: str
    language: str
    split: str
    human_label: str | None = None
    source_label: str | None = None
    duplicate_of: str | None = None
    prompt_text: str = ""
    truncated: bool = False
    answers: list[str] = field(default_factory=list)
    labels: tuple[str, ...] = ()
    agreement: float = 0.0
    status: str = "ok"
    detail: str = ""

    def example(self) -> dict[str, Any]:
        """JSON-safe input for the rejects table."""
        return {"id": self.id, "text": self.text, "language": self.language, "human_label": self.source_label}


@builders.register("llm-annotate")
class LlmAnnotate(Builder):
    name = "llm-annotate"
    version = "1.0.0"
    description = ("Label texts with an LLM teacher from label definitions (default: IPTC news topics) and "
                   "measure it against human labels; teacher-labelled train/dev, human-labelled test.")
    Options = LlmAnnotateOptions
    card_template = "llm-annotate.md.j2"
    history = [("1.0.0", "First release: openai/transformers/vllm backends and the definition-overlap stand-in; "
                         "self-consistency; teacher vs human agreement and a confusion-matrix picture.")]

    # ------------------------------------------------------------------ options, schema, prompt
    def _check_options(self) -> None:
        o = self.options
        from dsbuild.registry import llms

        factory = llms.get(o.backend)  # an unknown backend: one line with close matches
        from dsbuild.llm.base import LLM

        if o.decode == "score" and isinstance(factory, type) and issubclass(factory, LLM) and \
                factory.score_choices is LLM.score_choices:
            raise ConfigError(f"llm-annotate: decode=score needs the log-probability of each label, which backend "
                              f"{o.backend!r} cannot give; use backend transformers, or --set constrain=true to "
                              f"constrain generation to the label names")
        if o.backend not in ("definition-overlap",) and not o.model:
            raise ConfigError(f"llm-annotate: backend {o.backend!r} needs --set model=... (a model id, folder or "
                              f"the server's model name)")
        for key, low, high in (("test_fraction", 0.0, 1.0), ("dev_fraction", 0.0, 1.0)):
            if not low <= getattr(o, key) <= high:
                raise ConfigError(f"llm-annotate: option {key} must be between {low} and {high}, got {getattr(o, key)}")
        if o.self_consistency < 1 or o.max_words < 1 or o.batch_size < 1:
            raise ConfigError("llm-annotate: self_consistency, max_words and batch_size must be at least 1")
        if o.decode == "score" and (o.multi_label or o.self_consistency > 1):
            raise ConfigError("llm-annotate: decode=score picks the single most likely label; it does not combine "
                              "with multi_label or self_consistency > 1")
        if o.self_consistency > 1 and o.temperature == 0:
            log.warning("llm-annotate: %d samples at temperature 0 are usually identical; set temperature > 0 for "
                        "self-consistency", o.self_consistency)
        self.schema(), self.template()

    def schema(self) -> LabelSchema:
        """The label schema (read once per process)."""
        return self.cached("schema", lambda: load_schema(self.options.schema, level=self.options.iptc_level))

    def template(self) -> PromptTemplate:
        return self.cached("template", lambda: PromptTemplate.load(self.options.template))

    def label_map(self) -> dict[str, str | None]:
        """Human label -> schema label: the option, or (default source) the shipped MasakhaNEWS table."""
        o = self.options
        raw = o.label_map or ({} if o.source else
                              yaml.safe_load((MASAKHANEWS_DIR / "iptc_label_map.yaml").read_text(encoding="utf-8")))
        schema = self.schema()
        out: dict[str, str | None] = {}
        for key, value in raw.items():
            if value in ("", None):
                out[str(key)] = None
                continue
            target = schema.lookup(str(value))
            if target is None:
                raise ConfigError(f"llm-annotate: label_map maps {key!r} to {value!r}, which is not a label of the "
                                  f"schema ({', '.join(schema.names[:6])}...)")
            out[str(key)] = target
        return out

    # ------------------------------------------------------------------ info / configs
    def info(self) -> DatasetInfo:
        o = self.options
        schema = self.schema()
        sources = [self._schema_source(schema)]
        if o.source:
            sources.insert(0, user_source(o, o.source, description="Texts labelled by the teacher (and human labels "
                                                                   "for the test split, when present)."))
            license_, license_name = dataset_license(o)
        else:
            sources.insert(0, Source(
                name="MasakhaNEWS (test splits: eng, amh, ibo, xho, pcm)", license=MASAKHANEWS_LICENSE_NOTE,
                url="https://github.com/masakhane-io/masakhane-news", citation=MASAKHANEWS_CITATION,
                description="Human-labelled news texts (BBC, Isolezwe); their labels are mapped to IPTC top-level "
                            "topics (partial, many-to-one mapping)."))
            license_, license_name = "afl-3.0", ""
        languages = sorted(getattr(self, "languages", None) or
                           ([*MASAKHANEWS_LANGS.values()] if not o.source else [o.language]))
        teacher = "the definition-overlap stand-in baseline (not an LLM)" if self._is_baseline() else \
            f"the {o.backend} backend with {display_name(o.model)}"
        return DatasetInfo(
            pretty_name=f"llm-annotate: {schema.name} labels on {o.source_name or display_name(o.source) or 'MasakhaNEWS'}",
            summary=(f"Texts labelled with the {len(schema.labels)} labels of `{schema.name}` by {teacher}, from the "
                     f"label definitions (after Kuzman & Ljubešić 2024): teacher-labelled train/dev splits and a "
                     f"human-labelled test split with the teacher's label beside the human one."),
            languages=languages, license=license_, license_name=license_name,
            task_categories=["text-classification"],
            task_ids=["multi-label-classification" if o.multi_label else "topic-classification"],
            multilinguality="multilingual" if len(languages) > 1 else "monolingual",
            source_datasets=[f"extended|{Path(o.source).stem if Path(o.source).exists() else o.source}"]
            if o.source else ["extended|masakhane/masakhanews"],
            annotations_creators=["machine-generated", "expert-generated"] if self._has_labels() else ["machine-generated"],
            language_creators=["found"], tags=["llm-annotation", "teacher-student", "news-topics"],
            sources=sources, homepage="https://arxiv.org/abs/2411.19638",
            method=f"Teacher: {teacher}.",
            limitations=self._limitations())

    def _schema_source(self, schema: LabelSchema) -> Source:
        if self.options.schema in SHIPPED or self.options.schema.endswith(".json"):
            return Source(name="IPTC Media Topics (International Press Telecommunications Council)",
                          license="IPTC NewsCodes: free of charge, IPTC must be acknowledged; the mapping file "
                                  "from TajaKuzman/IPTC-Media-Topic-Classification is BSD-2-Clause",
                          url="https://iptc.org/standards/media-topics/", citation=KUZMAN_CITATION,
                          description="Label names and definitions (17 top-level topics, schema 2023-10-24).")
        return Source(name=f"label schema {schema.origin}", license=schema.license or "unknown", url=schema.source,
                      description="Label names and definitions given to the teacher.")

    def _limitations(self) -> str:
        base = ("Teacher labels are machine-generated and inherit the teacher's errors and biases; the agreement "
                "figures say how often it matches the human labels of the test split. ")
        if not self.options.source:
            base += ("MasakhaNEWS has 7 topics that map onto 7 of the 17 IPTC labels (partially: BBC politics can be "
                     "conflict, crime or society in IPTC terms), so answers with the other 10 labels count as "
                     "wrong even where they are defensible. ")
        if self._is_baseline():
            base += ("The teacher here is the definition-overlap stand-in, a word-overlap baseline, not an LLM: it "
                     "knows only English words of the label vocabulary and abstains on most non-English texts.")
        return base

    def _is_baseline(self) -> bool:
        return self.options.backend == "definition-overlap"

    def _has_labels(self) -> bool:
        return not self.options.source or bool(self.options.label_column)

    def features(self) -> datasets.Features:
        names = self.schema().names
        label = datasets.ClassLabel(names=names)
        multi = self.options.multi_label
        return datasets.Features({
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "language": datasets.Value("string"),
            "label": datasets.List(label) if multi else label,
            "label_source": datasets.Value("string"),
            "teacher_label": datasets.List(datasets.Value("string")) if multi else datasets.Value("string"),
            "teacher_agreement": datasets.Value("float32"),
            "teacher_samples": datasets.Value("int32"),
            "teacher_answer": datasets.Value("string"),
            "teacher_status": datasets.Value("string"),
            "truncated": datasets.Value("bool"),
            "source_label": datasets.Value("string"),
        })

    def configs(self) -> list[ConfigSpec]:
        self._check_options()
        return [ConfigSpec(CONFIG, self.features(), ["train", "dev", "test"],
                           description="train/dev: `label` is the teacher's (`label_source` teacher); test: `label` "
                                       "is the human label (`label_source` human) and `teacher_label` the teacher's.")]

    # ------------------------------------------------------------------ reading the source
    def _source_kind(self) -> str:
        o = self.options
        if not o.source:
            return "shipped"
        path = Path(o.source).expanduser()
        if path.is_file():
            if path.suffix.lower() not in LOCAL_SUFFIXES:
                raise ConfigError(f"llm-annotate: cannot read {path.name}: use .jsonl, .csv, .tsv or .parquet, or a "
                                  f"Hub dataset id")
            return "file"
        if path.suffix.lower() in LOCAL_SUFFIXES or o.source.startswith((".", "/", "~")):
            raise ConfigError(f"llm-annotate: source file {o.source} not found (option source)")
        return "hub"

    def records(self) -> Iterator[dict[str, Any]]:
        """The source rows as ``{id, text, language, label, line, where}``, lazily, in a stable order."""
        kind = self._source_kind()
        rows = self._shipped() if kind == "shipped" else self._hub_rows() if kind == "hub" else self._file_rows()
        n = self.options.max_examples
        return islice(rows, n) if n > 0 else rows

    def _shipped(self) -> Iterator[dict[str, Any]]:
        for folder, lang in MASAKHANEWS_LANGS.items():
            path = MASAKHANEWS_DIR / folder / "test.tsv.gz"
            with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t")
                for i, row in enumerate(reader):
                    text = "\n".join(t for t in (row.get("headline") or "", row.get("text") or "") if t.strip())
                    yield {"id": f"masakhanews-{folder}-{i:04d}", "text": text, "language": lang,
                           "label": row.get("category"), "where": f"{BuildContext.portable_path(path)}",
                           "line": i + 2}

    def _file_rows(self) -> Iterator[dict[str, Any]]:
        path = Path(self.options.source).expanduser()
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            raw: Iterator[tuple[int, Any]] = self._parquet(path)
        elif suffix in (".jsonl", ".json"):
            raw = iter_json_objects(path, hint="write one JSON object per line")
        else:
            raw = iter_csv_dicts(path, delimiter="\t" if suffix == ".tsv" else ",")
        for line, row in raw:
            yield self._row(row, path.name, line, f"{path.stem}-{line}")

    def _parquet(self, path: Path) -> Iterator[tuple[int, Any]]:
        import pyarrow.parquet as pq

        i = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1000):  # streamed: one batch in memory
            for row in batch.to_pylist():
                i += 1
                yield i, row

    def _hub_rows(self) -> Iterator[dict[str, Any]]:
        o = self.options
        try:
            loaded = datasets.load_dataset(o.source, o.source_config or None, split=o.source_split or None,
                                           streaming=True)
        except Exception as err:  # datasets raises many types; the user needs one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"llm-annotate: cannot load source {o.source!r}: {first[:200]} (not a local file "
                              f"either)") from None
        parts = [(o.source_split, loaded)] if o.source_split else list(loaded.items())
        for split, dset in parts:
            names = None
            feat = (dset.features or {}).get(o.label_column) if o.label_column else None
            if isinstance(feat, datasets.ClassLabel):
                names = feat.names
            for i, row in enumerate(dset):
                if names is not None and isinstance(row.get(o.label_column), int) and row[o.label_column] >= 0:
                    row = {**row, o.label_column: names[row[o.label_column]]}
                yield self._row(row, f"{o.source}/{split}", i + 1, f"{split}-{i}")

    def _row(self, row: Any, where: str, line: int, default_id: str) -> dict[str, Any]:
        o = self.options
        if not isinstance(row, dict):
            raise InputError(f"expected an object with a {o.text_column!r} field, got {type(row).__name__}",
                             source=where, line=line)
        columns = o.text_column.split("+")
        missing = [c for c in columns if c not in row]
        if missing:
            raise InputError(f"no column {missing[0]!r} (columns: {', '.join(map(str, row))[:200]})", source=where,
                             line=line, hint="set text_column to the column holding the text")
        if len(columns) == 1:  # the text as given (an all-space text stays so in the rejects table)
            text = "" if row[columns[0]] is None else str(row[columns[0]])
        else:
            text = "\n".join(str(row[c]) for c in columns if row[c] is not None and str(row[c]).strip())
        label = row.get(o.label_column) if o.label_column else None
        return {"id": str(row.get(o.id_column) or default_id), "text": text,
                "language": str(row.get(o.language_column) or o.language), "where": where, "line": line,
                "label": None if label is None or str(label).strip() == "" else str(label).strip()}

    # ------------------------------------------------------------------ prepare: one pass, the split plan
    def prepare(self, ctx: BuildContext) -> None:
        """Check options, read the source once (ids, languages, human labels, duplicates) and plan the splits."""
        self._check_options()
        dataset_license(self.options)  # a bad source_license fails before any work
        o = self.options
        kind = self._source_kind()
        plan, languages, labels = self._plan()
        self.plan, self.languages = plan, sorted(languages)
        if kind == "shipped":
            for folder in MASAKHANEWS_LANGS:
                ctx.add_input(MASAKHANEWS_DIR / folder / "test.tsv.gz", role=f"MasakhaNEWS {folder} test texts "
                              f"and human labels", license="afl-3.0 (pending change towards non-commercial)")
            ctx.add_input(MASAKHANEWS_DIR / "iptc_label_map.yaml", role="MasakhaNEWS -> IPTC label mapping")
        elif kind == "file":
            ctx.add_input(o.source, role="texts (and human labels)", license=o.source_license)
        schema_path = SHIPPED.get(o.schema) or Path(o.schema)
        ctx.add_input(schema_path, role=f"label schema ({len(self.schema().labels)} labels)")
        if o.template:
            ctx.add_input(o.template, role="prompt template")
        ctx.add_seed("sampling/splits", o.seed)
        template, schema = self.template(), self.schema()
        ctx.facts["llm_annotate"] = {
            "schema": {"name": schema.name, "origin": schema.origin, "labels": schema.names, "hash": schema.hash()},
            "prompt_hash": prompt_hash(template, schema, o.system_prompt), "template_hash": template.hash(),
            "template": template.origin, "sampling": self.sampling().to_dict(), "backend": o.backend,
            "model": display_name(o.model) if o.model else "", "revision": o.revision or None,
            "plan": dict(sorted(plan.counts.items())), "human_labels": dict(sorted(labels.items())),
            "duplicates": len(plan.duplicate_of),
        }

    def _plan(self) -> tuple[SplitPlan, set[str], Counter[str]]:
        mapping = self.label_map()
        schema = self.schema()
        languages: set[str] = set()
        labels: Counter[str] = Counter()
        unknown: dict[str, str] = {}
        seen_ids: dict[str, str] = {}

        def records() -> Iterator[Record]:
            for rec in self.records():
                where = f"{rec['where']}:{rec['line']}"
                if rec["id"] in seen_ids:
                    raise InputError(f"id {rec['id']!r} is used twice (first at {seen_ids[rec['id']]})",
                                     source=rec["where"], line=rec["line"], hint="make ids unique or drop id_column")
                seen_ids[rec["id"]] = where
                languages.add(rec["language"])
                human = self._human_label(rec["label"], mapping, schema)
                if rec["label"] is not None and human is None and rec["label"] not in mapping:
                    unknown.setdefault(rec["label"], where)
                if human is not None:
                    labels[human] += 1
                text = rec["text"] or ""
                yield Record(rec["id"], rec["language"], text_key(text) if text.strip() else None, human)

        o = self.options
        plan = assign_splits(records(), test_fraction=o.test_fraction, dev_fraction=o.dev_fraction, seed=o.seed)
        if unknown:
            shown = ", ".join(f"{k!r} ({w})" for k, w in list(unknown.items())[:5])
            raise ConfigError(f"llm-annotate: human label(s) {shown} are not labels of the schema {schema.name!r}; "
                              f"map them with --set label_map={{LABEL: SCHEMA_LABEL}} (or to '' to treat those texts "
                              f"as unlabelled)")
        return plan, languages, labels

    @staticmethod
    def _human_label(raw: str | None, mapping: dict[str, str | None], schema: LabelSchema) -> str | None:
        if raw is None:
            return None
        if raw in mapping:
            return mapping[raw]
        return schema.lookup(raw)

    # ------------------------------------------------------------------ sharded recipe
    def source(self, config: ConfigSpec, split: str) -> Iterator[Item]:
        mapping = self.label_map()
        schema = self.schema()
        for index, rec in enumerate(self.records()):
            if self.plan.split_of(index) != split:
                continue
            human = self._human_label(rec["label"], mapping, schema) if split == "test" else None
            yield Item(index=index, id=rec["id"], text=rec["text"] or "", language=rec["language"], split=split,
                       human_label=human, source_label=rec["label"], duplicate_of=self.plan.duplicate_of.get(index))

    def count(self, config: ConfigSpec, split: str) -> int | None:
        plan = getattr(self, "plan", None)
        return plan.counts.get(split, 0) if plan is not None else None

    def steps(self, config: ConfigSpec, split: str) -> list[Step]:
        return [Check(self), Annotate(self), ToRow(self)]

    def constraint(self) -> tuple[list[str] | None, dict[str, Any] | None]:
        """What the backend is asked to constrain answers to: ``(choices, json_schema)``.

        Single-label ``constrain``: the label names as a closed choice. Multi-label ``constrain``, or
        ``json_output``: a JSON schema ``{"topic": ...}`` whose value is a label name (an enum when
        constrained), or a list of them in multi-label mode.
        """
        o = self.options
        names = self.schema().names
        if o.constrain and not o.multi_label:
            return names, None
        if not (o.constrain or o.json_output):
            return None, None
        value: dict[str, Any] = {"type": "string", "enum": names} if o.constrain else {"type": "string"}
        if o.multi_label:
            value = {"type": "array", "items": value, "minItems": 1}
        return None, {"type": "object", "properties": {"topic": value}, "required": ["topic"],
                      "additionalProperties": False}

    def sampling(self) -> Any:
        from dsbuild.llm.base import Sampling

        o = self.options
        return Sampling(temperature=o.temperature, max_tokens=o.max_tokens, top_p=o.top_p, n=o.self_consistency,
                        seed=o.seed)

    def llm(self) -> Any:
        """The teacher backend, made once per worker process."""
        return self.cached("llm", self._make_llm)

    def _make_llm(self) -> Any:
        from dsbuild.llm.base import make_llm

        o = self.options
        kwargs: dict[str, Any] = {"revision": o.revision or None, "cache_dir": o.cache_dir or None}
        if o.base_url:
            kwargs["base_url"] = o.base_url
        if self._is_baseline():
            kwargs["definitions"] = self._baseline_definitions()
        elif self.worker.device and o.backend in ("transformers", "vllm") and "device" not in o.backend_options:
            kwargs["device"] = self.worker.device  # --devices: one device per worker
        kwargs.update(o.backend_options)
        model = o.model or self.schema().name
        try:
            return make_llm(o.backend, model, **kwargs)
        except TypeError as err:
            raise ConfigError(f"llm-annotate: bad backend_options {o.backend_options} for backend {o.backend!r}: "
                              f"{err}") from None

    def _baseline_definitions(self) -> dict[str, str]:
        schema = self.schema()
        path = SHIPPED.get(self.options.schema) or Path(self.options.schema)
        keywords = label_keywords(path) if path.suffix.lower() in (".yaml", ".yml") else {}
        return {lab.name: " ".join([lab.definition, lab.description, *keywords.get(lab.name, [])])
                for lab in schema.labels}

    def messages(self, item: Item) -> list[dict[str, str]]:
        o = self.options
        user = self.template().render(item.prompt_text, self.schema(), multi_label=o.multi_label, language=item.language)
        return ([{"role": "system", "content": o.system_prompt}] if o.system_prompt else []) + \
            [{"role": "user", "content": user}]

    # ------------------------------------------------------------------ finish: quality, picture
    def finish(self, ctx: BuildContext) -> None:
        """Tables per split, teacher vs human figures, usage; the confusion-matrix picture."""
        facts = ctx.facts.setdefault("llm_annotate", {})
        per_split = ctx.facts.get("split_facts", {}).get(CONFIG, {})
        usage: dict[str, int] = {}
        splits = {}
        for split, f in per_split.items():
            splits[split] = {"input": f.get("input", 0), "kept": f.get("kept", 0),
                             "rejected": f.get("input", 0) - f.get("kept", 0), "truncated": f.get("truncated", 0),
                             "reject_reasons": dict(sorted(f.get("reject_reasons", {}).items())),
                             "label_counts": dict(sorted(f.get("label_counts", {}).items())),
                             "teacher_label_counts": dict(sorted(f.get("teacher_label_counts", {}).items())),
                             "per_language": dict(sorted(f.get("per_language", {}).items())),
                             "mean_teacher_agreement": round(f["agreement_sum"] / f["annotated"], 4)
                             if f.get("annotated") else None}
            for key, n in f.get("usage", {}).items():
                usage[key] = usage.get(key, 0) + n
        facts["splits"] = splits
        facts["usage"] = dict(sorted(usage.items()))
        facts["prompts"] = sum(f.get("prompts", 0) for f in per_split.values())
        test = per_split.get("test", {})
        if self.options.multi_label:
            self._multilabel_quality(ctx, test)
        else:
            self._quality(ctx, test)

    def _quality(self, ctx: BuildContext, test: dict[str, Any]) -> None:
        by_lang: dict[str, agreement.Confusion] = test.get("confusion", {})
        total: agreement.Confusion = {}
        for conf in by_lang.values():
            agreement.add_confusion(total, conf)
        if not total:
            return
        overall = agreement.scores_from(total)
        ctx.quality["teacher_vs_human"] = {k: v for k, v in overall.items() if k != "per_label"}
        ctx.quality["teacher_vs_human_per_label"] = overall["per_label"]
        ctx.quality["teacher_vs_human_per_language"] = {
            lang: {k: v for k, v in agreement.scores_from(conf).items() if k != "per_label"}
            for lang, conf in sorted(by_lang.items())}
        facts = ctx.facts["llm_annotate"]
        facts["confusion"] = {h: dict(sorted(row.items())) for h, row in sorted(total.items())}
        from dsbuild.annotate.confusion import write_confusion_png

        # the staging folder (work_dir's parent) is what gets published: the picture ships with the data
        write_confusion_png(ctx.work_dir.parent / PICTURE, total, labels=self.schema().names,
                            title=f"teacher vs human, test split (n={overall['n']})")
        facts["picture"] = PICTURE

    def _multilabel_quality(self, ctx: BuildContext, test: dict[str, Any]) -> None:
        by_lang = test.get("multilabel", {})
        if not by_lang:
            return
        total: dict[str, Any] = {}
        from dsbuild.pipeline import merge_facts

        for counts in by_lang.values():
            merge_facts(total, counts)
        overall = agreement.multilabel_scores(total)
        ctx.quality["teacher_vs_human"] = {k: v for k, v in overall.items() if k != "per_label"}
        ctx.quality["teacher_vs_human_per_label"] = overall["per_label"]
        ctx.quality["teacher_vs_human_per_language"] = {
            lang: {k: v for k, v in agreement.multilabel_scores(c).items() if k != "per_label"}
            for lang, c in sorted(by_lang.items())}


# ---------------------------------------------------------------------- steps
def _count(facts: dict[str, Any], key: str, n: int = 1) -> None:
    facts[key] = facts.get(key, 0) + n


def _reject(ctx: BuildContext, item: Item, reason: str, detail: str, **extra: Any) -> Reject:
    reasons = ctx.facts.setdefault("reject_reasons", {})
    reasons[reason] = reasons.get(reason, 0) + 1
    return Reject(item.id, reason, detail, {**item.example(), **extra})


_WORDS = re.compile(r"\S+")
#: a server's error for a prompt longer than the model's context (OpenAI, vLLM, llama.cpp, TGI wordings)
CONTEXT_ERROR = re.compile(r"context (?:length|size|window)|too many (?:input )?tokens|prompt is too long|"
                           r"input (?:is )?too long|maximum (?:input|prompt) length", re.I)


def truncate_words(text: str, max_words: int) -> tuple[str, bool]:
    """The text up to the end of its ``max_words``-th word (spacing kept), and whether it was cut."""
    for i, match in enumerate(_WORDS.finditer(text), 1):
        if i == max_words:
            rest = text[match.end():]
            return (text[: match.end()], True) if rest.strip() else (text, False)
    return text, False


class Check(Step):
    """Duplicates and empty texts are rejects; long texts are truncated (flagged) or rejected."""

    name = "check"

    def __init__(self, builder: LlmAnnotate) -> None:
        self.builder = builder

    def run(self, items: list[Item], ctx: BuildContext) -> list[Item | Reject]:
        o = self.builder.options
        _count(ctx.facts, "input", len(items))
        out: list[Item | Reject] = []
        for it in items:
            lang = ctx.facts.setdefault("per_language", {}).setdefault(it.language, {})
            _count(lang, "input")
            if it.duplicate_of is not None:
                out.append(_reject(ctx, it, "duplicate", f"same normalised text as {it.duplicate_of!r}, which is kept"))
                continue
            if not it.text.strip():
                out.append(_reject(ctx, it, "empty-text", "the text is empty or only whitespace"))
                continue
            prompt_text, cut = truncate_words(it.text, o.max_words)
            if cut and o.on_too_long == "reject":
                out.append(_reject(ctx, it, "too-long", f"more than max_words={o.max_words} words"))
                continue
            out.append(replace(it, prompt_text=prompt_text, truncated=cut))
        return out


class Annotate(Step):
    """Ask the teacher (in batches, cached by the backend) and parse its answers."""

    name = "annotate"

    def __init__(self, builder: LlmAnnotate) -> None:
        self.builder = builder

    def setup(self, ctx: BuildContext) -> None:
        self.builder.llm()  # load the model (or open the connection) once per worker, before the first shard

    def _record(self, llm: Any, ctx: BuildContext) -> None:
        """The teacher as it answered (after a call: a server's model id is known only then)."""
        described = portable_value(llm.describe())
        o = self.builder.options
        ctx.add_model(described.get("model") or o.model, revision=described.get("revision"),
                      kind="stand-in teacher (not an LLM)" if self.builder._is_baseline() else "LLM teacher",
                      backend=o.backend, sampling=self.builder.sampling().to_dict(), decode=o.decode)
        ctx.settings.setdefault("llm_annotate", {})["teacher"] = described

    def run(self, items: list[Item], ctx: BuildContext) -> list[Item | Reject]:
        llm = self.builder.llm()
        before = llm.usage.to_dict()
        out: list[Item | Reject] = []
        size = self.builder.options.batch_size
        for start in range(0, len(items), size):
            out += self._batch(items[start:start + size], llm, ctx)
        self._record(llm, ctx)
        usage = ctx.facts.setdefault("usage", {})
        for key, value in llm.usage.to_dict().items():
            usage[key] = usage.get(key, 0) + value - before.get(key, 0)
        _count(ctx.facts, "prompts", len(items))
        return out

    def _batch(self, items: list[Item], llm: Any, ctx: BuildContext) -> list[Item | Reject]:
        b, o = self.builder, self.builder.options
        schema = b.schema()
        messages = [b.messages(it) for it in items]
        if o.decode == "score":
            completions = llm.choose(messages, schema.names)
        else:
            choices, json_schema = b.constraint()
            completions = llm.chat(messages, b.sampling(), choices=choices, json_schema=json_schema)
        answers = [c.texts for c in completions]
        errors = [c.error for c in completions]
        cut = [bool(getattr(c, "truncated", False)) for c in completions]
        return [self._item(it, ans, err, trunc, ctx) for it, ans, err, trunc in zip(items, answers, errors, cut)]

    def _item(self, it: Item, answers: list[str], error: str | None, model_cut: bool,
              ctx: BuildContext) -> Item | Reject:
        o = self.builder.options
        truncated = it.truncated or model_cut
        if model_cut and o.on_too_long == "reject":
            return _reject(ctx, it, "too-long", "the prompt is longer than the model's context")
        if error is not None and CONTEXT_ERROR.search(error):  # the server says the prompt does not fit
            return self._failed(it, "too-long", f"{error} (lower max_words)", answers, truncated, ctx)
        if error is not None or not answers:
            return self._failed(it, "llm-error", error or "no answer", answers, truncated, ctx)
        parsed = [parse_answer(a, self.builder.schema(), multi_label=o.multi_label) for a in answers]
        labels, share = majority(parsed, o.multi_label)
        if not labels:
            first = next(p for p in parsed if not p.ok)
            return self._failed(it, first.reason or "unparseable", first.detail, answers, truncated, ctx)
        _count(ctx.facts, "annotated")
        ctx.facts["agreement_sum"] = ctx.facts.get("agreement_sum", 0.0) + share
        return replace(it, answers=answers, labels=labels, agreement=share, truncated=truncated)

    def _failed(self, it: Item, reason: str, detail: str, answers: list[str], truncated: bool,
                ctx: BuildContext) -> Item | Reject:
        """Train/dev: a reject with the raw answer. Test: the human-labelled text stays; the failure counts as wrong."""
        if it.split != "test":
            return _reject(ctx, it, reason, detail, raw_answer=_raw(answers))
        failures = ctx.facts.setdefault("teacher_failures", {})
        failures[reason] = failures.get(reason, 0) + 1
        return replace(it, answers=answers, labels=(), agreement=0.0, status=reason, detail=detail, truncated=truncated)


def majority(parsed: list[ParseResult], multi_label: bool) -> tuple[tuple[str, ...], float]:
    """The majority answer of k parsed samples and the share of samples that gave it (0 when none parsed).

    Single-label: the most frequent label (ties: the one answered first). Multi-label: the labels named
    by more than half of the samples (else the most frequent label set).
    """
    ok = [p.labels for p in parsed if p.ok]
    if not ok:
        return (), 0.0
    k = len(parsed)
    if multi_label:
        counts = Counter(label for labels in ok for label in labels)
        chosen = tuple(label for label in dict.fromkeys(label for labels in ok for label in labels)
                       if counts[label] * 2 > k)
        if not chosen:
            chosen = Counter(ok).most_common(1)[0][0]
        return chosen, sum(1 for labels in ok if labels == chosen) / k
    counts = Counter(ok)
    best = max(counts.values())
    chosen = next(labels for labels in ok if counts[labels] == best)
    return chosen, best / k


def _raw(answers: list[str]) -> str:
    return answers[0] if len(answers) == 1 else json.dumps(answers, ensure_ascii=False)


class ToRow(Step):
    """One row per annotated text; counts per split, language and label; the test split's confusion table."""

    name = "to-row"

    def __init__(self, builder: LlmAnnotate) -> None:
        self.builder = builder

    def run(self, items: list[Item], ctx: BuildContext) -> list[dict[str, Any]]:
        return [self._row(it, ctx) for it in items]

    def _row(self, it: Item, ctx: BuildContext) -> dict[str, Any]:
        multi = self.builder.options.multi_label
        f = ctx.facts
        _count(f, "kept")
        _count(f, "truncated", int(it.truncated))
        _count(f.setdefault("per_language", {}).setdefault(it.language, {}), "kept")
        teacher: Any = list(it.labels) if multi else (it.labels[0] if it.labels else None)
        is_test = it.split == "test"
        label: Any = it.human_label if is_test else teacher
        if multi and is_test:
            label = [it.human_label]
        for name in (label if multi else [label]):
            _count(f.setdefault("label_counts", {}), name)
        for name in it.labels:
            _count(f.setdefault("teacher_label_counts", {}), name)
        if is_test:
            self._score(it, f)
        return {"id": it.id, "text": it.text, "language": it.language, "label": label,
                "label_source": "human" if is_test else "teacher", "teacher_label": teacher,
                "teacher_agreement": round(it.agreement, 4), "teacher_samples": len(it.answers),
                "teacher_answer": _raw(it.answers), "teacher_status": it.status, "truncated": it.truncated,
                "source_label": it.source_label if is_test else None}  # train/dev: no human labels in the rows

    def _score(self, it: Item, f: dict[str, Any]) -> None:
        if self.builder.options.multi_label:
            counts = agreement.multilabel_counts([[it.human_label]], [list(it.labels) if it.labels else None])
            from dsbuild.pipeline import merge_facts

            merge_facts(f.setdefault("multilabel", {}).setdefault(it.language, {}), counts)
            return
        predicted = it.labels[0] if it.labels else agreement.NO_ANSWER
        row = f.setdefault("confusion", {}).setdefault(it.language, {}).setdefault(it.human_label, {})
        row[predicted] = row.get(predicted, 0) + 1


__all__ = ["Check", "Annotate", "Item", "LlmAnnotate", "LlmAnnotateOptions", "ToRow", "majority", "truncate_words"]
