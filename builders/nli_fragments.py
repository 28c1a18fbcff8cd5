"""nli-fragments: semantic fragments (Richardson et al. 2020) in English, Spanish and Chinese.

Recipe: typed lexicons + fragment templates (``builders/data/challenge/fragments``) -> seeded
filling with agreement -> checks -> one config per language -> card with counts per category and label.
"""

from __future__ import annotations

from dsbuild.builder import DatasetInfo, Source
from dsbuild.challenge.template_builder import TemplateNliBuilder
from dsbuild.registry import builders

CITATION = """@inproceedings{richardson-etal-2020-probing,
  title = {Probing Natural Language Inference Models through Semantic Fragments},
  author = {Richardson, Kyle and Hu, Hai and Moss, Lawrence S. and Sabharwal, Ashish},
  booktitle = {Proceedings of AAAI 2020},
  year = {2020}
}"""


@builders.register("nli-fragments")
class NliFragments(TemplateNliBuilder):
    name = "nli-fragments"
    version = "1.0.0"
    description = "Semantic-fragment NLI pairs (negation, boolean, quantifier, counting, conditional, comparative) in en, es, zh."
    template_dir = "fragments"
    labels = ("entailment", "neutral", "contradiction")
    card_template = "nli-fragments.md.j2"
    history = [("1.0.0", "First release: 6 fragments x 3 labels in en, es, zh.")]

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            pretty_name="Semantic fragments NLI (multilingual, generated)",
            summary="Three-way NLI pairs that each probe one phenomenon (negation, boolean coordination, "
                    "quantifiers, counting, conditionals, comparatives), generated from typed lexicons and templates.",
            languages=list(self.options.languages),
            license="cc0-1.0",
            task_categories=["text-classification"],
            task_ids=["natural-language-inference"],
            multilinguality="multilingual" if len(self.options.languages) > 1 else "monolingual",
            annotations_creators=["machine-generated"],
            language_creators=["machine-generated"],
            tags=["nli", "challenge-set", "semantic-fragments", "templates", "checklist"],
            sources=[Source(name="Semantic fragments (method)", license="method only; no upstream data is used",
                            url="https://github.com/yakazimir/semantic_fragments", citation=CITATION,
                            description="Fragment taxonomy follows Richardson et al. (2020); lexicons and templates "
                                        "were written for dsbuild.")],
            method="One template per fragment and label; slots are filled from typed lexicons by a seeded generator.",
            limitations="Short templated sentences; counting uses 2-9 only; 'every X' is read with existential "
                        "import (so it entails 'some X'); comparatives assume the adjective pairs are antonyms.",
        )
