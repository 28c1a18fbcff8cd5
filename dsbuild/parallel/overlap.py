"""Remove parallel pairs that overlap the data being projected.

Aligning test sentences together with extra parallel text is fine (transductive alignment), but
a parallel corpus that *contains* those sentences, with their translations, would leak the answer
into a figure measured on them. The rule is the one used for the text shipped with dsbuild: a pair
is dropped when either side equals an excluded sentence after lower-casing and deleting all
whitespace, or contains an excluded sentence of ``min_tokens`` (6) or more tokens.
"""

from __future__ import annotations

from collections.abc import Iterable

#: characters of an excluded sentence used to find candidates for containment
_KEY = 16


def normalise(text: str) -> str:
    """Lower-cased, every whitespace character deleted (the comparison key)."""
    return "".join(text.lower().split())


class OverlapFilter:
    """Tells whether a sentence overlaps one of the excluded sentences (see the module docstring).

    Containment is found through the first ``_KEY`` characters of each long excluded sentence,
    looked up at every position of a line, so a corpus is checked in time linear in its size.
    """

    def __init__(self, sentences: Iterable[str], *, min_tokens: int = 6) -> None:
        self.min_tokens = min_tokens
        self.equal: set[str] = set()
        long: list[str] = []
        for s in sentences:
            key = normalise(s)
            if not key:
                continue
            self.equal.add(key)
            if len(s.split()) >= min_tokens:
                long.append(key)
        # the probe width: no longer than the shortest long sentence, so every one can be found
        self.width = min([_KEY, *(len(k) for k in long)])
        self.by_key: dict[str, list[str]] = {}
        for key in long:
            self.by_key.setdefault(key[:self.width], []).append(key)

    def __len__(self) -> int:
        return len(self.equal)

    def overlaps(self, text: str) -> bool:
        """Whether ``text`` equals an excluded sentence or contains a long one."""
        key = normalise(text)
        if key in self.equal:
            return True
        if not self.by_key:
            return False
        width = self.width
        for i in range(len(key) - width + 1):
            for full in self.by_key.get(key[i:i + width], ()):
                if key.startswith(full, i):
                    return True
        return False


def remove_overlap(pairs: Iterable[tuple[str, str]], exclude: Iterable[str], *,
                   min_tokens: int = 6) -> tuple[list[tuple[str, str]], int]:
    """The pairs that overlap no excluded sentence on either side, and how many were removed."""
    flt = OverlapFilter(exclude, min_tokens=min_tokens)
    kept, removed = [], 0
    for a, b in pairs:
        if flt.overlaps(a) or flt.overlaps(b):
            removed += 1
        else:
            kept.append((a, b))
    return kept, removed
