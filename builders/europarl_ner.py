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
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import datasets

from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, user_source)
from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.parallel.store import SHIPPED_DIR
from dsbuild.features import example_to_row, ner_features, span_feature
from dsbuild.io.conll import iter_conll
from dsbuild.pipeline import MapStep, Step, merge_facts
from dsbuild.registry import builders
from dsbuild.spans import Example, span_to_dict, tag_names

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data" / "europarl_ner"
PARALLEL_DIR = SHIPPED_DIR  # the parallel text shipped with dsbuild
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
    alignment_scope: Literal["corpus", "shard"] = option(
        "corpus", "corpus: the aligner sees every test pair however the build is sharded (one alignment, "
                  "computed once and cached, shared by all shards); shard: each shard is aligned alone "
                  "(with the parallel text)")
    symmetrization: str = option("grow-diag-final", "symmetrisation of the two eflomal directions")
    seed: int = option(1, "random seed of the aligner (eflomal samples at random)")
    policy: Literal["keep-partial", "reject"] = option(
        "keep-partial", "keep sentences with some unprojected spans, or reject them")
    rules: dict = option({}, "overrides of the span-projection rules (AlignmentProjectionOptions), "
                             "e.g. {split: closure, trim_case: false}")
    rel_iterations: float = option(1.0, "eflomal iterations relative to its default schedule")
    max_sentences: int = option(0, "use only the first N sentence pairs (0: all); for quick checks")
    # the source_* options describe the files given with source_path / target_path
    source_name: str = option("", SOURCE_NAME_HELP + "; describes the files given with source_path/target_path")
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


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

    def _user_sides(self) -> dict[str, str]:
        """The sides read from files the user gave (language -> path), not from the shipped ones."""
        o = self.options
        return {lang: given for lang, given in ((o.source_lang, o.source_path), (o.target_lang, o.target_path)) if given}

    def info(self) -> DatasetInfo:
        user_sides = self._user_sides()
        sources: list[Source] = []
        if len(user_sides) < 2:  # a shipped Europarl side is in the dataset
            sources.append(Source(
                name="ixa-ehu/ner-evaluation-corpus-europarl",
                license="Europarl terms: 'We are not aware of any copyright restrictions of the material.'",
                url="https://github.com/ixa-ehu/ner-evaluation-corpus-europarl",
                citation=CITATION,
                description="First 2,000 sentences of Europarl (Koehn 2005), NER-annotated by hand in each language.",
            ))
        sources += [user_source(self.options, path, description=f"Gold NER CoNLL file of the `{lang}` side, given by the user.")
                    for lang, path in user_sides.items()]
        # both sides the user's: their licence is the dataset's; a shipped side keeps Europarl's terms, no Hub id
        license_, license_name = dataset_license(self.options) if len(user_sides) == 2 else ("unknown", "")
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
            license=license_,
            license_name=license_name,
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

    # ------------------------------------------------------------------ recipe
    def prepare(self, ctx: BuildContext) -> None:
        """Check the inputs (same sentence count on both sides), tokenise the parallel text once."""
        o = self.options
        if o.max_sentences < 0:
            raise ConfigError("max_sentences must be >= 0 (0 means all sentences)")
        dataset_license(o)  # a bad source_license fails before any work, not at the card
        paths = self._sides()
        counts = {}
        for lang, path in paths.items():
            ctx.add_input(path, role=f"{lang} gold CoNLL",
                          license=(o.source_license or "unknown") if lang in self._user_sides() else "Europarl terms")
            counts[lang] = sum(1 for _ in self._read_side(lang))
        if len(set(counts.values())) > 1:
            raise InputError(f"the sides have different sentence counts: {counts}",
                             source=", ".join(str(p) for p in paths.values()),
                             hint="give the two sides of the same parallel corpus, sentence i matching sentence i")
        self.sentences = next(iter(counts.values()))
        self.parallel_lines: tuple[list[str], list[str]] | None = None
        if o.project:
            self._prepare_projection(ctx)

    def _read_side(self, lang: str) -> Iterator[Example]:
        examples = iter_conll(self._sides()[lang], id_prefix=f"europarl-{lang}")
        return islice(examples, self.options.max_sentences) if self.options.max_sentences else examples

    def _prepare_projection(self, ctx: BuildContext) -> None:
        o = self.options
        parallel = self._parallel_paths()
        facts: dict[str, Any] = {"pair": self.pair, "transductive": True, "parallel": None, "policy": o.policy}
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
            self.parallel_lines = (src_lines, tgt_lines)
            facts["parallel"] = {"src": parallel[0].name, "tgt": parallel[1].name, "pairs": len(src_lines),
                                 "tokenizer": o.parallel_tokenizer, "mode": o.parallel_mode}
        else:
            log.warning("europarl-ner %s: no parallel text for this pair; aligning the %d test pairs alone "
                        "(give --set parallel_src=FILE --set parallel_tgt=FILE for better alignments)",
                        self.pair, self.sentences)
        ctx.facts["projection"] = facts
        ctx.add_seed(o.aligner, o.seed)

    def source(self, config: ConfigSpec, split: str) -> Iterator[Any]:
        if config.name != self.pair:
            return self._read_side(config.name)
        return zip(self._read_side(self.options.source_lang), self._read_side(self.options.target_lang))

    def count(self, config: ConfigSpec, split: str) -> int | None:
        return getattr(self, "sentences", None)

    def steps(self, config: ConfigSpec, split: str) -> list[Step]:
        if config.name != self.pair:
            return [MapStep("gold-row", gold_row)]
        return [AlignAndProject(self), ScoreAndRow()]

    def projector(self) -> Any:
        """The alignment projector, created once per worker (the aligner sees each shard jointly with
        the parallel text, or the parallel text's priors with ``parallel_mode=priors``)."""
        from dsbuild.project.alignment import AlignmentProjector

        def make() -> Any:
            o = self.options
            aligner_options: dict[str, Any] = {"seed": o.seed, "symmetrization": o.symmetrization}
            if o.rel_iterations != 1.0:
                aligner_options["rel_iterations"] = o.rel_iterations
            if self.parallel_lines is not None:
                aligner_options.update(extra_src=self.parallel_lines[0], extra_tgt=self.parallel_lines[1],
                                       use_priors=o.parallel_mode == "priors")
            return AlignmentProjector(o.aligner, aligner_options=aligner_options, policy=o.policy,
                                      alignment_cache=_cache_root() / "alignments", **o.rules)

        return self.cached("projector", make)

    def prepare_pairs(self, pairs: list[tuple[Example, Example]]) -> list[Any]:
        """Source examples and target gold tokens as the projector's prepared pairs (bad pairs marked)."""
        from dsbuild.project.inputs import prepare_pairs

        return prepare_pairs([s for s, _ in pairs], [g.words for _, g in pairs], max_tokens=self.projector().max_tokens)

    def align_all(self) -> tuple[list[Any], list[Any]]:
        """Align every sentence pair at once: the corpus alignment every shard reads its links from
        (``alignment_scope=corpus``), also used by scripts comparing projection rules on one alignment.

        Returns the prepared pairs and one link view per valid pair, in order.
        """
        prepared = self.prepare_pairs(list(zip(self._read_side(self.options.source_lang),
                                               self._read_side(self.options.target_lang))))
        valid = [p for p in prepared if p.reject is None]
        return prepared, self.projector().align([p.src_words for p in valid], [p.tgt_words for p in valid])

    def finish(self, ctx: BuildContext) -> None:
        """The projection score and counts, from the counts summed over shards."""
        if not self.options.project:
            return
        from dsbuild.evaluate import PRF

        f = ctx.facts.get("split_facts", {}).get(self.pair, {}).get("test", {})
        spans = f.get("eval", {})
        per_label = {lab: PRF(c["tp"], c["pred"], c["gold"]) for lab, c in sorted(spans.items())}
        micro = PRF(*(sum(c[k] for c in spans.values()) for k in ("tp", "pred", "gold")))
        counts = f.get("counts", {})
        ctx.facts["projection"]["exact_sentences"] = f.get("exact_sentences", 0)
        ctx.quality["projection"] = {
            "pair": self.pair,
            "micro": micro.to_dict(),
            "per_label": {k: v.to_dict() for k, v in per_label.items()},
            "counts": {"sentences": counts.get("sentences", 0), "sentences_kept": counts.get("kept", 0),
                       "sentences_rejected": counts.get("rejected", 0), "source_spans": counts.get("source_spans", 0),
                       "projected": counts.get("projected", 0), "unprojected": counts.get("unprojected", 0),
                       "gold_target_spans": f.get("gold_target_spans", 0)},
            "unprojected_by_reason": dict(sorted(counts.get("unprojected_by_reason", {}).items())),
            "rejected_by_reason": dict(sorted(counts.get("rejected_by_reason", {}).items())),
        }
        log.info("europarl-ner %s: span F1 %.4f (P %.4f, R %.4f)", self.pair, micro.f1, micro.precision, micro.recall)


