"""events: EusIE-like event extraction data by translating MEE-format records and projecting them.

Recipe (sharded: :meth:`Events.source` + :meth:`Events.steps`, see :mod:`dsbuild.pipeline`)::

    prepare   one streaming pass: count the records, cut them into blocks, draw the budget subsample
    source    blocks of consecutive MEE records (raw, normalised or EusIE form)
    validate  MEE constraints: strict rejects a record (schema-violation), lenient keeps and flags it
    budget    keep only the records the subsample chose (over-budget)           [budget > 0]
    translate any registered translator, or given translations (no-translation)
    project   entities and triggers with any registered projector; arguments rebuilt on them
    segment   consecutive sentences of a document joined into segments          [segment_size > 0]
    rows      the config's view: events (full structure), entities-bio, triggers-bio, arguments
              (one unit per trigger) -> card

**Blocks.** A statistical aligner (eflomal, the default) learns from the sentences it aligns
together, the alignment rules measure the target's capitalisation on them, and segments join
sentences across records. So the unit of translation, alignment and segmentation is a *block* of
consecutive records chosen here (at least :attr:`Events.block_records`; with ``segment_size`` a block
ends only where no document continues), never the executor's shard: the output depends on the
blocks, not on ``--shard-size`` or the number of workers. One source item is one block, so for
this builder ``--shard-size`` counts blocks (``--shard-size 1`` spreads blocks over workers). A
source no bigger than one block is aligned in one batch, exactly as before the port.

**One computation for four views.** Each config is a separate stream over the same blocks; the
translation and projection of a block are stored in the build's scratch folder by whichever config
gets there first and read by the others (:func:`shared_result`), so a model translates a block once
and all views are built from the same projection.

The embedded default runs offline: 24 English records written for dsbuild, covering all 16 event
types, with given human Basque translations (``builders/data/events/examples.yaml``).

**Parallel text.** eflomal learns nothing from 24 sentence pairs, so the aligner is given extra
parallel text for the pair (option ``parallel``): text fetched with ``dsbuild parallel fetch``,
else the text shipped with dsbuild (en-eu: 23,510 pairs, see
``builders/data/parallel/en-eu/README.md``). The card names its corpus, sources and licences.

**Quality.** When the target side has gold structure (the shipped Basque translations, or
``gold_path``), each projected record is scored against it (entities, triggers, arguments; exact
token boundaries and types) and the card reports P/R/F1; otherwise it says that projection
quality is unknown. ``scripts/eval_events.py`` measures the same over several aligner seeds.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import random
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import islice
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import yaml
from filelock import FileLock

from builders._user_source import (SOURCE_CITATION_HELP, SOURCE_LICENSE_HELP, SOURCE_NAME_HELP, SOURCE_URL_HELP,
                                   dataset_license, portable_value, user_source)
from dsbuild.builder import Builder, BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError, DsbuildError
from dsbuild.events.evaluate import KINDS, prf_from_counts, record_counts
from dsbuild.events.formats import Loss, iter_events, record_to_raw
from dsbuild.events.markup import load_markup_records, plain_tokens
from dsbuild.events.project import ProjectedRecord, group_projected, project_records
from dsbuild.events.schema import DATA_DIR, EventRecord, load_schema
from dsbuild.events.validate import apply_policy, validate_record
from dsbuild.events.views import (
    argument_rows, arguments_features, bio_features, entities_bio_row, events_features, events_row, triggers_bio_row,
)
from dsbuild.execution.shards import atomic_write_bytes
from dsbuild.pipeline import Rows, Step, merge_facts
from dsbuild.registry import builders, projectors, translators
from dsbuild.translate.given import GivenTranslator

log = logging.getLogger(__name__)

EXAMPLES = DATA_DIR / "examples.yaml"
VIEWS = ("events", "entities-bio", "triggers-bio", "arguments")
#: symmetrisation of the eflomal directions when the aligner trains on parallel text (unless given)
EFLOMAL_SYMMETRIZATION = "grow-diag-final"
#: eflomal samplers with parallel text: 6 instead of eflomal's 3 (mean of aligner seeds 1-3 on the
#: shipped examples, entity / trigger / argument F1 0.870 / 0.882 / 0.794 against 0.839 / 0.803 /
#: 0.704; more samplers average out more of the sampler's noise, at twice the aligner time)
EFLOMAL_SAMPLERS = 6
#: projection methods that score with the MT model: they get the build's translator
MODEL_METHODS = ("markers", "constrained", "tprojection", "ensemble")
#: the config whose summed facts fill the card (every view records the same facts)
FACTS_VIEW = "events"
T = TypeVar("T")


@dataclass
class EventsOptions:
    source_path: str = option("", "MEE records (JSON/JSONL, raw MEE, normalised or EusIE form); default: the shipped English examples")
    source_lang: str = option("en", "language of the source records")
    target_lang: str = option("eu", "language to translate into (Basque by default)")
    split: str = option("test", "split name of the output")
    translator: str = option("given", "translator name from the registry (e.g. hf-seq2seq), or 'given'")
    translator_options: dict = option({}, "options for the translator (e.g. {model: facebook/nllb-200-distilled-600M})")
    translations_path: str = option("", "with translator=given: JSONL of {id, translation}; default: the shipped Basque translations")
    method: str = option("alignment", "projection method from the registry: alignment, markers, constrained, "
                                      "tprojection, ensemble")
    projector_options: dict = option({}, "options for the projection method (e.g. {aligner: eflomal})")
    parallel: str = option("auto", "extra parallel text for the eflomal aligner: auto (text fetched with "
                           "`dsbuild parallel fetch` for the pair, else the text shipped with dsbuild), shipped, "
                           "none, or the name of a fetched OPUS corpus")
    gold_path: str = option("", "target-language MEE records with gold structure (same ids and tokens as the "
                            "translations) to score the projection; default: the shipped Basque gold of the shipped examples")
    validation: str = option("lenient", "strict: reject records that break the MEE constraints; lenient: keep and flag them")
    segment_size: int = option(0, "group consecutive sentences of a document into segments of this size (EusIE uses 5); 0 = off")
    budget: int = option(0, "keep a seeded subsample of records holding at most this many annotations (0 = keep all)")
    budget_unit: str = option("triggers", "what the budget counts: triggers, entities or arguments")
    seed: int = option(13, "seed for subsampling")
    source_name: str = option("", SOURCE_NAME_HELP)
    source_license: str = option("", SOURCE_LICENSE_HELP)
    source_url: str = option("", SOURCE_URL_HELP)
    source_citation: str = option("", SOURCE_CITATION_HELP)


@dataclass
class Block:
    """Consecutive source records translated, aligned and segmented together (one source item).

    Steps move records they reject from ``records`` (with their source ``positions``) to
    ``rejects``, in the order they reject them; translate and project fill the other fields.
    """

    index: int
    records: list[EventRecord] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    translations: list[str] = field(default_factory=list)
    projected: list[ProjectedRecord] = field(default_factory=list)
    #: the projection scored against gold target structure (see :func:`gold_counts`)
    scores: dict[str, Any] = field(default_factory=dict)

    def keep(self, verdicts: list[Reject | None]) -> None:
        """Keep the records whose verdict is ``None``; the others' rejects join :attr:`rejects`."""
        kept = [(rec, pos) for rec, pos, v in zip(self.records, self.positions, verdicts) if v is None]
        self.rejects += [v for v in verdicts if v is not None]
        self.records, self.positions = [r for r, _ in kept], [p for _, p in kept]

    def key(self, job: str) -> str:
        """A name for ``job`` done on this block's live records (for :func:`shared_result`)."""
        digest = hashlib.sha256("\n".join(r.id for r in self.records).encode()).hexdigest()[:16]
        return f"{job}-{self.index:06d}-{digest}"


