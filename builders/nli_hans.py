"""nli-hans: HANS-style NLI challenge pairs (McCoy et al. 2019) in English, Spanish and Chinese.

Recipe: typed lexicons + templates (``builders/data/challenge/lexicons``, ``.../hans``) -> seeded
filling with agreement -> checks (no unfilled slot, agreement, overlap/contiguity, no duplicate
pair) -> one config per language -> card with counts per heuristic and label.
"""

from __future__ import annotations

from dsbuild.builder import DatasetInfo, Source
from dsbuild.challenge.template_builder import TemplateNliBuilder
from dsbuild.registry import builders

CITATION = """@inproceedings{mccoy-etal-2019-right,
  title = {Right for the Wrong Reasons: Diagnosing Syntactic Heuristics in Natural Language Inference},
  author = {McCoy, Tom and Pavlick, Ellie and Linzen, Tal},
  booktitle = {Proceedings of ACL 2019},
  year = {2019}
}"""


@builders.register("nli-hans")
class NliHans(TemplateNliBuilder):
    name = "nli-hans"
    version = "1.0.0"
    description = "HANS-style lexical-overlap, subsequence and constituent NLI pairs (en, es, zh) from typed templates."
    template_dir = "hans"
    labels = ("entailment", "non-entailment")
    heuristic_label = "entailment"  # the lexical-overlap heuristic predicts entailment for every pair
    card_template = "nli-hans.md.j2"
    history = [("1.0.0", "First release: 3 heuristics x (entailment, non-entailment) templates in en, es, zh.")]

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            pretty_name="HANS-style NLI challenge set (multilingual, generated)",
            summary="Premise-hypothesis pairs with high word overlap whose label the overlap heuristic gets "
                    "wrong half of the time: lexical overlap (swapped arguments, passive, negation, dropped "
                    "adverb), subsequence and constituent cases, generated from typed lexicons and templates.",
            languages=list(self.options.languages),
            license="cc0-1.0",
            task_categories=["text-classification"],
            task_ids=["natural-language-inference"],
            multilinguality="multilingual" if len(self.options.languages) > 1 else "monolingual",
            annotations_creators=["machine-generated"],
            language_creators=["machine-generated"],
            tags=["nli", "challenge-set", "hans", "templates", "checklist"],
            sources=[Source(name="HANS (method)", license="method only; no HANS data is used",
                            url="https://github.com/tommccoy1/hans", citation=CITATION,
                            description="Heuristic taxonomy and template design follow McCoy et al. (2019); "
                                        "lexicons and templates were written for dsbuild.")],
            method="Templates with typed slots are filled from lexicons by a seeded generator; each template "
                   "has one gold label (entailment or non-entailment) and belongs to one heuristic.",
            limitations="Templated sentences are short and repetitive; they test whether a model relies on "
                        "overlap heuristics, not general NLI ability. Two-way labels (non-entailment merges "
                        "neutral and contradiction).",
        )
