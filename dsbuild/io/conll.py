"""CoNLL-style column files: one token per line, blank lines between sentences."""

from __future__ import annotations

import shlex
from collections import Counter
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
    holds ``source`` (the file *name*: published data must not carry the local folder), ``line``
    (1-based line of its first token) and ``doc`` (document index).

    Every token line must have as many columns as the first one: with the default whitespace
    separator a token containing a space (``New York B-LOC``) would otherwise silently lose a
    part; and a word in a column of tags (``New York B-LOC`` beside ``Ana NNP B-PER``) is reported
    too. Errors (wrong column count, invalid UTF-8, invalid tags) name the file and line.
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
                                    meta={"source": path.name, "line": lines[0], "doc": doc}, allow_overlap=allow_overlap)
        except TagError as err:
            raise InputError(err.message, source=path, line=lines[err.token_index], example_id=ex_id, hint=err.hint) from None
        except InputError as err:
            raise InputError(err.message, source=path, line=lines[0], example_id=ex_id, hint=err.hint) from None
        words.clear(), tags.clear(), lines.clear()
        return ex

    columns = _ColumnCount(path, separator)
    for lineno, raw in _numbered_lines(path):
        line = raw.rstrip("\r\n")
        if not line.strip():
            ex = flush()
            if ex is not None:
                yield ex
            continue
        if line.split(None, 1)[0] == "-DOCSTART-":  # whatever the separator: "-DOCSTART- -X- O O" too
            ex = flush()
            if ex is not None:
                yield ex
            doc += 1
            continue
        token, tag = _token_and_tag(line.split(separator), path, lineno, token_column, tag_column, columns)
        words.append(token)
        tags.append(tag)
        lines.append(lineno)
    ex = flush()
    columns.check_unused_columns()
    if ex is not None:
        yield ex


class _ColumnCount:
    """The number of columns of the first token line; later token lines must have as many.

    It also watches the columns the reader does not use (POS, chunk): with whitespace separators,
    ``New York B-LOC`` beside ``Ana NNP B-PER`` has the right number of columns but puts ``York``
    where a tag belongs, and the reader would keep ``New`` alone. Tags hold no lower-case letters
    (PTB, UD, chunk tags), so a word in a column of tags is reported at the end of the file.
    """

    def __init__(self, path: Path, separator: str | None) -> None:
        self.path, self.separator = path, separator
        self.expected: int | None = None
        self.first_line = 0
        self._tag_like: Counter[int] = Counter()  # unused column -> values without lower-case letters
        self._word_like: dict[int, list[tuple[int, str, str]]] = {}  # column -> (line, value, token)

    def watch_unused(self, cols: list[str], lineno: int, used: set[int]) -> None:
        """Record whether each unused column of a whitespace-separated line holds a tag or a word."""
        if self.separator is not None or len(cols) < 3:
            return
        for i, value in enumerate(cols):
            if i in used:
                continue
            if any(c.islower() for c in value):
                seen = self._word_like.setdefault(i, [])
                if len(seen) < 3:
                    seen.append((lineno, value, cols[min(used)]))
                else:  # keep a count only
                    seen.append((lineno, "", ""))
            else:
                self._tag_like[i] += 1

    def check_unused_columns(self) -> None:
        """Raise :class:`InputError` when a column of tags holds a few words (a token split by a space)."""
        for col, words in sorted(self._word_like.items()):
            tags = self._tag_like[col]
            if tags < 3 or 3 * len(words) > tags:
                continue  # a column of words (lemmas), not of tags
            lineno, value, token = words[0]
            raise InputError(
                f"column {col + 1} holds {value!r} where the rest of that column holds tags: is "
                f"{token + ' ' + value!r} one token containing a space?", source=self.path, line=lineno,
                hint="write the file with one tab between columns and read it with separator=\"\\t\" (tokens may "
                     "then contain spaces), or join the token's parts")

    def check(self, n: int, lineno: int) -> None:
        """Raise :class:`InputError` when line ``lineno`` has ``n`` columns and the first token line had other."""
        if self.expected is None:
            self.expected, self.first_line = n, lineno
            return
        if n == self.expected:
            return
        if self.separator is None:
            hint = ("a token with a space in it becomes two columns: write the file with one tab between columns "
                    "and read it with separator=\"\\t\" (tokens may then contain spaces), or remove the space; "
                    "otherwise give every token line the same columns")
        else:
            hint = f"give every token line the same {self.expected} columns, separated by {self.separator!r}"
        raise InputError(f"line has {n} columns but the first token line (line {self.first_line}) has "
                         f"{self.expected}", source=self.path, line=lineno, hint=hint)


def _token_and_tag(cols: list[str], path: Path, lineno: int, token_column: int, tag_column: int,
                   columns: _ColumnCount) -> tuple[str, str]:
    """The token and tag of one token line, checked (column count, non-empty token)."""
    try:
        token, tag = cols[token_column], cols[tag_column]
    except IndexError:
        raise InputError(
            f"line has {len(cols)} column(s); expected a token column {token_column} and a tag column {tag_column}",
            source=path, line=lineno,
            hint="write one 'token tag' (or 'token<TAB>tag') per line, the tag last, and a blank line between sentences",
        ) from None
    if len(cols) < 2:
        raise InputError(
            "line has a single column: no tag", source=path, line=lineno,
            hint="every token line needs a tag column (use O for outside)",
        )
    columns.check(len(cols), lineno)
    columns.watch_unused(cols, lineno, {token_column % len(cols), tag_column % len(cols)})
    token = token.strip()
    if not token:
        raise InputError("empty token", source=path, line=lineno, hint="remove the line or give the token text")
    return token, tag.strip()


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line, decoded as UTF-8 (a leading byte-order mark dropped).

    Lines are decoded one by one so that a decoding error names its line instead of crashing in
    codecs. Readers of UTF-8 text files use this (or :func:`read_utf8_text`).
    """
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise not_utf8_error(path, lineno, err.start, raw[err.start], err.reason) from None
            yield lineno, (line.removeprefix("\ufeff") if lineno == 1 else line)


def read_utf8_text(path: Path) -> str:
    """The whole file decoded as UTF-8 (a leading byte-order mark dropped).

    Invalid UTF-8 raises :class:`InputError` naming the file, line and how to re-encode it.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        lineno = data.count(b"\n", 0, err.start) + 1
        raise not_utf8_error(path, lineno, err.start - line_start, data[err.start], err.reason) from None


def not_utf8_error(path: Path, lineno: int, offset: int, byte: int, reason: str) -> InputError:
    """The one-line error for a line that is not UTF-8: where, which byte, and how to re-encode the file.

    ``offset`` is the 0-based byte offset of the bad ``byte`` in its line.
    """
    return InputError(
        f"not valid UTF-8: byte 0x{byte:02X} at byte {offset + 1} of the line ({reason}); the file must be UTF-8",
        source=path, line=lineno,
        hint=f"re-encode it, e.g. iconv -f latin1 -t utf-8 {shlex.quote(str(path))} > "
             f"{shlex.quote(path.stem + '.utf8' + path.suffix)} "
             "(name the file's real encoding instead of latin1 if it is another one)",
    )


def write_conll(examples: list[Example], path: str | Path, *, scheme: Scheme = "IOB2") -> None:
    """Write examples as ``token<TAB>tag`` lines with blank lines between sentences."""
    path = Path(path)
    out = []
    for ex in examples:
        out.extend(f"{w}\t{t}" for w, t in zip(ex.words, ex.tags(scheme)))
        out.append("")
    path.write_text("\n".join(out) + ("\n" if out else ""), encoding="utf-8")