@builders.register("events")
class Events(Builder):
    name = "events"
    version = "1.0.0"
    description = "EusIE-like event extraction data: MEE records translated and projected (entities, triggers, arguments)."
    Options = EventsOptions
    card_template = "events.md.j2"
    history = [("1.0.0", "First release: translate + project MEE records; events, BIO and argument views.")]
    #: records per block, at least (see the module docstring). Not an option: the card lists every
    #: option, and changing it changes the output, so it belongs to the builder version.
    block_records: int = 10_000

    # ------------------------------------------------------------------ info
    def info(self) -> DatasetInfo:
        o = self.options
        sources = [Source(name="MEE schema constraints (TextEE valid patterns)", license="Apache-2.0",
                          url="https://github.com/ej0cl6/TextEE",
                          description="Roles allowed per event type and entity types allowed per role.")]
        if not o.source_path:
            sources.insert(0, Source(name="dsbuild event examples", license="CC0-1.0",
                                     description="24 English sentences with MEE annotations and human Basque translations, written for dsbuild."))
        else:
            sources.insert(0, user_source(o, o.source_path, description="MEE records given by the user (source side)."))
        text = self.parallel_text()
        if text is not None:
            m = text.manifest
            for src in m.card_sources():
                if src.get("set") and src["set"] not in text.sets:
                    continue
                sources.append(Source(name=f"Aligner training text ({m.pair}): {src['name']}", license=src.get("licence") or "unknown",
                                      url=src.get("url") or "",
                                      description=f"{src.get('pairs', 0):,} sentence pairs of {m.corpus} ({m.origin}, "
                                                  f"{m.version}), used only to train the word aligner, not in the rows."))
        # the rows are the source records, translated: their licence is the dataset's
        license_, license_name = ("cc0-1.0", "") if not o.source_path else dataset_license(o)
        return DatasetInfo(
            pretty_name=f"Event extraction ({o.source_lang} -> {o.target_lang}, projected)",
            summary=f"Event extraction data in the MEE / EusIE schema for {o.target_lang}, made by translating "
                    f"{o.source_lang} records and projecting entity mentions, event triggers and arguments.",
            languages=sorted({o.source_lang, o.target_lang}),
            license=license_,
            license_name=license_name,
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

    # ------------------------------------------------------------------ prepare (driver, once)
    def prepare(self, ctx: BuildContext) -> None:
        """Check options, record inputs, and scan the source once: block ends and the budget subsample.

        Only these small results travel to the workers with the builder; records are read again,
        block by block, by :meth:`source`.
        """
        self._check_options()
        dataset_license(self.options)  # a bad source_license fails before any work, not at the card
        self._record_inputs(ctx)
        scan = _Scan(self.options, self.block_records)
        for pos, rec in enumerate(self.records()):
            scan.add(pos, rec)
        self.block_ends = scan.block_ends()
        self.chosen = scan.choose() if self.options.budget else None
        schema = load_schema()
        text = self.parallel_text()
        ctx.facts["parallel_text"] = _parallel_facts(text, self._parallel_note)
        if text is not None:
            for a, b in text.paths():
                ctx.add_input(a, role=f"aligner parallel text ({text.src})")
                ctx.add_input(b, role=f"aligner parallel text ({text.tgt})")
        gold = self.gold()
        ctx.facts["gold"] = {"source": self._gold_source, "records": len(gold)}
        ctx.facts.update({"input_records": scan.n,
                          "blocks": {"count": len(self.block_ends), "min_records": self.block_records},
                          "schema": {"event_types": schema.event_types, "roles": schema.roles,
                                     "entity_types": schema.entity_types}})
        if self.options.budget:
            ctx.add_seed("subsample", self.options.seed)
        log.info("events: %d records in %d block(s)", scan.n, len(self.block_ends))

    def _check_options(self) -> None:
        o = self.options
        if o.validation not in ("strict", "lenient"):
            raise ConfigError(f"events: validation must be strict or lenient, not {o.validation!r}")
        if o.budget_unit not in ("triggers", "entities", "arguments"):
            raise ConfigError(f"events: budget_unit must be triggers, entities or arguments, not {o.budget_unit!r}")
        if o.budget < 0:
            raise ConfigError(f"events: budget must be >= 0 annotations (0 keeps every record), not {o.budget}")
        if o.segment_size < 0:
            raise ConfigError(f"events: segment_size must be >= 0 sentences (0 = no segments), not {o.segment_size}")
        if not o.parallel.strip():
            raise ConfigError("events: parallel must be auto, shipped, none or a fetched OPUS corpus name, not ''")

    def _record_inputs(self, ctx: BuildContext) -> None:
        o = self.options
        if o.source_path:
            ctx.add_input(o.source_path, role="source MEE records")
        else:
            ctx.add_input(EXAMPLES, role="shipped examples (en records + eu translations)", license="CC0-1.0")
        if o.translator == "given" and o.translations_path:
            ctx.add_input(o.translations_path, role="given translations")

    def records(self) -> Iterator[EventRecord]:
        """The source records, read lazily, in file order."""
        o = self.options
        if o.source_path:
            yield from iter_events(o.source_path, lang=o.source_lang)
        else:
            yield from load_markup_records(_shipped_items(), o.source_lang)[0]

    def is_chosen(self, position: int) -> bool:
        """Whether the budget subsample kept the record at this source position."""
        return self.chosen is None or bool(self.chosen[position >> 3] & (1 << (position & 7)))

    # ------------------------------------------------------------------ recipe (shards)
    def source(self, config: ConfigSpec, split: str) -> Iterator[Block]:
        """Blocks of consecutive records, cut where ``prepare`` decided (the same for every view)."""
        records, start = self.records(), 0
        for index, end in enumerate(self.block_ends):
            block = Block(index, list(islice(records, end - start)), list(range(start, end)))
            if len(block.records) != end - start:
                raise self._source_changed()
            yield block
            start = end
        if next(records, None) is not None:
            raise self._source_changed()

    def _source_changed(self) -> DsbuildError:
        # the blocks and the budget were drawn from what prepare read: a longer or shorter file breaks both
        return DsbuildError(f"events: the source changed during the build ({self.options.source_path or EXAMPLES}); "
                            "build again")

    def count(self, config: ConfigSpec, split: str) -> int:
        """Source items: blocks (so progress and ``--shard-size`` count blocks)."""
        return len(self.block_ends)

    def steps(self, config: ConfigSpec, split: str) -> list[Step]:
        o = self.options
        return [Validate(self),
                *([Budget(self)] if o.budget else []),
                Translate(self),
                Project(self),
                *([Segment(o.segment_size)] if o.segment_size else []),
                ToRows(config.name)]

    def finish(self, ctx: BuildContext) -> None:
        """The card's facts and ``quality["structure"]`` from the facts summed over shards."""
        per_view = {view: splits[self.options.split] for view, splits in ctx.facts["split_facts"].items()}
        facts = per_view[FACTS_VIEW]
        for view, other in per_view.items():  # the views share one computation per block
            if other != facts:
                log.warning("events: view %s counted different facts from %s (%s vs %s)", view, FACTS_VIEW, other, facts)
        ctx.facts.update(_sorted_facts(facts))
        ctx.quality["structure"] = {kind: {"input": ctx.facts["structure_in"].get(kind, 0),
                                           "output": ctx.facts["structure_out"].get(kind, 0)}
                                    for kind in ("entities", "triggers", "arguments")}
        scored = facts.get("scores", {})
        ctx.facts["gold"] = {**ctx.facts.get("gold", {}), "records_scored": scored.get("records", 0),
                             "records_unscored": scored.get("unscored", 0)}
        if scored.get("records"):
            prf = prf_from_counts(scored.get("counts", {}))
            ctx.quality["projection"] = {"protocol": f"Structure P/R/F1 against the gold target structure "
                                                     f"({self._gold_source}), exact token boundaries and types; "
                                                     f"{scored['records']} records scored",
                                         **{kind: prf[kind].to_dict() for kind in KINDS}}

    # ------------------------------------------------------------------ models (once per worker)
    def translator(self) -> Any:
        """The given translations or the registered translator, loaded once per worker process."""
        return self.cached("translator", self._load_translator)

    def projector(self) -> Any:
        """The projection method, built once per worker process. Methods that score with the MT model
        (markers, constrained, tprojection, ensemble) get the build's translator, not a second copy."""
        def load() -> Any:
            opts = self.projector_options()
            if self.options.method in MODEL_METHODS and self.options.translator != "given":
                opts.setdefault("translator", self.translator())
            return projectors.get(self.options.method)(**opts)

        return self.cached("projector", load)

    def projector_options(self) -> dict[str, Any]:
        """``projector_options`` with the parallel text given to the eflomal aligner (when there is some)
        and an alignment cache in dsbuild's cache folder (a repeated build reuses the links)."""
        o = self.options
        opts = dict(o.projector_options)
        text = self.parallel_text()
        if text is not None:
            aligner_options = dict(opts.get("aligner_options") or {})
            tokenizer = opts.get("target_tokenizer", "moses")
            aligner_options.update(text.aligner_options(tokenizer if isinstance(tokenizer, str) else "moses"))
            # grow-diag-final (as europarl-ner): on the shipped en-eu examples, mean of aligner seeds 1-3,
            # entity / trigger / argument F1 0.839 / 0.803 / 0.704 against 0.811 / 0.803 / 0.674 with
            # eflomal's grow-diag-final-and (the same directional links, symmetrised both ways)
            aligner_options.setdefault("symmetrization", EFLOMAL_SYMMETRIZATION)
            aligner_options.setdefault("n_samplers", EFLOMAL_SAMPLERS)
            opts["aligner_options"] = aligner_options
        if o.method == "alignment" and isinstance(opts.get("aligner", "eflomal"), str):
            from dsbuild.cachedir import cache_root

            opts.setdefault("alignment_cache", str(cache_root("alignments")))
        return opts

    def parallel_text(self) -> Any:
        """The parallel text the aligner trains on (a :class:`dsbuild.parallel.ParallelText`), or ``None``.

        Resolved once (in ``prepare`` on the driver) and carried to the workers with the builder,
        so every block uses the same text. ``None`` for methods other than eflomal alignment, with
        ``parallel=none``, when ``aligner_options`` already give ``extra_src``, or when there is
        no text for the pair (the reason is kept for the card).
        """
        if not hasattr(self, "_parallel"):
            self._parallel, self._parallel_note = _resolve_parallel(self.options)
        return self._parallel

    def gold(self) -> dict[str, EventRecord]:
        """Gold target records by id: ``gold_path``, else the shipped Basque gold of the shipped examples."""
        if not hasattr(self, "_gold"):
            o = self.options
            self._gold: dict[str, EventRecord] = {}
            self._gold_source = "none"
            if o.gold_path:
                self._gold = {r.id: r for r in iter_events(o.gold_path, lang=o.target_lang)}
                self._gold_source = f"gold_path {portable_value(o.gold_path)}"
            elif not o.source_path:
                items = _shipped_items()
                if all(o.target_lang in it for it in items):
                    self._gold = {r.id: r for r in load_markup_records(items, o.source_lang, o.target_lang)[1]}
                    self._gold_source = f"the shipped human {o.target_lang} translations' markup (examples.yaml)"
        return self._gold

    def _load_translator(self) -> Any:
        o = self.options
        if o.translator != "given":
            return translators.get(o.translator)(**o.translator_options)
        if o.translations_path:
            return GivenTranslator(path=o.translations_path, key="id", target_column="translation")
        given = {it["id"]: " ".join(plain_tokens(it[o.target_lang])) for it in _shipped_items() if o.target_lang in it}
        return GivenTranslator(given, key="id")


# ---------------------------------------------------------------------- prepare's scan
class _Scan:
    """What ``prepare`` keeps from its pass over the source: per-record budget costs, document spans.

    Memory: one (position, cost) pair per record with a budget, one (first, last) pair per document
    with segments; never the records themselves.
    """

    def __init__(self, options: EventsOptions, block_records: int) -> None:
        self.o, self.block_records = options, block_records
        self.n = 0
        self.costs: list[tuple[int, int]] = []  # (position, cost) of the records the budget draws from
        self.docs: dict[str, list[int]] = {}  # document -> [first, last] position, in order of appearance
        self.schema = load_schema()

    def add(self, pos: int, rec: EventRecord) -> None:
        self.n += 1
        o = self.o
        # strict validation drops a record before the subsample: it neither competes nor spends budget
        if o.budget and (o.validation == "lenient" or not validate_record(rec, self.schema)):
            self.costs.append((pos, rec.counts()[o.budget_unit]))
        if o.segment_size:
            self.docs.setdefault(_doc_id(rec), [pos, pos])[1] = pos

    def block_ends(self) -> list[int]:
        """End positions (exclusive) of the blocks.

        Every ``block_records`` records; with segments, at the first document boundary after that
        (documents whose sentences interleave count as one), so a document is never split.
        """
        if not self.n:  # one empty block: its steps still run and describe their models, as ever
            return [0]
        if not self.o.segment_size:
            return [min(end, self.n) for end in range(self.block_records, self.n + self.block_records, self.block_records)]
        ends, start, reach = [], 0, 0
        for first, last in self.docs.values():  # in order of first appearance
            # this document starts after every earlier one ended: a block may end here
            if first >= reach and reach - start >= self.block_records:
                ends.append(reach)
                start = reach
            reach = max(reach, last + 1)
        return ends + [self.n]

    def choose(self) -> bytearray:
        """The budget subsample as one bit per source position: seeded and greedy, taking the
        records that passed validation in shuffled order while the budget allows."""
        o = self.o
        order = list(range(len(self.costs)))
        random.Random(o.seed).shuffle(order)
        chosen, used = bytearray((self.n + 7) // 8), 0
        for i in order:
            pos, cost = self.costs[i]
            if used + cost <= o.budget:
                chosen[pos >> 3] |= 1 << (pos & 7)
                used += cost
        log.info("budget: %d of %d records chosen (%d of %d %s)", sum(bin(b).count("1") for b in chosen),
                 len(self.costs), used, o.budget, o.budget_unit)
        return chosen


# ---------------------------------------------------------------------- steps
class Validate(Step):
    """MEE constraints: strict rejects a record with a violation (schema-violation), lenient flags it."""

    name = "validate"

    def __init__(self, builder: Events) -> None:
        self.builder = builder

    def run(self, blocks: list[Block], ctx: BuildContext) -> list[Block]:
        schema, policy = load_schema(), self.builder.options.validation
        for b in blocks:
            b.keep([_validated(rec, schema, policy) for rec in b.records])
        return blocks


class Budget(Step):
    """Reject the records the subsample (drawn in ``prepare`` over the whole source) did not choose."""

    name = "budget"

    def __init__(self, builder: Events) -> None:
        self.builder = builder

    def run(self, blocks: list[Block], ctx: BuildContext) -> list[Block]:
        o = self.builder.options
        detail = f"subsample of {o.budget} {o.budget_unit} (seed {o.seed})"
        for b in blocks:
            b.keep([None if self.builder.is_chosen(pos) else Reject(rec.id, "over-budget", detail, record_to_raw(rec))
                    for rec, pos in zip(b.records, b.positions)])
        return blocks


class Translate(Step):
    """Translate each block (given translations or a registered translator); a missing one is a reject."""

    name = "translate"

    def __init__(self, builder: Events) -> None:
        self.builder = builder

    def run(self, blocks: list[Block], ctx: BuildContext) -> list[Block]:
        o = self.builder.options
        for b in blocks:
            done = shared_result(ctx, b.key("translate"), partial(self.translate, b))
            _record_model(ctx, o.translator, "translator", done["model"])
            texts = done["texts"]
            b.keep([None if t is not None else
                    Reject(rec.id, "no-translation", f"no given {o.target_lang} translation for this id", record_to_raw(rec))
                    for rec, t in zip(b.records, texts)])
            b.translations = [t for t in texts if t is not None]
        return blocks

    def translate(self, b: Block) -> dict[str, Any]:
        """One translation per live record (``None`` where a given one is missing), and the model."""
        o = self.builder.options
        translator = self.builder.translator()
        model = translator.describe()  # before translating, as provenance always had it (device: not loaded)
        texts = [" ".join(r.tokens) for r in b.records]
        if o.translator == "given":
            out = translator.lookup(texts, o.source_lang, o.target_lang, ids=[r.id for r in b.records])
        else:
            out = list(translator.translate(texts, o.source_lang, o.target_lang))
        return {"texts": out, "model": model}


class Project(Step):
    """Project each block's entities and triggers onto its translations (one aligner batch per
    block) and rebuild the events; what did not carry is recorded as losses."""

    name = "project"

    def __init__(self, builder: Events) -> None:
        self.builder = builder

    def run(self, blocks: list[Block], ctx: BuildContext) -> list[Block]:
        o = self.builder.options
        for b in blocks:
            done = shared_result(ctx, b.key("project"), partial(self.project, b))
            b.projected = done["projected"]
            b.scores = gold_counts(b.projected, self.builder.gold())
            settings = done["settings"]
            _record_model(ctx, f"projector:{o.method}", "projector", settings)
            aligner = settings.get("aligner")
            if isinstance(aligner, dict) and aligner.get("seed") is not None:
                ctx.seeds.setdefault("aligner", aligner["seed"])
        return blocks

    def project(self, b: Block) -> dict[str, Any]:
        o = self.builder.options
        projector = self.builder.projector()
        projected = project_records(b.records, b.translations, projector, src_lang=o.source_lang, tgt_lang=o.target_lang)
        describe = getattr(projector, "describe", None)  # after projecting: it reports what it measured
        settings = describe() if callable(describe) else dict(o.projector_options)
        return {"projected": projected, "settings": _stable_settings(settings)}


class Segment(Step):
    """Join the projected sentences of each document into segments, on both sides (EusIE style)."""

    name = "segment"

    def __init__(self, size: int) -> None:
        self.size = size

    def run(self, blocks: list[Block], ctx: BuildContext) -> list[Block]:
        for b in blocks:  # blocks never split a document, so segments are those of the whole source
            b.projected = group_projected(b.projected, self.size)
        return blocks


class ToRows(Step):
    """The config's view of each block: its rejects, then its rows; records the block's facts."""

    name = "rows"

    def __init__(self, view: str) -> None:
        self.view = view

    def run(self, blocks: list[Block], ctx: BuildContext) -> list[Rows]:
        for b in blocks:
            merge_facts(ctx.facts, block_facts(b))
        return [Rows(self.units(b)) for b in blocks]

    def units(self, b: Block) -> list[dict[str, Any] | Reject]:
        if self.view == "arguments":  # an argument instance is a trigger: one unit per source trigger
            return [*(r for reject in b.rejects for r in _per_trigger(reject)),
                    *(u for p in b.projected for u in _argument_units(p))]
        return [*b.rejects, *(self.row(p) for p in b.projected)]

    def row(self, p: ProjectedRecord) -> dict[str, Any]:
        if self.view == "events":
            return events_row(p.target, source=p.source, losses=p.losses)
        if self.view == "entities-bio":
            return entities_bio_row(p.target)
        return triggers_bio_row(p.target)


# ---------------------------------------------------------------------- helpers
def shared_result(ctx: BuildContext, key: str, compute: Callable[[], T]) -> T:
    """``compute()`` once per build for ``key``, by whichever shard asks first; later ones read it.

    The four views are separate streams over the same blocks: this makes them share one
    translation and one projection per block. Results live in the build's scratch folder
    (``ctx.work_dir``: shared by the worker processes, kept by a killed build so the resume reuses
    them, removed when the build is published); the lock makes a worker that asks for a key being
    computed wait for it instead of computing it again.
    """
    path = ctx.work_dir / "events" / f"{key}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if path.is_file():
            with path.open("rb") as fh:
                return pickle.load(fh)
        value = compute()
        atomic_write_bytes(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        return value


def block_facts(b: Block) -> dict[str, Any]:
    """Type counts before/after projection, losses by kind, structure in/out and rejected records
    of one block; summed over blocks and shards they are the facts of the whole source."""
    before, after, lost, total_in, total_out = Counter(), Counter(), Counter(), Counter(), Counter()
    for p in b.projected:
        before.update([f"trigger:{ev.event_type}" for ev in p.source.events] + [f"entity:{e.type}" for e in p.source.entities])
        after.update([f"trigger:{ev.event_type}" for ev in p.target.events] + [f"entity:{e.type}" for e in p.target.entities])
        lost.update(loss.kind for loss in p.losses)
        total_in.update(p.source.counts())
        total_out.update(p.target.counts())
    return {"type_counts": {k: {"before": before[k], "after": after[k]} for k in sorted(before | after)},
            "losses_by_kind": dict(lost), "structure_in": dict(total_in), "structure_out": dict(total_out),
            "rejected_records": dict(Counter(r.reason for r in b.rejects)),
            "scores": b.scores}


def gold_counts(projected: list[ProjectedRecord], gold: dict[str, EventRecord]) -> dict[str, Any]:
    """Structure counts (tp, predicted, gold per kind) of the records that have gold on the same tokens.

    ``records``: records scored; ``unscored``: projected records without gold or whose translation
    is not the gold's text (an MT output): their quality is unknown.
    """
    counts: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    scored = unscored = 0
    for p in projected:
        g = gold.get(p.source.id)
        if g is None or g.tokens != p.target.tokens:
            unscored += 1
            continue
        scored += 1
        for kind, c in record_counts(p.target, g).items():
            counts[kind].update(c)
    return {"records": scored, "unscored": unscored, "counts": {k: dict(v) for k, v in counts.items()}}


#: extra-corpus facts an aligner reports only when it ran (not when the alignment cache answered)
_VOLATILE = ("pairs_read", "pairs_used", "pairs_skipped_invalid", "pairs_skipped_empty", "priors_cache",
             "priors_reused", "priors_train_s")


def _stable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The projector's settings without the facts that depend on whether the alignment cache was hit,
    so provenance and card are the same for a first build and a repeated one."""
    aligner = settings.get("aligner")
    if isinstance(aligner, dict) and isinstance(aligner.get("extra_corpus"), dict):
        extra = {k: v for k, v in aligner["extra_corpus"].items() if k not in _VOLATILE}
        settings = {**settings, "aligner": {**aligner, "extra_corpus": extra}}
    return settings


def _resolve_parallel(o: EventsOptions) -> tuple[Any, str]:
    """(ParallelText or None, why none) for the options; see :meth:`Events.parallel_text`."""
    from dsbuild.parallel import ParallelError, parallel_text

    opts = o.projector_options
    if o.parallel == "none":
        return None, "not used (parallel=none)"
    if o.method != "alignment" or not isinstance(opts.get("aligner", "eflomal"), str) \
            or opts.get("aligner", "eflomal") != "eflomal":
        return None, f"not used (the {o.method!r} method with aligner {opts.get('aligner', 'eflomal')!r} does not train on it)"
    if "extra_src" in (opts.get("aligner_options") or {}):
        return None, "given in projector_options.aligner_options (extra_src/extra_tgt)"
    try:
        if o.parallel == "auto":
            text = parallel_text(o.source_lang, o.target_lang)
        elif o.parallel == "shipped":
            text = parallel_text(o.source_lang, o.target_lang, corpus="shipped")
        else:
            text = parallel_text(o.source_lang, o.target_lang, corpus=o.parallel)
            if text is None:
                raise ConfigError(f"events: no fetched parallel text {o.parallel!r} for {o.source_lang}-{o.target_lang}; "
                                  f"run `dsbuild parallel fetch {o.source_lang} {o.target_lang} --corpus {o.parallel}` "
                                  "or use parallel=auto")
    except ParallelError as err:
        raise ConfigError(f"events: parallel text: {err}") from None
    if text is None:
        return None, (f"none found for {o.source_lang}-{o.target_lang}: the aligner learns from the translated pairs "
                      f"alone; fetch some with `dsbuild parallel fetch {o.source_lang} {o.target_lang}`")
    return text, ""


def _parallel_facts(text: Any, note: str) -> dict[str, Any]:
    """What the card says about the aligner's parallel text (manifest, sets and pairs used)."""
    if text is None:
        return {"used": False, "note": note}
    d = text.describe()
    return {"used": True, "pair": d["pair"], "corpus": d["corpus"], "version": d["version"], "origin": d["origin"],
            "licence": d["licence"], "url": d["url"], "sets_used": d["sets_used"], "pairs_used": d["pairs_used"],
            "counts": d["counts"], "exclude": d["exclude"],
            "sources": [s for s in text.manifest.card_sources() if not s.get("set") or s["set"] in text.sets],
            "readme": f"builders/data/parallel/{d['pair']}/{d['readme']}" if d["origin"] == "shipped" and d["readme"]
            else d["readme"]}


def _sorted_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """The summed block facts in a stable order (shards add keys in the order they first meet them)."""
    return {"type_counts": dict(sorted(facts.get("type_counts", {}).items())),
            "losses_by_kind": dict(sorted(facts.get("losses_by_kind", {}).items())),
            "structure_in": facts.get("structure_in", {}), "structure_out": facts.get("structure_out", {}),
            "scores": facts.get("scores", {}),
            "rejected_records": dict(sorted(facts.get("rejected_records", {}).items()))}


def _validated(rec: EventRecord, schema: Any, policy: str) -> Reject | None:
    """``None`` when the record is kept (lenient: with its violations flagged), else its reject.

    Types and roles outside the schema are rejected under either policy: the output columns are
    ClassLabels of the schema, so such a record cannot be written (lenient only flags the rest).
    """
    violations = validate_record(rec, schema)
    unknown = [v for v in violations if v.code.startswith("unknown-")]
    if unknown:
        return Reject(rec.id, "unknown-type", "; ".join(v.detail for v in unknown) + " (use the MEE schema's "
                      "types and roles)", record_to_raw(rec))
    if apply_policy(rec, violations, policy):
        return None
    return Reject(rec.id, "schema-violation", "; ".join(v.detail for v in violations), record_to_raw(rec))


def _per_trigger(reject: Reject) -> list[Reject]:
    """A rejected record in the arguments view: one reject per trigger it had (at least one)."""
    n = max(1, len((reject.example or {}).get("triggers", {})))
    return [Reject(f"{reject.id}:{k}", reject.reason, reject.detail, reject.example) for k in range(n)]


def _argument_units(p: ProjectedRecord) -> list[dict[str, Any] | Reject]:
    """One row per projected trigger, one reject per trigger that did not project."""
    lost = [Reject(f"{p.source.id}:{loss.item_id}", loss.kind, loss.detail)
            for loss in p.losses if loss.kind == "unprojected-trigger"]
    return [*argument_rows(p.target), *lost]


def _doc_id(rec: EventRecord) -> str:
    # records without a document id are taken as one document, in file order (as group_segments does)
    return str(rec.meta.get("doc_id", "doc"))


def _shipped_items() -> list[dict[str, Any]]:
    return yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))


def _record_model(ctx: BuildContext, name: str, kind: str, description: dict[str, Any]) -> None:
    """Record a component in provenance with its revision and parameters, as its first block saw it
    (block 0 opens shard 0 for any shard size, so provenance and card do not depend on it)."""
    if name in ctx.models:
        return
    # the card lists these parameters: a given translations file or a local model folder by name, not location
    params = portable_value({k: v for k, v in description.items() if k not in ("name", "revision", "kind")})
    ctx.add_model(name, kind=kind, revision=description.get("revision"), **params)


__all__ = ["Block", "Events", "EventsOptions", "Loss", "block_facts", "shared_result"]
