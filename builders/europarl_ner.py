"""europarl-ner: the Europarl gold NER test set (Agerri et al. 2018), one config per language.

Recipe: read each language's CoNLL file (English and Spanish ship with dsbuild; any other side of
the same upstream corpus comes from ``target_path``) -> one row per sentence with tokens, IOB2 tags
and spans -> Parquet per language -> card.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.features import example_to_row, ner_features
from dsbuild.io.conll import read_conll
from dsbuild.registry import builders

DATA_DIR = Path(__file__).parent / "data" / "europarl_ner"
SHIPPED = {"en": DATA_DIR / "en-europarl.test.conll02", "es": DATA_DIR / "es-europarl.test.conll02"}
LABELS = ("LOC", "MISC", "ORG", "PER")
CITATION = """@inproceedings{agerri-etal-2018-building,
  title = {Building Named Entity Recognition Taggers via Parallel Corpora},
  author = {Agerri, Rodrigo and Chung, Yiling and Aldabe, Itziar and Aranberri, Nora and Labaka, Gorka and Rigau, German},
  booktitle = {Proceedings of LREC 2018},
  year = {2018}
}
@inproceedings{koehn-2005-europarl,
  title = {Europarl: A Parallel Corpus for Statistical Machine Translation},
  author = {Koehn, Philipp},
  booktitle = {Proceedings of Machine Translation Summit X},
  year = {2005}
}"""


@dataclass
class EuroparlNerOptions:
    source_lang: str = option("en", "language code of the source side")
    source_path: str = option("", "CoNLL file of the source side (default: the shipped English file)")
    target_lang: str = option("es", "language code of the target side (es ships; others need target_path)")
    target_path: str = option("", "CoNLL file of the target side, e.g. the German or Italian side of the same corpus")


@builders.register("europarl-ner")
class EuroparlNer(Builder):
    name = "europarl-ner"
    version = "1.0.0"
    description = "Europarl gold NER test set (799 parallel sentences, PER/LOC/ORG/MISC), one config per language."
    Options = EuroparlNerOptions
    card_template = "europarl-ner.md.j2"
    history = [("1.0.0", "First release: gold English and Spanish sides, any other side by path.")]

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

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            pretty_name="Europarl NER (gold, parallel)",
            summary="Sentence-parallel named-entity annotations on Europarl proceedings, with human gold "
                    "labels on each language side (PER, LOC, ORG, MISC in IOB2).",
            languages=list(self._sides()),
            license="unknown",
            task_categories=["token-classification"],
            task_ids=["named-entity-recognition"],
            multilinguality="multilingual",
            source_datasets=["extended|europarl"],
            annotations_creators=["expert-generated"],
            language_creators=["found"],
            tags=["ner", "parallel", "label-projection"],
            sources=[Source(
                name="ixa-ehu/ner-evaluation-corpus-europarl",
                license="Europarl terms: 'We are not aware of any copyright restrictions of the material.'",
                url="https://github.com/ixa-ehu/ner-evaluation-corpus-europarl",
                citation=CITATION,
                description="First 2,000 sentences of Europarl (Koehn 2005), NER-annotated by hand in each language.",
            )],
            method="Read from the upstream CoNLL files; no change to tokens or labels.",
            limitations="45 of the 799 sentences differ in entity count between English and Spanish "
                        "(translation divergence). Parliamentary register only.",
        )

    def configs(self) -> list[ConfigSpec]:
        return [ConfigSpec(name=lang, features=ner_features(LABELS), splits=["test"], language=lang,
                           description=f"Gold {lang} side: tokens, IOB2 tags and spans.")
                for lang in self._sides()]

    def prepare(self, ctx: BuildContext) -> None:
        self.examples = {}
        for lang, path in self._sides().items():
            ctx.add_input(path, role=f"{lang} gold CoNLL", license="Europarl terms")
            self.examples[lang] = read_conll(path, id_prefix=f"europarl-{lang}")
        counts = {lang: len(exs) for lang, exs in self.examples.items()}
        if len(set(counts.values())) > 1:
            raise InputError(f"the sides have different sentence counts: {counts}",
                             source=", ".join(str(p) for p in self._sides().values()),
                             hint="give the two sides of the same parallel corpus, sentence i matching sentence i")

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        for ex in self.examples[config.name]:
            ctx.read()
            unknown = sorted({s.label for s in ex.spans} - set(LABELS))
            if unknown:
                yield Reject(ex.id, "unknown-label", f"labels {unknown} are not in {list(LABELS)}", ex.to_dict())
                continue
            yield example_to_row(ex)
