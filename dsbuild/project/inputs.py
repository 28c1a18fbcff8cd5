"""Input checks shared by projectors: pair counts, empty / over-long sentences, control
characters, tokens with whitespace, Unicode normalisation.

Nothing is dropped silently: a mismatch in the number of sources and targets is an
:class:`~dsbuild.errors.InputError`; every other problem turns the pair into a rejected
:class:`~dsbuild.project.base.Projection` with a reason code from :mod:`dsbuild.project.reasons`.
Tokens go to the aligner NFC-normalised (so NFC and NFD spellings of the same word are one word);
the output keeps the original text and offsets, and ``qc["nfc_changed_tokens"]`` counts the
tokens whose form changed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dsbuild.errors import InputError
from dsbuild.project import reasons as R
from dsbuild.project.base import Projection, Unprojected
from dsbuild.spans import Example, Token, tokens_from_words
from dsbuild.tokenize.base import get_tokenizer

_ALLOWED_CONTROL = {"\t", "\n", "\r"}
_SPACE = re.compile(r"\s")


@dataclass
class PreparedPair:
    """A source example and its tokenised target, with aligner-ready words or a reject."""

    source: Example
    target: Example
    src_words: list[str] = field(default_factory=list)
    tgt_words: list[str] = field(default_factory=list)
    reject: Projection | None = None
    qc: dict[str, Any] = field(default_factory=dict)


def control_characters(text: str) -> list[str]:
    """Control and format characters in ``text`` (tab, newline, CR excepted), as ``U+XXXX``."""
    if text.isprintable():  # fast path: no control, format, separator-other-than-space characters
        return []
    return sorted({f"U+{ord(ch):04X}" for ch in text
                   if ch not in _ALLOWED_CONTROL and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co")})


def rejected(source: Example, target: Example, reason: str, detail: str) -> Projection:
    """A rejected pair: every source span unprojected with ``reason``."""
    return Projection(source=source, target=target.with_spans([]),
                      unprojected=[Unprojected(s, reason, detail) for s in source.spans],
                      rejected=reason, qc={"reject_detail": detail})


def target_example(source: Example, target: str | Sequence[str] | Example,
                   tokenizer: Any) -> tuple[Example, tuple[str, str] | None]:
    """The target as an Example, and ``(reason, detail)`` when it cannot be used."""
    if isinstance(target, Example):
        return Example(id=target.id or source.id, text=target.text, tokens=list(target.tokens), meta=dict(target.meta)), None
    if isinstance(target, str):
        bad = control_characters(target)
        if bad:  # before tokenising: tokenizers drop or mangle them silently
            return Example(id=source.id, text=target, tokens=[]), (R.CONTROL_CHARACTERS,
                           f"the target contains control characters {', '.join(bad)}; remove them and re-run")
        try:
            return Example(id=source.id, text=target, tokens=tokenizer.tokenize(target)), None
        except InputError as err:
            return Example(id=source.id, text=target, tokens=[]), (R.TOKENIZATION_FAILED, err.message)
    words = [str(w) for w in target]
    for i, w in enumerate(words):
        if not w or _SPACE.search(w):
            text = " ".join(words)
            placeholder = Example(id=source.id, text=text, tokens=[Token(text, 0, len(text))] if text else [])
            return placeholder, (R.TOKEN_WHITESPACE, f"target token {i} {w!r} is empty or contains whitespace")
    return Example(id=source.id, text=" ".join(words), tokens=tokens_from_words(words, example_id=source.id)), None


def prepare_pairs(
    sources: Sequence[Example],
    targets: Sequence[str | Sequence[str] | Example],
    *,
    tokenizer: Any = "moses",
    tgt_lang: str = "xx",
    max_tokens: int = 1024,
) -> list[PreparedPair]:
    """Check and tokenise pairs; one :class:`PreparedPair` per input, in order."""
    if len(sources) != len(targets):
        raise InputError(f"{len(sources)} source sentences but {len(targets)} target sentences",
                         hint="give exactly one target (translation) per source sentence, in the same order; "
                              "check that both files have the same number of lines")
    tok = get_tokenizer(tokenizer, tgt_lang)
    out: list[PreparedPair] = []
    for src, tgt in zip(sources, targets):
        if not isinstance(src, Example):
            raise InputError(f"sources must be Examples, got {type(src).__name__}",
                             hint="build them with Example.from_words / from_text or read_conll")
        target, problem = target_example(src, tgt, tok)
        if problem is not None:
            out.append(PreparedPair(src, target, reject=rejected(src, target, *problem)))
            continue
        out.append(_check(src, target, max_tokens))
    return out


def _check(src: Example, target: Example, max_tokens: int) -> PreparedPair:
    pair = PreparedPair(src, target)
    if not src.tokens:
        pair.reject = rejected(src, target, R.EMPTY_SOURCE, "the source sentence is empty")
        return pair
    if not target.tokens:
        pair.reject = rejected(src, target, R.EMPTY_TARGET, "the target sentence is empty")
        return pair
    for side, ex in (("source", src), ("target", target)):
        if len(ex.tokens) > max_tokens:
            pair.reject = rejected(src, target, R.TOO_LONG,
                                   f"the {side} has {len(ex.tokens)} tokens; the aligner accepts at most {max_tokens}")
            return pair
        bad = control_characters("".join(ex.words))  # tokens joined: no separator to excuse
        if bad:
            pair.reject = rejected(src, target, R.CONTROL_CHARACTERS,
                                   f"the {side} contains control characters {', '.join(bad)}; remove them and re-run")
            return pair
        for i, w in enumerate(ex.words):
            if _SPACE.search(w):
                pair.reject = rejected(src, target, R.TOKEN_WHITESPACE, f"{side} token {i} {w!r} contains whitespace")
                return pair
    pair.src_words = [unicodedata.normalize("NFC", w) for w in src.words]
    pair.tgt_words = [unicodedata.normalize("NFC", w) for w in target.words]
    changed = sum(a != b for a, b in zip(pair.src_words + pair.tgt_words, src.words + target.words))
    if changed:
        pair.qc["nfc_changed_tokens"] = changed
    return pair
