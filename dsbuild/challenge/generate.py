"""Seeded template filling: sample slot fillers, render premise/hypothesis, check, deduplicate.

Each template draws from its own ``random.Random`` seeded by ``(seed, language, template id)``,
so adding a template never changes another template's rows, and the same seed always gives the
same output. Every produced pair is checked (no unfilled placeholder, agreement features equal,
required overlap properties) and deduplicated on (premise, hypothesis) across all templates of a
language; a pair failing a check or repeating an earlier one becomes a :class:`Candidate` with a
``reject`` reason, so a builder can record it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dsbuild.challenge.lexicon import Entry
from dsbuild.challenge.quality import contiguous, normalize_pair, overlap_rate
from dsbuild.challenge.template import PLACEHOLDER, Bank, Template

UNFILLED = re.compile(r"\{[^{}]*\}|\s{2,}|\s[.,;:!?]")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([¿¡\"'«(]*)(\w)")


@dataclass
class Filled:
    """One filling of a template: the slot fillers and the agreement checks made while rendering."""

    template: Template
    fill: dict[str, Entry]
    premise: str = ""
    hypothesis: str = ""
    agreement_checks: int = 0
    agreement_failures: list[str] = field(default_factory=list)

    def fillers(self) -> list[dict[str, str]]:
        """The slot fillers as row values (slot, lexicon, text, lemma, features as ``k=v;...``)."""
        return [{"slot": name, "lexicon": self.template.slots[name].lexicon, "text": e.text, "lemma": e.lemma,
                 "features": ";".join(f"{k}={v}" for k, v in sorted(e.features.items()))}
                for name, e in self.fill.items()]


@dataclass
class Candidate:
    """A generated pair, kept (``reject is None``) or rejected with a reason code and detail."""

    filled: Filled
    index: int  # per-template running index of kept rows (or of attempts, for rejects)
    reject: str | None = None
    detail: str = ""

    @property
    def id(self) -> str:
        t = self.filled.template
        return f"{t.language}-{t.id}-{self.index:04d}" + ("" if self.reject is None else f"-{self.reject}")


def sample_fill(tpl: Template, bank: Bank, rng: random.Random) -> dict[str, Entry] | None:
    """Draw one filler per slot honouring where/agree/distinct; ``None`` if a slot has no candidate."""
    fill: dict[str, Entry] = {}
    for name in tpl.fill_order():
        spec = tpl.slots[name]
        cands = bank.lexicons[spec.lexicon].matching(spec.where)
        cands = [e for e in cands
                 if all(e.features.get(f) == fill[c].features.get(f) for f, c in spec.agree.items())
                 and all(e.lemma != fill[d].lemma for d in spec.distinct)]
        if not cands:
            return None
        fill[name] = rng.choice(cands)
    if not all(c.holds(fill) for c in tpl.constraints):
        return None
    return fill


def render(tpl: Template, bank: Bank, fill: dict[str, Entry]) -> Filled:
    """Render premise and hypothesis, resolving inflected forms and agreeing function words."""
    out = Filled(tpl, fill)
    for f, spec in ((f, s) for s in tpl.slots.values() for f in s.agree):  # slot-level agreement
        out.agreement_checks += 1
        ctrl = spec.agree[f]
        if fill[spec.name].features.get(f) != fill[ctrl].features.get(f):
            out.agreement_failures.append(f"{spec.name}.{f} != {ctrl}.{f}")

    def sub(m: re.Match[str]) -> str:
        name, form, ctrl = m.groups()
        if name in tpl.slots:
            entry = fill[name]
            if form is None:
                return entry.text
            feats = bank.lexicons[tpl.slots[name].lexicon].forms.get(form, [])
            if not feats:
                return entry.form(form)
            source = fill[ctrl] if ctrl else entry
            out.agreement_checks += 1
            key = ".".join(source.features[f] for f in feats)
            value = entry.forms.get(form)
            if not isinstance(value, dict) or key not in value:
                out.agreement_failures.append(f"{name}.{form}[{key}]")
                return m.group(0)
            return value[key]
        # an agreeing function word from lexicon ``name``
        lex = bank.lexicons[name]
        controller = fill[ctrl]
        shared = [f for f in lex.features if f in controller.features]
        out.agreement_checks += 1
        for e in lex.entries:
            if all(e.features[f] == controller.features[f] for f in shared):
                return e.text
        out.agreement_failures.append(f"{name}|{ctrl}")
        return m.group(0)

    out.premise = capitalize_sentences(PLACEHOLDER.sub(sub, tpl.premise))
    out.hypothesis = capitalize_sentences(PLACEHOLDER.sub(sub, tpl.hypothesis))
    return out


def capitalize_sentences(text: str) -> str:
    """Upper-case the first letter of each sentence (no effect on scripts without case)."""
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2) + m.group(3).upper(), text.strip())


def check(filled: Filled) -> tuple[str, str] | None:
    """The first failed automated check as ``(reason, detail)``, or ``None``."""
    for side in (filled.premise, filled.hypothesis):
        if not side.strip():
            return "empty-sentence", "a side rendered empty"
        m = UNFILLED.search(side)
        if m:
            return "unfilled-slot", f"{m.group(0)!r} left in {side!r}"
    if filled.agreement_failures:
        return "agreement-mismatch", ", ".join(filled.agreement_failures)
    if normalize_pair(filled.premise, "")[0] == normalize_pair(filled.hypothesis, "")[0]:
        return "identical-sides", "premise and hypothesis are the same"
    lang = filled.template.language
    if "contiguous" in filled.template.requires and not contiguous(filled.premise, filled.hypothesis, lang):
        return "property-violated", "hypothesis is not a contiguous part of the premise"
    if "overlap" in filled.template.requires and overlap_rate(filled.premise, filled.hypothesis, lang) < 1.0:
        return "property-violated", "not every hypothesis word occurs in the premise"
    return None


def generate(bank: Bank, *, per_template: int, seed: int, max_attempts_factor: int = 30,
             seen: dict[tuple[str, str], tuple[str, str]] | None = None,
             stats: dict[str, dict[str, int]] | None = None) -> Iterator[Candidate]:
    """Yield up to ``per_template`` kept candidates per template of ``bank``, plus rejected ones.

    ``seen`` maps normalised (premise, hypothesis) to (template id, label) of the first row that
    produced it; pass one dict to share deduplication across calls. ``stats`` (if given) receives
    per template the number of draws, draws that broke a constraint (resampled) and draws that
    repeated a pair the same template already produced (sampling collisions): those are not
    outputs, so they are counted here rather than rejected.
    """
    seen = {} if seen is None else seen
    for tpl in bank.templates:
        rng = random.Random(f"{seed}:{bank.language}:{tpl.id}")
        kept = attempts = rejected = 0
        st = {"draws": 0, "resampled": 0, "collisions": 0}
        if stats is not None:
            stats[tpl.id] = st
        while kept < per_template and attempts < per_template * max_attempts_factor:
            attempts += 1
            st["draws"] += 1
            fill = sample_fill(tpl, bank, rng)
            if fill is None:
                st["resampled"] += 1
                continue  # constraint not met: resample (not an output)
            filled = render(tpl, bank, fill)
            failed = check(filled)
            key = normalize_pair(filled.premise, filled.hypothesis)
            if failed is None and key in seen:
                first_tid, first_label = seen[key]
                if first_tid == tpl.id:
                    st["collisions"] += 1
                    continue  # the same draw again: a sampling collision, not a new pair
                reason = "label-conflict" if first_label != tpl.label else "duplicate-pair"
                failed = (reason, f"same pair as template {first_tid!r} (label {first_label})")
            if failed is not None:
                rejected += 1
                yield Candidate(filled, rejected, failed[0], failed[1])
                continue
            seen[key] = (tpl.id, tpl.label)
            yield Candidate(filled, kept)
            kept += 1


def template_space(tpl: Template, bank: Bank) -> int:
    """An upper bound on distinct fillings (product of candidate counts), for the card."""
    n = 1
    for spec in tpl.slots.values():
        n *= max(1, len(bank.lexicons[spec.lexicon].matching(spec.where)))
    return n


def describe_fill(filled: Filled) -> dict[str, Any]:
    """A JSON-safe description of a filling, for rejects."""
    return {"template_id": filled.template.id, "premise": filled.premise, "hypothesis": filled.hypothesis,
            "label": filled.template.label, "fillers": filled.fillers()}
