"""``dsbuild parallel ...``: fetch parallel text from OPUS for any language pair, list what is available."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Annotated

import typer

from dsbuild.cli._common import VerboseOption, echo_table, handle_errors
from dsbuild.errors import InputError

ApiOption = Annotated[str | None, typer.Option("--api", help="OPUS API address (default: https://opus.nlpl.eu/opusapi/).")]
CacheOption = Annotated[Path | None, typer.Option("--cache-dir", help="Where fetched text is kept "
                                                                       "(default: $DSBUILD_CACHE/parallel).")]


def read_sentences(path: Path) -> list[str]:
    """Sentences to exclude from a file: text (one a line, ``.gz`` ok) or JSONL records.

    A JSONL record gives its ``text``, ``sentence``, ``translation`` and ``tokens`` (joined) fields.
    """
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    except FileNotFoundError:
        raise InputError("file not found", source=path, hint="give an existing file to --exclude") from None
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise InputError(f"cannot read ({type(err).__name__}: {err})", source=path,
                         hint="give UTF-8 text, one sentence a line, or JSONL") from None
    if ".jsonl" not in path.suffixes:
        return [line.strip() for line in text.splitlines() if line.strip()]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise InputError("not a JSON object", source=path, line=n, hint="one JSON object a line") from None
        for key in ("text", "sentence", "translation"):
            if isinstance(rec.get(key), str):
                out.append(rec[key])
        if isinstance(rec.get("tokens"), list):
            out.append(" ".join(map(str, rec["tokens"])))
    return out


@handle_errors
def fetch(
    src: Annotated[str, typer.Argument(help="Source language code as OPUS spells it (en).")],
    tgt: Annotated[str, typer.Argument(help="Target language code (eu).")],
    corpus: Annotated[str | None, typer.Option("--corpus", help="OPUS corpus name (Tatoeba, Europarl, ...). Default: "
                                               "the corpus with most pairs under --max-download-mb.")] = None,
    max_pairs: Annotated[int, typer.Option("--max-pairs", min=0, help="Keep at most this many pairs "
                                           "(file order; 0 = all).")] = 200_000,
    exclude: Annotated[list[Path] | None, typer.Option("--exclude", help="File of sentences being projected (text, one "
                                                       "a line, or JSONL): overlapping pairs are removed. Repeatable.")] = None,
    max_download_mb: Annotated[int, typer.Option("--max-download-mb", min=1, help="Without --corpus: largest "
                                                 "download to choose.")] = 200,
    api: ApiOption = None,
    cache_dir: CacheOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Download sentence pairs for a language pair from OPUS into the cache.

    Keeps the pairs in Moses format, drops empty and over-long pairs and those overlapping the
    --exclude sentences, and writes a manifest (corpus, version, licence, counts) that builders
    name in their cards. Find the text again with dsbuild.parallel.parallel_text(SRC, TGT).
    """
    from dsbuild.parallel import OPUS_API
    from dsbuild.parallel import fetch as run_fetch

    sentences: list[str] = []
    for path in exclude or []:
        sentences += read_sentences(path)
    folder, manifest = run_fetch(src, tgt, corpus=corpus, max_pairs=max_pairs, exclude=sentences,
                                 exclude_name=", ".join(p.name for p in exclude or []), api=api or OPUS_API,
                                 root=cache_dir, max_download_mb=max_download_mb)
    typer.echo(f"{manifest.describe()}\n{folder}")
    echo_table([[k, f"{v:,}"] for k, v in manifest.counts.items()], ["pairs", "count"])


@handle_errors
def corpora(
    src: Annotated[str, typer.Argument(help="Source language code.")],
    tgt: Annotated[str, typer.Argument(help="Target language code.")],
    api: ApiOption = None,
    verbose: VerboseOption = False,
) -> None:
    """List the Moses-format corpora OPUS offers for a language pair (latest releases)."""
    from dsbuild.parallel import OPUS_API, list_corpora

    rows = [[c.corpus, c.version, f"{c.pairs:,}", f"{c.size_kb / 1024:,.1f}"] for c in list_corpora(src, tgt, api=api or OPUS_API)]
    echo_table(rows, ["corpus", "version", "pairs", "MB"])


@handle_errors
def show(
    src: Annotated[str, typer.Argument(help="Source language code.")],
    tgt: Annotated[str, typer.Argument(help="Target language code.")],
    cache_dir: CacheOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Show the parallel text dsbuild would use for a pair (fetched first, else shipped), and the others."""
    from dsbuild.parallel import fetched_stores, parallel_text, shipped_store

    chosen = parallel_text(src, tgt, cache=cache_dir)
    typer.echo(f"used: {chosen.manifest.describe()}  [{chosen.folder}]" if chosen else
               f"no parallel text for {src}-{tgt}: fetch some with `dsbuild parallel fetch {src} {tgt}`")
    found = [*fetched_stores(src, tgt, cache_dir), *filter(None, [shipped_store(src, tgt)])]
    echo_table([[m.origin, m.corpus, m.version, f"{m.pairs:,}", m.licence[:60]] for _, m in found],
               ["origin", "corpus", "version", "pairs", "licence"])


def register(app: typer.Typer) -> None:
    """Add the ``parallel`` command group to ``app``."""
    group = typer.Typer(help="Parallel text for word aligners: fetch from OPUS, list, show.", no_args_is_help=True)
    group.command("fetch")(fetch)
    group.command("corpora")(corpora)
    group.command("show")(show)
    app.add_typer(group, name="parallel")
