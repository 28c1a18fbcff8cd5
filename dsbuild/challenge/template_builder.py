"""A builder base for template-generated NLI challenge sets (``nli-hans``, ``nli-fragments``).

Recipe: read the shipped lexicon and template files for each language (plus the user's
``extra_files``) and validate them -> fill every template ``per_template`` times from a seeded
generator -> check and deduplicate each pair (rejects keep the reason) -> one config per
language -> card with counts per group and label, balance and the automated checks.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import datasets

from dsbuild.builder import BuildContext, Builder, ConfigSpec, Reject
from dsbuild.challenge.checklist import expectation
from dsbuild.challenge.generate import describe_fill, generate, template_space
from dsbuild.challenge.quality import adjacent_agreement, agreement_index, contiguous, label_balance, normalize_pair, overlap_rate
from dsbuild.challenge.template import Bank, load_banks
from dsbuild.config import option
from dsbuild.errors import ConfigError



def challenge_data() -> Path:
    """Where the shipped lexicons, templates and seed sets live (``builders/data/challenge``)."""
    import builders

    return Path(builders.__file__).parent / "data" / "challenge"


def filler_feature() -> dict[str, datasets.Value]:
    return {"slot": datasets.Value("string"), "lexicon": datasets.Value("string"), "text": datasets.Value("string"),
            "lemma": datasets.Value("string"), "features": datasets.Value("string")}


@dataclass
class TemplateNliOptions:
    languages: list[str] = option(["en", "es", "zh"], "languages to generate (each becomes a config)")
    per_template: int = option(40, "rows to generate per template (fewer when a template has fewer distinct fillings)")
    seed: int = option(13, "generation seed: the same seed gives identical output")
    extra_files: list[str] = option([], "your own YAML files with lexicons and/or templates, merged after the shipped ones")
    balance_tolerance: float = option(0.05, "largest allowed gap between a label's share and a uniform share, per group")
    max_attempts_factor: int = option(30, "sampling attempts per template = per_template x this")


class TemplateNliBuilder(Builder):
    """Shared machinery; subclasses set ``template_dir``, ``labels`` and the dataset info."""

    template_dir: ClassVar[str]  # folder under builders/data/challenge with <lang>.yaml templates
    labels: ClassVar[tuple[str, ...]]
    #: the label a shallow heuristic always predicts (HANS: word overlap -> entailment); adds a
    #: ``heuristic_agrees`` column saying whether that heuristic is right on the row
    heuristic_label: ClassVar[str | None] = None
    Options = TemplateNliOptions

    def files_for(self, lang: str) -> list[Path]:
        data = challenge_data()
        return [p for p in (data / "lexicons" / f"{lang}.yaml", data / self.template_dir / f"{lang}.yaml") if p.is_file()]

    def shipped_languages(self) -> list[str]:
        return sorted(p.stem for p in (challenge_data() / self.template_dir).glob("*.yaml"))

    def load(self) -> dict[str, Bank]:
        """Read and validate all lexicon and template files (raises before any generation)."""
        o = self.options
        if o.per_template < 1:
            raise ConfigError(f"{self.name}: per_template must be >= 1, got {o.per_template}")
        if not o.languages:
            raise ConfigError(f"{self.name}: no languages given; shipped: {', '.join(self.shipped_languages())}")
        paths = [p for lang in o.languages for p in self.files_for(lang)] + [Path(f) for f in o.extra_files]
        banks = load_banks(paths, labels=self.labels)
        for lang in o.languages:
            if lang not in banks or not banks[lang].templates:
                raise ConfigError(
                    f"{self.name}: no templates for language {lang!r} (shipped: {', '.join(self.shipped_languages())}); "
                    f"write lexicons and templates for it in a YAML file and pass --set extra_files=[FILE]")
        return banks

    def configs(self) -> list[ConfigSpec]:
        return [ConfigSpec(name=lang, features=self.features(), splits=["test"], language=lang,
                           description=f"{self.name} pairs in {lang}, one row per filled template")
                for lang in self.options.languages]

    def features(self) -> datasets.Features:
        extra = {"heuristic_agrees": datasets.Value("bool")} if self.heuristic_label else {}
        return datasets.Features({
            "id": datasets.Value("string"),
            "language": datasets.Value("string"),
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(self.labels)),
            "template_id": datasets.Value("string"),
            "group": datasets.Value("string"),
            "subcase": datasets.Value("string"),
            "test_type": datasets.Value("string"),
            "expectation": datasets.Value("string"),
            "overlap_rate": datasets.Value("float32"),
            "contiguous": datasets.Value("bool"),
            "fillers": datasets.List(filler_feature()),
            **extra,
        })

    def prepare(self, ctx: BuildContext) -> None:
        self.banks = self.load()
        for bank in (self.banks[lang] for lang in self.options.languages):
            for f in bank.files:
                ctx.add_input(f, role=f"{bank.language} {Path(f).parent.name}", license="CC0-1.0 (written for dsbuild)")
        ctx.add_seed("generation", self.options.seed)
        ctx.facts["templates"] = [
            {"language": lang, "id": t.id, "group": t.group, "subcase": t.subcase, "label": t.label,
             "test_type": t.test_type, "premise": t.premise, "hypothesis": t.hypothesis, "requires": t.requires,
             "space": template_space(t, self.banks[lang]), "source": Path(t.source).name}
            for lang in self.options.languages for t in self.banks[lang].templates]
        ctx.facts["lexicon_sizes"] = {lang: {name: len(lex.entries) for name, lex in self.banks[lang].lexicons.items()}
                                      for lang in self.options.languages}

    def row(self, cand: Any) -> dict[str, Any]:
        f = cand.filled
        t = f.template
        return {
            "id": cand.id, "language": t.language, "premise": f.premise, "hypothesis": f.hypothesis, "label": t.label,
            "template_id": t.id, "group": t.group, "subcase": t.subcase, "test_type": t.test_type,
            "expectation": expectation(t.test_type, t.label),
            "overlap_rate": round(overlap_rate(f.premise, f.hypothesis, t.language), 4),
            "contiguous": contiguous(f.premise, f.hypothesis, t.language),
            "fillers": f.fillers(),
            **({"heuristic_agrees": t.label == self.heuristic_label} if self.heuristic_label else {}),
        }

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        bank = self.banks[config.name]
        o = self.options
        by_group_label: dict[str, Counter[str]] = defaultdict(Counter)
        by_template: Counter[str] = Counter()
        rejects: Counter[str] = Counter()
        overlaps: dict[str, list[float]] = defaultdict(list)
        keys: set[tuple[str, str]] = set()
        duplicates_in_output = 0
        contig: dict[str, list[bool]] = defaultdict(list)
        agreement_checks = agreement_failures = surface_checks = 0
        surface_index = agreement_index(bank)
        stats: dict[str, dict[str, int]] = {}
        for cand in generate(bank, per_template=o.per_template, seed=o.seed, max_attempts_factor=o.max_attempts_factor,
                             stats=stats):
            ctx.read()
            agreement_checks += cand.filled.agreement_checks
            agreement_failures += len(cand.filled.agreement_failures)
            if cand.reject is not None:
                rejects[cand.reject] += 1
                yield Reject(cand.id, cand.reject, cand.detail, describe_fill(cand.filled))
                continue
            checked, wrong = (0, [])
            for side in (cand.filled.premise, cand.filled.hypothesis):
                n, bad = adjacent_agreement(side, surface_index)
                checked, wrong = checked + n, wrong + bad
            surface_checks += checked
            if wrong:  # re-read from the lexicons, independent of how the template was rendered
                rejects["agreement-mismatch"] += 1
                yield Reject(cand.id, "agreement-mismatch", f"words that do not agree: {wrong}", describe_fill(cand.filled))
                continue
            row = self.row(cand)
            key = normalize_pair(row["premise"], row["hypothesis"])
            duplicates_in_output += key in keys  # independent re-check of the generator's dedup
            keys.add(key)
            by_group_label[row["group"]][row["label"]] += 1
            by_template[row["template_id"]] += 1
            overlaps[row["group"]].append(row["overlap_rate"])
            contig[row["group"]].append(row["contiguous"])
            yield row
        ctx.facts["current"] = {
            "counts": {g: dict(sorted(c.items())) for g, c in sorted(by_group_label.items())},
            "rows_per_template": dict(sorted(by_template.items())),
            "templates_short": {t.id: by_template.get(t.id, 0) for t in bank.templates if by_template.get(t.id, 0) < o.per_template},
            "rejects": dict(sorted(rejects.items())),
            "agreement_checks": agreement_checks, "agreement_failures": agreement_failures,
            "duplicates_in_output": duplicates_in_output,
            "surface_agreement_pairs_checked": surface_checks,
            "sampling": {k: sum(st[k] for st in stats.values()) for k in ("draws", "resampled", "collisions")},
            "mean_overlap": {g: round(statistics.fmean(v), 4) for g, v in sorted(overlaps.items())},
            "share_contiguous": {g: round(sum(v) / len(v), 4) for g, v in sorted(contig.items())},
        }

    def finish(self, ctx: BuildContext) -> None:
        """Quality figures per language from the split facts (also present when the build resumed)."""
        tol = self.options.balance_tolerance
        quality: dict[str, Any] = {}
        for lang, splits in ctx.facts.get("split_facts", {}).items():
            facts = splits.get("test", {})
            counts = facts.get("counts", {})
            groups = {g: label_balance(Counter(c).elements(), self.labels, tol) for g, c in counts.items()}
            overall = Counter()
            for c in counts.values():
                overall.update(c)
            quality[lang] = {
                "label_balance": {"overall": label_balance(overall.elements(), self.labels, tol), "per_group": groups},
                "all_groups_balanced": all(g["balanced"] for g in groups.values()),
                "unfilled_slots": facts.get("rejects", {}).get("unfilled-slot", 0),
                "agreement_checks": facts.get("agreement_checks", 0),
                "agreement_failures": facts.get("agreement_failures", 0),
                "surface_agreement_pairs_checked": facts.get("surface_agreement_pairs_checked", 0),
                "surface_agreement_violations": facts.get("rejects", {}).get("agreement-mismatch", 0),
                "duplicate_pairs_in_output": facts.get("duplicates_in_output", 0),
                "duplicate_pairs_removed": facts.get("rejects", {}).get("duplicate-pair", 0),
                "label_conflicts_removed": facts.get("rejects", {}).get("label-conflict", 0),
                "property_violations_removed": facts.get("rejects", {}).get("property-violated", 0),
                "templates_without_rows": sorted(t for t, n in facts.get("templates_short", {}).items() if n == 0),
                "templates_short": facts.get("templates_short", {}),
                "sampling": facts.get("sampling", {}),
                "mean_overlap": facts.get("mean_overlap", {}),
                "share_contiguous": facts.get("share_contiguous", {}),
            }
        ctx.quality.update(quality)
        ctx.facts["balance_tolerance"] = tol
