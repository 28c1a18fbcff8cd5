"""ner-invariance: span-preserving perturbations of any NER dataset (CheckList INV tests).

Recipe, one config per operator, run shard by shard (:mod:`dsbuild.pipeline`):

1. **Source**: the seed NER examples, read lazily (CoNLL or token JSONL through dsbuild.io;
   default: the shipped Europarl gold file of the chosen language). ``prepare`` scans them once
   for the tag set and unique ids, keeping nothing else.
2. **Perturb**: the config's operator changes each seed (swap entity names for others of the same
   type from a name lexicon, change numbers, add a typo outside entities), moving the spans
   exactly; a seed it cannot change is a reject (``not-applicable``).
3. **Verify spans**: each moved span must still cover the right characters with the same label
   (otherwise a reject, ``span-check-failed``).
4. **To row**: tokens, tags, spans, the seed id, the condition and the test type.
5. **Card**: seed counts, entities per operator and the span checks, summed over shards in
   ``finish``.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import datasets

from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, user_source)
from dsbuild.builder import BuildContext, Builder, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.challenge.ner_perturb import NerPerturbation, change_numbers, load_names, swap_entities, typo_outside, verify_spans
from dsbuild.challenge.template_builder import challenge_data
from dsbuild.config import option
from dsbuild.errors import ConfigError, InputError
from dsbuild.pipeline import merge_facts
from dsbuild.features import example_to_row, ner_features
from dsbuild.io.conll import iter_conll
from builders.europarl_ner import AGERRI_CITATION
from dsbuild.pipeline import MapStep, Step
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
    source_name: str = option("", SOURCE_NAME_HELP)
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


@builders.register("ner-invariance")
class NerInvariance(Builder):
    name = "ner-invariance"
    version = "1.0.0"
    description = "CheckList-style invariance tests for NER: entity swaps, number changes, typos, spans moved exactly."
    Options = NerInvarianceOptions
    card_template = "ner-invariance.md.j2"
    history = [("1.0.0", "First release: 3 operators; default seed data is the shipped Europarl gold file.")]

    def info(self) -> DatasetInfo:
        shipped = not self.options.source_path
        # rows are the seeds, perturbed: the seed file's licence is the dataset's (Europarl terms fit no Hub id)
        license_, license_name = ("unknown", "") if shipped else dataset_license(self.options)
        return DatasetInfo(
            pretty_name="NER invariance tests (generated)",
            summary="Perturbed copies of NER sentences whose gold entities are known after the change: entity "
                    "names swapped for others of the same type, numbers changed, typos outside entities. A "
                    "model should tag the perturbed sentence exactly like the gold spans shown.",
            languages=[self.options.language],
            license=license_,
            license_name=license_name,
            task_categories=["token-classification"],
            task_ids=["named-entity-recognition"],
            source_datasets=["extended|europarl"] if shipped else ["extended"],
            annotations_creators=["machine-generated"],
            language_creators=["found"],
            tags=["ner", "challenge-set", "checklist", "invariance"],
            sources=[Source(name="ixa-ehu/ner-evaluation-corpus-europarl",
                            license="Europarl terms: 'We are not aware of any copyright restrictions of the material.'",
                            url="https://github.com/ixa-ehu/ner-evaluation-corpus-europarl",
                            citation=AGERRI_CITATION + "\n" + CHECKLIST_CITATION,
                            description="Gold NER sentences used as seeds; names lexicon written for dsbuild (CC0).")
                     if shipped else
                     user_source(self.options, self.options.source_path, citation=CHECKLIST_CITATION,
                                 description="Gold NER sentences given by the user, used as seeds; names lexicon "
                                             "written for dsbuild (CC0).")],
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

    # -- the input ----------------------------------------------------------------------------
    def _source(self) -> Path:
        o = self.options
        if o.source_path:
            return Path(o.source_path)
        path = shipped_europarl(o.language)
        if not path.is_file():
            raise ConfigError(f"ner-invariance: no shipped NER file for language {o.language!r} (shipped: en, es); "
                              "give one with --set source_path=FILE")
        return path

    def seeds(self) -> Iterator[Example]:
        """The seed examples, read lazily (``max_examples`` applied), spans in position order."""
        o, src = self.options, self._source()
        if src.suffix.lower() == ".jsonl":
            from dsbuild.io.jsonl import iter_jsonl

            examples = iter_jsonl(src, scheme=o.scheme)  # type: ignore[arg-type]
        else:
            examples = iter_conll(src, scheme=o.scheme)  # type: ignore[arg-type]
        for ex in islice(examples, o.max_examples or None):
            yield ex.with_spans(ex.spans)

    def _scan_seeds(self) -> None:
        """One streaming pass before any shard, for what must be known up front: the tag set (the
        features of every config) and unique seed ids (row ids are SEED_ID-OPERATOR). Only the ids are
        kept while scanning; the counts per label for the card come from the shards."""
        src = self._source()
        first_line: dict[str, Any] = {}
        labels: set[str] = set()
        for ex in self.seeds():
            if ex.id in first_line:
                raise InputError(f"example id {ex.id!r} repeats (first at line {first_line[ex.id]})", source=src,
                                 line=ex.meta.get("line"), hint="give every example a unique id")
            first_line[ex.id] = ex.meta.get("line")
            labels.update(s.label for s in ex.spans)
        self.labels = tuple(sorted(labels)) or ("MISC",)
        self.seed_count = len(first_line)

    def _name_files(self) -> list[Path]:
        return [challenge_data() / "ner" / "names.yaml"] + [Path(f) for f in self.options.extra_name_files]

    def _all_names(self) -> dict[str, dict[str, dict[str, list[str]]]]:
        """The name lexicons (language -> label -> class -> names), read once per process."""
        return self.cached("names", lambda: load_names(self._name_files()))

    def names(self) -> dict[str, dict[str, list[str]]]:
        """The entity names of the chosen language (label -> class -> names)."""
        return self._all_names().get(self.options.language, {})

    # -- before the shards ---------------------------------------------------------------------
    def prepare(self, ctx: BuildContext) -> None:
        """Check the options, scan the seeds once (labels, unique ids), load the name lexicon."""
        o = self.options
        self.configs()
        dataset_license(o)  # a bad source_license fails before any work, not at the card
        self._scan_seeds()
        ctx.add_input(self._source(), role="seed NER examples", license="Europarl terms" if not o.source_path else "")
        for f in self._name_files():
            ctx.add_input(f, role="entity name lexicon", license="CC0-1.0" if f.parent.name == "ner" else "")
        all_names = self._all_names()  # a bad lexicon fails here, before any shard
        if "swap-entities" in o.operators and o.language not in all_names:
            raise ConfigError(f"ner-invariance: no entity names for language {o.language!r} (have {sorted(all_names)}); "
                              "write {LANG: {LABEL: [names]}} in a YAML file and pass --set extra_name_files=[FILE]")
        ctx.add_seed("perturbation", o.seed)
        ctx.facts["names_per_label"] = {k: sum(len(n) for n in v.values()) for k, v in sorted(self.names().items())}
        ctx.facts["operators"] = OPERATORS

    # -- the sharded recipe -------------------------------------------------------------------
    def source(self, config: ConfigSpec, split: str) -> Iterator[Example]:
        return self.seeds()

    def count(self, config: ConfigSpec, split: str) -> int | None:
        return getattr(self, "seed_count", None)

    def steps(self, config: ConfigSpec, split: str) -> list[Step]:
        op = config.name
        return [Perturb(self, op), VerifySpans(op), MapStep("to-row", partial(perturbed_row, op))]

    # -- after the shards ----------------------------------------------------------------------
    def finish(self, ctx: BuildContext) -> None:
        """Seed counts, per-operator facts for the card and the span checks, from facts summed over shards."""
        per_op = {op: ctx.facts.setdefault("split_facts", {}).setdefault(op, {}).setdefault("test", {})
                  for op in self.options.operators}
        for facts in per_op.values():
            _complete(facts)
        # every operator perturbs the same seeds: the first one's counts describe them
        seeds = next(iter(per_op.values()), {})
        ctx.facts["seed_examples"] = seeds.get("seed_examples", 0)
        ctx.facts["seed_spans"] = dict(sorted(seeds.get("seed_spans", {}).items()))
        ctx.quality["span_checks"] = {op: _span_checks(f) for op, f in per_op.items()}


def _complete(facts: dict[str, Any]) -> None:
    """Give a split's facts every key the card reads, dicts sorted (a key no shard recorded is 0 / empty)."""
    for key in ("spans_checked", "spans_verified"):
        facts.setdefault(key, 0)
    for key in ("rejects", "spans_by_label", "swapped_by_label", "kept_in_swapped_rows_by_label"):
        facts[key] = dict(sorted(facts.get(key, {}).items()))


