"""Span fields: character (or whitespace-token) spans over a translated field, projected with any
registered projector (``alignment``, ``markers``, ``constrained``) through :mod:`dsbuild.project`.

Projectors work on token spans of :class:`dsbuild.spans.Example` s, so a char span is widened to
the source tokens it touches (moses tokens), projected, and written back as character offsets
into the translation: every output span is ``{label, start, end, text}`` (char offsets, end
exclusive, ``text`` = the covered string), in the source config too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dsbuild.spans import Example, Token
from dsbuild.translate_dataset.items import SourceItem, Target, WorkItem
from dsbuild.translate_dataset.spec import FieldSpec

if TYPE_CHECKING:  # pragma: no cover
    from dsbuild.builder import BuildContext
    from dsbuild.translate_dataset.base import TranslateDatasetBase


def char_spans(item: SourceItem, f: FieldSpec) -> list[tuple[int, int, str]]:
    """The field's spans as ``(start, end, label)`` character offsets into the text of ``f.of``."""
    text = item.fields[f.of or ""]
    spans = item.fields.get(f.name) or []
    if f.span_format == "char":
        return [(int(s[f.start_key]), int(s[f.end_key]), str(s[f.label_key])) for s in spans]
    words = _whitespace_tokens(text)
    return [(words[s[f.start_key]].start, words[s[f.end_key] - 1].end, str(s[f.label_key])) for s in spans]


def source_spans(item: SourceItem, f: FieldSpec) -> list[dict[str, Any]]:
    """The source config's spans: char offsets and the covered text."""
    text = item.fields[f.of or ""]
    return [{"label": label, "start": s, "end": e, "text": text[s:e]} for s, e, label in char_spans(item, f)]


def source_example(item: SourceItem, f: FieldSpec, lang: str) -> Example:
    """An Example of the ``of`` text with its spans widened to whole (moses) tokens."""
    from dsbuild.tokenize import get_tokenizer

    text = item.fields[f.of or ""]
    tokens = get_tokenizer("moses", lang).tokenize(text)
    ex = Example(id=item.id, text=text, tokens=list(tokens))
    spans = []
    for s, e, label in char_spans(item, f):
        covered = [i for i, t in enumerate(tokens) if t.start < e and t.end > s]
        if covered:
            spans.append(ex.span_from_tokens(covered[0], covered[-1] + 1, label))
    ex.spans = spans
    return ex


def project_field(builder: TranslateDatasetBase, target: Target, f: FieldSpec, items: list[WorkItem],
                  ctx: BuildContext) -> None:
    """Project ``f`` for every item; unprojected spans flag ``span-lost`` (and are left out)."""
    from dsbuild.translate_dataset.steps import count

    src_lang = target.from_lang or builder.src_lang()
    sources = [source_example(it.source, f, src_lang) for it in items]
    targets = [str(it.target.get(f.of or "") or "") for it in items]
    projector = builder.projector(target)
    projections = projector.project(sources, targets, src_lang=src_lang, tgt_lang=target.lang) if items else []
    for it, src, proj in zip(items, sources, projections):
        text = proj.target.text
        it.target[f.name] = [{"label": s.label, "start": s.start, "end": s.end, "text": text[s.start:s.end]}
                             for s in sorted(proj.target.spans, key=lambda s: (s.start, s.end, s.label))]
        lost = len(src.spans) - len(proj.target.spans) if proj.rejected is None else len(src.spans)
        count(ctx, "source_spans", len(src.spans), group="spans")
        count(ctx, "projected_spans", len(src.spans) - max(lost, 0), group="spans")
        if lost > 0 or len(src.spans) < len(it.source.fields.get(f.name) or []):
            it.flag("span-lost")


def _whitespace_tokens(text: str) -> list[Token]:
    import re

    return [Token(m.group(0), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


__all__ = ["char_spans", "project_field", "source_example", "source_spans"]
