"""Protected patterns: find them, mask them before machine translation, restore them, check them.

A protected match (a URL, ``{name}``, a number, Winogrande's blank) must reach the target
verbatim and as often as in the source. Before an MT model sees a text, each maskable match is
replaced by a placeholder token (``<x0>``, ``<x1>``...: short, no letters of the text, and left
alone by the usual models); after translation the placeholders are replaced by the original
matches. A placeholder the model dropped leaves its match lost, which the QC then reports
(``protected-lost``), rather than guessing where it belonged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from dsbuild.translate_dataset.spec import ProtectedPattern

#: placeholder format; ``{i}`` is the match number within the text
DEFAULT_PLACEHOLDER = "<x{i}>"


@dataclass(frozen=True)
class Match:
    """One protected match in a text."""

    pattern: str
    text: str
    start: int
    end: int


def find_protected(text: str, patterns: Sequence[ProtectedPattern]) -> list[Match]:
    """Non-overlapping matches of all patterns, in text order (an earlier-listed pattern wins a tie)."""
    found: list[tuple[int, int, int, Match]] = []
    for rank, p in enumerate(patterns):
        for m in p.compiled().finditer(text):
            found.append((m.start(), -(m.end() - m.start()), rank, Match(p.name, m.group(0), m.start(), m.end())))
    out: list[Match] = []
    end = -1
    for _, _, _, match in sorted(found, key=lambda x: x[:3]):
        if match.start >= end:
            out.append(match)
            end = match.end
    return out


def mask(text: str, patterns: Sequence[ProtectedPattern], placeholder: str = DEFAULT_PLACEHOLDER) -> tuple[str, list[str]]:
    """``text`` with each maskable match replaced by a placeholder, and the matches in order."""
    maskable = [p for p in patterns if p.mask]
    if not maskable:
        return text, []
    parts: list[str] = []
    originals: list[str] = []
    pos = 0
    for m in find_protected(text, maskable):
        parts.append(text[pos:m.start])
        parts.append(placeholder.format(i=len(originals)))
        originals.append(m.text)
        pos = m.end
    parts.append(text[pos:])
    return "".join(parts), originals


def unmask(text: str, originals: Sequence[str], placeholder: str = DEFAULT_PLACEHOLDER) -> str:
    """Put the original matches back where the model left their placeholders (spaces inside tolerated)."""
    if not originals:
        return text
    head, _, tail = placeholder.partition("{i}")
    loose = re.compile(r"\s*".join(map(re.escape, head.strip())) + r"\s*(\d+)\s*"
                       + r"\s*".join(map(re.escape, tail.strip())))

    def put_back(m: re.Match[str]) -> str:
        i = int(m.group(1))
        return originals[i] if i < len(originals) else m.group(0)

    return loose.sub(put_back, text)


def protected_flags(source: str, target: str, patterns: Sequence[ProtectedPattern]) -> list[str]:
    """QC flags for one source/target text pair.

    ``protected-lost``: a source match occurs fewer times in the target (a blank dropped);
    ``protected-added``: more times (a blank doubled); ``protected-glued``: a standalone pattern's
    match touches a letter or digit in the target (``_o``) or the target's match differs from
    the source's (``__`` for ``_``).
    """
    flags: list[str] = []
    for p in patterns:
        src = Counter(m.group(0) for m in p.compiled().finditer(source))
        tgt_matches = list(p.compiled().finditer(target))
        tgt = Counter(m.group(0) for m in tgt_matches)
        if not src and not tgt:
            continue
        if any(tgt[k] < n for k, n in src.items()):
            flags.append("protected-lost")
        if any(n > src.get(k, 0) for k, n in tgt.items()):
            flags.append("protected-added")
        if p.standalone and any(_glued(target, m.start(), m.end()) for m in tgt_matches):
            flags.append("protected-glued")
    return sorted(set(flags))


def _glued(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` touches a letter or digit on either side."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return before.isalnum() or after.isalnum()


__all__ = ["DEFAULT_PLACEHOLDER", "Match", "find_protected", "mask", "protected_flags", "unmask"]
