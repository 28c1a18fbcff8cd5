"""Input checks shared by projectors: pair counts, empty / over-long sentences, control
characters, tokens with whitespace, Unicode normalisation.

Nothing is dropped silently: a mismatch in the number of sources and targets, or an argument of
the wrong type (a target that is a number or ``None``), is an :class:`~dsbuild.errors.InputError`;
every other problem turns the pair into a rejected :class:`~dsbuild.project.base.Projection` with a
reason code from :mod:`dsbuild.project.reasons`.

Which characters count as ``control_characters`` is decided by Unicode category in
:func:`dsbuild.align.checks.disallowed_characters`: real control characters (U+0007...) and stray
invisible ones (U+200B) reject the pair; format characters that belong to words (zero-width joiner
and non-joiner in Persian or Hindi, soft hyphen...) are kept, and a tokenizer that splits them off
as tokens of their own has them joined back to the word they touch.

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

from dsbuild.align.checks import describe_characters, disallowed_characters
from dsbuild.tokenize.base import join_format_tokens
from dsbuild.errors import ConfigError, InputError
from dsbuild.project import reasons as R
from dsbuild.project.base import Projection, Unprojected
from dsbuild.spans import ArgumentTypeError, Example, Token, describe_value, tokens_from_words, type_name
from dsbuild.tokenize.base import get_tokenizer
from dsbuild.translate.langcodes import parse_code

_ALLOWED_CONTROL = "\t\n\r"  # separators in running text, never inside tokens
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
    """Characters of ``text`` that are not text, as ``U+XXXX`` (tab, newline, CR excepted).

    Control characters (``Cc``), surrogates, private-use characters and format characters that do
    not belong to words are reported; ZWJ, ZWNJ, soft hyphen and the other word-internal format
    characters of :data:`~dsbuild.align.checks.WORD_FORMAT_CHARACTERS` are not.
    """
    return disallowed_characters(text, allowed=_ALLOWED_CONTROL)


def check_language(code: object, argument: str) -> str:
    """``code`` if it is a language code (ISO 639-1 / 639-3, optionally with script or region).

    Raises:
        ArgumentTypeError: ``code`` is not a string (``None``).
        ConfigError: an unknown or malformed code; the message names ``argument`` and lists
            close matches.
    """
    if not isinstance(code, str) or not code.strip():
        raise ArgumentTypeError(f"{argument} must be a language code such as 'es' or 'spa', got {code!r}",
                                hint=f"pass {argument}='es' (ISO 639-1) or a 3-letter ISO 639-3 code")
    try:
        parse_code(code)
    except ConfigError as err:
        raise ConfigError(f"{argument}: {err}") from None
    return code


def check_sources(sources: object, argument: str = "sources") -> None:
    """Raise :class:`ArgumentTypeError` unless ``sources`` is a list of :class:`Example` s."""
    if isinstance(sources, (str, bytes, Example)) or not isinstance(sources, Sequence):
        raise ArgumentTypeError(f"{argument} must be a list of Examples, got {type_name(sources)}",
                                hint="build them with Example.from_words / from_text or dsbuild.io.read_conll")
    for i, src in enumerate(sources):
        if not isinstance(src, Example):
            raise ArgumentTypeError(f"{argument}[{i}] is {describe_value(src)}; expected an Example",
                                    hint="build them with Example.from_words / from_text or dsbuild.io.read_conll")


def check_targets(targets: object, argument: str = "targets") -> None:
    """Raise :class:`ArgumentTypeError` unless every target is a text, a list of token strings or an Example."""
    expected = "a text (str), a list of token strings, or an Example"
    if isinstance(targets, (str, bytes, Example)) or not isinstance(targets, Sequence):
        raise ArgumentTypeError(f"{argument} must be a list with one target per source ({expected} each), "
                                f"got {type_name(targets)}", hint=f"pass {argument}=[\"translation 1\", ...]")
    for i, tgt in enumerate(targets):
        if isinstance(tgt, (str, Example)):
            continue
        if not isinstance(tgt, Sequence) or isinstance(tgt, bytes):
            raise ArgumentTypeError(f"{argument}[{i}] is {describe_value(tgt)}; expected {expected}",
                                    hint="give every translation as a string; an untranslated sentence as \"\" "
                                         "(it is rejected as empty_target)")
        bad = next((j for j, w in enumerate(tgt) if not isinstance(w, str)), None)
        if bad is not None:
            raise ArgumentTypeError(f"{argument}[{i}][{bad}] is {describe_value(tgt[bad])}; a token "
                                    "list must hold strings", hint="give every target token as a string")


def _control_detail(side: str, codes: list[str]) -> str:
    """The reject detail for characters that are not text."""
    return (f"the {side} contains characters that are not text: {describe_characters(codes)}; remove them and "
            "re-run (zero-width joiners and other format characters that belong to words are kept)")


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
            return Example(id=source.id, text=target, tokens=[]), (R.CONTROL_CHARACTERS, _control_detail("target", bad))
        try:
            tokens = join_format_tokens(target, tokenizer.tokenize(target))
            return Example(id=source.id, text=target, tokens=tokens), None
        except InputError as err:
            return Example(id=source.id, text=target, tokens=[]), (R.TOKENIZATION_FAILED, err.message)
    words = list(target)
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
    """Check and tokenise pairs; one :class:`PreparedPair` per input, in order.

    Raises:
        ArgumentTypeError: a source is not an Example, or a target not a text / token list / Example.
        InputError: the numbers of sources and targets differ.
    """
    check_sources(sources)
    check_targets(targets)
    if len(sources) != len(targets):
        raise InputError(f"{len(sources)} source sentences but {len(targets)} target sentences",
                         hint="give exactly one target (translation) per source sentence, in the same order; "
                              "check that both files have the same number of lines")
    tok = get_tokenizer(tokenizer, tgt_lang)
    out: list[PreparedPair] = []
    for src, tgt in zip(sources, targets):
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
        bad = disallowed_characters("".join(ex.words))  # tokens joined: no separator to excuse
        if bad:
            pair.reject = rejected(src, target, R.CONTROL_CHARACTERS, _control_detail(side, bad))
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
