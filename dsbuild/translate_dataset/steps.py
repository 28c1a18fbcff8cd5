"""The steps of one translate-dataset config, shard by shard.

``CheckItems -> Translate -> ProjectSpans -> QualityCheck -> (recipe steps) -> Policy -> ToRow``.
Every step returns one value per item (a :class:`WorkItem` or a :class:`Reject`), so every input
ends as one row or one reject with a reason; facts (counts, flags, chrF statistics) add up over
shards in ``ctx.facts``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dsbuild.builder import BuildContext, Reject
from dsbuild.pipeline import Step
from dsbuild.translate_dataset.given import MISSING
from dsbuild.translate_dataset.items import SourceItem, Target, WorkItem
from dsbuild.translate_dataset.protect import mask, protected_flags, unmask
from dsbuild.translate_dataset.qc import (QC_FLAGS, chrf_from_stats, chrf_stats, copy_flags, found_in, length_ratio, options_collapsed)
from dsbuild.translate_dataset.spec import FieldSpec, answer_index

if TYPE_CHECKING:  # pragma: no cover
    from dsbuild.translate_dataset.base import TranslateDatasetBase

log = logging.getLogger(__name__)


class PresetReject:
    """A reject the recipe's ``read_source`` yielded; :class:`CheckItems` records and counts it."""

    def __init__(self, reject: Reject) -> None:
        self.reject = reject


def count(ctx: BuildContext, key: str, n: int = 1, *, group: str | None = None) -> None:
    """Add ``n`` to ``ctx.facts[key]`` (or ``ctx.facts[group][key]``)."""
    into = ctx.facts.setdefault(group, {}) if group else ctx.facts
    into[key] = into.get(key, 0) + n


def reject(ctx: BuildContext, item: SourceItem, reason: str, detail: str) -> Reject:
    """A reject counted by reason; its example is the source item (fields and where)."""
    count(ctx, reason, group="reject_reasons")
    return Reject(item.id, reason, detail, {"id": item.id, "where": item.where, "fields": _json_safe(item.fields)})


class _TargetStep(Step):
    def __init__(self, builder: TranslateDatasetBase, target: Target) -> None:
        self.builder, self.target = builder, target


# ---------------------------------------------------------------------------- 1. structure
class CheckItems(Step):
    """Structure: required fields present, strings are strings, lists are lists, answer keys point
    inside their options, spans well formed. A failure is a reject naming the item and field."""

    name = "check"

    def __init__(self, builder: TranslateDatasetBase, target: Target) -> None:
        self.builder, self.target = builder, target

    def run(self, items: list[Any], ctx: BuildContext) -> list[WorkItem | Reject]:
        count(ctx, "input", len(items))
        spec = self.builder.spec()
        out: list[WorkItem | Reject] = []
        for it in items:
            if isinstance(it, PresetReject):
                count(ctx, it.reject.reason, group="reject_reasons")
                out.append(it.reject)
                continue
            problem = next((p for f in spec.fields if (p := check_field(it, f, spec.fields)) is not None), None)
            if problem is None:
                problem = check_kept_types(it, self.builder.kept_types())
            out.append(reject(ctx, it, problem[0], problem[1]) if problem else
                       WorkItem(it, extra=dict(it.extra)))
        return out


def check_field(item: SourceItem, f: FieldSpec, fields: Sequence[FieldSpec]) -> tuple[str, str] | None:
    """``(reason, detail)`` when ``item``'s field ``f`` is unusable, else None."""
    where = f"item {item.id!r} field {f.name!r}" + (f" ({item.where})" if item.where else "")
    value = item.fields.get(f.name)
    if value is None:
        return None if f.optional else ("missing-field", f"{where}: missing or null")
    if f.kind == "translate" and not isinstance(value, str):
        return "not-a-string", f"{where}: expected a string, got {type(value).__name__}"
    if f.kind == "translate_each" and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        return "not-a-list", f"{where}: expected a list of strings, got {_describe(value)}"
    if f.kind == "consistent" and not (isinstance(value, str) or
                                       (isinstance(value, list) and all(isinstance(v, str) for v in value))):
        return "not-a-list", f"{where}: expected a string or a list of strings, got {_describe(value)}"
    if f.kind == "spans":
        return _check_spans(item, f, where)
    if f.answer_for is not None:
        options = item.fields.get(f.answer_for)
        if not isinstance(options, list):
            return "not-a-list", f"item {item.id!r} field {f.answer_for!r}: expected a list, got {_describe(options)}"
        if answer_index(value, options, f.answer_format) is None:
            return ("answer-outside-options", f"{where}: answer key {value!r} names none of the {len(options)} "
                                              f"options of {f.answer_for!r} (format {f.answer_format})")
    return None


