"""NLU++-style data (multi-label intents + character-offset slots) for translation with span projection.

The reader turns NLU++ fold files (``DOMAIN/foldN.json``, a JSON array per fold, see
``builders/data/nlu_multi/README.md``) into :class:`NluItem` s. Facts of the data it handles:

* slot spans are **character** offsets (Python ``str`` indices, end exclusive) into ``text``;
* ``date_period`` and ``time_period`` carry their normalised value under ``values`` instead of
  ``value``; both are kept as they are (``value_key`` says which), as a JSON string, since the
  values are language-independent;
* ``intents`` / ``slots`` keys are absent when empty;
* some utterances occur several times (in different folds) and a few copies disagree on their
  labels: :func:`mark_conflicting_duplicates` finds them (same domain, same text, different
  intent *set* or slots) and marks every copy, or every copy but the first, as a problem that the
  builder records as a reject with its reason;
* two utterances have nested spans, and one span does not end on a token boundary (``5ish``).

Projection (:func:`project_slots`): the source text is tokenised and its tokens are cut at every
slot edge (so ``5`` of ``5ish`` becomes a token), the slots become :class:`~dsbuild.spans.Span` s, any
registered projector moves them onto the translation, and the projected token spans come back as
character offsets into the target text. Nested slots are projected in a second pass over the same
target text (projectors refuse overlapping source spans). :func:`check_slot_values` then checks
each projected span against the slot text translated on its own (``value-not-found`` when that
translation is not in the target text, ``projection-disagrees`` when the projected span is not
it).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dsbuild.errors import InputError
from dsbuild.spans import Example, Span, Token

#: the slot types whose normalised value is stored under ``values`` (not ``value``) in NLU++
PERIOD_SLOTS = ("date_period", "time_period")
DuplicatePolicy = Literal["reject", "keep-first"]
_FOLD_FILE = re.compile(r"^fold(\d+)\.json$")


# ---------------------------------------------------------------------- data model
@dataclass(frozen=True)
class Slot:
    """One slot mention: its type, surface text, character span and normalised value.

    ``value_key`` is ``"value"`` or ``"values"`` (period slots), as in the source record, so a
    writer can give the record back unchanged.
    """

    name: str
    text: str
    start: int
    end: int
    value: Any = None
    value_key: str = "value"

    def to_dict(self) -> dict[str, Any]:
        """The row form: value as a JSON string (its type varies by slot: dict, string, number)."""
        return {"slot": self.name, "text": self.text, "start": self.start, "end": self.end,
                "value": json.dumps(self.value, sort_keys=True, ensure_ascii=False), "value_key": self.value_key}


@dataclass
class NluItem:
    """One utterance with its intents (multi-label, order kept) and slots (sorted by position).

    ``problem`` is ``(reason, detail)`` when the item must become a reject (a conflicting
    duplicate, a span that does not match its text...).
    """

    id: str
    domain: str
    fold: int
    index: int
    text: str
    intents: list[str]
    slots: list[Slot]
    problem: tuple[str, str] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (for rejects): the source record plus where it came from."""
        return {"id": self.id, "domain": self.domain, "fold": self.fold, "index": self.index, "record": self.raw}

    def annotation_key(self) -> str:
        """The labels compared between duplicates: intent *set* (order is not meaningful) and slots."""
        return json.dumps({"intents": sorted(self.intents), "slots": self.raw.get("slots") or {}},
                          sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------------- reading
def fold_files(root: str | Path, domain: str) -> list[tuple[int, Path]]:
    """``(fold number, path)`` of ``root/domain/foldN.json``, by fold number; InputError when none."""
    folder = Path(root) / domain
    if not folder.is_dir():
        raise InputError(f"no folder {domain!r} in the NLU source", source=Path(root).name,
                         hint=f"give a folder holding {domain}/fold0.json, fold1.json, ... or choose other domains")
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _FOLD_FILE.match(p.name)))
    if not files:
        raise InputError("no foldN.json files", source=f"{Path(root).name}/{domain}",
                         hint="name the files fold0.json, fold1.json, ... (a JSON array of utterances each)")
    return files


