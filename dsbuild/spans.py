"""The span model used everywhere in dsbuild.

An :class:`Example` has an id, a text, tokens with character offsets into that text, labelled
:class:`Span` s carrying both character offsets and token indices, and free metadata. Readers,
projectors, transliterators and builders all take and return Examples, so a span never has to
be re-derived from a tag sequence in one place and from characters in another.

Tag sequences (IOB1, IOB2, BIOES) are only an exchange format: :func:`tags_to_spans` and
:func:`spans_to_tags` convert exactly in both directions.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from dsbuild.errors import InputError

Scheme = Literal["IOB1", "IOB2", "BIOES"]
SCHEMES: tuple[str, ...] = ("IOB1", "IOB2", "BIOES")


class ArgumentTypeError(InputError, TypeError):
    """An argument of a public API call has the wrong type (``from_words("x", "abc")``, ``tags=[1]``).

    It is an :class:`InputError` (the CLI prints it as one line) and a :class:`TypeError` (what
    Python code expects from a call with a wrong type). The message names the argument, what was
    given and what is expected.
    """


def type_name(value: object) -> str:
    """A short name for ``value``'s type in messages: ``None`` -> ``None``, ``3`` -> ``int``."""
    return "None" if value is None else type(value).__name__


def describe_value(value: object) -> str:
    """``value`` for a message: ``3 (int)``, ``None``, ``'abc…' (str)`` (at most 60 characters of repr)."""
    if value is None:
        return "None"
    text = repr(value)
    return f"{text[:60]}{'…' if len(text) > 60 else ''} ({type(value).__name__})"


def check_str_sequence(values: object, argument: str, *, what: str, like: str, call: str = "",
                       example_id: str | None = None) -> None:
    """Raise :class:`ArgumentTypeError` unless ``values`` is a list/tuple of strings (not a string).

    ``argument`` names the argument in the message (``words``, ``tags``), ``what`` says what one
    element is (``a token string``), ``like`` shows a correct value (``['New', 'York']``) and
    ``call`` names the function called (``Example.from_words``).
    """
    where = f"{call}: " if call else ""
    if isinstance(values, (str, bytes)):
        raise ArgumentTypeError(
            f"{where}{argument} must be a list of strings, got one {type_name(values)} {values[:40]!r}",
            example_id=example_id, hint=f"pass a list such as {argument}={like} (a string would be split into characters)",
        )
    if not isinstance(values, Sequence):
        raise ArgumentTypeError(f"{where}{argument} must be a list of strings, got {type_name(values)}",
                                example_id=example_id, hint=f"pass a list such as {argument}={like}")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ArgumentTypeError(f"{where}{argument}[{i}] is {describe_value(value)}; expected {what}",
                                    example_id=example_id, hint=f"give every element of {argument} as a string")