def check_kept_types(item: SourceItem, types: dict[str, Any]) -> tuple[str, str] | None:
    """``("wrong-type", detail)`` when a kept field's value does not fit the type inferred from the first items."""
    import pyarrow as pa

    from dsbuild.translate_dataset.base import INFER_ITEMS

    for name, arrow_type in types.items():
        value = item.fields.get(name)
        if value is None:
            continue
        try:
            pa.array([value], type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError,
                OverflowError):
            where = f"item {item.id!r} field {name!r}" + (f" ({item.where})" if item.where else "")
            return ("wrong-type", f"{where}: {_describe(value)} does not fit the type {arrow_type} inferred from the "
                                  f"first {INFER_ITEMS} items; give the field one type in every item")
    return None


def _check_spans(item: SourceItem, f: FieldSpec, where: str) -> tuple[str, str] | None:
    value, text = item.fields.get(f.name), item.fields.get(f.of or "")
    if not isinstance(value, list):
        return "not-a-list", f"{where}: expected a list of spans, got {_describe(value)}"
    limit = len(text) if f.span_format == "char" and isinstance(text, str) else len(str(text).split())
    for i, span in enumerate(value):
        if not isinstance(span, dict) or not {f.start_key, f.end_key, f.label_key} <= set(span):
            return "bad-span", f"{where}[{i}]: expected {{{f.start_key}, {f.end_key}, {f.label_key}}}, got {span!r:.80}"
        s, e = span[f.start_key], span[f.end_key]
        if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= limit):
            return "bad-span", f"{where}[{i}]: offsets [{s}, {e}) out of range for field {f.of!r} ({limit})"
    return None


# ---------------------------------------------------------------------------- 2. translate
class Translate(_TargetStep):
    """Fill ``item.target``: the source copied (source config), given translations looked up, or
    the MT model's translations (protected patterns masked and restored)."""

    name = "translate"

    def setup(self, ctx: BuildContext) -> None:
        d = self.builder.describe_translator(self.target)
        if not self.target.is_source:
            ctx.add_model(str(d["model"]), revision=d.get("revision"), kind=f"translator ({self.target.method})",
                          config=self.target.config)

    def run(self, items: list[WorkItem], ctx: BuildContext) -> list[WorkItem | Reject]:
        spec = self.builder.spec()
        for it in items:  # kept fields are copied in every config
            it.target = {f.name: it.source.fields.get(f.name) for f in spec.of_kind("keep", "spans")}
        if self.target.is_source:
            for it in items:
                for f in spec.of_kind("translate", "translate_each", "consistent"):
                    it.target[f.name] = it.source.fields.get(f.name)
            return list(items)
        if self.target.translator == "given":
            return [self._given(it, ctx) for it in items]
        return self._machine(items, ctx)

    def _given(self, it: WorkItem, ctx: BuildContext) -> WorkItem | Reject:
        given = self.target.given
        assert given is not None, "a given target needs Target.given"
        for f in self.builder.spec().of_kind("translate", "translate_each", "consistent"):
            value = it.source.fields.get(f.name)
            if value is None:
                it.target[f.name] = None
                continue
            many = isinstance(value, list)
            found = given.get(it.id, f.name, as_list=many)
            if found is MISSING or (many and len(found) != len(value)):
                what = "no given" if found is MISSING else f"{len(found)} elements instead of {len(value)} in the given"
                return reject(ctx, it.source, "no-translation",
                              f"item {it.id!r} field {f.name!r}: {what} {self.target.lang} translation "
                              f"({given.name})")
            it.target[f.name] = found
        return self._segments(it, ctx)

    def _machine(self, items: list[WorkItem], ctx: BuildContext) -> list[WorkItem | Reject]:
        spec, t = self.builder.spec(), self.target
        patterns = spec.protect
        placeholder = self.builder.qc_settings().placeholder
        texts: list[str] = []
        originals: list[list[str]] = []
        where: list[tuple[int, str, int | None]] = []
        for n, it in enumerate(items):
            for f in spec.of_kind("translate", "translate_each", "consistent"):
                value = it.source.fields.get(f.name)
                for i, text in ([(None, value)] if isinstance(value, str) else enumerate(value or [])):
                    masked, orig = mask(text, patterns if f.kind != "consistent" else (), placeholder)
                    texts.append(masked)
                    originals.append(orig)
                    where.append((n, f.name, i))
        mt = self.builder.translator(t)
        out = mt.translate(texts, t.from_lang or self.builder.src_lang(), t.model_lang or t.lang) if texts else []
        count(ctx, "segments_translated", len(texts))
        for it in items:
            for f in spec.of_kind("translate", "translate_each", "consistent"):
                value = it.source.fields.get(f.name)
                it.target[f.name] = None if value is None else ("" if isinstance(value, str) else [""] * len(value))
        for (n, name, i), text, orig in zip(where, out, originals):
            restored = unmask(text, orig, placeholder)
            if i is None:
                items[n].target[name] = restored
            else:
                items[n].target[name][i] = restored
        return [self._segments(it, ctx) for it in items]

    def _segments(self, it: WorkItem, ctx: BuildContext) -> WorkItem | Reject:
        """Record (field, index, source, target) of each translated text; an empty one rejects."""
        for f in self.builder.spec().of_kind("translate", "translate_each"):
            src, tgt = it.source.fields.get(f.name), it.target.get(f.name)
            pairs = [(None, src, tgt)] if isinstance(src, str) else list(zip(range(len(src or [])), src or [], tgt or []))
            for i, s, t in pairs:
                if s.strip() and not str(t).strip():
                    at = f"{f.name!r}" + (f"[{i}]" if i is not None else "")
                    return reject(ctx, it.source, "empty-translation",
                                  f"item {it.id!r} field {at}: the {self.target.lang} translation is empty")
                it.segments.append((f.name, i, s, str(t)))
        return it


