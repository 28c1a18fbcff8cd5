"""Text perturbation operators for stress tests (Naik et al. 2018), each recording its condition.

Every operator takes a sentence, the language's :class:`StressResources` and a seeded
``random.Random``, and returns a :class:`Perturbation` (new text + a JSON-safe ``condition``
saying exactly what changed and where) or ``None`` when it does not apply to the sentence.
Resources (distractor sentences, antonym and synonym tables, number words, same-sound characters)
are per-language YAML files that users can extend.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsbuild.challenge.lexicon import read_yaml
from dsbuild.challenge.quality import NO_SPACE_LANGS
from dsbuild.errors import InputError

FINAL_PUNCT = ".!?。！？"


@dataclass
class Perturbation:
    """A perturbed text and what was done (operator-specific keys, always JSON-safe)."""

    text: str
    condition: dict[str, Any]


@dataclass
class StressResources:
    """Per-language tables for the stress operators."""

    language: str
    distractors: list[str] = field(default_factory=list)
    antonyms: dict[str, str] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)  # number word -> value
    homophones: dict[str, list[str]] = field(default_factory=dict)  # character -> same-sound characters
    more_than: str = ""  # lower-bound phrase with {n}, e.g. "more than {n}": "three men" -> "more than two men"
    files: list[str] = field(default_factory=list)

    @property
    def spaced(self) -> bool:
        return self.language not in NO_SPACE_LANGS

    def number_word(self, value: int) -> str | None:
        for w, v in self.numbers.items():
            if v == value:
                return w
        return None


def load_resources(paths: list[Path]) -> dict[str, StressResources]:
    """Read stress-resource YAML files (later files add to earlier ones of the same language)."""
    out: dict[str, StressResources] = {}
    for path in paths:
        data = read_yaml(path)
        unknown = set(data) - {"language", "distractors", "antonyms", "synonyms", "numbers", "homophones", "more_than",
                            "description"}
        if unknown:
            raise InputError(f"unknown key(s) {sorted(unknown)}", source=path,
                             hint="a stress resource file has language, distractors, antonyms, synonyms, numbers, homophones")
        lang = str(data["language"])
        res = out.setdefault(lang, StressResources(lang))
        res.files.append(str(path))
        for d in data.get("distractors") or []:
            if not str(d).strip():
                raise InputError("empty distractor", source=path, hint="remove it or write a sentence")
            res.distractors.append(str(d).strip())
        for key, table in (("antonyms", res.antonyms), ("synonyms", res.synonyms)):
            for i, pair in enumerate(data.get(key) or [], start=1):
                if not (isinstance(pair, list) and len(pair) == 2 and all(str(x).strip() for x in pair)):
                    raise InputError(f"{key} item {i} ({pair!r}) is not a pair [word, replacement]", source=path,
                                     hint="write pairs as [word, replacement]; add the reverse pair if it also holds")
                table[str(pair[0])] = str(pair[1])
        for word, value in (data.get("numbers") or {}).items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"number word {word!r} has value {value!r}, not an integer", source=path)
            res.numbers[str(word)] = value
        if data.get("more_than") is not None:
            phrase = str(data["more_than"])
            if "{n}" not in phrase:
                raise InputError(f"more_than {phrase!r} has no {{n}} placeholder", source=path,
                                 hint="write the lower-bound phrase with {n}, e.g. 'more than {n}'")
            res.more_than = phrase
        for char, alts in (data.get("homophones") or {}).items():
            alts = [str(a) for a in (alts if isinstance(alts, list) else [alts])]
            if not alts or any(not a or a == str(char) for a in alts):
                raise InputError(f"homophones of {char!r}: {alts!r} must be other, non-empty characters", source=path)
            res.homophones[str(char)] = alts
    return out


# --------------------------------------------------------------------------- helpers
def _occurrences(text: str, word: str, spaced: bool) -> list[int]:
    if spaced:
        return [m.start() for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE)]
    return [m.start() for m in re.finditer(re.escape(word), text)]


def _match_case(original: str, new: str) -> str:
    return new[:1].upper() + new[1:] if original[:1].isupper() else new


def _fix_english_article(text: str, pos: int) -> str:
    """Re-choose a/an before the word starting at ``pos`` (after a substitution)."""
    m = re.search(r"(?:^|(?<=\s))(a|an|A|An)\s+$", text[:pos])
    if not m:
        return text
    article = "an" if text[pos:pos + 1].lower() in "aeiou" else "a"
    article = article.capitalize() if m.group(1)[0].isupper() else article
    return text[:m.start(1)] + article + text[m.end(1):]


def substitute(text: str, table: dict[str, str], res: StressResources, rng: random.Random, kind: str) -> Perturbation | None:
    """Replace one word found in ``table`` (longest entries first, one occurrence chosen at random)."""
    spots = [(pos, word) for word in sorted(table, key=lambda w: (-len(w), w)) for pos in _occurrences(text, word, res.spaced)]
    # drop matches inside a longer match already listed
    taken: list[tuple[int, int]] = []
    chosen: list[tuple[int, str]] = []
    for pos, word in spots:
        if all(pos + len(word) <= a or pos >= b for a, b in taken):
            taken.append((pos, pos + len(word)))
            chosen.append((pos, word))
    if not chosen:
        return None
    pos, word = rng.choice(sorted(chosen))
    original = text[pos:pos + len(word)]
    new = _match_case(original, table[word])
    out = text[:pos] + new + text[pos + len(word):]
    if res.language == "en":
        fixed = _fix_english_article(out, pos)
        pos += len(fixed) - len(out)
        out = fixed
    return Perturbation(out, {"operation": kind, "original": original, "replacement": new, "char_start": pos,
                              "char_end": pos + len(new)})


def append_distractor(text: str, res: StressResources, rng: random.Random) -> Perturbation | None:
    """Append a tautology before the final punctuation ("..., and true is true.")."""
    if not res.distractors:
        return None
    distractor = rng.choice(res.distractors)
    stripped = text.rstrip()
    end = stripped[-1] if stripped and stripped[-1] in FINAL_PUNCT else ""
    body = stripped[:-1] if end else stripped
    sep = "，" if not res.spaced else ", "
    out = f"{body}{sep}{distractor}{end or ('。' if not res.spaced else '.')}"
    return Perturbation(out, {"operation": "append-distractor", "distractor": distractor, "char_start": len(body)})


def spelling_noise(text: str, res: StressResources, rng: random.Random) -> Perturbation | None:
    """Swap two adjacent inner letters of one word; for unspaced scripts use a same-sound character."""
    if not res.spaced:
        spots = [(i, c) for i, c in enumerate(text) if c in res.homophones]
        if not spots:
            return None
        i, c = rng.choice(spots)
        new = rng.choice(res.homophones[c])
        return Perturbation(text[:i] + new + text[i + 1:], {"operation": "same-sound-character", "original": c,
                                                            "replacement": new, "char_start": i, "char_end": i + len(new)})
    words = [m for m in re.finditer(r"[^\W\d_]{4,}", text)]
    options = [(m, j) for m in words for j in range(1, len(m.group(0)) - 2) if m.group(0)[j] != m.group(0)[j + 1]]
    if not options:
        return None
    m, j = rng.choice(options)
    w = m.group(0)
    typo = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return Perturbation(text[:m.start()] + typo + text[m.end():], {"operation": "swap-adjacent-letters", "original": w,
                                                                   "replacement": typo, "char_start": m.start(),
                                                                   "char_end": m.end()})


def _quantities(text: str, res: StressResources) -> list[tuple[int, str, int, bool]]:
    """(position, text, value, written in digits) of every quantity in ``text``."""
    spots: list[tuple[int, str, int, bool]] = []
    for m in re.finditer(r"(?<![\d.,])\d+(?![\d.,]\d)", text):
        spots.append((m.start(), m.group(0), int(m.group(0)), True))
    for word, value in res.numbers.items():
        for pos in _occurrences(text, word, res.spaced):
            spots.append((pos, text[pos:pos + len(word)], value, False))
    return sorted(spots)


def lower_bound(text: str, res: StressResources, rng: random.Random) -> Perturbation | None:
    """Replace one quantity N by the language's "more than N-1" phrase (entailed by the original)."""
    if not res.more_than:
        return None
    spots = []
    for pos, original, value, digits in _quantities(text, res):
        bound = str(value - 1) if digits else res.number_word(value - 1)
        if value >= 2 and bound:
            spots.append((pos, original, value, bound))
    if not spots:
        return None
    pos, original, value, bound = rng.choice(spots)
    new = _match_case(original, res.more_than.format(n=bound))
    return Perturbation(text[:pos] + new + text[pos + len(original):],
                        {"operation": "lower-bound", "original": original, "replacement": new, "old_value": value,
                         "bound": value - 1, "char_start": pos, "char_end": pos + len(new)})


def rewrite_number(text: str, res: StressResources, rng: random.Random) -> Perturbation | None:
    """Replace one quantity (digits or a number word) by a different one of the same kind."""
    spots = _quantities(text, res)
    if not spots:
        return None
    pos, original, value, digits = rng.choice(spots)
    choices = sorted({v for v in res.numbers.values()} | set(range(2, 11))) if digits else sorted(set(res.numbers.values()))
    choices = [v for v in choices if v != value]
    if not choices:
        return None
    new_value = rng.choice(choices)
    new = str(new_value) if digits else _match_case(original, res.number_word(new_value) or str(new_value))
    return Perturbation(text[:pos] + new + text[pos + len(original):],
                        {"operation": "change-number", "original": original, "replacement": new, "old_value": value,
                         "new_value": new_value, "char_start": pos, "char_end": pos + len(new)})