@dataclass(frozen=True, slots=True)
class Token:
    """A token: its text and ``[start, end)`` character offsets into the example text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Span:
    """A labelled span.

    ``start``/``end`` are character offsets (end exclusive) into the example text;
    ``token_start``/``token_end`` are token indices (end exclusive). ``score`` is an optional
    confidence (for projected spans).
    """

    label: str
    start: int
    end: int
    token_start: int
    token_end: int
    score: float | None = None

    @property
    def token_range(self) -> range:
        return range(self.token_start, self.token_end)

    def overlaps(self, other: Span) -> bool:
        return self.token_start < other.token_end and other.token_start < self.token_end


@dataclass(slots=True)
class Example:
    """One example: id, text, tokens with offsets, labelled spans, metadata."""

    id: str
    text: str
    tokens: list[Token]
    spans: list[Span] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_words(
        cls,
        id: str,
        words: Sequence[str],
        *,
        tags: Sequence[str] | None = None,
        scheme: Scheme = "IOB2",
        token_spans: Iterable[tuple[int, int, str]] = (),
        meta: dict[str, Any] | None = None,
        allow_overlap: bool = False,
    ) -> Example:
        """Build an example from pre-tokenised words joined by single spaces.

        Labels come either from ``tags`` (a tag sequence in ``scheme``) or from ``token_spans``
        (``(token_start, token_end, label)`` triples, end exclusive).

        Raises:
            ArgumentTypeError: an argument has the wrong type (``words`` given as one string,
                a tag that is not a string...); the message names the argument.
            InputError: the words and tags do not make a valid example (empty token, tag
                count, invalid tag sequence, overlapping spans).
        """
        triples = _from_words_arguments(id, words, tags, token_spans, meta)
        tokens = tokens_from_words(words, example_id=id)
        text = " ".join(words)
        if tags is not None:
            if len(tags) != len(words):
                raise InputError(
                    f"{len(words)} tokens but {len(tags)} tags",
                    example_id=id,
                    hint="give exactly one tag per token",
                )
            triples += tags_to_spans(tags, scheme, example_id=id)
        ex = cls(id=id, text=text, tokens=tokens, meta=dict(meta or {}))
        ex.spans = [ex.span_from_tokens(s, e, label) for s, e, label in triples]
        for span in ex.spans:  # tokens and offsets are right by construction; labels and overlaps may not be
            _check_label(span, ex.id)
        if not allow_overlap:
            ex._check_overlaps()
        return ex

    @classmethod
    def from_text(
        cls,
        id: str,
        text: str,
        tokens: Sequence[Token],
        char_spans: Iterable[tuple[int, int, str]] = (),
        *,
        meta: dict[str, Any] | None = None,
        allow_overlap: bool = False,
    ) -> Example:
        """Build an example from text, tokens with offsets, and ``(start, end, label)`` char spans.

        Each character span must start at a token start and end at a token end.

        Raises:
            ArgumentTypeError: ``text`` is not a string or ``tokens`` are not :class:`Token` s.
            InputError: offsets, spans or labels are inconsistent.
        """
        _from_text_arguments(id, text, tokens, meta)
        ex = cls(id=id, text=text, tokens=list(tokens), meta=dict(meta or {}))
        ex.spans = [ex.span_from_chars(s, e, label) for s, e, label in char_spans]
        ex.validate(allow_overlap=allow_overlap)
        return ex

    # ----------------------------------------------------------------- span helpers
    def span_from_tokens(self, token_start: int, token_end: int, label: str, score: float | None = None) -> Span:
        """A span covering tokens ``[token_start, token_end)``, with character offsets filled in."""
        n = len(self.tokens)
        if not (0 <= token_start < token_end <= n):
            raise InputError(
                f"span {label!r} covers tokens [{token_start}, {token_end}) but the example has {n} tokens",
                example_id=self.id,
                hint="token indices are 0-based with an exclusive end and must lie inside the sentence",
            )
        return Span(label, self.tokens[token_start].start, self.tokens[token_end - 1].end, token_start, token_end, score)

    def span_from_chars(self, start: int, end: int, label: str, score: float | None = None) -> Span:
        """A span for character offsets ``[start, end)``; they must fall on token boundaries."""
        if not (0 <= start < end <= len(self.text)):
            raise InputError(
                f"span {label!r} at characters [{start}, {end}) is out of range for a text of {len(self.text)} characters",
                example_id=self.id,
                hint="character offsets are 0-based with an exclusive end",
            )
        starts = {t.start: i for i, t in enumerate(self.tokens)}
        ends = {t.end: i for i, t in enumerate(self.tokens)}
        if start not in starts or end not in ends:
            raise InputError(
                f"span {label!r} at characters [{start}, {end}) ({self.text[start:end]!r}) is not on token boundaries",
                example_id=self.id,
                hint="re-tokenise so that span edges are token edges, or move the span to whole tokens",
            )
        return Span(label, start, end, starts[start], ends[end] + 1, score)

    def span_text(self, span: Span) -> str:
        return self.text[span.start : span.end]

    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]

    def tags(self, scheme: Scheme = "IOB2") -> list[str]:
        """The spans as a tag sequence in ``scheme`` (spans must not overlap)."""
        return spans_to_tags([(s.token_start, s.token_end, s.label) for s in self.spans], len(self.tokens), scheme, example_id=self.id)

    def validate(self, *, allow_overlap: bool = False) -> None:
        """Check offsets, token/text agreement and (unless allowed) overlaps; raise InputError."""
        previous_end = 0
        for i, tok in enumerate(self.tokens):
            if not tok.text or not tok.text.strip():
                raise InputError(f"token {i} is empty", example_id=self.id, hint="remove empty tokens")
            if not (previous_end <= tok.start < tok.end <= len(self.text)):
                raise InputError(
                    f"token {i} {tok.text!r} at [{tok.start}, {tok.end}) is out of order or outside the text "
                    f"({len(self.text)} characters)",
                    example_id=self.id, hint="tokens must be in text order, not overlap, and lie inside the text",
                )
            previous_end = tok.end
            if self.text[tok.start : tok.end] != tok.text:
                raise InputError(
                    f"token {i} {tok.text!r} does not match the text at [{tok.start}, {tok.end}) "
                    f"({self.text[tok.start:tok.end]!r})",
                    example_id=self.id,
                    hint="token offsets must point at the token's characters in the text",
                )
        for span in self.spans:
            _check_label(span, self.id)
            expected = self.span_from_tokens(span.token_start, span.token_end, span.label)
            if (span.start, span.end) != (expected.start, expected.end):
                raise InputError(
                    f"span {span.label!r} has characters [{span.start}, {span.end}) but tokens "
                    f"[{span.token_start}, {span.token_end}) cover [{expected.start}, {expected.end})",
                    example_id=self.id,
                    hint="build spans with Example.span_from_tokens or span_from_chars",
                )
        if not allow_overlap:
            self._check_overlaps()

    def _check_overlaps(self) -> None:
        if len(self.spans) > 1:
            ordered = sorted(self.spans, key=lambda s: (s.token_start, s.token_end))
            for a, b in zip(ordered, ordered[1:]):
                if a.overlaps(b):
                    raise InputError(
                        f"spans {a.label!r} [{a.token_start}, {a.token_end}) and {b.label!r} "
                        f"[{b.token_start}, {b.token_end}) overlap",
                        example_id=self.id,
                        hint="this format cannot hold overlapping spans: keep one of them",
                    )

    def with_spans(self, spans: Iterable[Span]) -> Example:
        """A copy with other spans (sorted by position)."""
        return replace(self, spans=sorted(spans, key=lambda s: (s.token_start, s.token_end, s.label)), meta=dict(self.meta))

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-safe dict (the token-JSONL format read by :func:`dsbuild.io.read_jsonl`)."""
        return {
            "id": self.id,
            "text": self.text,
            "tokens": [t.text for t in self.tokens],
            "token_offsets": [[t.start, t.end] for t in self.tokens],
            "spans": [span_to_dict(s, self.text) for s in self.spans],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        """Inverse of :meth:`to_dict`."""
        tokens = [Token(w, s, e) for w, (s, e) in zip(d["tokens"], d["token_offsets"])]
        spans = [Span(s["label"], s["start"], s["end"], s["token_start"], s["token_end"], s.get("score")) for s in d["spans"]]
        return cls(id=d["id"], text=d["text"], tokens=tokens, spans=spans, meta=dict(d.get("meta") or {}))


def span_to_dict(span: Span, text: str) -> dict[str, Any]:
    """The row form of a span, as stored in datasets (see :func:`dsbuild.features.span_feature`)."""
    return {
        "label": span.label,
        "start": span.start,
        "end": span.end,
        "token_start": span.token_start,
        "token_end": span.token_end,
        "text": text[span.start : span.end],
    }


def _from_words_arguments(id: str, words: Sequence[str], tags: Sequence[str] | None,
                          token_spans: Iterable[tuple[int, int, str]], meta: dict[str, Any] | None
                          ) -> list[tuple[int, int, str]]:
    """Type checks of :meth:`Example.from_words`; returns ``token_spans`` as a list of triples."""
    _check_id(id)
    check_str_sequence(words, "words", what="a token string", like="['New', 'York']",
                       call="Example.from_words", example_id=id)
    if tags is not None:
        check_str_sequence(tags, "tags", what="a tag string such as 'B-PER' or 'O'", like="['B-LOC', 'I-LOC']",
                           call="Example.from_words", example_id=id)
    _check_meta(meta, id)
    return _token_span_triples(token_spans, id)


def _from_text_arguments(id: str, text: str, tokens: Sequence[Token], meta: dict[str, Any] | None) -> None:
    """Type checks of :meth:`Example.from_text`: a string text and :class:`Token` objects."""
    _check_id(id)
    where = "Example.from_text"
    if not isinstance(text, str):
        raise ArgumentTypeError(f"{where}: text must be a string, got {type_name(text)}", example_id=id)
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
        raise ArgumentTypeError(f"{where}: tokens must be a list of Token(text, start, end), got {type_name(tokens)}",
                                example_id=id, hint="for a list of words use Example.from_words")
    bad = next((i for i, t in enumerate(tokens) if not isinstance(t, Token)), None)
    if bad is not None:
        raise ArgumentTypeError(f"{where}: tokens[{bad}] is {describe_value(tokens[bad])}; expected a "
                                "Token(text, start, end)", example_id=id,
                                hint="for a list of words use Example.from_words")
    _check_meta(meta, id)


def _check_id(id: object) -> None:
    """Example ids are strings (they become a string column)."""
    if not isinstance(id, str):
        raise ArgumentTypeError(f"Example: id must be a string, got {describe_value(id)}",
                                hint="pass the example id as a string, e.g. str(n)")


def _check_meta(meta: object, example_id: str) -> None:
    """``meta`` is a dict or None."""
    if meta is not None and not isinstance(meta, dict):
        raise ArgumentTypeError(f"Example: meta must be a dict or None, got {type_name(meta)}", example_id=example_id)


def _token_span_triples(token_spans: Iterable[tuple[int, int, str]], example_id: str) -> list[tuple[int, int, str]]:
    """``token_spans`` as a list, each checked to be a ``(token_start, token_end, label)`` triple."""
    if isinstance(token_spans, (str, bytes)) or not isinstance(token_spans, Iterable):
        raise ArgumentTypeError("Example.from_words: token_spans must be a list of (token_start, token_end, label) "
                                f"triples, got {type_name(token_spans)}", example_id=example_id)
    triples = list(token_spans)
    for i, triple in enumerate(triples):
        ok = isinstance(triple, (tuple, list)) and len(triple) == 3 and all(
            isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in triple[:2])
        if not ok:
            raise ArgumentTypeError(f"Example.from_words: token_spans[{i}] is {triple!r}; expected a "
                                    "(token_start, token_end, label) triple with integer token indices",
                                    example_id=example_id,
                                    hint="token indices are 0-based with an exclusive end, e.g. (0, 2, 'PER')")
    return [(int(s), int(e), label) for s, e, label in triples]


def _check_label(span: Span, example_id: str) -> None:
    if not isinstance(span.label, str) or not span.label.strip():
        raise InputError(f"span at tokens [{span.token_start}, {span.token_end}) has no label ({span.label!r})",
                         example_id=example_id, hint="every span needs a non-empty string label")


def tokens_from_words(words: Sequence[str], *, example_id: str | None = None) -> list[Token]:
    """Tokens with offsets for ``words`` joined by single spaces."""
    tokens: list[Token] = []
    pos = 0
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise ArgumentTypeError(f"token {i} is {describe_value(w)}, not a string", example_id=example_id,
                                    hint="give every token as a string")
        if not w or not w.strip():
            raise InputError(f"token {i} is empty{' (only whitespace)' if w else ''}", example_id=example_id,
                             hint="remove empty tokens from the input")
        tokens.append(Token(w, pos, pos + len(w)))
        pos += len(w) + 1
    return tokens


# --------------------------------------------------------------------------- tag schemes
class TagError(InputError):
    """An invalid tag sequence; ``token_index`` says which tag, so readers can name the line."""

    def __init__(self, message: str, *, token_index: int, example_id: str | None = None, hint: str | None = None):
        self.token_index = token_index
        super().__init__(message, example_id=example_id, hint=hint)


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise InputError(f"unknown tag scheme {scheme!r}", hint=f"use one of {', '.join(SCHEMES)}")


def split_tag(tag: str, scheme: str = "IOB2", *, index: int = 0, example_id: str | None = None) -> tuple[str, str | None]:
    """Split ``B-PER`` into ``("B", "PER")``; ``O`` gives ``("O", None)``."""
    if not isinstance(tag, str):
        raise TagError(f"tag {tag!r} at token {index} is a {type_name(tag)}, not a tag string", token_index=index,
                       example_id=example_id, hint="give tags as strings (O, B-PER...); map integer ids to names first")
    if tag == "O":
        return "O", None
    allowed = "BIES" if scheme == "BIOES" else "BI"
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in allowed or not label or any(c.isspace() for c in tag):
        raise TagError(
            f"tag {tag!r} at token {index} is not valid {scheme}",
            token_index=index,
            example_id=example_id,
            hint=f"{scheme} tags are O or {'/'.join(allowed)}-TYPE; pass the right scheme or fix the tag",
        )
    return prefix, label


def tags_to_spans(tags: Sequence[str], scheme: Scheme = "IOB2", *, example_id: str | None = None) -> list[tuple[int, int, str]]:
    """Decode a tag sequence into ``(token_start, token_end, label)`` triples (end exclusive).

    IOB2 and BIOES are checked strictly: an ``I-`` without a preceding ``B-``/``I-`` of the same
    type, or a ``B-`` in BIOES not closed by ``E-``, raises :class:`TagError`. IOB1 allows ``I-`` to
    open a span (that is the scheme), and ``B-`` marks a span starting right after one of its type.
    """
    _check_scheme(scheme)
    spans: list[tuple[int, int, str]] = []
    open_start: int | None = None
    open_label: str | None = None

    def close(end: int) -> None:
        nonlocal open_start, open_label
        if open_start is not None and open_label is not None:
            spans.append((open_start, end, open_label))
        open_start, open_label = None, None

    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag, scheme, index=i, example_id=example_id)
        if scheme == "BIOES" and open_start is not None and not (prefix in "IE" and label == open_label):
            raise TagError(
                f"span {open_label!r} opened at token {open_start} is not closed with E-{open_label} before {tag!r} at token {i}",
                token_index=i, example_id=example_id, hint="BIOES spans run B- I-* E-; single tokens are S-",
            )
        if prefix == "O":
            close(i)
        elif prefix == "B":
            close(i)
            open_start, open_label = i, label
        elif prefix == "S":
            close(i)
            spans.append((i, i + 1, label))
        elif prefix in "IE":
            if open_start is None or open_label != label:
                if scheme != "IOB1" or prefix == "E":
                    raise TagError(
                        f"tag {tag!r} at token {i} continues a span that was not opened"
                        + (f" (previous tag {tags[i - 1]!r})" if i else ""),
                        token_index=i,
                        example_id=example_id,
                        hint=f"start the span with B-{label}, or read the file with scheme IOB1 if it uses IOB1",
                    )
                close(i)
                open_start, open_label = i, label
            if prefix == "E":
                close(i + 1)
    if scheme == "BIOES" and open_start is not None:
        raise TagError(
            f"span {open_label!r} opened at token {open_start} is not closed at the end of the sentence",
            token_index=len(tags) - 1, example_id=example_id, hint="end BIOES spans with E-",
        )
    close(len(tags))
    return spans


