"""europarl-ner: the label-projection benchmark on Europarl gold NER (Agerri et al. 2018).

Recipe:

1. **Source**: read the gold CoNLL file of each side (English and Spanish ship with dsbuild; any
   other side of the same upstream corpus, e.g. German or Italian, comes from ``target_path``).
2. **Align**: word-align every sentence pair with the offline default aligner (eflomal, fixed
   seed) trained on the test pairs themselves plus the parallel text shipped for the pair
   (``builders/data/parallel/``) or given with ``parallel_src``/``parallel_tgt``; both sides of
   the parallel text are Moses-tokenised first, like the test data.
3. **Project**: move the source gold spans onto the target tokens
   (:func:`dsbuild.project.project`, method ``alignment``).
4. **Score**: span P/R/F1 (exact match, micro and per label) of the projected spans against the
   target side's own gold (:mod:`dsbuild.evaluate`); into ``quality.json`` and the card.
5. **Outputs**: config ``SRC-TGT`` (e.g. ``en-es``) with projected and gold tags side by side and
   per-example QC columns, and one gold config per language (``en``, ``es``).

The aligner's seed is fixed and recorded (two builds give identical files) and its links are
cached on disk under a hash of the pairs and settings, so a resumed or repeated build skips it.
``--set project=false`` builds the gold configs only (seconds).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets

from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.features import example_to_row, ner_features, span_feature
from dsbuild.io.conll import read_conll
from dsbuild.registry import builders
from dsbuild.spans import Example, span_to_dict, tag_names

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data" / "europarl_ner"
PARALLEL_DIR = Path(__file__).parent / "data" / "parallel"  # same folder as dsbuild.project.parallel.PARALLEL_DIR
SHIPPED = {"en": DATA_DIR / "en-europarl.test.conll02", "es": DATA_DIR / "es-europarl.test.conll02"}
LABELS = ("LOC", "MISC", "ORG", "PER")
AGERRI_CITATION = """@inproceedings{agerri-etal-2018-building,
  title = {Building Named Entity Recognition Taggers via Parallel Corpora},
  author = {Agerri, Rodrigo and Chung, Yiling and Aldabe, Itziar and Aranberri, Nora and Labaka, Gorka and Rigau, German},
  booktitle = {Proceedings of LREC 2018},
  year = {2018}
}"""
KOEHN_CITATION = """@inproceedings{koehn-2005-europarl,
  title = {Europarl: A Parallel Corpus for Statistical Machine Translation},
  author = {Koehn, Philipp},
  booktitle = {Proceedings of Machine Translation Summit X},
  year = {2005}
}"""
CITATION = AGERRI_CITATION + "\n" + KOEHN_CITATION
PARALLEL_SOURCES = {
    "en-es": Source(
        name="Europarl en-es fragments (shipped parallel text)",
        license="Europarl terms: 'We are not aware of any copyright restrictions of the material.'",
        url="https://www.statmt.org/europarl/",
        description="12,058 Europarl sentence pairs collected from public repositories (EdisonNi-hku/CausalMT, "
                    "apertium/apertium-lex-tools, python_translator, thesis-yuri; see "
                    "builders/data/parallel/README.md), with pairs overlapping the test set removed. "
                    "Used only to train the word aligner.",
    ),
}


@dataclass
class EuroparlNerOptions:
    source_lang: str = option("en", "language code of the source side (whose gold spans are projected)")
    source_path: str = option("", "CoNLL file of the source side (default: the shipped English file)")
    target_lang: str = option("es", "language code of the target side (es ships; others need target_path)")
    target_path: str = option("", "CoNLL file of the target side, e.g. the German or Italian side of the same corpus")
    project: bool = option(True, "project the source gold onto the target side and score it (config SRC-TGT)")
    aligner: str = option("eflomal", "registered word aligner used for projection")
    parallel_src: str = option("", "extra parallel text, source side (one sentence a line, .gz ok); "
                                   "default: the text shipped for the pair, if any; 'none' to use none")
    parallel_tgt: str = option("", "extra parallel text, target side, line-aligned with parallel_src")
    parallel_tokenizer: str = option("moses", "tokenizer applied to both sides of the parallel text")
    parallel_mode: Literal["joint", "priors"] = option(
        "joint", "joint: align the test pairs together with the parallel text (transductive, best); "
                 "priors: learn priors from the parallel text once and reuse them (faster on re-runs)")
    symmetrization: str = option("grow-diag-final", "symmetrisation of the two eflomal directions")
    seed: int = option(1, "random seed of the aligner (eflomal samples at random)")
    policy: Literal["keep-partial", "reject"] = option(
        "keep-partial", "keep sentences with some unprojected spans, or reject them")
    rules: dict = option({}, "overrides of the span-projection rules (AlignmentProjectionOptions), "
                             "e.g. {split: closure, trim_case: false}")
    rel_iterations: float = option(1.0, "eflomal iterations relative to its default schedule")
    max_sentences: int = option(0, "use only the first N sentence pairs (0: all); for quick checks")


@builders.register("europarl-ner")
class EuroparlNer(Builder):
    name = "europarl-ner"
    version = "2.0.0"
    description = ("Europarl NER projection benchmark: English gold projected onto another language by word "
                   "alignment and scored against that language's gold; plus the gold configs.")
    Options = EuroparlNerOptions
    card_template = "europarl-ner.md.j2"
    history = [
        ("2.0.0", "Projection benchmark: config SRC-TGT with projected and gold tags, QC columns and span F1."),
        ("1.0.0", "First release: gold English and Spanish sides, any other side by path."),
    ]

    # ------------------------------------------------------------------ inputs
    def _path(self, lang: str, given: str) -> Path:
        if given:
            return Path(given)
        if lang in SHIPPED:
            return SHIPPED[lang]
        raise ConfigError(
            f"europarl-ner: no shipped file for language {lang!r} (shipped: {', '.join(SHIPPED)}); "
            f"give the file with --set target_path=FILE (or source_path)"
        )

    def _sides(self) -> dict[str, Path]:
        o = self.options
        if o.source_lang == o.target_lang:
            raise ConfigError(f"europarl-ner: source_lang and target_lang are both {o.source_lang!r}")
        return {o.source_lang: self._path(o.source_lang, o.source_path), o.target_lang: self._path(o.target_lang, o.target_path)}

    @property
    def pair(self) -> str:
        return f"{self.options.source_lang}-{self.options.target_lang}"

    def _parallel_paths(self) -> tuple[Path, Path] | None:
        """The extra parallel text for the pair: given, shipped (either orientation), or none."""
        o = self.options
        if o.parallel_src.lower() == "none" or o.parallel_tgt.lower() == "none":
            return None
        if o.parallel_src or o.parallel_tgt:
            if not (o.parallel_src and o.parallel_tgt):
                raise ConfigError("give both parallel_src and parallel_tgt (the two sides of the parallel text)")
            paths = (Path(o.parallel_src), Path(o.parallel_tgt))
            for p in paths:
                if not p.is_file():
                    raise ConfigError(f"parallel text {p} not found; fix the path or pass --set parallel_src=none")
            return paths
        from dsbuild.project.parallel import shipped_parallel_paths

        return shipped_parallel_paths(o.source_lang, o.target_lang)

    def info(self) -> DatasetInfo:
        sources = [Source(
            name="ixa-ehu/ner-evaluation-corpus-europarl",
            license="Europarl terms: 'We are not aware of any copyright restrictions of the material.'",
            url="https://github.com/ixa-ehu/ner-evaluation-corpus-europarl",
            citation=CITATION,
            description="First 2,000 sentences of Europarl (Koehn 2005), NER-annotated by hand in each language.",
        )]
        parallel = self._parallel_paths() if self.options.project else None
        if parallel is not None:
            key = "-".join(sorted((self.options.source_lang, self.options.target_lang), key=lambda x: x != "en"))
            shipped = parallel[0].parent.parent == PARALLEL_DIR
            sources.append(PARALLEL_SOURCES[key] if shipped and key in PARALLEL_SOURCES else Source(
                name=f"user parallel text {parallel[0].name} / {parallel[1].name}", license="as given by the user",
                description="Extra parallel text given with parallel_src/parallel_tgt; used only to train the aligner."))
        method = "Gold configs: read from the upstream CoNLL files, tokens and labels unchanged. "
        if self.options.project:
            method += (f"Projected config `{self.pair}`: the `{self.options.source_lang}` gold spans are projected onto "
                       f"the `{self.options.target_lang}` gold tokens by word alignment ({self.options.aligner}) "
                       "and scored against the target gold.")
        return DatasetInfo(
            pretty_name="Europarl NER (gold, parallel) and label-projection benchmark",
            summary="Sentence-parallel named-entity annotations on Europarl proceedings, with human gold "
                    "labels on each language side (PER, LOC, ORG, MISC in IOB2), and the English gold projected "
                    "onto the other side by word alignment, scored against that side's gold.",
            languages=list(self._sides()),
            license="unknown",
            task_categories=["token-classification"],
            task_ids=["named-entity-recognition"],
            multilinguality="multilingual",
            source_datasets=["extended|europarl"],
            annotations_creators=["expert-generated", "machine-generated"] if self.options.project else ["expert-generated"],
            language_creators=["found"],
            tags=["ner", "parallel", "label-projection"],
            sources=sources,
            method=method,
            limitations="45 of the 799 sentences differ in entity count between English and Spanish "
                        "(translation divergence), so no projection can reach F1 1.0. Parliamentary register only.",
        )

    def configs(self) -> list[ConfigSpec]:
        gold = [ConfigSpec(name=lang, features=ner_features(LABELS), splits=["test"], language=lang,
                           description=f"Gold {lang} side: tokens, IOB2 tags and spans.")
                for lang in self._sides()]
        if not self.options.project:
            return gold
        o = self.options
        return [ConfigSpec(name=self.pair, features=projected_features(), splits=["test"], language=o.target_lang,
                           description=f"{o.target_lang} sentences with the {o.source_lang} gold spans projected onto them "
                                       f"(`ner_tags`, `spans`, per-span `span_scores`) next to the {o.target_lang} gold "
                                       "(`gold_ner_tags`, `gold_spans`), the source sentence, and per-example QC.")] + gold

    # ------------------------------------------------------------------ work
    def prepare(self, ctx: BuildContext) -> None:
        self.examples: dict[str, list[Example]] = {}
        paths = self._sides()
        for lang, path in paths.items():
            ctx.add_input(path, role=f"{lang} gold CoNLL", license="Europarl terms")
            self.examples[lang] = read_conll(path, id_prefix=f"europarl-{lang}")
        if self.options.max_sentences < 0:
            raise ConfigError("max_sentences must be >= 0 (0 means all sentences)")
        if self.options.max_sentences:
            self.examples = {lang: exs[: self.options.max_sentences] for lang, exs in self.examples.items()}
        counts = {lang: len(exs) for lang, exs in self.examples.items()}
        if len(set(counts.values())) > 1:
            raise InputError(f"the sides have different sentence counts: {counts}",
                             source=", ".join(str(p) for p in paths.values()),
                             hint="give the two sides of the same parallel corpus, sentence i matching sentence i")
        self.projections = None
        if self.options.project:
            self._project(ctx)

    def _project(self, ctx: BuildContext) -> None:
        from dsbuild.evaluate import evaluate_examples
        from dsbuild.project.alignment import AlignmentProjector
        from dsbuild.project.base import ProjectionReport
        from dsbuild.project.inputs import prepare_pairs

        o = self.options
        sources, gold = self.examples[o.source_lang], self.examples[o.target_lang]
        aligner_options: dict[str, Any] = {"seed": o.seed, "symmetrization": o.symmetrization}
        if o.rel_iterations != 1.0:
            aligner_options["rel_iterations"] = o.rel_iterations
        parallel = self._parallel_paths()
        facts: dict[str, Any] = {"pair": self.pair, "transductive": True, "parallel": None}
        if parallel is not None:
            with ctx.timer("tokenize-parallel"):
                src_lines = tokenized_lines(parallel[0], o.parallel_tokenizer, o.source_lang)
                tgt_lines = tokenized_lines(parallel[1], o.parallel_tokenizer, o.target_lang)
            if len(src_lines) != len(tgt_lines):
                raise InputError(f"the parallel text has {len(src_lines)} source lines but {len(tgt_lines)} target lines",
                                 source=f"{parallel[0]}, {parallel[1]}",
                                 hint="give two line-aligned files with the same number of lines")
            for p, lang in zip(parallel, (o.source_lang, o.target_lang)):
                ctx.add_input(p, role=f"{lang} parallel text (aligner training only)", license="see card")
            aligner_options.update(extra_src=src_lines, extra_tgt=tgt_lines, use_priors=o.parallel_mode == "priors")
            facts["parallel"] = {"src": str(parallel[0]), "tgt": str(parallel[1]), "pairs": len(src_lines),
                                 "tokenizer": o.parallel_tokenizer, "mode": o.parallel_mode}
        else:
            log.warning("europarl-ner %s: no parallel text for this pair; aligning the %d test pairs alone "
                        "(give --set parallel_src=FILE --set parallel_tgt=FILE for better alignments)",
                        self.pair, len(sources))
        projector = AlignmentProjector(o.aligner, aligner_options=aligner_options, policy=o.policy,
                                       alignment_cache=_cache_root() / "alignments", **o.rules)
        prepared = prepare_pairs(sources, [g.words for g in gold], max_tokens=projector.max_tokens)
        valid = [p for p in prepared if p.reject is None]
        with ctx.timer("align"):
            views = projector.align([p.src_words for p in valid], [p.tgt_words for p in valid])
        with ctx.timer("project"):
            projections = projector.project_aligned(prepared, views)
        self.aligned = (prepared, views)  # kept for scripts that compare rules on the same alignment
        report = ProjectionReport(projections, "alignment", o.source_lang, o.target_lang, projector.describe())
        self.projections = report.projections
        settings = report.settings
        aligner_info = settings.get("aligner", {})
        ctx.add_model(o.aligner, revision=str(aligner_info.get("eflomal_version") or aligner_info.get("revision") or ""),
                      kind="word aligner", **{k: v for k, v in aligner_info.items()
                                              if k not in ("extra_corpus", "aligner", "eflomal_version")})
        ctx.add_seed(o.aligner, o.seed)
        predicted = [p.target for p in report.projections]
        scores = evaluate_examples(predicted, gold)
        counts = report.counts
        facts.update({"projection_rules": settings.get("rules", {}), "policy": o.policy,
                      "case_signal": settings.get("case_signal"),
                      "extra_corpus": aligner_info.get("extra_corpus"),
                      "exact_sentences": sum(_keys(p) == _keys(g) for p, g in zip(predicted, gold))})
        ctx.facts["projection"] = facts
        ctx.quality["projection"] = {
            "pair": self.pair,
            "micro": scores.micro.to_dict(),
            "per_label": {k: v.to_dict() for k, v in scores.per_label.items()},
            "counts": {"sentences": counts["sentences"], "sentences_kept": counts["kept"],
                       "sentences_rejected": counts["rejected"], "source_spans": counts["source_spans"],
                       "projected": counts["projected"], "unprojected": counts["unprojected"],
                       "gold_target_spans": sum(len(g.spans) for g in gold)},
            "unprojected_by_reason": counts["unprojected_by_reason"],
            "rejected_by_reason": counts["rejected_by_reason"],
        }
        log.info("europarl-ner %s: %s; span F1 %.4f (P %.4f, R %.4f)", self.pair, report.summary(),
                 scores.micro.f1, scores.micro.precision, scores.micro.recall)

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        if config.name == self.pair and self.projections is not None:
            yield from self._generate_projected(ctx)
            return
        for ex in self.examples[config.name]:
            ctx.read()
            unknown = sorted({s.label for s in ex.spans} - set(LABELS))
            if unknown:
                yield Reject(ex.id, "unknown-label", f"labels {unknown} are not in {list(LABELS)}", ex.to_dict())
                continue
            yield example_to_row(ex)

    def _generate_projected(self, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        gold = self.examples[self.options.target_lang]
        for proj, g in zip(self.projections or [], gold):
            ctx.read()
            if proj.rejected is not None:
                yield Reject(g.id, proj.rejected, str(proj.qc.get("reject_detail", "")),
                             {"source": proj.source.to_dict(), "target": g.to_dict(),
                              "unprojected": [{"label": u.span.label, "reason": u.reason, "detail": u.detail}
                                              for u in proj.unprojected]})
                continue
            yield projected_row(proj, g)


def _keys(ex: Example) -> set[tuple[int, int, str]]:
    return {(s.token_start, s.token_end, s.label) for s in ex.spans}


def projected_features() -> datasets.Features:
    """Row shape of the projected config: projected and gold side by side, source, QC."""
    tags = datasets.List(datasets.ClassLabel(names=tag_names(LABELS)))
    return datasets.Features({
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        "ner_tags": tags,
        "spans": datasets.List(span_feature()),
        "span_scores": datasets.List(datasets.Value("float32")),
        "gold_ner_tags": tags,
        "gold_spans": datasets.List(span_feature()),
        "source_id": datasets.Value("string"),
        "source_tokens": datasets.List(datasets.Value("string")),
        "source_spans": datasets.List(span_feature()),
        "n_source_spans": datasets.Value("int32"),
        "n_projected": datasets.Value("int32"),
        "unprojected": datasets.List({"label": datasets.Value("string"), "text": datasets.Value("string"),
                                      "reason": datasets.Value("string")}),
        "min_score": datasets.Value("float32"),
        "matches_gold": datasets.Value("bool"),
    })


def projected_row(proj: Any, gold: Example) -> dict[str, Any]:
    """One row of the projected config."""
    target, source = proj.target, proj.source
    return {
        "id": gold.id,
        "text": gold.text,
        "tokens": gold.words,
        "ner_tags": target.tags(),
        "spans": [span_to_dict(s, target.text) for s in target.spans],
        "span_scores": [float(s.score) if s.score is not None else float("nan") for s in target.spans],
        "gold_ner_tags": gold.tags(),
        "gold_spans": [span_to_dict(s, gold.text) for s in gold.spans],
        "source_id": source.id,
        "source_tokens": source.words,
        "source_spans": [span_to_dict(s, source.text) for s in source.spans],
        "n_source_spans": len(source.spans),
        "n_projected": len(target.spans),
        "unprojected": [{"label": u.span.label, "text": source.span_text(u.span), "reason": u.reason}
                        for u in proj.unprojected],
        "min_score": proj.qc.get("min_score"),
        "matches_gold": _keys(target) == _keys(gold),
    }


# ---------------------------------------------------------------------- parallel text
# (kept importable from here for scripts; the implementation lives in dsbuild.project.parallel)
from dsbuild.project.parallel import cache_root as _cache_root  # noqa: E402
from dsbuild.project.parallel import tokenized_lines  # noqa: E402,F401