def _span_checks(facts: dict[str, Any]) -> dict[str, Any]:
    """One operator's line of the quality table: were all spans verified, and why seeds were rejected."""
    return {"spans_checked": facts["spans_checked"], "spans_verified": facts["spans_verified"],
            "all_spans_verified": facts["spans_checked"] == facts["spans_verified"],
            "not_applicable": facts["rejects"].get("not-applicable", 0),
            "span_check_failed": facts["rejects"].get("span-check-failed", 0)}


# ---------------------------------------------------------------------- steps
@dataclass
class Perturbed:
    """A seed and its perturbed copy, between the perturb and verify steps."""

    seed: Example
    perturbation: NerPerturbation


def _count(facts: dict[str, Any], key: str, counts: Counter[str]) -> None:
    """Add ``counts`` into ``facts[key]`` (a dict summed over shards); zero counts leave no key."""
    merge_facts(facts, {key: {k: n for k, n in counts.items() if n}})


class Perturb(Step):
    """Apply the config's operator to each seed; a seed it cannot change is a reject (not-applicable)."""

    name = "perturb"

    def __init__(self, builder: NerInvariance, op: str) -> None:
        self.builder, self.op = builder, op

    def setup(self, ctx: BuildContext) -> None:
        self.names = self.builder.names()

    def run(self, items: list[Example], ctx: BuildContext) -> list[Perturbed | Reject]:
        merge_facts(ctx.facts, {"seed_examples": len(items)})
        _count(ctx.facts, "seed_spans", Counter(s.label for ex in items for s in ex.spans))
        out = [self._perturb(ex) for ex in items]
        _count(ctx.facts, "rejects", Counter(r.reason for r in out if isinstance(r, Reject)))
        return out

    def _perturb(self, ex: Example) -> Perturbed | Reject:
        # seeded by (seed, operator, seed id): the same choice whatever the shard or worker
        rng = random.Random(f"{self.builder.options.seed}:{self.op}:{ex.id}")
        new_id = f"{ex.id}-{self.op}"
        if self.op == "swap-entities":
            p = swap_entities(ex, self.names, rng, new_id)
        elif self.op == "change-numbers":
            p = change_numbers(ex, rng, new_id)
        else:
            p = typo_outside(ex, rng, new_id)
        if p is None:
            return Reject(new_id, "not-applicable", f"{self.op}: nothing to change in this sentence", ex.to_dict())
        return Perturbed(ex, p)