# ---------------------------------------------------------------------- steps
def gold_row(ex: Example) -> dict[str, Any] | Reject:
    """A gold row, or a reject when the file holds labels outside PER/LOC/ORG/MISC."""
    unknown = sorted({s.label for s in ex.spans} - set(LABELS))
    if unknown:
        return Reject(ex.id, "unknown-label", f"labels {unknown} are not in {list(LABELS)}", ex.to_dict())
    return example_to_row(ex)


class AlignAndProject(Step):
    """Word-align the shard's sentence pairs and move the source gold spans onto the target tokens."""

    name = "align+project"

    def __init__(self, builder: EuroparlNer) -> None:
        self.builder = builder

    def setup(self, ctx: BuildContext) -> None:
        settings = self.builder.projector().describe()
        aligner = settings.get("aligner", {})
        o = self.builder.options
        ctx.add_model(o.aligner, revision=str(aligner.get("eflomal_version") or aligner.get("revision") or ""),
                      kind="word aligner", **{k: v for k, v in aligner.items()
                                              if k not in ("extra_corpus", "aligner", "eflomal_version")})
        ctx.settings["projection"] = {"projection_rules": settings.get("rules", {}), "extra_corpus":
                                      aligner.get("extra_corpus"), "case_signal": settings.get("case_signal")}

    def run(self, items: list[tuple[Example, Example]], ctx: BuildContext) -> list[tuple[Any, Example]]:
        from dsbuild.project.base import ProjectionReport

        o = self.builder.options
        projector = self.builder.projector()
        prepared = self.builder.prepare_pairs(items)
        valid = [p for p in prepared if p.reject is None]
        with ctx.timer("align"):
            if o.alignment_scope == "corpus":
                views = self._corpus_views(valid, ctx)
            else:
                views = projector.align([p.src_words for p in valid], [p.tgt_words for p in valid])
        with ctx.timer("project"):
            projections = projector.project_aligned(prepared, views)
        report = ProjectionReport(projections, "alignment", o.source_lang, o.target_lang, projector.describe())
        merge_facts(ctx.facts.setdefault("counts", {}), report.counts)
        ctx.settings.setdefault("projection", {})["case_signal"] = report.settings.get("case_signal")
        return list(zip(report.projections, (g for _, g in items)))


    def _corpus_views(self, valid: list[Any], ctx: BuildContext) -> list[Any]:
        """This shard's links, cut from one alignment of the whole corpus (aligned by the first shard
        that gets here, under a lock; the others read it from the alignment cache)."""
        from filelock import FileLock

        builder = self.builder
        with FileLock(str(ctx.work_dir / "corpus-alignment.lock")):
            prepared, views = builder.cached("corpus-alignment", builder.align_all)
        position = builder.cached("corpus-positions", lambda: {
            p.source.id: i for i, p in enumerate(p for p in prepared if p.reject is None)})
        return [views[position[p.source.id]] for p in valid]


