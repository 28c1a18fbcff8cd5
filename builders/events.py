"""events: EusIE-like event extraction data by translating MEE-format records and projecting them.

Recipe: read MEE records (raw, normalised or EusIE form) -> validate against the MEE constraints
(strict: reject, lenient: keep and flag) -> optional 5-sentence segments -> optional
budget-equalised subsample -> translate (any registered translator, or given translations) ->
project entities and triggers (any registered projector), rebuild arguments -> configs ``events``
(full structure), ``entities-bio``, ``triggers-bio``, ``arguments`` (one row per trigger) -> card.

The embedded default runs offline: 24 English records written for dsbuild, covering all 16 event
types, with given human Basque translations (``builders/data/events/examples.yaml``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError
from dsbuild.events.formats import Loss, read_events, record_to_raw
from dsbuild.events.markup import load_markup_records, plain_tokens
from dsbuild.events.project import ProjectedRecord, group_projected, project_records
from dsbuild.events.schema import DATA_DIR, EventRecord, load_schema
from dsbuild.events.validate import apply_policy, validate_record
from dsbuild.events.views import (
    argument_rows, arguments_features, bio_features, entities_bio_row, events_features, events_row, triggers_bio_row,
)
from dsbuild.registry import builders, projectors, translators
from dsbuild.translate.given import GivenTranslator

EXAMPLES = DATA_DIR / "examples.yaml"
VIEWS = ("events", "entities-bio", "triggers-bio", "arguments")


@dataclass
class EventsOptions:
    source_path: str = option("", "MEE records (JSON/JSONL, raw MEE, normalised or EusIE form); default: the shipped English examples")
    source_license: str = option("unknown", "licence id of the source records given with source_path (e.g. cc-by-4.0)")
    source_lang: str = option("en", "language of the source records")
    target_lang: str = option("eu", "language to translate into (Basque by default)")
    split: str = option("test", "split name of the output")
    translator: str = option("given", "translator name from the registry (e.g. hf-seq2seq), or 'given'")
    translator_options: dict = option({}, "options for the translator (e.g. {model: facebook/nllb-200-distilled-600M})")
    translations_path: str = option("", "with translator=given: JSONL of {id, translation}; default: the shipped Basque translations")
    method: str = option("alignment", "projection method from the registry: alignment, markers, constrained")
    projector_options: dict = option({}, "options for the projection method (e.g. {aligner: eflomal})")
    validation: str = option("lenient", "strict: reject records that break the MEE constraints; lenient: keep and flag them")
    segment_size: int = option(0, "group consecutive sentences of a document into segments of this size (EusIE uses 5); 0 = off")
    budget: int = option(0, "keep a seeded subsample of records holding at most this many annotations (0 = keep all)")
    budget_unit: str = option("triggers", "what the budget counts: triggers, entities or arguments")
    seed: int = option(13, "seed for subsampling")


@builders.register("events")
class Events(Builder):
    name = "events"
    version = "1.0.0"
    description = "EusIE-like event extraction data: MEE records translated and projected (entities, triggers, arguments)."
    Options = EventsOptions
    card_template = "events.md.j2"
    history = [("1.0.0", "First release: translate + project MEE records; events, BIO and argument views.")]

    # ------------------------------------------------------------------ info
    def info(self) -> DatasetInfo:
        o = self.options
        sources = [Source(name="MEE schema constraints (TextEE valid patterns)", license="Apache-2.0",
                          url="https://github.com/ej0cl6/TextEE",
                          description="Roles allowed per event type and entity types allowed per role.")]
        if not o.source_path:
            sources.insert(0, Source(name="dsbuild event examples", license="CC0-1.0",
                                     description="24 English sentences with MEE annotations and human Basque translations, written for dsbuild."))
        return DatasetInfo(
            pretty_name=f"Event extraction ({o.source_lang} -> {o.target_lang}, projected)",
            summary=f"Event extraction data in the MEE / EusIE schema for {o.target_lang}, made by translating "
                    f"{o.source_lang} records and projecting entity mentions, event triggers and arguments.",
            languages=sorted({o.source_lang, o.target_lang}),
            license="cc0-1.0" if not o.source_path else o.source_license,
            task_categories=["token-classification"],
            task_ids=["named-entity-recognition"],
            multilinguality="translation",
            source_datasets=["original"],
            annotations_creators=["machine-generated"],
            language_creators=["machine-generated" if o.translator != "given" else "expert-generated"],
            tags=["event-extraction", "label-projection", "mee", "eusie"],
            sources=sources,
            method=f"Translated with {o.translator}; entities and triggers projected with the {o.method!r} method; "
                   f"arguments rebuilt to point at projected entities; validation {o.validation}.",
            limitations="Arguments whose entity did not project are dropped (recorded per record in `losses`). "
                        "BIO views cannot hold overlapping or discontinuous mentions (listed in `untagged`).",
        )

    def configs(self) -> list[ConfigSpec]:
        schema = load_schema()
        split = [self.options.split]
        return [
            ConfigSpec("events", events_features(schema), split, "Full structure on the target side, with losses.", self.options.target_lang),
            ConfigSpec("entities-bio", bio_features(schema.entity_types, "ner_tags"), split, "IOB2 entity tags.", self.options.target_lang),
            ConfigSpec("triggers-bio", bio_features(schema.event_types, "trigger_tags"), split, "IOB2 trigger tags.", self.options.target_lang),
            ConfigSpec("arguments", arguments_features(schema), split, "One instance per trigger, trigger marked, role tags.", self.options.target_lang),
        ]

    # ------------------------------------------------------------------ steps
    def prepare(self, ctx: BuildContext) -> None:
        o = self.options
        if o.validation not in ("strict", "lenient"):
            raise ConfigError(f"events: validation must be strict or lenient, not {o.validation!r}")
        if o.budget_unit not in ("triggers", "entities", "arguments"):
            raise ConfigError(f"events: budget_unit must be triggers, entities or arguments, not {o.budget_unit!r}")
        records, given = self._read_source(ctx)
        ctx.facts["input_records"] = len(records)
        self.rejects: list[Reject] = []
        kept = self._subsample(self._validate(records))
        with ctx.timer("translate"):
            kept, translations = self._translated(kept, given, ctx)
        with ctx.timer("project"):
            self.projected = self._project(kept, translations, ctx)
        if o.segment_size:  # translate and project sentences, then form segments on both sides
            self.projected = group_projected(self.projected, o.segment_size)
        ctx.facts.update(self._facts())
        ctx.quality["structure"] = {kind: {"input": ctx.facts["structure_in"].get(kind, 0),
                                           "output": ctx.facts["structure_out"].get(kind, 0)}
                                    for kind in ("entities", "triggers", "arguments")}

    def _read_source(self, ctx: BuildContext) -> tuple[list[EventRecord], dict[str, str]]:
        o = self.options
        if o.source_path:
            ctx.add_input(o.source_path, role="source MEE records")
            return read_events(o.source_path, lang=o.source_lang), {}
        ctx.add_input(EXAMPLES, role="shipped examples (en records + eu translations)", license="CC0-1.0")
        items = yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))
        sources, _ = load_markup_records(items, o.source_lang)
        given = {it["id"]: " ".join(plain_tokens(it[o.target_lang])) for it in items if o.target_lang in it}
        return sources, given

    def _validate(self, records: list[EventRecord]) -> list[EventRecord]:
        schema = load_schema()
        kept = []
        for rec in records:
            violations = validate_record(rec, schema)
            if apply_policy(rec, violations, self.options.validation):
                kept.append(rec)
            else:
                self.rejects.append(Reject(rec.id, "schema-violation", "; ".join(v.detail for v in violations), record_to_raw(rec)))
        return kept

    def _subsample(self, records: list[EventRecord]) -> list[EventRecord]:
        """Seeded, greedy: take records in shuffled order while the annotation budget allows."""
        o = self.options
        if not o.budget:
            return records
        order = list(range(len(records)))
        random.Random(o.seed).shuffle(order)
        chosen, used = set(), 0
        for i in order:
            cost = records[i].counts()[o.budget_unit]
            if used + cost <= o.budget:
                chosen.add(i)
                used += cost
        for i, rec in enumerate(records):
            if i not in chosen:
                self.rejects.append(Reject(rec.id, "over-budget", f"subsample of {o.budget} {o.budget_unit} (seed {o.seed})",
                                           record_to_raw(rec)))
        return [r for i, r in enumerate(records) if i in chosen]

    def _translated(self, records: list[EventRecord], given: dict[str, str], ctx: BuildContext
                    ) -> tuple[list[EventRecord], list[str]]:
        """Records that have a translation, with it; the others become ``no-translation`` rejects."""
        translations = self._translate(records, given, ctx)
        for rec, text in zip(records, translations):
            if text is None:
                self.rejects.append(Reject(rec.id, "no-translation", f"no given {self.options.target_lang} translation "
                                           "for this id", record_to_raw(rec)))
        pairs = [(r, t) for r, t in zip(records, translations) if t is not None]
        return [r for r, _ in pairs], [t for _, t in pairs]

    def _project(self, records: list[EventRecord], translations: list[str], ctx: BuildContext) -> list[ProjectedRecord]:
        o = self.options
        projector = projectors.get(o.method)(**o.projector_options)
        projected = project_records(records, translations, projector, src_lang=o.source_lang, tgt_lang=o.target_lang)
        describe = getattr(projector, "describe", None)
        settings = describe() if callable(describe) else dict(o.projector_options)
        _record_model(ctx, f"projector:{o.method}", "projector", settings)
        seed = (settings.get("aligner") or {}).get("seed") if isinstance(settings.get("aligner"), dict) else None
        if seed is not None:
            ctx.add_seed("aligner", seed)
        if o.budget:
            ctx.add_seed("subsample", o.seed)
        return projected

    def _translate(self, records: list[EventRecord], given: dict[str, str], ctx: BuildContext) -> list[str | None]:
        """One translation per record; ``None`` where a given translation is missing (a reject)."""
        o = self.options
        texts = [" ".join(r.tokens) for r in records]
        if o.translator == "given":
            if o.translations_path:
                ctx.add_input(o.translations_path, role="given translations")
                translator = GivenTranslator(path=o.translations_path, key="id", target_column="translation")
            else:
                translator = GivenTranslator(given, key="id")
            _record_model(ctx, "given", "translator", translator.describe())
            return translator.lookup(texts, o.source_lang, o.target_lang, ids=[r.id for r in records])
        translator = translators.get(o.translator)(**o.translator_options)
        _record_model(ctx, o.translator, "translator", translator.describe())
        return list(translator.translate(texts, o.source_lang, o.target_lang))

    def _facts(self) -> dict[str, Any]:
        before, after, lost = Counter(), Counter(), Counter()
        for p in self.projected:
            for ev in p.source.events:
                before[f"trigger:{ev.event_type}"] += 1
            for ev in p.target.events:
                after[f"trigger:{ev.event_type}"] += 1
            for e in p.source.entities:
                before[f"entity:{e.type}"] += 1
            for e in p.target.entities:
                after[f"entity:{e.type}"] += 1
            lost.update(l.kind for l in p.losses)
        totals_in = Counter(); totals_out = Counter()
        for p in self.projected:
            totals_in.update(p.source.counts()); totals_out.update(p.target.counts())
        schema = load_schema()
        return {"schema": {"event_types": schema.event_types, "roles": schema.roles, "entity_types": schema.entity_types},
                "type_counts": {k: {"before": before[k], "after": after[k]} for k in sorted(before | after)},
                "losses_by_kind": dict(sorted(lost.items())),
                "structure_in": dict(totals_in), "structure_out": dict(totals_out),
                "rejected_records": Counter(r.reason for r in self.rejects)}

    # ------------------------------------------------------------------ rows
    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        for reject in self.rejects:
            if config.name == "arguments":  # an argument instance is a trigger: count the record's triggers
                n = max(1, len(self._record_events(reject)))
                ctx.read(n)
                for k in range(n):
                    yield Reject(f"{reject.id}:{k}", reject.reason, reject.detail, reject.example)
            else:
                ctx.read()
                yield reject
        for p in self.projected:
            if config.name == "arguments":
                lost_triggers = [l for l in p.losses if l.kind == "unprojected-trigger"]
                ctx.read(len(p.source.events))
                yield from argument_rows(p.target)
                for loss in lost_triggers:
                    yield Reject(f"{p.source.id}:{loss.item_id}", loss.kind, loss.detail)
                continue
            ctx.read()
            yield self._row(config.name, p)

    @staticmethod
    def _record_events(reject: Reject) -> list[Any]:
        return list((reject.example or {}).get("triggers", {}))

    def _row(self, view: str, p: ProjectedRecord) -> dict[str, Any]:
        if view == "events":
            return events_row(p.target, source=p.source, losses=p.losses)
        if view == "entities-bio":
            return entities_bio_row(p.target)
        return triggers_bio_row(p.target)


def _record_model(ctx: BuildContext, name: str, kind: str, description: dict[str, Any]) -> None:
    """Record a component in provenance with its revision and parameters."""
    params = {k: v for k, v in description.items() if k not in ("name", "revision", "kind")}
    ctx.add_model(name, kind=kind, revision=description.get("revision"), **params)


__all__ = ["Events", "EventsOptions", "Loss"]
