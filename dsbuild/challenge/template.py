"""Templates with typed slots, agreement and constraints, and the per-language bank that holds them.

A template file (YAML) adds templates (and may add lexicons) for one language::

    language: es
    templates:
      - id: ln_swap_arguments
        group: lexical_overlap          # HANS heuristic or fragment category
        subcase: swap_arguments
        label: non-entailment
        test_type: MFT                  # CheckList test type (default MFT)
        requires: [overlap]             # automated property checks (see dsbuild.challenge.quality)
        slots:
          a: {lexicon: person}
          b: {lexicon: person, distinct: [a]}          # different lemma from a
          v: {lexicon: verb_transitive}
          adj: {lexicon: adjective, agree: {gender: a, number: a}}   # filler agrees with a
          adv: {lexicon: adverb, where: {veridical: false}}          # filler has this feature
        constraints: ["k2.value > k1.value"]          # numeric or string comparisons
        premise: "{det|a} {a} {v.past|a} {obj|b} {b}."
        hypothesis: "{det|b} {b} {v.past|b} {obj|a} {a}."

Placeholders: ``{slot}`` (the filler's text), ``{slot.form}`` (a fixed form),
``{slot.form|ctrl}`` (an inflected form chosen by slot ``ctrl``'s features),
``{lexicon|ctrl}`` (a function word from ``lexicon`` agreeing with ``ctrl``, e.g. an article).
Sentences are capitalised after generation. :func:`load_banks` checks every reference against the
lexicons when the files are read, so a missing lexicon, slot, form or feature fails before
generation with the file, template id and a fix.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsbuild.challenge.checklist import TEST_TYPES
from dsbuild.challenge.lexicon import Lexicon, norm_value, parse_feature_inventory, parse_lexicons, read_yaml
from dsbuild.errors import InputError

PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?(?:\|([A-Za-z_]\w*))?\}")
CONSTRAINT = re.compile(r"^\s*(\w+)\.(\w+)\s*(==|!=|<=|>=|<|>)\s*(?:(\w+)\.(\w+)|(\S+))\s*$")
OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
TEMPLATE_KEYS = {"id", "group", "subcase", "label", "test_type", "slots", "constraints", "premise", "hypothesis",
                 "requires", "meta", "description"}
SLOT_KEYS = {"lexicon", "where", "agree", "distinct"}
REQUIREMENTS = ("overlap", "contiguous")


@dataclass
class SlotSpec:
    """A slot: which lexicon fills it, required feature values, agreement and distinctness."""

    name: str
    lexicon: str
    where: dict[str, list[str]] = field(default_factory=dict)
    agree: dict[str, str] = field(default_factory=dict)  # feature -> controlling slot
    distinct: list[str] = field(default_factory=list)


@dataclass
class Constraint:
    """``left.feature OP right.feature`` or ``left.feature OP literal``; numbers compare as numbers."""

    text: str
    left: tuple[str, str]
    op: str
    right: tuple[str, str] | None
    literal: str | None

    def holds(self, fill: dict[str, Any]) -> bool:
        a = _feature_or_text(fill[self.left[0]], self.left[1])
        b = _feature_or_text(fill[self.right[0]], self.right[1]) if self.right else self.literal
        try:
            return OPS[self.op](float(a), float(b))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return OPS[self.op](a, b)


def _feature_or_text(entry: Any, name: str) -> str:
    if name == "lemma":
        return entry.lemma
    if name == "text":
        return entry.text
    return entry.features[name]


@dataclass
class Template:
    """A premise/hypothesis template with a gold label, a group (heuristic/category) and slots."""

    id: str
    language: str
    group: str
    subcase: str
    label: str
    premise: str
    hypothesis: str
    slots: dict[str, SlotSpec]
    constraints: list[Constraint] = field(default_factory=list)
    test_type: str = "MFT"
    requires: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = ""

    def placeholders(self) -> list[tuple[str, str | None, str | None]]:
        return [m.groups() for text in (self.premise, self.hypothesis) for m in PLACEHOLDER.finditer(text)]  # type: ignore[misc]

    def fill_order(self) -> list[str]:
        """Slots ordered so that controllers (agree targets, distinct partners) come first."""
        order: list[str] = []
        pending = dict(self.slots)
        while pending:
            ready = [n for n, s in pending.items()
                     if all(c in order for c in list(s.agree.values()) + s.distinct if c != n)]
            if not ready:
                raise InputError(f"template {self.id!r}: slots {sorted(pending)} depend on each other in a cycle",
                                 source=self.source, hint="agreement and distinct references must not form a cycle")
            for n in sorted(ready, key=list(self.slots).index):
                order.append(n)
                del pending[n]
        return order


@dataclass
class Bank:
    """One language's feature inventory, lexicons and templates (merged from several files)."""

    language: str
    inventory: dict[str, list[str]] = field(default_factory=dict)
    lexicons: dict[str, Lexicon] = field(default_factory=dict)
    templates: list[Template] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def load_banks(paths: Iterable[str | Path], *, labels: Iterable[str] | None = None) -> dict[str, Bank]:
    """Read lexicon/template YAML files into one :class:`Bank` per language and validate them.

    Files are merged in order: later files may add lexicons, entries and templates. ``labels``
    restricts template labels (e.g. the HANS two-way labels).
    """
    banks: dict[str, Bank] = {}
    raw_templates: list[tuple[Path, str, Any]] = []
    for p in paths:
        path = Path(p)
        data = read_yaml(path)
        unknown = set(data) - {"language", "features", "lexicons", "templates", "description"}
        if unknown:
            raise InputError(f"unknown top-level key(s) {sorted(unknown)}", source=path,
                             hint="a file has 'language', 'features', 'lexicons' and/or 'templates'")
        lang = str(data["language"])
        bank = banks.setdefault(lang, Bank(lang))
        bank.files.append(str(path))
        for feat, values in parse_feature_inventory(data.get("features"), path).items():
            known = bank.inventory.setdefault(feat, [])
            known.extend(v for v in values if v not in known)
        parse_lexicons(data.get("lexicons"), lang, bank.inventory, path, bank.lexicons)
        tpls = data.get("templates") or []
        if not isinstance(tpls, list):
            raise InputError("'templates' must be a list", source=path)
        raw_templates.extend((path, lang, t) for t in tpls)
    allowed = set(labels) if labels is not None else None
    seen: dict[tuple[str, str], str] = {}
    for path, lang, raw in raw_templates:
        tpl = _parse_template(raw, lang, path, banks[lang], allowed)
        if (lang, tpl.id) in seen:
            raise InputError(f"template id {tpl.id!r} is defined twice (also in {seen[(lang, tpl.id)]})", source=path,
                             hint="give every template a unique id")
        seen[(lang, tpl.id)] = str(path)
        banks[lang].templates.append(tpl)
    return banks