def read_fold(path: str | Path, domain: str, fold: int) -> list[NluItem]:
    """The utterances of one fold file. Structural errors are InputErrors naming file and record."""
    path = Path(path)
    shown = f"{domain}/{path.name}"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 ({err.reason} at byte {err.start})", source=shown, hint="save it as UTF-8") from None
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON: {err.msg}", source=shown, line=err.lineno,
                         hint="each fold file is one JSON array of utterance objects") from None
    if not isinstance(records, list):
        raise InputError(f"holds a JSON {type(records).__name__}, not an array", source=shown,
                         hint="each fold file is one JSON array of utterance objects")
    return [parse_record(rec, domain=domain, fold=fold, index=i, source=shown) for i, rec in enumerate(records)]


def parse_record(rec: Any, *, domain: str, fold: int, index: int, source: str = "") -> NluItem:
    """One NLU++ record as an :class:`NluItem`.

    A record that is not an object or has no text string is an InputError (nothing to translate);
    label problems (a span that does not match its text, out of range, no value) make the item's
    ``problem``, so the builder can record it as a reject with the reason.
    """
    item_id = f"{domain}-fold{fold}-{index:04d}"
    if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
        raise InputError(f"record {index} is not an object with a 'text' string", source=source or None,
                         example_id=item_id, hint='each utterance is {"text": ..., "intents": [...], "slots": {...}}')
    intents = rec.get("intents") or []
    slots_in = rec.get("slots") or {}
    item = NluItem(id=item_id, domain=domain, fold=fold, index=index, text=rec["text"], intents=[], slots=[], raw=rec)
    if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
        item.problem = ("bad-intents", f"'intents' must be a list of strings, got {intents!r:.80}")
        return item
    item.intents = list(intents)
    if not isinstance(slots_in, dict):
        item.problem = ("bad-slots", f"'slots' must be an object keyed by slot name, got {type(slots_in).__name__}")
        return item
    for name, slot in slots_in.items():
        parsed = _parse_slot(name, slot, rec["text"])
        if isinstance(parsed, tuple):
            item.problem = parsed
            return item
        item.slots.append(parsed)
    item.slots.sort(key=lambda s: (s.start, s.end, s.name))
    return item


def _parse_slot(name: str, slot: Any, text: str) -> Slot | tuple[str, str]:
    """A :class:`Slot`, or ``(reason, detail)`` when the annotation cannot be trusted."""
    if not isinstance(slot, dict):
        return "bad-slot", f"slot {name!r} is not an object"
    span = slot.get("span")
    if (not isinstance(span, list) or len(span) != 2 or not all(isinstance(x, int) and not isinstance(x, bool)
                                                                   for x in span)):
        return "bad-slot", f"slot {name!r}: 'span' must be [start, end] integers, got {span!r:.60}"
    start, end = span
    if not 0 <= start < end <= len(text):
        return "slot-span-out-of-range", f"slot {name!r} span [{start}, {end}) outside a text of {len(text)} characters"
    surface = slot.get("text", text[start:end])
    if text[start:end] != surface:
        return "slot-span-mismatch", (f"slot {name!r} span [{start}, {end}) covers {text[start:end]!r}, "
                                      f"its text says {surface!r}")
    key = "values" if "values" in slot else "value"  # period slots use 'values' (plural) instead
    if key not in slot:
        return "slot-without-value", f"slot {name!r} has neither 'value' nor 'values'"
    return Slot(name=name, text=surface, start=start, end=end, value=slot[key], value_key=key)


def read_domain(root: str | Path, domain: str, *, folds: Sequence[int] = (),
                duplicates: DuplicatePolicy = "reject") -> list[NluItem]:
    """All utterances of a domain (folds in order; ``folds`` selects some), conflicts marked."""
    items = [item for fold, path in fold_files(root, domain) if not folds or fold in folds
             for item in read_fold(path, domain, fold)]
    mark_conflicting_duplicates(items, duplicates)
    return items


def mark_conflicting_duplicates(items: Sequence[NluItem], policy: DuplicatePolicy = "reject") -> dict[str, int]:
    """Mark utterances whose copies (same domain and text) carry different labels.

    ``reject`` marks every copy (``conflicting-duplicate``): no copy is known to be right;
    ``keep-first`` keeps the first copy (lowest fold, then position) and marks the others. Copies
    that agree are all kept (the folds are the paper's experimental units, so a text may recur
    across folds). Returns counts for the card.
    """
    by_text: dict[tuple[str, str], list[NluItem]] = defaultdict(list)
    for item in items:
        if item.problem is None:
            by_text[(item.domain, item.text)].append(item)
    stats = {"duplicate_texts": 0, "conflicting_texts": 0, "conflicting_items_marked": 0}
    for copies in by_text.values():
        if len(copies) < 2:
            continue
        stats["duplicate_texts"] += 1
        variants = {c.annotation_key() for c in copies}
        if len(variants) < 2:
            continue
        stats["conflicting_texts"] += 1
        ids = [c.id for c in copies]
        for n, copy in enumerate(copies):
            if policy == "keep-first" and n == 0:
                continue
            others = ", ".join(i for i in ids if i != copy.id)
            why = "kept the first copy " + ids[0] if policy == "keep-first" else "no copy kept"
            copy.problem = ("conflicting-duplicate", f"same text as {others} with different labels ({why})")
            stats["conflicting_items_marked"] += 1
    return stats