class ScoreAndRow(Step):
    """Count the projection against the target gold (summed over shards), then the row or reject."""

    name = "score+row"

    def run(self, items: list[tuple[Any, Example]], ctx: BuildContext) -> list[dict[str, Any] | Reject]:
        from dsbuild.evaluate import span_prf

        scores = span_prf([p.target.spans for p, _ in items], [g.spans for _, g in items])
        spans = ctx.facts.setdefault("eval", {})
        for label, prf in scores.per_label.items():
            c = spans.setdefault(label, {"tp": 0, "pred": 0, "gold": 0})
            c["tp"], c["pred"], c["gold"] = c["tp"] + prf.tp, c["pred"] + prf.n_pred, c["gold"] + prf.n_gold
        f = ctx.facts
        f["exact_sentences"] = f.get("exact_sentences", 0) + sum(_keys(p.target) == _keys(g) for p, g in items)
        f["gold_target_spans"] = f.get("gold_target_spans", 0) + sum(len(g.spans) for _, g in items)
        return [projected_reject(p, g) if p.rejected is not None else projected_row(p, g) for p, g in items]


def projected_reject(proj: Any, gold: Example) -> Reject:
    return Reject(gold.id, proj.rejected, str(proj.qc.get("reject_detail", "")),
                  {"source": proj.source.to_dict(), "target": gold.to_dict(),
                   "unprojected": [{"label": u.span.label, "reason": u.reason, "detail": u.detail}
                                   for u in proj.unprojected]})


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
