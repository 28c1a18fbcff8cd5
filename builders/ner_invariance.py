"""ner-invariance: span-preserving perturbations of any NER dataset (CheckList INV tests).

Recipe: read NER examples (CoNLL or token JSONL through dsbuild.io; default: the shipped Europarl
gold file of the chosen language) -> per operator config, perturb each example (swap entity names
for others of the same type from a name lexicon, change numbers, add a typo outside entities) ->
move the spans exactly and verify that each still covers the right characters -> Parquet with
tokens, tags, spans, the seed id, the condition and the test type -> card.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from dsbuild.builder import BuildContext, Builder, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.challenge.ner_perturb import NerPerturbation, change_numbers, load_names, swap_entities, typo_outside, verify_spans
from dsbuild.challenge.template_builder import challenge_data
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.features import example_to_row, ner_features
from dsbuild.io import read_conll, read_jsonl
from builders.europarl_ner import AGERRI_CITATION
from dsbuild.registry import builders
from dsbuild.spans import Example

OPERATORS = {
    "swap-entities": "entities are replaced by other names of the same type (and class, where the name lexicon groups names)",
    "change-numbers": "every all-digit token outside entities becomes another number with as many digits",
    "typos": "two adjacent inner letters of one word (4+ letters) outside entities are swapped",
}
CHECKLIST_CITATION = """@inproceedings{ribeiro-etal-2020-beyond,
  title = {Beyond Accuracy: Behavioral Testing of {NLP} Models with {C}heck{L}ist},
  author = {Ribeiro, Marco Tulio and Wu, Tongshuang and Guestrin, Carlos and Singh, Sameer},
  booktitle = {Proceedings of ACL 2020},
  year = {2020}
}"""


def shipped_europarl(lang: str) -> Path:
    import builders as pkg

    return Path(pkg.__file__).parent / "data" / "europarl_ner" / f"{lang}-europarl.test.conll02"


@dataclass
class NerInvarianceOptions:
    language: str = option("en", "language of the examples (selects the name lexicon; en and es ship)")
    source_path: str = option("", "CoNLL (.conll/.conll02/.txt/.tsv) or token JSONL (.jsonl) file (default: shipped Europarl gold file)")
    scheme: str = option("IOB2", "tag scheme of the input (IOB1, IOB2, BIOES)")
    max_examples: int = option(0, "use at most this many examples (0: all)")
    operators: list[str] = option(list(OPERATORS), "perturbations to build (each becomes a config)")
    extra_name_files: list[str] = option([], "your own YAML name lexicons {language: {LABEL: [names]}}, appended to the shipped one")
    seed: int = option(13, "seed for the random choices (which name, which word, which number)")


@builders.register("ner-invariance")
class NerInvariance(Builder):
    name = "ner-invariance"
    version = "1.0.0"
    description = "CheckList-style invariance tests for NER: entity swaps, number changes, typos, spans moved exactly."
    Options = NerInvarianceOptions
    card_template = "ner-invariance.md.j2"
    history = [("1.0.0", "First release: 3 operators; default seed data is the shipped Europarl gold file.")]

    def _source(self) -> Path:
        o = self.options
        if o.source_path:
            return Path(o.source_path)
        path = shipped_europarl(o.language)
        if not path.is_file():
            raise ConfigError(f"ner-invariance: no shipped NER file for language {o.language!r} (shipped: en, es); "
                              "give one with --set source_path=FILE")
        return path

    def info(self) -> DatasetInfo:
        shipped = not self.options.source_path
        return DatasetInfo(
            pretty_name="NER invariance tests (generated)",
            summary="Perturbed copies of NER sentences whose gold entities are known after the change: entity "
                    "names swapped for others of the same type, numbers changed, typos outside entities. A "
                    "model should tag the perturbed sentence exactly like the gold spans shown.",
            languages=[self.options.language],
            license="unknown",  # Europarl terms / the input's licence: no SPDX id fits
            task_categories=["token-classification"],
            task_ids=["named-entity-recognition"],
            source_datasets=["extended|europarl"] if shipped else ["extended"],
            annotations_creators=["machine-generated"],
            language_creators=["found"],
            tags=["ner", "challenge-set", "checklist", "invariance"],
            sources=[Source(name="ixa-ehu/ner-evaluation-corpus-europarl" if shipped else str(self.options.source_path),
                            license="Europarl terms: 'We are not aware of any copyright restrictions of the material.'"
                            if shipped else "the licence of the input dataset",
                            url="https://github.com/ixa-ehu/ner-evaluation-corpus-europarl" if shipped else "",
                            citation=AGERRI_CITATION + "\n" + CHECKLIST_CITATION if shipped else CHECKLIST_CITATION,
                            description="Gold NER sentences used as seeds; names lexicon written for dsbuild (CC0).")],
            method="Each operator config perturbs every seed sentence once with seeded choices; sentences it "
                   "cannot change are recorded as rejects (not-applicable).",
            limitations="Name swaps ignore wider context (a title or pronoun elsewhere in the sentence is not "
                        "adapted). For types given as name classes (English ORG and MISC, Spanish ORG and MISC), "
                        "only entities listed in a class are swapped, so many ORG/MISC entities stay unchanged.",
        )

    def configs(self) -> list[ConfigSpec]:
        for op in self.options.operators:
            if op not in OPERATORS:
                raise ConfigError(f"ner-invariance: unknown operator {op!r}; choose from {', '.join(OPERATORS)}")
        labels = getattr(self, "labels", ("LOC", "MISC", "ORG", "PER"))
        extra = {"seed_id": datasets.Value("string"), "source": datasets.Value("string"),
                 "original_text": datasets.Value("string"), "operator": datasets.Value("string"),
                 "condition": datasets.Value("string"), "test_type": datasets.Value("string"),
                 "expectation": datasets.Value("string")}
        return [ConfigSpec(name=op, features=ner_features(labels, extra=extra), splits=["test"], language=self.options.language,
                           description=OPERATORS[op]) for op in self.options.operators]

    def prepare(self, ctx: BuildContext) -> None:
        o = self.options
        self.configs()
        src = self._source()
        if src.suffix.lower() == ".jsonl":
            examples = read_jsonl(src, scheme=o.scheme)  # type: ignore[arg-type]
        else:
            examples = read_conll(src, scheme=o.scheme)  # type: ignore[arg-type]
        if o.max_examples:
            examples = examples[:o.max_examples]
        seen: dict[str, Any] = {}
        for ex in examples:  # row ids are SEED_ID-OPERATOR, so seed ids must be unique
            if ex.id in seen:
                raise InputError(f"example id {ex.id!r} repeats (first at line {seen[ex.id]})", source=src,
                                 line=ex.meta.get("line"), hint="give every example a unique id")
            seen[ex.id] = ex.meta.get("line")
        self.examples = [ex.with_spans(ex.spans) for ex in examples]  # spans in position order
        self.labels = tuple(sorted({s.label for ex in self.examples for s in ex.spans})) or ("MISC",)
        ctx.add_input(src, role="seed NER examples", license="Europarl terms" if not o.source_path else "")
        name_files = [challenge_data() / "ner" / "names.yaml"] + [Path(f) for f in o.extra_name_files]
        for f in name_files:
            ctx.add_input(f, role="entity name lexicon", license="CC0-1.0" if f.parent.name == "ner" else "")
        all_names = load_names(name_files)
        if "swap-entities" in o.operators and o.language not in all_names:
            raise ConfigError(f"ner-invariance: no entity names for language {o.language!r} (have {sorted(all_names)}); "
                              "write {LANG: {LABEL: [names]}} in a YAML file and pass --set extra_name_files=[FILE]")
        self.names = all_names.get(o.language, {})
        ctx.add_seed("perturbation", o.seed)
        ctx.facts["seed_examples"] = len(self.examples)
        ctx.facts["seed_spans"] = dict(sorted(Counter(s.label for ex in self.examples for s in ex.spans).items()))
        ctx.facts["names_per_label"] = {k: sum(len(n) for n in v.values()) for k, v in sorted(self.names.items())}
        ctx.facts["operators"] = OPERATORS

    def _perturb(self, op: str, ex: Example) -> NerPerturbation | None:
        rng = random.Random(f"{self.options.seed}:{op}:{ex.id}")
        new_id = f"{ex.id}-{op}"
        if op == "swap-entities":
            return swap_entities(ex, self.names, rng, new_id)
        if op == "change-numbers":
            return change_numbers(ex, rng, new_id)
        return typo_outside(ex, rng, new_id)

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        op = config.name
        rejects: Counter[str] = Counter()
        spans_checked = spans_ok = 0
        labels: Counter[str] = Counter()
        swapped: Counter[str] = Counter()
        unchanged: Counter[str] = Counter()
        for ex in self.examples:
            ctx.read()
            p = self._perturb(op, ex)
            if p is None:
                rejects["not-applicable"] += 1
                yield Reject(f"{ex.id}-{op}", "not-applicable", f"{op}: nothing to change in this sentence", ex.to_dict())
                continue
            problem = verify_spans(p)
            spans_checked += len(p.expected)
            if problem is not None:
                rejects["span-check-failed"] += 1
                yield Reject(f"{ex.id}-{op}", "span-check-failed", problem, ex.to_dict())
                continue
            spans_ok += len(p.expected)
            labels.update(s.label for s in p.example.spans)
            for sw in p.condition.get("swaps", []):
                swapped[sw["label"]] += 1
            for kept in p.condition.get("kept", []):
                unchanged[kept["label"]] += 1
            row = example_to_row(p.example)
            row.update({"seed_id": ex.id, "source": str(ex.meta.get("source", "")), "original_text": ex.text,
                        "operator": op, "condition": json.dumps(p.condition, ensure_ascii=False, sort_keys=True),
                        "test_type": "INV",
                        "expectation": "same entities (labels) as the seed, at the moved spans given in `spans`"})
            yield row
        ctx.facts["current"] = {"rejects": dict(sorted(rejects.items())), "spans_checked": spans_checked,
                                "spans_verified": spans_ok, "spans_by_label": dict(sorted(labels.items())),
                                "swapped_by_label": dict(sorted(swapped.items())),
                                "kept_in_swapped_rows_by_label": dict(sorted(unchanged.items()))}

    def finish(self, ctx: BuildContext) -> None:
        q = {}
        for op, splits in ctx.facts.get("split_facts", {}).items():
            f = splits.get("test", {})
            q[op] = {"spans_checked": f.get("spans_checked", 0), "spans_verified": f.get("spans_verified", 0),
                     "all_spans_verified": f.get("spans_checked", 0) == f.get("spans_verified", 0),
                     "not_applicable": f.get("rejects", {}).get("not-applicable", 0),
                     "span_check_failed": f.get("rejects", {}).get("span-check-failed", 0)}
        ctx.quality["span_checks"] = q
