"""The base class of translate-dataset builders: a sharded recipe of steps over any item dataset.

A subclass (the generic ``translate-dataset`` builder, or a recipe such as ``mcq-translate``)
supplies five hooks: :meth:`spec` (the field spec), :meth:`src_lang`, :meth:`split_names`,
:meth:`read_source` (source items, lazily) and :meth:`targets` (one :class:`Target` per output
config). The base makes the configs (the source config plus one per target, item-aligned by id),
the steps (check, translate, project spans, QC, the recipe's steps, reject policy, to-row), loads
translators and projectors once per worker, and summarises counts, QC flag rates and chrF per
config in ``ctx.facts["translate_dataset"]`` for the card.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice
from typing import Any

import datasets

from dsbuild.builder import Builder, BuildContext, ConfigSpec, Reject
from dsbuild.errors import ConfigError
from dsbuild.pipeline import Step
from dsbuild.translate_dataset.given import MISSING
from dsbuild.translate_dataset.items import SourceItem, Target, WorkItem
from dsbuild.translate_dataset.qc import QC_FLAGS, QCSettings, chrf_from_stats
from dsbuild.translate_dataset.spec import DatasetSpec
from dsbuild.translate_dataset.steps import (CheckItems, Policy, PresetReject, ProjectSpans, QualityCheck, ToRow,
                                             Translate, count)

log = logging.getLogger(__name__)

#: how many source items the feature types of kept fields are inferred from
INFER_ITEMS = 1000
SOURCE_TARGET = Target(config="", lang="", method="source", translator="source")


class TranslateDatasetBase(Builder):
    """Base of the translate-dataset builder and its recipes; see the module docstring."""

    # ------------------------------------------------------------------ hooks: required
    def spec(self) -> DatasetSpec:
        """The field spec."""
        raise NotImplementedError

    def src_lang(self) -> str:
        """The language code of the source items."""
        raise NotImplementedError

    def split_names(self) -> list[str]:
        """The source splits (every config has them all)."""
        raise NotImplementedError

    def read_source(self, split: str) -> Iterator[SourceItem | Reject]:
        """The source items of ``split``, lazily, in a stable order (a Reject: a recorded bad input)."""
        raise NotImplementedError

    def targets(self) -> list[Target]:
        """One :class:`Target` per output config, the source config excepted."""
        raise NotImplementedError

    # ------------------------------------------------------------------ hooks: optional
    def source_config(self) -> str | None:
        """Name of the config holding the source items as they are (None: no source config)."""
        return self.src_lang()

    def qc_settings(self) -> QCSettings:
        """Which flags reject, thresholds, back-translation model."""
        return QCSettings()

    def extra_steps(self, target: Target, split: str) -> list[Step]:
        """Recipe steps after the generic QC, before the reject policy (they get WorkItems)."""
        return []

    def extra_features(self) -> dict[str, Any]:
        """Extra row columns: name -> datasets feature."""
        return {}

    def extra_columns(self, item: WorkItem, target: Target) -> dict[str, Any]:
        """Values of the extra columns for one row (default: ``item.extra``)."""
        return {k: item.extra.get(k) for k in self.extra_features()}

    def field_features(self) -> dict[str, Any] | None:
        """Feature of each spec'd field; None: inferred from the first source items."""
        return None

    def recipe_facts(self, ctx: BuildContext) -> dict[str, Any]:
        """Recipe figures for the card (``facts["translate_dataset"]["recipe"]``)."""
        return {}

    def prepare_recipe(self, ctx: BuildContext) -> None:
        """Recipe work before any shard: check options, record inputs."""

    # ------------------------------------------------------------------ configs
    def all_targets(self) -> list[Target]:
        """The targets, the source target first (when there is a source config); names checked."""
        if getattr(self, "_targets", None) is None:
            targets = list(self.targets())
            src = self.source_config()
            if src is not None:
                targets.insert(0, Target(config=src, lang=self.src_lang(), method="source", translator="source",
                                         description="the source items as they are"))
            names = [t.config for t in targets]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ConfigError(f"{self.name}: config name(s) {dupes} used twice (a target language equal to "
                                  f"the source language?)")
            if not [t for t in targets if not t.is_source]:
                raise ConfigError(f"{self.name}: no target language; give at least one, e.g. --set target_langs=[es]")
            self._targets = targets
        return self._targets

    def target(self, config: str) -> Target:
        return next(t for t in self.all_targets() if t.config == config)

    def configs(self) -> list[ConfigSpec]:
        features = self.features()
        return [ConfigSpec(name=t.config, features=features, splits=list(self.split_names()), language=t.lang,
                           description=t.description or f"{t.method} ({t.lang})") for t in self.all_targets()]

    def features(self) -> datasets.Features:
        """id, the spec'd fields, translation method and translator, QC columns, recipe columns."""
        fields = self.field_features() or self._inferred_features()
        string = datasets.Value("string")
        out: dict[str, Any] = {"id": string}
        out.update({f.name: fields[f.name] for f in self.spec().fields})
        out.update({"translation_method": string, "translator_model": string, "translator_revision": string,
                    "qc_flags": datasets.List(string), "qc_length_ratio": datasets.Value("float32"),
                    "qc_chrf_reference": datasets.Value("float32"),
                    "qc_backtranslation_chrf": datasets.Value("float32")})
        out.update(self.extra_features())
        return datasets.Features(out)

    def _inferred_features(self) -> dict[str, Any]:
        """Translated fields by kind; kept fields from the arrow types of the first source items."""
        if getattr(self, "_field_features", None) is not None:
            return self._field_features
        string = datasets.Value("string")
        span = {"label": string, "start": datasets.Value("int32"), "end": datasets.Value("int32"), "text": string}
        spec = self.spec()
        sample = [it for it in islice(self._first_items(), INFER_ITEMS)]
        out: dict[str, Any] = {}
        for f in spec.fields:
            if f.kind == "translate":
                out[f.name] = string
            elif f.kind == "translate_each":
                out[f.name] = datasets.List(string)
            elif f.kind == "spans":
                out[f.name] = datasets.List(span)
            elif f.kind == "consistent":
                many = any(isinstance(it.fields.get(f.name), list) for it in sample)
                out[f.name] = datasets.List(string) if many else string
            else:
                out[f.name] = _infer(f.name, [it.fields.get(f.name) for it in sample])
        self._field_features = out
        return out

    def kept_types(self) -> dict[str, Any]:
        """Arrow type of each kept field whose feature was inferred (empty when the recipe gives its features):
        :class:`~dsbuild.translate_dataset.steps.CheckItems` rejects a later item whose value does not fit."""
        def load() -> dict[str, Any]:
            if self.field_features() is not None:
                return {}
            feats = self._inferred_features()
            return {f.name: datasets.Features({f.name: feats[f.name]}).arrow_schema.field(f.name).type
                    for f in self.spec().of_kind("keep")}

        return self.cached("kept-types", load)

    def _first_items(self) -> Iterator[SourceItem]:
        for split in self.split_names():
            for it in self.read_source(split):
                if isinstance(it, SourceItem):
                    yield it

    # ------------------------------------------------------------------ prepare / source / steps
    def prepare(self, ctx: BuildContext) -> None:
        """Recipe checks and inputs, then: the spec against the source fields, given translations
        against the spec (a whole field missing is one line), duplicate ids (rejected)."""
        self.prepare_recipe(ctx)
        spec = self.spec()
        first = next(self._first_items(), None)
        if first is not None:
            spec.check_columns(set(first.fields) | {spec.id_field}, first.where.rsplit(":", 1)[0] or self.name)
        translated = [f.name for f in spec.of_kind("translate", "translate_each", "consistent") if not f.optional]
        for t in self.all_targets():
            if t.translator == "given":
                if t.given is None:
                    raise ConfigError(f"{self.name}: target {t.config!r} uses given translations but none were "
                                      f"supplied (--set translations=FILE)")
                t.given.check_fields(translated, f"{self.name} config {t.config}")
        self._scan_ids()
        self._inferred_features() if self.field_features() is None else None
        ctx.facts["translate_dataset"] = {
            "src_lang": self.src_lang(), "spec": spec.to_dict(),
            "reject_on": list(self.qc_settings().reject_on),
            "backtranslation": self._backtranslation_facts(),
            "targets": {t.config: {"lang": t.lang, "method": t.method, "translator": t.translator,
                                   "model": self.describe_translator(t).get("model"),
                                   "revision": self.describe_translator(t).get("revision"),
                                   "reference": t.reference, "description": t.description}
                        for t in self.all_targets()}}

    def _backtranslation_facts(self) -> dict[str, Any] | None:
        """The back-translation QC settings for the card (None: no reverse model)."""
        settings = self.qc_settings()
        if not settings.backtranslation_model:
            return None
        from builders._user_source import display_name

        return {"model": display_name(settings.backtranslation_model),
                "min_chrf": settings.min_backtranslation_chrf}

    def _scan_ids(self) -> None:
        """One pass over every split: positions of repeated ids (rejected as ``duplicate-id``) and sizes."""
        self._duplicates: dict[str, set[int]] = {}
        self._sizes: dict[str, int] = {}
        seen: set[str] = set()
        for split in self.split_names():
            dupes: set[int] = set()
            n = 0
            for n, it in enumerate(self.read_source(split), 1):
                item_id = it.id
                if item_id in seen:
                    dupes.add(n - 1)
                seen.add(item_id)
            self._duplicates[split], self._sizes[split] = dupes, n

    def source(self, config: ConfigSpec, split: str) -> Iterator[Any]:
        dupes = getattr(self, "_duplicates", {}).get(split, set())
        for i, it in enumerate(self.read_source(split)):
            if isinstance(it, Reject):
                yield PresetReject(it)
            elif i in dupes:
                yield PresetReject(Reject(it.id, "duplicate-id", f"item id {it.id!r} ({it.where}) repeats an "
                                                                 f"earlier item's id; ids must be unique",
                                          {"id": it.id, "where": it.where}))
            else:
                yield it

    def count(self, config: ConfigSpec, split: str) -> int | None:
        return getattr(self, "_sizes", {}).get(split)

    def steps(self, config: ConfigSpec, split: str) -> list[Step]:
        t = self.target(config.name)
        steps: list[Step] = [CheckItems(self, t), Translate(self, t)]
        if self.spec().of_kind("spans"):
            steps.append(ProjectSpans(self, t))
        steps.append(QualityCheck(self, t))
        steps.extend(self.extra_steps(t, split))
        steps += [Policy(self, t), ToRow(self, t)]
        return steps

    # ------------------------------------------------------------------ translators, projectors
    def translator(self, target: Target) -> Any:
        """The target's MT translator, loaded once per worker."""
        return self.cached(f"mt/{target.config}", lambda: self._make_translator(target))

    def _make_translator(self, target: Target) -> Any:
        from dsbuild.registry import translators

        factory = translators.get(target.translator)
        kwargs = dict(target.translator_options)
        if target.revision:
            kwargs.setdefault("revision", target.revision)
        if self.worker.device and target.translator == "hf-seq2seq":
            kwargs.setdefault("device", self.worker.device)
        try:
            return factory(target.model, **kwargs)
        except TypeError as err:
            raise ConfigError(f"{self.name}: translator {target.translator!r} rejects options {sorted(kwargs)}: "
                              f"{err}") from None

    def reverse_translator(self) -> Any:
        """The back-translation model of :class:`QCSettings`, loaded once per worker."""
        settings = self.qc_settings()

        def load() -> Any:
            from dsbuild.registry import translators

            return translators.get("hf-seq2seq")(settings.backtranslation_model, **settings.backtranslation_options)

        return self.cached("mt/reverse", load)

    def projector(self, target: Target) -> Any:
        """The target's span projector (a registered method), once per worker."""
        def load() -> Any:
            from dsbuild.project import make_projector

            options = dict(target.projector_options)
            if target.projector in ("markers", "constrained", "tprojection", "ensemble"):
                options.setdefault("translator", self.translator(target))
            return make_projector(target.projector, policy="keep-partial", **options)

        return self.cached(f"projector/{target.config}", load)

    def describe_translator(self, target: Target) -> dict[str, Any]:
        """``{model, revision}`` named in rows and the card (portable: no local folders)."""
        if target.is_source:
            return {"model": None, "revision": None}
        if target.translator == "given":
            assert target.given is not None
            return target.given.describe()
        from builders._user_source import display_name

        return {"model": display_name(target.model) if target.model else target.translator,
                "revision": target.revision or self._local_revision(target)}

    def _local_revision(self, target: Target) -> str | None:
        """A loaded model's own revision (commit or weights hash), when the target names none."""
        mt = self.worker_cache.get(f"mt/{target.config}")
        describe = getattr(mt, "describe", None)
        return describe().get("revision") if callable(describe) else None

    # ------------------------------------------------------------------ texts for chrF
    def item_text(self, fields: dict[str, Any]) -> str:
        """The translated text of an item (translate and translate_each fields, newline-joined)."""
        parts: list[str] = []
        for f in self.spec().of_kind("translate", "translate_each"):
            value = fields.get(f.name)
            parts.extend([value] if isinstance(value, str) else [str(v) for v in value or []])
        return "\n".join(parts)

    def reference_text(self, reference: str, item: WorkItem) -> str | None:
        """The reference text of ``item``: the source's, or a given target config's translation."""
        if reference == "source":
            return self.item_text(item.source.fields)
        ref = self.target(reference)
        if ref.given is None:
            raise ConfigError(f"{self.name}: reference config {reference!r} has no given translations")
        fields: dict[str, Any] = {}
        for f in self.spec().of_kind("translate", "translate_each"):
            value = ref.given.get(item.id, f.name, as_list=f.kind == "translate_each")
            if value is MISSING:
                return None
            fields[f.name] = value
        return self.item_text(fields)

    # ------------------------------------------------------------------ finish
    def finish(self, ctx: BuildContext) -> None:
        """Per config: counts, reject reasons, flag counts and rates, corpus chrF; recipe facts."""
        facts = ctx.facts.setdefault("translate_dataset", {})
        per_config: dict[str, Any] = {}
        for t in self.all_targets():
            splits = ctx.facts.get("split_facts", {}).get(t.config, {})
            per_config[t.config] = summarise(t, splits)
        facts["per_config"] = per_config
        facts["recipe"] = self.recipe_facts(ctx)
        for config, s in per_config.items():
            ctx.quality.setdefault("kept_rate", {})[config] = s["kept_rate"]
            if s.get("chrf_reference") is not None:
                ctx.quality.setdefault("chrf_reference", {})[config] = s["chrf_reference"]