def spans_to_tags(
    spans: Iterable[tuple[int, int, str]], length: int, scheme: Scheme = "IOB2", *, example_id: str | None = None
) -> list[str]:
    """Encode ``(token_start, token_end, label)`` triples as a tag sequence of ``length`` tags."""
    _check_scheme(scheme)
    tags = ["O"] * length
    owner: list[tuple[int, int, str] | None] = [None] * length
    for s, e, label in sorted(spans):
        if not isinstance(label, str) or not label or any(c.isspace() for c in label):
            raise InputError(f"span [{s}, {e}) has label {label!r}; labels must be non-empty and without spaces",
                             example_id=example_id)
        if not (0 <= s < e <= length):
            raise InputError(f"span {label!r} [{s}, {e}) is out of range for {length} tokens", example_id=example_id)
        for i in range(s, e):
            if owner[i] is not None:
                raise InputError(
                    f"spans {owner[i]} and {(s, e, label)} overlap at token {i}",
                    example_id=example_id,
                    hint="tag sequences cannot hold overlapping spans: keep one of them",
                )
            owner[i] = (s, e, label)
        if scheme == "IOB2":
            tags[s : e] = [f"B-{label}"] + [f"I-{label}"] * (e - s - 1)
        elif scheme == "BIOES":
            tags[s : e] = [f"S-{label}"] if e - s == 1 else [f"B-{label}"] + [f"I-{label}"] * (e - s - 2) + [f"E-{label}"]
        else:  # IOB1: B- only where a span directly follows one of the same type
            follows_same = s > 0 and owner[s - 1] is not None and owner[s - 1][2] == label  # type: ignore[index]
            tags[s : e] = [f"{'B' if follows_same else 'I'}-{label}"] + [f"I-{label}"] * (e - s - 1)
    return tags


def convert_tags(tags: Sequence[str], source: Scheme, target: Scheme, *, example_id: str | None = None) -> list[str]:
    """Convert a tag sequence between schemes (exact: the spans are decoded, then re-encoded)."""
    return spans_to_tags(tags_to_spans(tags, source, example_id=example_id), len(tags), target, example_id=example_id)


def tag_names(labels: Iterable[str], scheme: Scheme = "IOB2") -> list[str]:
    """The full tag inventory for entity ``labels``, in a stable order: O, then per sorted label."""
    _check_scheme(scheme)
    prefixes = {"IOB1": "BI", "IOB2": "BI", "BIOES": "BIES"}[scheme]
    return ["O"] + [f"{p}-{label}" for label in sorted(set(labels)) for p in prefixes]