class VerifySpans(Step):
    """Check that every moved span still covers the expected text and label; count entities for the card."""

    name = "verify-spans"

    def __init__(self, op: str) -> None:
        self.op = op

    def run(self, items: list[Perturbed], ctx: BuildContext) -> list[Perturbed | Reject]:
        problems = [verify_spans(item.perturbation) for item in items]
        self._record(items, problems, ctx.facts)
        return [item if problem is None else
                Reject(f"{item.seed.id}-{self.op}", "span-check-failed", problem, item.seed.to_dict())
                for item, problem in zip(items, problems)]

    @staticmethod
    def _record(items: list[Perturbed], problems: list[str | None], facts: dict[str, Any]) -> None:
        """Spans checked and verified, and the entities of the kept rows by label (swapped, kept as they were)."""
        labels: Counter[str] = Counter()
        swapped: Counter[str] = Counter()
        kept: Counter[str] = Counter()
        for item, problem in zip(items, problems):
            if problem is None:
                p = item.perturbation
                labels.update(s.label for s in p.example.spans)
                swapped.update(sw["label"] for sw in p.condition.get("swaps", []))
                kept.update(k["label"] for k in p.condition.get("kept", []))
        expected = [len(item.perturbation.expected) for item in items]
        merge_facts(facts, {"spans_checked": sum(expected),
                            "spans_verified": sum(n for n, problem in zip(expected, problems) if problem is None)})
        _count(facts, "rejects", Counter("span-check-failed" for problem in problems if problem is not None))
        for key, counts in (("spans_by_label", labels), ("swapped_by_label", swapped),
                            ("kept_in_swapped_rows_by_label", kept)):
            _count(facts, key, counts)


def perturbed_row(op: str, item: Perturbed) -> dict[str, Any]:
    """The row of a verified perturbation: the perturbed example, its seed and the INV test it makes."""
    p, seed = item.perturbation, item.seed
    row = example_to_row(p.example)
    # the seed's file by name only: the reader's path would make every row depend on where the build ran
    source = seed.meta.get("source")
    row.update({"seed_id": seed.id, "source": Path(str(source)).name if source else "", "original_text": seed.text,
                "operator": op, "condition": json.dumps(p.condition, ensure_ascii=False, sort_keys=True),
                "test_type": "INV",
                "expectation": "same entities (labels) as the seed, at the moved spans given in `spans`"})
    return row
