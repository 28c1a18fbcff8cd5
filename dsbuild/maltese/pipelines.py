"""Token-level processing pipelines routed by etymology (Micallef et al. 2024).

A pipeline is a routing table from the predicted etymology label to an *action* on the token:
``keep``, ``transliterate`` (Maltese -> Arabic script) or ``translate:mt-XX`` (word-by-word
lookup in a word translation table). Every input token gives exactly one output token (a
translation of several words stays in one slot), so token-level labels (POS, NER, heads) stay
aligned with the output.

Built-in pipelines::

    raw                                  every token kept
    transliterate_all                    every token transliterated
    translate_all_{en,it,ar}             every token translated, symbols kept
    transliterate_arabic                 Arabic-origin tokens transliterated, the rest kept
    transliterate_arabic_translate_{..}  Arabic-origin transliterated, Non-Arabic and
                                         Code-Switching translated, symbols and names kept

The word translation tables are word-level machine translations without context: translating
word by word gives one sense per word form (``ta'`` -> ``give``), so translated tokens are a
lexical signal, not a translation of the sentence.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsbuild.errors import ConfigError, InputError
from dsbuild.maltese import resources
from dsbuild.maltese.readers import MERGED_LABELS
from dsbuild.maltese.resources import nfc
from dsbuild.maltese.transliterate import Transliterator, default_transliterator

log = logging.getLogger(__name__)

TRANSLATION_TARGETS = ("en", "it", "ar")
KEEP, TRANSLITERATE = "keep", "transliterate"


def translate_action(target: str) -> str:
    if target not in TRANSLATION_TARGETS:
        raise ConfigError(f"no word translation table mt-{target}; use one of {', '.join(TRANSLATION_TARGETS)}")
    return f"translate:mt-{target}"


@dataclass
class ProcessedSentence:
    """The output of a pipeline for one sentence, one entry per input token."""

    tokens: list[str]
    actions: list[str]
    attach_next: list[bool]

    def text(self) -> str:
        """The processed tokens as text (closed-class ``+`` forms attach to the next token)."""
        parts: list[str] = []
        for tok, attach in zip(self.tokens, self.attach_next):
            parts.append(tok)
            parts.append("" if attach else " ")
        return "".join(parts[:-1])


@dataclass
class PipelineStats:
    """What a pipeline did: tokens per action, translations missing from a table, unmapped characters."""

    tokens: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    untranslated: Counter[str] = field(default_factory=Counter)  # table -> tokens not in it (kept)
    unmapped_chars: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "actions": dict(sorted(self.actions.items())),
                "untranslated_kept": dict(sorted(self.untranslated.items())),
                "transliteration_unmapped_chars": sum(self.unmapped_chars.values()),
                "transliteration_unmapped_by_char": dict(sorted(self.unmapped_chars.items(), key=lambda kv: (-kv[1], kv[0])))}


@dataclass
class Pipeline:
    """A routing table from etymology label to action.

    Args:
        name: pipeline name (the builder's config name).
        routing: label -> action, for every label in :data:`MERGED_LABELS`.
        description: one line for the card.
        transliterator: the transliterator to use (default: deterministic tables).
    """

    name: str
    routing: dict[str, str]
    description: str = ""
    transliterator: Transliterator | None = None

    def __post_init__(self) -> None:
        missing = set(MERGED_LABELS) - set(self.routing)
        if missing:
            raise ConfigError(f"pipeline {self.name!r}: no action for labels {sorted(missing)}")
        for label, action in self.routing.items():
            if action not in (KEEP, TRANSLITERATE) and not (
                    action.startswith("translate:") and action.split(":", 1)[1] in resources.TRANSLATION_TABLES):
                raise ConfigError(f"pipeline {self.name!r}: unknown action {action!r} for {label!r} "
                                  f"(use keep, transliterate or translate:mt-en/mt-it/mt-ar)")

    @property
    def needs_etymology(self) -> bool:
        """Whether the routing depends on the label at all."""
        return len(set(self.routing.values())) > 1

    def process(self, tokens: Sequence[str], labels: Sequence[str], stats: PipelineStats | None = None) -> ProcessedSentence:
        """Apply the routing to one sentence; ``labels`` are the predicted etymologies."""
        if len(tokens) != len(labels):
            raise InputError(f"{len(tokens)} tokens but {len(labels)} etymology labels",
                             hint="predict one etymology label per token")
        translit = self.transliterator or default_transliterator()
        out, actions, attach = [], [], []
        for tok, label in zip(tokens, labels):
            action = self.routing.get(label)
            if action is None:
                raise InputError(f"unknown etymology label {label!r}", hint="use one of " + ", ".join(MERGED_LABELS))
            tok = nfc(tok)
            glue = False
            if action == KEEP:
                new = tok
            elif action == TRANSLITERATE:
                t = translit.transliterate(tok)
                new, glue = t.text, t.attach_next
                if stats is not None:
                    stats.unmapped_chars.update(t.unmapped)
            else:
                table_name = action.split(":", 1)[1]
                table = resources.translation_table(table_name)
                new = table.get(tok) or table.get(tok.lower()) or ""
                if not new.strip():
                    new = tok  # not in the table: keep the token, and count it
                    if stats is not None:
                        stats.untranslated[table_name] += 1
            if not new:
                new = tok  # never emit an empty token: an empty slot would break downstream tokenisers
            out.append(new)
            actions.append(action)
            attach.append(glue)
            if stats is not None:
                stats.tokens += 1
                stats.actions[action] += 1
        return ProcessedSentence(out, actions, attach)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "routing": dict(self.routing)}


def _all(action: str) -> dict[str, str]:
    return {label: action for label in MERGED_LABELS}


def builtin_pipelines() -> dict[str, Pipeline]:
    """The pipelines compared by Micallef et al. (2024), by name."""
    p: dict[str, Pipeline] = {
        "raw": Pipeline("raw", _all(KEEP), "Tokens unchanged."),
        "transliterate_all": Pipeline("transliterate_all", _all(TRANSLITERATE), "Every token transliterated to Arabic script."),
        "transliterate_arabic": Pipeline(
            "transliterate_arabic", {**_all(KEEP), "Arabic": TRANSLITERATE},
            "Arabic-origin tokens transliterated to Arabic script; all others unchanged."),
    }
    for tgt in TRANSLATION_TARGETS:
        tr = translate_action(tgt)
        p[f"translate_all_{tgt}"] = Pipeline(
            f"translate_all_{tgt}", {**_all(tr), "Symbol": KEEP},
            f"Every word translated word by word with the mt-{tgt} table (symbols kept).")
        p[f"transliterate_arabic_translate_{tgt}"] = Pipeline(
            f"transliterate_arabic_translate_{tgt}",
            {"Arabic": TRANSLITERATE, "Non-Arabic": tr, "Code-Switching": tr, "Symbol": KEEP, "Name": KEEP},
            f"Arabic-origin tokens transliterated; Non-Arabic and Code-Switching tokens translated word by "
            f"word with the mt-{tgt} table; symbols and names unchanged.")
    return p


def get_pipeline(name: str, routing: Mapping[str, str] | None = None) -> Pipeline:
    """A built-in pipeline by name, or a custom one when ``routing`` is given."""
    if routing is not None:
        return Pipeline(name, dict(routing), "Custom routing.")
    pipelines = builtin_pipelines()
    if name not in pipelines:
        import difflib

        close = difflib.get_close_matches(name, pipelines, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown pipeline {name!r}.{hint} Available: {', '.join(pipelines)}.")
    return pipelines[name]