def _parse_template(raw: Any, lang: str, path: Path, bank: Bank, labels: set[str] | None) -> Template:
    if not isinstance(raw, dict) or "id" not in raw:
        raise InputError("a template needs an 'id'", source=path, hint="each item under 'templates:' is a mapping with id, label, slots, premise, hypothesis")
    tid = str(raw["id"])
    where = f"template {tid!r}"

    def fail(msg: str, hint: str | None = None) -> InputError:
        return InputError(f"{where}: {msg}", source=path, hint=hint)

    unknown = set(raw) - TEMPLATE_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}", f"allowed keys: {sorted(TEMPLATE_KEYS)}")
    for key in ("label", "premise", "hypothesis", "group"):
        if not str(raw.get(key, "")).strip():
            raise fail(f"missing {key!r}")
    label = str(raw["label"])
    if labels is not None and label not in labels:
        raise fail(f"label {label!r} is not one of {sorted(labels)}", "use one of the builder's labels")
    test_type = str(raw.get("test_type", "MFT"))
    if test_type not in TEST_TYPES:
        raise fail(f"test_type {test_type!r} is not one of {list(TEST_TYPES)}")
    requires = [str(r) for r in (raw.get("requires") or [])]
    for r in requires:
        if r not in REQUIREMENTS:
            raise fail(f"unknown requirement {r!r}", f"use one of {list(REQUIREMENTS)}")
    slots: dict[str, SlotSpec] = {}
    for name, spec in (raw.get("slots") or {}).items():
        if isinstance(spec, str):
            spec = {"lexicon": spec}
        if not isinstance(spec, dict) or "lexicon" not in spec:
            raise fail(f"slot {name!r} needs a 'lexicon'", "write slots as name: {lexicon: LEXICON}")
        bad = set(spec) - SLOT_KEYS
        if bad:
            raise fail(f"slot {name!r}: unknown key(s) {sorted(bad)}", f"allowed: {sorted(SLOT_KEYS)}")
        lex_name = str(spec["lexicon"])
        if lex_name not in bank.lexicons:
            raise fail(f"slot {name!r} names lexicon {lex_name!r}, which is not defined for language {lang!r} "
                       f"(defined: {sorted(bank.lexicons)})", "define the lexicon in a lexicon file or fix the name")
        lex = bank.lexicons[lex_name]
        where_spec = {}
        for feat, val in (spec.get("where") or {}).items():
            if feat not in lex.features:
                raise fail(f"slot {name!r}: 'where' names feature {feat!r}, but lexicon {lex_name!r} has features {lex.features}",
                           "use a feature the lexicon declares, or add it to the lexicon")
            vals = [norm_value(v) for v in (val if isinstance(val, list) else [val])]
            for v in vals:
                if v not in bank.inventory[feat]:
                    raise fail(f"slot {name!r}: {feat}={v!r} is not one of {bank.inventory[feat]}")
            where_spec[str(feat)] = vals
        slots[str(name)] = SlotSpec(str(name), lex_name, where_spec, {str(k): str(v) for k, v in (spec.get("agree") or {}).items()},
                                    [str(d) for d in (spec.get("distinct") or [])])
    for s in slots.values():
        lex = bank.lexicons[s.lexicon]
        for feat, ctrl in s.agree.items():
            if ctrl not in slots:
                raise fail(f"slot {s.name!r} agrees with unknown slot {ctrl!r}", f"slots: {sorted(slots)}")
            if feat not in lex.features or feat not in bank.lexicons[slots[ctrl].lexicon].features:
                raise fail(f"slot {s.name!r} agrees on {feat!r} with {ctrl!r}, but lexicon {s.lexicon!r} or "
                           f"{slots[ctrl].lexicon!r} lacks that feature", "agree only on features both lexicons declare")
        for d in s.distinct:
            if d not in slots:
                raise fail(f"slot {s.name!r} is distinct from unknown slot {d!r}", f"slots: {sorted(slots)}")
        if not lex.matching(s.where):
            raise fail(f"slot {s.name!r}: no entry of lexicon {s.lexicon!r} has {s.where}", "add such entries or relax 'where'")
    constraints = []
    for text in raw.get("constraints") or []:
        m = CONSTRAINT.match(str(text))
        if not m:
            raise fail(f"constraint {text!r} is not 'slot.feature OP slot.feature' or 'slot.feature OP value'",
                       "OP is one of == != < <= > >=, e.g. 'k2.value > k1.value'")
        ls, lf, op, rs, rf, lit = m.groups()
        for s_name, f_name in ((ls, lf), (rs, rf)):
            if s_name is None:
                continue
            if s_name not in slots:
                raise fail(f"constraint {text!r} names unknown slot {s_name!r}")
            if f_name not in ("text", "lemma") and f_name not in bank.lexicons[slots[s_name].lexicon].features:
                raise fail(f"constraint {text!r}: lexicon {slots[s_name].lexicon!r} has no feature {f_name!r}")
        constraints.append(Constraint(str(text), (ls, lf), op, (rs, rf) if rs else None, lit))
    tpl = Template(id=tid, language=lang, group=str(raw["group"]), subcase=str(raw.get("subcase", tid)), label=label,
                   premise=str(raw["premise"]), hypothesis=str(raw["hypothesis"]), slots=slots, constraints=constraints,
                   test_type=test_type, requires=requires, meta=dict(raw.get("meta") or {}),
                   description=str(raw.get("description", "")), source=str(path))
    _check_placeholders(tpl, bank, fail)
    tpl.fill_order()  # raises on cycles
    return tpl