def read_ontology(path: str | Path) -> dict[str, Any]:
    """``ontology.json``: ``{"intents": {name: {description, domain}}, "slots": {...}}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read the ontology: {err}", source=path.name,
                         hint='give {"intents": {...}, "slots": {...}} as UTF-8 JSON') from None
    if not isinstance(data, dict) or not isinstance(data.get("intents"), dict) or not isinstance(data.get("slots"), dict):
        raise InputError("the ontology needs 'intents' and 'slots' objects", source=path.name)
    return data


def domain_labels(ontology: dict[str, Any], kind: str, domain: str) -> list[str]:
    """Intent or slot names (``kind``) of ``domain``: its own and the ``general`` ones, sorted."""
    return sorted(name for name, info in ontology[kind].items()
                  if {"general", domain} & set((info or {}).get("domain") or ["general"]))


# ---------------------------------------------------------------------- projection
@dataclass
class ProjectedSlot:
    """A slot on the target side: character span into the target text, or why it is missing."""

    slot: Slot
    text: str | None = None
    start: int | None = None
    end: int | None = None
    score: float | None = None
    reason: str | None = None  # set when unprojected
    value_translation: str | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def projected(self) -> bool:
        return self.start is not None


@dataclass
class SlotProjection:
    """The projection of one utterance: target text, one :class:`ProjectedSlot` per source slot."""

    item_id: str
    target_text: str
    slots: list[ProjectedSlot]
    rejected: str | None = None
    detail: str = ""


def cut_tokens(text: str, tokens: Iterable[Token], cuts: Iterable[int]) -> list[Token]:
    """``tokens`` split at every character offset in ``cuts`` that falls inside a token.

    A slot edge inside a word (``5|ish``) then becomes a token edge, so every character span can
    be expressed on tokens; the pieces keep exact offsets into ``text``.
    """
    cut_set = sorted(set(cuts))
    out: list[Token] = []
    for tok in tokens:
        edges = [tok.start] + [c for c in cut_set if tok.start < c < tok.end] + [tok.end]
        for a, b in zip(edges, edges[1:]):
            piece = text[a:b]
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece.rstrip())
            if trail > lead:  # a cut next to a space must not leave a blank token
                out.append(Token(piece[lead:trail], a + lead, a + trail))
    return out


def slot_layers(slots: Sequence[Slot]) -> list[list[int]]:
    """Slot indices in layers of non-overlapping spans (layer 0 first): nested slots go to later layers."""
    layers: list[list[int]] = []
    for i in sorted(range(len(slots)), key=lambda k: (slots[k].start, -slots[k].end)):
        s = slots[i]
        for layer in layers:
            if all(s.end <= slots[j].start or slots[j].end <= s.start for j in layer):
                layer.append(i)
                break
        else:
            layers.append([i])
    return layers


def source_example(item: NluItem, tokenizer: Any, slot_indices: Sequence[int] | None = None) -> Example:
    """The utterance as an :class:`Example` whose spans are the slots (labels = slot names).

    Tokens come from ``tokenizer`` and are cut at every slot edge, so the spans are exact.
    ``slot_indices`` picks the slots (one layer of non-overlapping ones); the default is all.
    """
    tokens = cut_tokens(item.text, tokenizer.tokenize(item.text), [e for s in item.slots for e in (s.start, s.end)])
    chosen = range(len(item.slots)) if slot_indices is None else slot_indices
    return Example.from_text(item.id, item.text, tokens, [(item.slots[i].start, item.slots[i].end, item.slots[i].name)
                                                          for i in chosen])


def project_slots(items: Sequence[NluItem], targets: Sequence[str] | None, projector: Any, *, src_lang: str,
                  tgt_lang: str, tokenizer: Any) -> list[SlotProjection]:
    """Project the slots of ``items`` onto their translations with ``projector`` (any registered one).

    ``targets`` are the translations (``None`` for a projector that translates itself, such as
    ``markers``; the target texts then come from its first pass). Nested slots are projected in
    later passes onto the same target texts; a projector that cannot take given targets leaves
    them unprojected (``overlapping_spans``).
    """
    layers = [slot_layers(it.slots) for it in items]
    results = [SlotProjection(it.id, t if targets is not None else "", [ProjectedSlot(s) for s in it.slots])
               for it, t in zip(items, targets if targets is not None else [""] * len(items))]
    depth = max((len(layer) for layer in layers), default=0)
    for level in range(max(depth, 1)):
        todo = [k for k in range(len(items)) if level == 0 or len(layers[k]) > level]
        if not todo:
            break
        picks = {k: (layers[k][level] if len(layers[k]) > level else []) for k in todo}
        sources = [source_example(items[k], tokenizer, picks[k]) for k in todo]
        given = None if targets is None and level == 0 else [results[k].target_text for k in todo]
        if level > 0 and getattr(projector, "name", "") == "markers":
            for k in todo:  # markers make their own translation: a nested span cannot be marked in it
                for i in picks[k]:
                    results[k].slots[i].reason = "overlapping_spans"
            continue
        projections = projector.project(sources, given, src_lang=src_lang, tgt_lang=tgt_lang)
        for k, proj in zip(todo, projections):
            _take_projection(results[k], proj, picks[k], level)
    return results


def _take_projection(result: SlotProjection, proj: Any, picks: Sequence[int], level: int) -> None:
    """Copy one projector result (spans of one layer) into ``result``'s slots."""
    if level == 0:
        result.target_text = proj.target.text
        if proj.rejected:
            result.rejected = str(proj.rejected)
            result.detail = str(proj.qc.get("reject_detail", "")) if isinstance(proj.qc, dict) else ""
    for src_idx, slot_idx in enumerate(picks):
        out = result.slots[slot_idx]
        tgt_idx = proj.mapping.get(src_idx)
        if tgt_idx is None:
            miss = next((u for u in proj.unprojected if (u.span.start, u.span.end) ==
                         (out.slot.start, out.slot.end)), None)
            out.reason = miss.reason if miss is not None else (str(proj.rejected) if proj.rejected else "unprojected")
            continue
        span: Span = proj.target.spans[tgt_idx]
        out.start, out.end, out.score = span.start, span.end, span.score
        out.text = proj.target.text[span.start:span.end]