def summarise(target: Target, splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One config's figures from its per-split facts."""
    total: dict[str, Any] = {}
    from dsbuild.pipeline import merge_facts

    for f in splits.values():
        merge_facts(total, f)
    n_in, kept, qc_items = total.get("input", 0), total.get("kept", 0), total.get("qc_items", 0)
    flags = total.get("flags", {})
    order = [f for f in QC_FLAGS if f in flags] + sorted(set(flags) - set(QC_FLAGS))
    out: dict[str, Any] = {
        "lang": target.lang, "method": target.method, "input": n_in, "kept": kept, "rejected": n_in - kept,
        "kept_rate": round(kept / n_in, 4) if n_in else None,
        "reject_reasons": dict(sorted(total.get("reject_reasons", {}).items())),
        "qc_items": qc_items, "flags": {f: flags[f] for f in order},
        "flag_rates": {f: round(flags[f] / qc_items, 4) for f in order} if qc_items else {},
        "flagged_items_rate": round(total.get("flagged_items", 0) / qc_items, 4) if qc_items else None,
        "per_split": {s: {"input": f.get("input", 0), "kept": f.get("kept", 0)} for s, f in sorted(splits.items())},
        "reference": target.reference,
        "chrf_reference": _chrf(total.get("chrf_reference_stats")),
        "chrf_reference_items": total.get("chrf_reference_items", 0),
        "chrf_backtranslation": _chrf(total.get("chrf_backtranslation_stats")),
    }
    if "spans" in total:
        out["spans"] = total["spans"]
    return out


def _chrf(stats: dict[str, int] | None) -> float | None:
    if not stats:
        return None
    return chrf_from_stats([stats[str(i)] for i in range(len(stats))])


def _infer(name: str, values: list[Any]) -> Any:
    """The datasets feature of a kept field from sample values (strings when nothing is known)."""
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if not present:
        return datasets.Value("string")
    try:
        arrow = pa.array(present).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as err:
        raise ConfigError(f"kept field {name!r} mixes value types in the first items ({err}); give it one type, "
                          f"or convert it in the source") from None
    return datasets.Features.from_arrow_schema(pa.schema([pa.field(name, arrow)]))[name]


__all__ = ["TranslateDatasetBase", "summarise"]