# ---------------------------------------------------------------------------- 3. spans
class ProjectSpans(_TargetStep):
    """Project each ``spans`` field onto its translated field with the target's projector."""

    name = "project"

    def run(self, items: list[WorkItem], ctx: BuildContext) -> list[WorkItem]:
        from dsbuild.translate_dataset.spans import project_field, source_spans

        for f in self.builder.spec().of_kind("spans"):
            if self.target.is_source:
                for it in items:
                    it.target[f.name] = source_spans(it.source, f)
                continue
            project_field(self.builder, self.target, f, items, ctx)
        return list(items)


# ---------------------------------------------------------------------------- 4. QC
class QualityCheck(_TargetStep):
    """The generic per-item QC flags and columns (see :mod:`dsbuild.translate_dataset.qc`)."""

    name = "qc"

    def setup(self, ctx: BuildContext) -> None:
        settings = self.builder.qc_settings()
        if settings.backtranslation_model and not self.target.is_source:
            from builders._user_source import display_name

            ctx.add_model(display_name(settings.backtranslation_model), revision=None,
                          kind="back-translation (QC)", config=self.target.config)

    def run(self, items: list[WorkItem], ctx: BuildContext) -> list[WorkItem]:
        if self.target.is_source:
            return list(items)
        settings = self.builder.qc_settings()
        spec, t = self.builder.spec(), self.target
        src_lang = self.builder.src_lang()
        for it in items:
            for _, _, s, tt in it.segments:
                for flag in protected_flags(s, tt, spec.protect):
                    it.flag(flag)
            joined_src = "\n".join(s for f, _, s, _ in it.segments if spec.field(f).kind == "translate") or \
                "\n".join(s for _, _, s, _ in it.segments)
            joined_tgt = "\n".join(tt for f, _, _, tt in it.segments if spec.field(f).kind == "translate") or \
                "\n".join(tt for _, _, _, tt in it.segments)
            # the segments' source text is the source items' (a back-translation is compared with it too)
            for flag in copy_flags(joined_src, joined_tgt, src_lang, t.lang, script=t.script,
                                   min_chars=settings.min_chars_untranslated):
                it.flag(flag)
            ratio = length_ratio("".join(s for _, _, s, _ in it.segments), "".join(x for *_, x in it.segments))
            it.qc["qc_length_ratio"] = ratio
            low, high = settings.length_ratio
            if ratio is not None and not low <= ratio <= high:
                it.flag("length-ratio")
            for f in spec.fields:
                if f.answer_for and spec.field(f.answer_for).kind == "translate_each":
                    if options_collapsed(it.source.fields[f.answer_for], it.target[f.answer_for]):
                        it.flag("options-collapsed")
            self._consistent(it)
        self._reference(items, ctx)
        self._backtranslate(items, ctx)
        return list(items)

    def _consistent(self, it: WorkItem) -> None:
        for f in self.builder.spec().of_kind("consistent"):
            values = it.target.get(f.name)
            text = it.target.get(f.of or "") or ""
            for v in [values] if isinstance(values, str) else values or []:
                if not found_in(v, text):
                    it.flag("consistent-not-found")

    def _reference(self, items: list[WorkItem], ctx: BuildContext) -> None:
        """``qc_chrf_reference``: chrF of the translated text against the reference config's text."""
        ref_name = self.target.reference
        for it in items:
            it.qc.setdefault("qc_chrf_reference", None)
        if not ref_name:
            return
        stats: dict[str, int] = ctx.facts.setdefault("chrf_reference_stats", {})
        for it in items:
            ref = self.builder.reference_text(ref_name, it)
            if ref is None:
                continue
            hyp = self.builder.item_text(it.target)
            pair = chrf_stats(hyp, ref)  # the sentence score from the same statistics: one pass, not two
            it.qc["qc_chrf_reference"] = chrf_from_stats(pair)
            for k, v in enumerate(pair):
                stats[str(k)] = stats.get(str(k), 0) + v
            count(ctx, "chrf_reference_items")

    def _backtranslate(self, items: list[WorkItem], ctx: BuildContext) -> None:
        """``qc_backtranslation_chrf``: each translated segment back-translated on its own by a reverse
        model (sentence-level models translate one segment at a time), the item's segments joined as
        :meth:`item_text` joins them, and scored by chrF against the source item's text."""
        settings = self.builder.qc_settings()
        for it in items:
            it.qc.setdefault("qc_backtranslation_chrf", None)
        if not settings.backtranslation_model or not items:
            return
        mt = self.builder.reverse_translator()
        texts = [tt for it in items for *_, tt in it.segments]
        back = iter(mt.translate(texts, self.target.lang, self.target.from_lang or self.builder.src_lang())
                    if texts else [])
        count(ctx, "segments_backtranslated", len(texts))
        stats: dict[str, int] = ctx.facts.setdefault("chrf_backtranslation_stats", {})
        for it in items:
            if not it.segments:
                continue
            hyp = "\n".join(next(back) for _ in it.segments)
            src = "\n".join(s for _, _, s, _ in it.segments)
            pair = chrf_stats(hyp, src)
            it.qc["qc_backtranslation_chrf"] = score = chrf_from_stats(pair)
            for k, v in enumerate(pair):
                stats[str(k)] = stats.get(str(k), 0) + v
            if score < settings.min_backtranslation_chrf:
                it.flag("backtranslation-low-chrf")


