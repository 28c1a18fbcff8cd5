"""CoNLL-style column files: one token per line, blank lines between sentences."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dsbuild.errors import InputError
from dsbuild.spans import Example, Scheme, TagError, _check_scheme


def read_conll(
    path: str | Path,
    *,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: Scheme = "IOB2",
    separator: str | None = None,
    id_prefix: str | None = None,
    allow_overlap: bool = False,
) -> list[Example]:
    """Read a CoNLL file into :class:`Example` s.

    Args:
        path: the file (UTF-8).
        token_column: column index of the token (0-based; negative counts from the end).
        tag_column: column index of the tag (default: the last column).
        scheme: tag scheme of the file (IOB1, IOB2, BIOES).
        separator: column separator; ``None`` splits on any whitespace, ``"\\t"`` allows
            tokens with spaces.
        id_prefix: prefix for example ids (default: the file stem); ids are ``PREFIX-N``.

    ``-DOCSTART-`` lines start a new document and are not examples. Each example's ``meta``
    holds ``source`` and ``line`` (1-based line of its first token) and ``doc`` (document index).
    Errors name the file and line.
    """
    return list(iter_conll(path, token_column=token_column, tag_column=tag_column, scheme=scheme,
                           separator=separator, id_prefix=id_prefix, allow_overlap=allow_overlap))


def iter_conll(
    path: str | Path,
    *,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: Scheme = "IOB2",
    separator: str | None = None,
    id_prefix: str | None = None,
    allow_overlap: bool = False,
) -> Iterator[Example]:
    """Lazy version of :func:`read_conll`."""
    path = Path(path)
    _check_scheme(scheme)
    if not path.is_file():
        raise InputError("file not found", source=path, hint="check the path (relative paths start from the current directory)")
    prefix = id_prefix if id_prefix is not None else path.stem
    words: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    doc = 0
    count = 0

    def flush() -> Example | None:
        nonlocal count
        if not words:
            return None
        ex_id = f"{prefix}-{count}"
        count += 1
        try:
            ex = Example.from_words(ex_id, words, tags=tags, scheme=scheme,
                                    meta={"source": str(path), "line": lines[0], "doc": doc}, allow_overlap=allow_overlap)
        except TagError as err:
            raise InputError(err.message, source=path, line=lines[err.token_index], example_id=ex_id, hint=err.hint) from None
        except InputError as err:
            raise InputError(err.message, source=path, line=lines[0], example_id=ex_id, hint=err.hint) from None
        words.clear(), tags.clear(), lines.clear()
        return ex

    for lineno, raw in _numbered_lines(path):
        line = raw.rstrip("\r\n")
        if not line.strip():
            ex = flush()
            if ex is not None:
                yield ex
            continue
        cols = line.split(separator)
        if line.split(None, 1)[0] == "-DOCSTART-":  # whatever the separator: "-DOCSTART- -X- O O" too
            ex = flush()
            if ex is not None:
                yield ex
            doc += 1
            continue
        try:
            token, tag = cols[token_column], cols[tag_column]
        except IndexError:
            raise InputError(
                f"line has {len(cols)} column(s); expected a token column {token_column} and a tag column {tag_column}",
                source=path, line=lineno,
                hint="use one 'token<TAB>tag' per line and blank lines between sentences, or pass token_column/tag_column",
            ) from None
        if len(cols) < 2:
            raise InputError(
                "line has a single column: no tag", source=path, line=lineno,
                hint="every token line needs a tag column (use O for outside)",
            )
        token = token.strip()
        if not token:
            raise InputError("empty token", source=path, line=lineno, hint="remove the line or give the token text")
        words.append(token)
        tags.append(tag.strip())
        lines.append(lineno)
    ex = flush()
    if ex is not None:
        yield ex


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line, decoded as UTF-8 (a leading byte-order mark dropped).

    Lines are decoded one by one so that a decoding error names its line instead of crashing in codecs.
    """
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(f"not valid UTF-8 ({err.reason} at byte {err.start + 1} of the line)", source=path,
                                 line=lineno, hint="convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8") from None
            yield lineno, (line.removeprefix("\ufeff") if lineno == 1 else line)


def write_conll(examples: list[Example], path: str | Path, *, scheme: Scheme = "IOB2") -> None:
    """Write examples as ``token<TAB>tag`` lines with blank lines between sentences."""
    path = Path(path)
    out = []
    for ex in examples:
        out.extend(f"{w}\t{t}" for w, t in zip(ex.words, ex.tags(scheme)))
        out.append("")
    path.write_text("\n".join(out) + ("\n" if out else ""), encoding="utf-8")
