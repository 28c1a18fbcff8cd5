"""``definition-overlap``: a deterministic stand-in teacher for offline builds. **It is not an LLM.**

No LLM weights can be downloaded where dsbuild's default build must run, and a small model trained
in-process would not be an LLM either. So the default ``llm-annotate`` build uses this baseline,
registered as an LLM backend so that it runs through exactly the same builder path (prompts,
parsing, rejects, agreement): it reads the text out of the prompt (after the first ``Text:``) and
scores it against each label's vocabulary - the words of its name, definition, description and
keywords (for IPTC: the names of every current subtopic under it) - with an IDF weight (a word
shared by many labels counts little), a damped term frequency, and a mild length normalisation
(labels with long keyword lists would win everything otherwise). It answers the best label's
name, or ``unknown`` when no word matches (which the parser rejects as ``out-of-schema``).

Words are matched on a crude stem (lower case, trailing ``s`` dropped, first 6 characters), so it
works for English and a little for languages that borrow English words; for other languages and
scripts it mostly answers ``unknown``. The card reports its agreement with the human labels.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dsbuild.errors import ConfigError
from dsbuild.llm.base import LLM, Completion, Messages, Sampling
from dsbuild.registry import llms

NAME = "definition-overlap"
ABSTAIN = "unknown"
_WORD = re.compile(r"[^\W\d_]+")
#: function words and definition boilerplate ("all aspects of ...") that say nothing about a topic
STOPWORDS = frozenset("""
a about above after again against all also an and any are as at be because been before being between both but by
can could did do does doing down during each few for from further had has have having he her here hers him his
how if in into is it its itself just more most no nor not now of off on once only or other our out over own same
she should so some such than that the their them then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your said says say one two new
aspect aspects matter matters item items form forms concerning pertaining including involve involves involved
relevant such various other others related general activity activities issue issues thing things well way
""".split())


def stem(word: str) -> str:
    """Lower case, a trailing ``s`` dropped, at most 6 characters: ``politics`` / ``political`` -> ``politi``."""
    w = word.casefold()
    if len(w) > 4 and w.endswith("s"):
        w = w[:-1]
    return w[:6]


def stems(text: str) -> list[str]:
    """Content-word stems of ``text`` (stopwords and words under 3 letters dropped)."""
    return [stem(w) for w in _WORD.findall(text.casefold()) if len(w) >= 3 and w not in STOPWORDS]


class DefinitionOverlap(LLM):
    """Scores the text against each label's words; answers the best label's name (see the module docstring).

    Args:
        model: a name for the label vocabulary (recorded as the "model"), e.g. the schema name.
        definitions: label name -> the text describing it (name, definition, description, keywords).
        text_marker: the text is what follows the first occurrence of this marker in the prompt.
    """

    name = NAME

    def __init__(self, model: str, *, revision: str | None = None, cache_dir: str | Path | None = None,
                 definitions: Mapping[str, str] | None = None, text_marker: str = "Text:", **options: Any) -> None:
        options["cache"] = False  # answers cost nothing: no cache
        super().__init__(model, revision=revision, cache_dir=cache_dir, **options)
        if not definitions:
            raise ConfigError(f"LLM backend {NAME!r} needs the label definitions (the llm-annotate builder passes "
                              f"them from its schema)")
        self.text_marker = text_marker
        self.labels = list(definitions)
        vocab = {label: Counter(stems(f"{label} {text}")) for label, text in definitions.items()}
        df = Counter(s for counts in vocab.values() for s in counts)
        n = len(vocab)
        self.idf = {s: math.log((n + 1) / (d + 0.5)) for s, d in df.items()}
        self.vocab = {label: set(counts) for label, counts in vocab.items()}
        self.norm = {label: math.log(math.e + len(words)) for label, words in self.vocab.items()}

    def text_of(self, conversation: Messages) -> str:
        """The text to label: what follows the first ``text_marker`` in the last user message, unquoted."""
        user = next((m["content"] for m in reversed(conversation) if m.get("role") == "user"), "")
        _, found, after = user.partition(self.text_marker)  # the first: the text itself may hold the marker
        text = after if found else user
        return text.strip().strip("'\"").strip()

    def scores(self, text: str) -> dict[str, float]:
        """Each label's score for ``text`` (0.0: no word of its vocabulary occurs)."""
        tf = Counter(stems(text))
        return {label: sum(self.idf[s] * (1 + math.log(tf[s])) for s in words if s in tf) / self.norm[label]
                for label, words in self.vocab.items()}

    def answer(self, text: str) -> str:
        """The best-scoring label (the first in schema order on ties), or ``unknown``."""
        scored = self.scores(text)
        best = max(scored.values(), default=0.0)
        if best <= 0:
            return ABSTAIN
        return next(label for label in self.labels if scored[label] == best)

    def chat(self, messages: Sequence[Messages], sampling: Sampling, *, choices: Sequence[str] | None = None,
             json_schema: dict[str, Any] | None = None) -> list[Completion]:
        out = []
        for conversation in messages:
            answer = self.answer(self.text_of(conversation))
            out.append(Completion(texts=[answer] * sampling.n))  # deterministic: every sample agrees
        self.usage.add(requests=len(out))
        return out

    def choose(self, messages: Sequence[Messages], choices: Sequence[str]) -> list[Completion]:
        """The best label, or ``unknown`` when no word matches (not the first label of a tie at zero)."""
        return self.chat(messages, Sampling(), choices=choices)

    def score_choices(self, messages: Sequence[Messages], choices: Sequence[str]) -> list[dict[str, float]]:
        """The overlap scores as pseudo log-probabilities (log of a softmax-free share; -inf for 0)."""
        out = []
        for conversation in messages:
            scored = self.scores(self.text_of(conversation))
            total = sum(scored.values())
            out.append({c: math.log(scored[c] / total) if total and scored.get(c) else float("-inf") for c in choices})
        self.usage.add(requests=len(out))
        return out

    def describe(self) -> dict[str, Any]:
        return {"backend": NAME, "model": self.model, "revision": self.revision,
                "kind": "stand-in baseline (word overlap with the label definitions), not an LLM",
                "vocabulary_stems": sum(len(v) for v in self.vocab.values())}


llms.register(NAME, DefinitionOverlap)

__all__ = ["ABSTAIN", "NAME", "DefinitionOverlap", "stem", "stems"]