# ---------------------------------------------------------------------------- 5. policy, rows
class Policy(_TargetStep):
    """Count flags (over every QC'd item); items with a flag in ``reject_on`` become rejects."""

    name = "policy"

    def run(self, items: list[WorkItem], ctx: BuildContext) -> list[WorkItem | Reject]:
        reject_on = set(self.builder.qc_settings().reject_on)
        out: list[WorkItem | Reject] = []
        count(ctx, "qc_items", len(items))
        for it in items:
            for flag in it.flags:
                count(ctx, flag, group="flags")
            count(ctx, "flagged_items", 1 if it.flags else 0)
            hard = [f for f in _ordered(it.flags) if f in reject_on]
            if hard:
                out.append(reject(ctx, it.source, hard[0], f"item {it.id!r}: QC flags {', '.join(_ordered(it.flags))} "
                                                           f"(reject_on: {', '.join(hard)})"))
            else:
                out.append(it)
        return out


class ToRow(_TargetStep):
    """The output row: id, spec'd fields, method, translator, QC columns, recipe columns."""

    name = "to-row"

    def run(self, items: list[WorkItem], ctx: BuildContext) -> list[dict[str, Any]]:
        d = self.builder.describe_translator(self.target)
        rows = []
        for it in items:
            row: dict[str, Any] = {"id": it.id}
            row.update({name: it.target.get(name) for name in self.builder.spec().names})
            row.update({"translation_method": self.target.method if not self.target.is_source else "source",
                        "translator_model": d.get("model"), "translator_revision": d.get("revision"),
                        "qc_flags": _ordered(it.flags),
                        "qc_length_ratio": it.qc.get("qc_length_ratio"),
                        "qc_chrf_reference": it.qc.get("qc_chrf_reference"),
                        "qc_backtranslation_chrf": it.qc.get("qc_backtranslation_chrf")})
            row.update(self.builder.extra_columns(it, self.target))
            rows.append(row)
        count(ctx, "kept", len(rows))
        return rows


def _ordered(flags: Sequence[str]) -> list[str]:
    """Flags in the card's order (generic flags first, recipe flags after, alphabetically)."""
    known = [f for f in QC_FLAGS if f in flags]
    return known + sorted(set(flags) - set(QC_FLAGS))


def _describe(value: Any) -> str:
    if isinstance(value, list):
        bad = next((v for v in value if not isinstance(v, str)), None)
        return f"a list with a {type(bad).__name__} element" if bad is not None else "a list"
    return f"{type(value).__name__} {str(value)[:40]!r}"


def _json_safe(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


__all__ = ["CheckItems", "Policy", "PresetReject", "ProjectSpans", "QualityCheck", "ToRow", "Translate",
           "check_field", "check_kept_types", "count", "reject"]
