"""nlu-multi: NLU++ (multi-label intents, slots) translated utterance by utterance, MULTI3NLU++ style.

Recipe, on the generic translate-dataset core (:mod:`dsbuild.translate_dataset`):

1. **Source**: the shipped NLU++ folds (banking, hotels; CC-BY-4.0) or your own folder of
   ``DOMAIN/foldN.json`` files in the same format (``--set source=DIR``). Utterances whose copies
   carry different labels are rejects (``conflicting-duplicate``; ``duplicates=keep-first`` keeps
   the first copy); malformed slots are rejects naming the slot.
2. **Translate** the utterance with an MT model (``--set model=...``) or take given translations
   (``--set translations=FILE``: ``id``, ``text``, ``slot_values`` (the slot texts' translations,
   in slot order) and ``lang``). Each slot's text is also translated on its own.
3. **Project** the slots (character offsets) onto the translation with any registered projector
   (``projector=alignment|markers|constrained``), nested slots in a second pass, and check each
   projected span against the slot text's own translation (flags ``slot-value-not-found``,
   ``slot-projection-disagrees``, ``span-lost``).
4. **Output**: configs ``DOMAIN-LANG`` (the English source as ``DOMAIN-en``), one split ``train``
   with the fold in a column; intents (multi-label, ClassLabel names), the normalised slot values
   (``value`` or ``values`` for period slots) carried over unchanged.

NLU++ ships no translations and no model is available offline, so a build needs ``model=`` or
``translations=``; without either it stops with one line naming both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets

from builders._user_source import display_name
from dsbuild.builder import BuildContext, ConfigSpec, DatasetInfo, Reject, Source
from dsbuild.config import option
from dsbuild.errors import ConfigError
from dsbuild.pipeline import Step
from dsbuild.registry import builders
from dsbuild.translate_dataset import DatasetSpec, FieldSpec, GivenFields, QCSettings, SourceItem, Target, WorkItem
from dsbuild.translate_dataset.base import TranslateDatasetBase
from dsbuild.translate_dataset.nlu import (NluItem, Slot, check_slot_values, domain_labels, fold_files,
                                           project_slots, read_domain, read_ontology)
from dsbuild.translate_dataset.steps import count

DATA_DIR = Path(__file__).parent / "data" / "nlu_multi"
NLUPP_CITATION = """@inproceedings{Casanueva2022,
    author    = {I{\\~{n}}igo Casanueva and Ivan Vuli\\'{c} and Georgios Spithourakis and Pawe\\l~Budzianowski},
    title     = {NLU++: A Multi-Label, Slot-Rich, Generalisable Dataset for Natural Language Understanding in Task-Oriented Dialogue},
    year      = {2022},
    booktitle = {Findings of the Association for Computational Linguistics: NAACL 2022},
    url       = {https://arxiv.org/abs/2204.13021}
}"""
MULTI3_CITATION = """@inproceedings{moghe-etal-2023-multi3nlu,
    title     = {{MULTI3NLU++}: A Multilingual, Multi-Intent, Multi-Domain Dataset for Natural Language Understanding in Task-Oriented Dialogue},
    author    = {Moghe, Nikita and Razumovskaia, Evgeniia and Guillou, Liane and Vuli{\\'c}, Ivan and Korhonen, Anna and Birch, Alexandra},
    booktitle = {Findings of the Association for Computational Linguistics: ACL 2023},
    year      = {2023}
}"""
SPLIT = "train"
#: recipe QC flags (the generic ones are in dsbuild.translate_dataset.qc.QC_FLAGS)
SLOT_FLAGS = ("span-lost", "slot-value-not-found", "slot-projection-disagrees")


# ---------------------------------------------------------------------- shared MT options
@dataclass
class MtOptions:
    """Translator options shared by nlu-multi and ifeval-translate."""

    src_lang: str = option("en", "language code of the source")
    target_langs: list[str] = option(["es"], "target language codes, one config each")
    model: str = option("", "MT model (Hub id or local folder) for hf-seq2seq, e.g. facebook/nllb-200-distilled-600M")
    revision: str = option("", "MT model revision (branch, tag or commit)")
    translator: str = option("", "translator: hf-seq2seq or any registered one (with model=), or given (with "
                                 "translations=); empty = chosen from model / translations")
    translations: str = option("", "given translations: .jsonl/.csv/.parquet, wide (id + one column per field) or long "
                                   "(id, field, target), with a lang column or {lang} in the file name")
    translator_options: dict = option({}, "more translator options, e.g. {threads: 1, device: cuda}")
    beam_size: int = option(4, "hf-seq2seq: beam size")
    batch_size: int = option(16, "hf-seq2seq: texts per batch")
    cache_dir: str = option("", "hf-seq2seq: translation cache folder (default $DSBUILD_CACHE/translations)")
    max_items: int = option(0, "translate only the first N items (0 = all)")


def translator_choice(name: str, o: MtOptions) -> str:
    """The translator to use, or one ConfigError line naming both ways to give translations."""
    if o.translator:
        if o.translator == "given" and not o.translations:
            raise ConfigError(f"{name}: translator given needs --set translations=FILE (or use --set model=HUB_ID_OR_FOLDER)")
        if o.translator != "given" and not o.model:
            raise ConfigError(f"{name}: translator {o.translator} needs --set model=HUB_ID_OR_FOLDER")
        return o.translator
    if o.model and o.translations:
        raise ConfigError(f"{name}: give either --set model=... or --set translations=FILE, not both "
                          f"(or name one with --set translator=hf-seq2seq|given)")
    if o.model:
        return "hf-seq2seq"
    if o.translations:
        return "given"
    raise ConfigError(f"{name}: no translation model or given translations (none ships, and models cannot be downloaded "
                      f"offline): give --set model=HUB_ID_OR_FOLDER (e.g. facebook/nllb-200-distilled-600M) or "
                      f"--set translations=FILE (columns id, field, target[, lang])")


def make_target(builder: TranslateDatasetBase, o: MtOptions, config: str, lang: str, **extra: Any) -> Target:
    """The :class:`Target` of one target language, with the chosen translator."""
    choice = translator_choice(builder.name, o)
    if choice == "given":
        path = o.translations.replace("{lang}", lang)
        given = builder.cached(f"given/{path}/{lang}", lambda: GivenFields.from_file(path, lang=lang))
        return Target(config=config, lang=lang, method="given", translator="given", given=given,
                      description=f"{o.src_lang} -> {lang} (given translations)", **extra)
    from dsbuild.registry import translators

    translators.get(choice)  # an unknown name: one line with close matches
    options: dict[str, Any] = {"beam_size": o.beam_size, "batch_size": o.batch_size} if choice == "hf-seq2seq" else {}
    if o.cache_dir and choice == "hf-seq2seq":
        options["cache"] = o.cache_dir
    options.update(o.translator_options)
    return Target(config=config, lang=lang, method="machine", translator=choice, model=o.model, revision=o.revision,
                  translator_options=options, description=f"{o.src_lang} -> {lang} (machine, {display_name(o.model)})",
                  **extra)


def check_langs(name: str, o: MtOptions) -> None:
    """Target languages: at least one, no duplicates, not the source language."""
    if not o.target_langs:
        raise ConfigError(f"{name}: give at least one target language, e.g. --set target_langs=[es]")
    if len(set(o.target_langs)) != len(o.target_langs) or o.src_lang in o.target_langs:
        raise ConfigError(f"{name}: target_langs {o.target_langs} has duplicates or the source language {o.src_lang!r}")


# ---------------------------------------------------------------------- options
@dataclass
class NluMultiOptions(MtOptions):
    source: str = option("", "NLU data folder with DOMAIN/foldN.json files (NLU++ format) and optionally "
                             "ontology.json; empty = the shipped NLU++ (banking, hotels)")
    domains: list[str] = option([], "domains to build, one config each per language (default: every DOMAIN folder)")
    folds: list[int] = option([], "folds to read (default: all)")
    duplicates: Literal["reject", "keep-first"] = option("reject", "utterances whose copies carry different labels: "
                                                                    "reject every copy, or keep the first")
    projector: str = option("alignment", "slot projection method: alignment, markers, constrained (any registered)")
    projector_options: dict = option({}, "projector options, e.g. {aligner_options: {extra_src: F, extra_tgt: F}}")
    source_tokenizer: str = option("moses", "tokeniser of the source utterances (tokens are cut at slot edges)")
    reject_on: list[str] = option(["protected-lost"], "QC flags that reject an utterance (add span-lost, "
                                                      "slot-value-not-found, slot-projection-disagrees to be strict)")
    source_license: str = option("", "licence of a source given with source= (default: cc-by-4.0 for NLU++)")


@builders.register("nlu-multi")
class NluMulti(TranslateDatasetBase):
    name = "nlu-multi"
    version = "1.0.0"
    description = ("NLU++ (banking, hotels; multi-label intents, slots) translated utterance by utterance "
                   "(MULTI3NLU++ style): intents and folds kept, slot spans projected and checked.")
    Options = NluMultiOptions
    card_template = "nlu-multi.md.j2"
    history = [("1.0.0", "First release: NLU++ reader, conflicting duplicates as rejects, slot projection with any "
                         "projector, slot value checks.")]

    # ------------------------------------------------------------------ source
    def root(self) -> Path:
        return Path(self.options.source) if self.options.source else DATA_DIR

    def domains(self) -> list[str]:
        o = self.options
        root = self.root()
        if not root.is_dir():
            raise ConfigError(f"nlu-multi: source folder {root} not found (option source)")
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("fold*.json")))
        if o.domains:
            missing = [d for d in o.domains if d not in found]
            if missing:
                raise ConfigError(f"nlu-multi: domain(s) {missing} not in {display_name(str(root))} "
                                  f"(it has {', '.join(found) or 'none'}) (option domains)")
            return list(o.domains)
        if not found:
            raise ConfigError(f"nlu-multi: {display_name(str(root))} holds no DOMAIN/foldN.json files (option source)")
        return found

    def items(self, domain: str) -> list[NluItem]:
        """The domain's utterances, conflicts marked (read once per process)."""
        o = self.options

        def load() -> list[NluItem]:
            items = read_domain(self.root(), domain, folds=o.folds, duplicates=o.duplicates)
            return items[: o.max_items] if o.max_items > 0 else items

        return self.cached(f"nlu/{domain}", load)

    def ontology(self) -> dict[str, Any] | None:
        path = self.root() / "ontology.json"
        return self.cached("ontology", lambda: read_ontology(path)) if path.is_file() else None

    def intent_names(self) -> list[str]:
        """The intent inventory (ClassLabel names): the ontology's for the domains, plus any used."""
        names: set[str] = set()
        onto = self.ontology()
        for d in self.domains():
            if onto is not None:
                names.update(domain_labels(onto, "intents", d))
            names.update(i for it in self.items(d) if it.problem is None for i in it.intents)
        return sorted(names)

    # ------------------------------------------------------------------ core hooks
    def spec(self) -> DatasetSpec:
        return DatasetSpec(fields=(FieldSpec("text", "translate"),
                                   FieldSpec("slot_values", "consistent", of="text", optional=True),
                                   FieldSpec("intents", "keep"), FieldSpec("fold", "keep")))

    def src_lang(self) -> str:
        return self.options.src_lang

    def split_names(self) -> list[str]:
        return [SPLIT]

    def source_config(self) -> str | None:
        return None  # one source config per domain, made in targets()

    def read_source(self, split: str) -> Iterator[SourceItem | Reject]:
        for domain in self.domains():
            for it in self.items(domain):
                yield self._source_item(it)

    def _source_item(self, it: NluItem) -> SourceItem | Reject:
        if it.problem is not None:
            return Reject(it.id, it.problem[0], f"{it.id}: {it.problem[1]}", it.to_dict())
        where = f"{it.domain}/fold{it.fold}.json:record {it.index}"
        # no slots: no values to translate (a given file then needs no slot_values entry for the item)
        return SourceItem(id=it.id, fields={"text": it.text, "slot_values": [s.text for s in it.slots] or None,
                                            "intents": list(it.intents), "fold": it.fold},
                          where=where, extra={"domain": it.domain, "slots": [s.to_dict() for s in it.slots]})

    def targets(self) -> list[Target]:
        o = self.options
        check_langs(self.name, o)
        choice = translator_choice(self.name, o)  # no model and no translations: one line before any work
        if choice == "given" and o.projector in ("markers", "constrained"):
            raise ConfigError(f"nlu-multi: projector {o.projector} translates with a model; give --set model=... "
                              f"or use --set projector=alignment with given translations")
        out: list[Target] = []
        for domain in self.domains():
            out.append(Target(config=f"{domain}-{o.src_lang}", lang=o.src_lang, method="source", translator="source",
                              description=f"{domain}: the English NLU++ utterances as they are"))
            out += [make_target(self, o, f"{domain}-{lang}", lang, projector=o.projector,
                                projector_options=dict(o.projector_options)) for lang in o.target_langs]
        return out

    # one source stream, several domain configs: each config takes its domain's items only
    def source(self, config: ConfigSpec, split: str) -> Iterator[Any]:
        domain = self.config_domain(config.name)
        for it in super().source(config, split):
            item_id = it.reject.id if hasattr(it, "reject") else it.id
            if item_id.startswith(f"{domain}-fold"):
                yield it

    def count(self, config: ConfigSpec, split: str) -> int | None:
        return len(self.items(self.config_domain(config.name)))

    def config_domain(self, config: str) -> str:
        """The domain of a config name ``DOMAIN-LANG`` (the longest domain that prefixes it)."""
        return max((d for d in self.domains() if config.startswith(d + "-")), key=len)

    def qc_settings(self) -> QCSettings:
        from dsbuild.translate_dataset.qc import QC_FLAGS

        known = set(QC_FLAGS) | set(SLOT_FLAGS)
        bad = [f for f in self.options.reject_on if f not in known]
        if bad:
            raise ConfigError(f"nlu-multi: reject_on {bad} are not QC flags ({', '.join(sorted(known))})")
        return QCSettings(reject_on=tuple(self.options.reject_on))

    def field_features(self) -> dict[str, Any] | None:
        string = datasets.Value("string")
        return {"text": string, "slot_values": datasets.List(string),
                "intents": datasets.List(datasets.ClassLabel(names=self.intent_names())),
                "fold": datasets.Value("int32")}

    def extra_features(self) -> dict[str, Any]:
        string, int32 = datasets.Value("string"), datasets.Value("int32")
        slot = {"slot": string, "text": string, "start": int32, "end": int32, "value": string, "value_key": string,
                "source_text": string, "source_start": int32, "source_end": int32,
                "score": datasets.Value("float32"), "value_translation": string, "flags": datasets.List(string)}
        return {"domain": string, "source_text": string, "slots": datasets.List(slot)}

    def extra_steps(self, target: Target, split: str) -> list[Step]:
        return [ProjectSlots(self, target)]

    def prepare_recipe(self, ctx: BuildContext) -> None:
        root = self.root()
        for domain in self.domains():
            for fold, path in fold_files(root, domain):
                if not self.options.folds or fold in self.options.folds:
                    ctx.add_input(path, role=f"{domain} fold {fold} (English source)",
                                  license=self._license()[0] if not self.options.source else "")
        if (root / "ontology.json").is_file():
            ctx.add_input(root / "ontology.json", role="label inventory (intents, slots)")

    def recipe_facts(self, ctx: BuildContext) -> dict[str, Any]:
        """Duplicates, slot projection figures per config, intent inventory size."""
        facts: dict[str, Any] = {"domains": self.domains(), "intents": len(self.intent_names()),
                                 "duplicates_policy": self.options.duplicates, "projector": self.options.projector,
                                 "duplicates": {}, "slots": {}}
        from dsbuild.translate_dataset.nlu import mark_conflicting_duplicates

        for d in self.domains():
            fresh = read_domain(self.root(), d, folds=self.options.folds, duplicates=self.options.duplicates)
            facts["duplicates"][d] = mark_conflicting_duplicates(fresh, self.options.duplicates)
        for config, splits in sorted(ctx.facts.get("split_facts", {}).items()):
            total: dict[str, int] = {}
            for f in splits.values():
                for k, v in f.get("slots", {}).items():
                    total[k] = total.get(k, 0) + v
            if total.get("slots"):
                n = total["slots"]
                facts["slots"][config] = {**dict(sorted(total.items())),
                                          "projected_rate": round(total.get("projected", 0) / n, 4),
                                          "value_found_rate": round(total.get("value_found", 0) / n, 4),
                                          "agree_rate": round(total.get("agree", 0) / n, 4)}
                ctx.quality.setdefault("slot_projected_rate", {})[config] = facts["slots"][config]["projected_rate"]
                ctx.quality.setdefault("slot_agree_rate", {})[config] = facts["slots"][config]["agree_rate"]
        return facts

    # ------------------------------------------------------------------ info
    def _license(self) -> tuple[str, str]:
        if self.options.source:
            return (self.options.source_license or "unknown"), ""
        return "cc-by-4.0", ""

    def info(self) -> DatasetInfo:
        o = self.options
        shown = display_name(o.source) if o.source else "NLU++"
        sources = [Source(name="NLU++ (PolyAI task-specific-datasets, nlupp/data)", license="cc-by-4.0",
                          url="https://github.com/PolyAI-LDN/task-specific-datasets", citation=NLUPP_CITATION,
                          description="English utterances with multi-label intents and slots, 20 folds per domain; "
                                      "translated by this build (a change under CC-BY-4.0).")] if not o.source else [
            Source(name=shown, license=o.source_license or "unknown", description="NLU data translated by this build.")]
        sources.append(Source(name="MULTI3NLU++ (method)", license="-", citation=MULTI3_CITATION,
                              description="The recipe followed: NLU++ translated, intents carried over, slot spans "
                                          "re-marked (here: projected automatically)."))
        return DatasetInfo(
            pretty_name=f"nlu-multi: {shown} -> {', '.join(o.target_langs)}",
            summary=(f"{shown} utterances (multi-label intents, slots) translated into {', '.join(o.target_langs)}, "
                     f"intents and folds carried over, slot spans projected onto the translations with the "
                     f"{o.projector!r} projector and checked against each slot text's own translation."),
            languages=sorted({o.src_lang, *o.target_langs}), license=self._license()[0],
            task_categories=["text-classification", "token-classification"],
            task_ids=["multi-label-classification", "intent-classification"],
            multilinguality="translation", source_datasets=["extended|original"] if o.source else ["extended"],
            annotations_creators=["expert-generated"],
            language_creators=["machine-generated"] if o.model else ["found"],
            tags=["nlu", "intent-detection", "slot-filling", "translated", "label-projection"],
            sources=sources,
            method=(f"Translator: {'given translations' if not o.model else o.model}; slots projected with "
                    f"{o.projector!r}; conflicting duplicates: {o.duplicates}."),
            limitations=("Slots are projected automatically: check the qc_flags and per-slot flags. Normalised "
                         "slot values (dates resolved against 2022-03-15) are carried over unchanged. NLU++'s "
                         "label names keep their typos (accesibility, room_ammenities)."))


# ---------------------------------------------------------------------- the slot step
class ProjectSlots(Step):
    """Project each utterance's slots onto its translation and check them against the slot values'
    own translations; the source configs get the slots as they are."""

    name = "project-slots"

    def __init__(self, builder: NluMulti, target: Target) -> None:
        self.builder, self.target = builder, target

    def run(self, items: list[WorkItem], ctx: BuildContext) -> list[WorkItem]:
        for it in items:
            it.extra["source_text"] = it.source.fields["text"]
        if self.target.is_source:
            for it in items:
                it.extra["slots"] = [_slot_row(s, s["text"], s["start"], s["end"]) for s in it.source.extra["slots"]]
            return list(items)
        nlu = [_nlu_item(it) for it in items]
        markers = self.target.projector == "markers"
        from dsbuild.tokenize import get_tokenizer

        tokenizer = self.builder.cached("src-tokenizer", lambda: get_tokenizer(self.builder.options.source_tokenizer,
                                                                                self.builder.src_lang()))
        results = project_slots(nlu, None if markers else [str(it.target["text"]) for it in items],
                                self.builder.projector(self.target), src_lang=self.builder.src_lang(),
                                tgt_lang=self.target.lang, tokenizer=tokenizer)
        for it, res in zip(items, results):
            if markers:  # markers translate the marked utterance themselves: their text is the row's
                it.target["text"] = res.target_text
            values = dict(zip(it.source.fields["slot_values"] or [], it.target.get("slot_values") or []))
            check_slot_values(res, values)
            self._record(it, res, ctx)
        return list(items)

    @staticmethod
    def _record(it: WorkItem, res: Any, ctx: BuildContext) -> None:
        rows = []
        for ps in res.slots:
            row = _slot_row(ps.slot.to_dict(), ps.text, ps.start, ps.end)
            row.update({"score": ps.score, "value_translation": ps.value_translation, "flags": list(ps.flags)})
            rows.append(row)
            count(ctx, "slots", group="slots")
            count(ctx, "projected", 1 if ps.projected else 0, group="slots")
            count(ctx, "value_found", 0 if "value-not-found" in ps.flags or ps.value_translation is None else 1,
                  group="slots")
            count(ctx, "agree", 1 if ps.projected and not {"value-not-found", "projection-disagrees"} & set(ps.flags)
                  and ps.value_translation is not None else 0, group="slots")
            if ps.reason:
                count(ctx, ps.reason, group="slots_unprojected")
        it.extra["slots"] = rows
        flags = {f for ps in res.slots for f in ps.flags}
        if "unprojected" in flags:
            it.flag("span-lost")
        if "value-not-found" in flags:
            it.flag("slot-value-not-found")
        if "projection-disagrees" in flags:
            it.flag("slot-projection-disagrees")


def _nlu_item(it: WorkItem) -> NluItem:
    """The NLU item behind a work item (text and slots), for the projector."""
    slots = [Slot(name=s["slot"], text=s["text"], start=s["start"], end=s["end"], value=json.loads(s["value"]),
                  value_key=s["value_key"]) for s in it.source.extra["slots"]]
    return NluItem(id=it.id, domain=it.source.extra["domain"], fold=int(it.source.fields["fold"]), index=0,
                   text=it.source.fields["text"], intents=list(it.source.fields["intents"]), slots=slots)


def _slot_row(s: dict[str, Any], text: str | None, start: int | None, end: int | None) -> dict[str, Any]:
    return {"slot": s["slot"], "text": text, "start": start, "end": end, "value": s["value"],
            "value_key": s["value_key"], "source_text": s["text"], "source_start": s["start"],
            "source_end": s["end"], "score": None, "value_translation": None, "flags": []}


__all__ = ["MtOptions", "NluMulti", "NluMultiOptions", "make_target", "translator_choice"]