def _check_placeholders(tpl: Template, bank: Bank, fail: Any) -> None:
    """Every placeholder names a slot or lexicon, a declared form, and a controller with the features needed."""
    for text in (tpl.premise, tpl.hypothesis):
        leftover = PLACEHOLDER.sub("", text)
        if "{" in leftover or "}" in leftover:
            raise fail(f"malformed placeholder in {text!r}", "use {slot}, {slot.form}, {slot.form|ctrl} or {lexicon|ctrl}")
    for name, form, ctrl in tpl.placeholders():
        if ctrl is not None and ctrl not in tpl.slots:
            raise fail(f"placeholder {{{name}{'.' + form if form else ''}|{ctrl}}} names unknown controller slot {ctrl!r}",
                       f"slots: {sorted(tpl.slots)}")
        if name in tpl.slots:
            lex = bank.lexicons[tpl.slots[name].lexicon]
            if form is None:
                continue
            if form not in lex.forms and form != "text":
                raise fail(f"placeholder {{{name}.{form}}}: lexicon {lex.name!r} has no form {form!r} "
                           f"(forms: {sorted(lex.forms)})", "declare the form in the lexicon or fix the name")
            needs = lex.forms.get(form, [])
            source_lex = bank.lexicons[tpl.slots[ctrl].lexicon] if ctrl else lex
            missing = [f for f in needs if f not in source_lex.features]
            if missing:
                raise fail(f"placeholder {{{name}.{form}{'|' + ctrl if ctrl else ''}}}: form {form!r} inflects for {needs}, "
                           f"but lexicon {source_lex.name!r} lacks feature(s) {missing}",
                           "name a controller slot with those features: {slot.form|controller}")
            # every cell of an inflected form exists (checked when the lexicon was read), so any
            # controller with the needed features selects a form
        elif name in bank.lexicons:
            if ctrl is None:
                raise fail(f"placeholder {{{name}}} names a lexicon, not a slot",
                           f"declare a slot for it under 'slots:' or make it agree with a slot: {{{name}|SLOT}}")
            if form is not None:
                raise fail(f"placeholder {{{name}.{form}|{ctrl}}}: forms of an agreeing function word are not supported",
                           "declare a slot for it")
            fw = bank.lexicons[name]
            shared = [f for f in fw.features if f in bank.lexicons[tpl.slots[ctrl].lexicon].features]
            if not shared:
                raise fail(f"placeholder {{{name}|{ctrl}}}: lexicon {name!r} shares no feature with slot {ctrl!r}'s lexicon",
                           "a function word agrees on features both lexicons declare")
            _check_agreement_coverage(tpl, bank, fail, ctrl, shared,
                                      lambda key, fw=fw, shared=shared: any(
                                          tuple(e.features[f] for f in shared) == key for e in fw.entries), name)
        else:
            raise fail(f"placeholder {{{name}}} names neither a slot ({sorted(tpl.slots)}) nor a lexicon",
                       "add the slot under 'slots:' or fix the name")


def _check_agreement_coverage(tpl: Template, bank: Bank, fail: Any, ctrl: str, feats: list[str], covered: Any,
                              what: str) -> None:
    """Every feature combination the controller can take must have an agreeing form."""
    spec = tpl.slots[ctrl]
    for entry in bank.lexicons[spec.lexicon].matching(spec.where):
        key = tuple(entry.features[f] for f in feats)
        if not covered(key):
            raise fail(f"no entry of lexicon {what!r} agrees with {ctrl!r}={entry.text!r} on "
                       f"{dict(zip(feats, key))}", f"add an entry with {dict(zip(feats, key))} to {what!r}")
