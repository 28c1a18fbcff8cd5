"""nli-stress: stress tests (Naik et al. 2018) derived from any NLI dataset.

Recipe: read seed pairs (the shipped multilingual seed set, a local JSONL/CSV/TSV file or a Hub
dataset; unknown labels fail at load time unless recorded as rejects) -> per operator config,
perturb every seed pair (distraction appended to premise or hypothesis, antonym or synonym
substitution, spelling noise / same-sound character, number rewrite) -> each row keeps its seed's
id, source, label and the operator's condition -> card with counts per operator and label.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, display_name, user_source)
from dsbuild.builder import BuildContext, Builder, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.challenge.nli_data import NLI_LABELS, NliPair, load_nli
from dsbuild.challenge.perturb import (Perturbation, StressResources, append_distractor, load_resources, lower_bound,
                                       rewrite_number, spelling_noise, substitute)
from dsbuild.challenge.quality import normalize_pair
from dsbuild.challenge.template_builder import challenge_data
from dsbuild.config import option
from dsbuild.errors import ConfigError
from dsbuild.registry import builders

CITATION = """@inproceedings{naik-etal-2018-stress,
  title = {Stress Test Evaluation for Natural Language Inference},
  author = {Naik, Aakanksha and Ravichander, Abhilasha and Sadeh, Norman and Rose, Carolyn and Neubig, Graham},
  booktitle = {Proceedings of COLING 2018},
  year = {2018}
}"""


@dataclass(frozen=True)
class Operator:
    """One stress test: which side it perturbs, how, the resulting label and CheckList test type."""

    name: str
    side: str  # "premise" or "hypothesis" (the perturbed sentence; antonym/synonym/number derive the hypothesis from the premise)
    test_type: str
    label: str | None  # None: the seed's label is kept
    description: str


OPERATORS: dict[str, Operator] = {o.name: o for o in (
    Operator("distraction-premise", "premise", "INV", None, "a tautology appended to the premise; label kept"),
    Operator("distraction-hypothesis", "hypothesis", "INV", None, "a tautology appended to the hypothesis; label kept"),
    Operator("antonym", "premise", "DIR", "contradiction",
             "hypothesis = premise with one word replaced by its antonym; (premise, premise) is entailment, the antonym moves it to contradiction"),
    Operator("synonym", "premise", "INV", "entailment",
             "hypothesis = premise with one word replaced by a synonym; the entailment of (premise, premise) must hold"),
    Operator("spelling", "hypothesis", "INV", None,
             "one typo in the hypothesis (two adjacent letters swapped; Chinese: a same-sound character); label kept"),
    Operator("numerical", "premise", "DIR", "contradiction",
             "hypothesis = premise with one quantity changed to a different number; contradiction"),
    Operator("numerical-bound", "premise", "INV", "entailment",
             "hypothesis = premise with one quantity N replaced by 'more than N-1'; the entailment of (premise, premise) must hold"),
)}


@dataclass
class NliStressOptions:
    source: str = option("", "seed NLI pairs: a local .jsonl/.csv/.tsv file or a Hub dataset id (default: the shipped seed set)")
    hub_config: str = option("", "config name of the Hub dataset, if it has several")
    split: str = option("test", "split of the Hub dataset to read")
    language: str = option("", "language of all pairs (default: the 'language' column, else en)")
    premise_column: str = option("", "premise column (default: premise or sentence1)")
    hypothesis_column: str = option("", "hypothesis column (default: hypothesis or sentence2)")
    label_column: str = option("", "label column (default: label or gold_label)")
    id_column: str = option("", "id column (default: id, pairID or idx; else FILE-N)")
    label_names: list[str] = option([], "names of integer labels in order (default: entailment, neutral, contradiction)")
    drop_unknown_labels: bool = option(False, "record pairs with labels outside entailment/neutral/contradiction as rejects instead of failing")
    max_pairs: int = option(0, "read at most this many seed pairs (0: all)")
    operators: list[str] = option(list(OPERATORS), "stress tests to build (each becomes a config)")
    extra_resource_files: list[str] = option([], "your own YAML files with distractors, antonyms, synonyms, numbers, homophones")
    seed: int = option(13, "seed for the random choices (which word, which distractor)")
    source_name: str = option("", SOURCE_NAME_HELP)
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


@builders.register("nli-stress")
class NliStress(Builder):
    name = "nli-stress"
    version = "1.0.0"
    description = "NLI stress tests (distraction, antonym, synonym, spelling noise, numbers) derived from any NLI dataset."
    Options = NliStressOptions
    card_template = "nli-stress.md.j2"
    history = [("1.0.0", "First release: 7 operators, en/es/zh resources, shipped multilingual seed set.")]

    def _source(self) -> str:
        return self.options.source or str(challenge_data() / "stress" / "seed_nli.jsonl")

    def _source_dataset_id(self) -> str:
        """The seed dataset for ``source_datasets``: a Hub id as given, a local file or folder by its stem
        (its folder is this machine's business, and the Hub allows no ``/`` path there)."""
        src = self.options.source
        return Path(src).stem if Path(src).exists() else src

    def info(self) -> DatasetInfo:
        shipped = not self.options.source
        langs = sorted({p.language for p in getattr(self, "pairs", [])}) or ([self.options.language] if self.options.language else ["en", "es", "zh"])
        # rows copy the seed pairs: the seed dataset's licence is the dataset's
        license_, license_name = ("cc0-1.0", "") if shipped else dataset_license(self.options)
        return DatasetInfo(
            pretty_name="NLI stress tests (generated)",
            summary="Stress-test pairs derived from seed NLI pairs: tautologies appended (label kept), antonym "
                    "(contradiction) and synonym (entailment) substitutions, spelling noise (Chinese: same-sound "
                    "characters) and number rewrites. Every row keeps its seed pair's id, source and label.",
            languages=langs,
            license=license_,
            license_name=license_name,
            task_categories=["text-classification"],
            task_ids=["natural-language-inference"],
            multilinguality="multilingual" if len(langs) > 1 else "monolingual",
            source_datasets=["original"] if shipped else [f"extended|{self._source_dataset_id()}"],
            annotations_creators=["machine-generated"],
            language_creators=["machine-generated"] if shipped else ["found"],
            tags=["nli", "challenge-set", "stress-test", "checklist"],
            sources=[Source(name="dsbuild seed NLI set", license="CC0-1.0 (written for dsbuild)", citation=CITATION,
                            description="Seed pairs written for dsbuild (en 30, es 15, zh 15)") if shipped else
                     user_source(self.options, self.options.source, citation=CITATION,
                                 description="Seed NLI dataset given by the user; stress operators after Naik et al. (2018).")],
            method="Each operator config perturbs every seed pair once (seeded choices); pairs it cannot apply to "
                   "are recorded as rejects with reason not-applicable.",
            limitations="Substitution tables are small and context-free: an antonym can produce an odd sentence or "
                        "a pair a human would call neutral; number rewrites assume exact readings. Spelling noise "
                        "swaps letters only inside words of four or more letters.",
        )

    def configs(self) -> list[ConfigSpec]:
        for op in self.options.operators:
            if op not in OPERATORS:
                raise ConfigError(f"nli-stress: unknown operator {op!r}; choose from {', '.join(OPERATORS)}")
        return [ConfigSpec(name=op, features=self.features(), splits=["test"], description=OPERATORS[op].description)
                for op in self.options.operators]

    @staticmethod
    def features() -> datasets.Features:
        return datasets.Features({
            "id": datasets.Value("string"), "seed_id": datasets.Value("string"), "source": datasets.Value("string"),
            "language": datasets.Value("string"), "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"), "label": datasets.ClassLabel(names=list(NLI_LABELS)),
            "seed_premise": datasets.Value("string"), "seed_hypothesis": datasets.Value("string"),
            "seed_label": datasets.ClassLabel(names=list(NLI_LABELS)), "operator": datasets.Value("string"),
            "condition": datasets.Value("string"), "test_type": datasets.Value("string"),
            "expectation": datasets.Value("string"),
        })

    def prepare(self, ctx: BuildContext) -> None:
        o = self.options
        self.configs()  # validate operator names before reading anything
        dataset_license(o)  # a bad source_license fails before any work, not at the card
        paths = sorted((challenge_data() / "stress").glob("*.yaml")) + [Path(f) for f in o.extra_resource_files]
        self.resources = load_resources(paths)
        for p in paths:
            ctx.add_input(p, role="stress resources", license="CC0-1.0 (written for dsbuild)" if p.parent.name == "stress" else "")
        src = self._source()
        self.pairs = load_nli(src, split=o.split, hub_config=o.hub_config or None, language=o.language,
                              columns={"premise": o.premise_column, "hypothesis": o.hypothesis_column,
                                       "label": o.label_column, "id": o.id_column},
                              label_names=o.label_names or None, drop_unknown=o.drop_unknown_labels,
                              limit=o.max_pairs or None)
        self._name_sources(src)
        if Path(src).is_file():
            ctx.add_input(src, role="seed NLI pairs", license="CC0-1.0" if not o.source else "")
        ctx.add_seed("perturbation", o.seed)
        ctx.facts["seed_pairs"] = dict(sorted(Counter(f"{p.language}:{p.label}" for p in self.pairs).items()))
        ctx.facts["operators"] = {name: {"test_type": op.test_type, "label": op.label or "seed label", "description": op.description}
                                  for name, op in OPERATORS.items() if name in o.operators}

    def _name_sources(self, src: str) -> None:
        """Give each pair a ``source`` that names the file without its folder (the loader records the
        path it read, which would put this machine's folders into every row and reject)."""
        if not Path(src).exists():
            return  # a Hub id ("stanfordnlp/snli:test") names no local folder
        shown = display_name(src)
        # a file is recorded as str(Path(src)), a local dataset folder as "SRC:split": strip either spelling
        prefixes = sorted({src, str(Path(src))}, key=len, reverse=True)
        for pair in self.pairs:
            prefix = next((p for p in prefixes if pair.source.startswith(p)), None)
            if prefix is not None:
                pair.source = shown + pair.source[len(prefix):]

    def _apply(self, op: Operator, pair: NliPair, res: StressResources, rng: random.Random) -> Perturbation | None:
        fns: dict[str, Callable[[], Perturbation | None]] = {
            "distraction-premise": lambda: append_distractor(pair.premise, res, rng),
            "distraction-hypothesis": lambda: append_distractor(pair.hypothesis, res, rng),
            "antonym": lambda: substitute(pair.premise, res.antonyms, res, rng, "antonym"),
            "synonym": lambda: substitute(pair.premise, res.synonyms, res, rng, "synonym"),
            "spelling": lambda: spelling_noise(pair.hypothesis, res, rng),
            "numerical": lambda: rewrite_number(pair.premise, res, rng),
            "numerical-bound": lambda: lower_bound(pair.premise, res, rng),
        }
        return fns[op.name]()

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        op = OPERATORS[config.name]
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        rejects: Counter[str] = Counter()
        seen: dict[tuple[str, str], str] = {}
        for pair in self.pairs:
            ctx.read()
            example = {"id": pair.id, "premise": pair.premise, "hypothesis": pair.hypothesis, "label": pair.label,
                       "raw_label": pair.raw_label, "language": pair.language, "source": pair.source, "line": pair.line}
            reason, detail, row = self._row(op, pair, seen)
            if row is None:
                rejects[reason] += 1
                yield Reject(f"{pair.id}-{op.name}", reason, detail, example)
                continue
            counts[pair.language][row["label"]] += 1
            yield row
        ctx.facts["current"] = {"counts": {k: dict(sorted(v.items())) for k, v in sorted(counts.items())},
                                "rejects": dict(sorted(rejects.items()))}

    def _row(self, op: Operator, pair: NliPair, seen: dict[tuple[str, str], str]) -> tuple[str, str, dict[str, Any] | None]:
        if pair.label is None:
            return "unknown-label", f"label {pair.raw_label!r} is not one of {', '.join(NLI_LABELS)}", None
        if not pair.premise or not pair.hypothesis:
            return "empty-sentence", "premise or hypothesis is empty", None
        res = self.resources.get(pair.language)
        if res is None:
            return "no-resources", (f"no stress resources for language {pair.language!r} (have {sorted(self.resources)}); "
                                    "add a YAML file with --set extra_resource_files=[FILE]"), None
        rng = random.Random(f"{self.options.seed}:{op.name}:{pair.id}")
        pert = self._apply(op, pair, res, rng)
        if pert is None:
            return "not-applicable", f"{op.name} found nothing to change in the {op.side}", None
        if op.name == "distraction-premise":
            premise, hypothesis = pert.text, pair.hypothesis
        elif op.name in ("distraction-hypothesis", "spelling"):
            premise, hypothesis = pair.premise, pert.text
        else:  # antonym, synonym, numerical: the perturbed premise becomes the hypothesis
            premise, hypothesis = pair.premise, pert.text
        changed = premise if op.name == "distraction-premise" else hypothesis  # the sentence the operator wrote
        cond = pert.condition
        if "replacement" in cond and changed[cond["char_start"]:cond["char_end"]] != cond["replacement"]:
            return "condition-check-failed", f"recorded offsets do not point at {cond['replacement']!r}", None
        if "distractor" in cond and not changed[cond["char_start"]:].lstrip("，, ").startswith(cond["distractor"]):
            return "condition-check-failed", f"distractor {cond['distractor']!r} not found at its offset", None
        key = normalize_pair(premise, hypothesis)
        if key in seen:
            return "duplicate-pair", f"same pair as seed {seen[key]}", None
        seen[key] = pair.id
        label = op.label or pair.label
        expect = {"INV": f"same label as the seed ({label})" if op.label is None else
                  f"{label}, like (premise, premise)", "DIR": f"{label}"}[op.test_type]
        return "", "", {
            "id": f"{pair.id}-{op.name}", "seed_id": pair.id, "source": pair.source, "language": pair.language,
            "premise": premise, "hypothesis": hypothesis, "label": label, "seed_premise": pair.premise,
            "seed_hypothesis": pair.hypothesis, "seed_label": pair.label, "operator": op.name,
            "condition": json.dumps({"side": op.side, **pert.condition}, ensure_ascii=False, sort_keys=True),
            "test_type": op.test_type, "expectation": expect,
        }

    def finish(self, ctx: BuildContext) -> None:
        quality: dict[str, Any] = {}
        for op, splits in ctx.facts.get("split_facts", {}).items():
            facts = splits.get("test", {})
            total: Counter[str] = Counter()
            for c in facts.get("counts", {}).values():
                total.update(c)
            rejects = facts.get("rejects", {})
            quality[op] = {"rows": sum(total.values()), **{label: total.get(label, 0) for label in NLI_LABELS},
                           "not_applicable": rejects.get("not-applicable", 0),
                           "duplicate_pairs_removed": rejects.get("duplicate-pair", 0),
                           "unknown_labels_rejected": rejects.get("unknown-label", 0),
                           "condition_check_failed": rejects.get("condition-check-failed", 0),
                           "share_of_seeds_used": round(sum(total.values()) / max(1, sum(total.values()) + sum(rejects.values())), 4)}
        ctx.quality["operators"] = quality