# ---------------------------------------------------------------------- slot value checks
def normalise(text: str) -> str:
    """Case-folded NFC text with runs of whitespace as one space (for value matching)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def check_slot_values(result: SlotProjection, value_translations: dict[str, str]) -> dict[str, int]:
    """Flag each projected slot against its slot text translated on its own (``value_translations``
    maps the source slot text to that translation).

    Flags per slot: ``unprojected``; ``value-not-found`` (the value's translation is not in the
    target text); ``projection-disagrees`` (the projected span is neither the translation nor
    contains it nor is contained in it). Returns the flag counts of this item.
    """
    counts: dict[str, int] = {}
    target = normalise(result.target_text)
    for ps in result.slots:
        translated = value_translations.get(ps.slot.text)
        ps.value_translation = translated
        flags: list[str] = []
        if not ps.projected:
            flags.append("unprojected")
        if translated is not None and translated.strip():
            want = normalise(translated)
            if want not in target:
                flags.append("value-not-found")
            if ps.projected:
                got = normalise(ps.text or "")
                if not got or not (got == want or want in got or got in want):
                    flags.append("projection-disagrees")
        ps.flags = flags
        for f in flags:
            counts[f] = counts.get(f, 0) + 1
    return counts


def iter_values(items: Iterable[NluItem]) -> Iterator[str]:
    """The distinct slot texts of ``items`` in first-seen order (what to translate on its own)."""
    seen: set[str] = set()
    for item in items:
        for slot in item.slots:
            if slot.text not in seen:
                seen.add(slot.text)
                yield slot.text


__all__ = ["DuplicatePolicy", "NluItem", "PERIOD_SLOTS", "ProjectedSlot", "Slot", "SlotProjection",
           "check_slot_values", "cut_tokens", "domain_labels", "fold_files", "iter_values",
           "mark_conflicting_duplicates", "normalise", "parse_record", "project_slots", "read_domain", "read_fold",
           "read_ontology", "slot_layers", "source_example"]
