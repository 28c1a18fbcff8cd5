"""``dsbuild card DIR``: re-render a built dataset's README.md from its recorded facts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsbuild.cli._common import EXIT_PROBLEMS, VerboseOption, fail, handle_errors


@handle_errors
def card(
    dataset_dir: Annotated[Path, typer.Argument(help="A built dataset directory (OUT/NAME/VERSION).")],
    check: Annotated[bool, typer.Option(
        "--check", help="Do not write; exit 1 if README.md differs from the freshly rendered card.")] = False,
    stdout: Annotated[bool, typer.Option("--stdout", help="Print the card instead of writing README.md.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Re-render README.md from provenance.json, quality.json and the Parquet files.

    Use it after editing a card template, or after a builder's quality figures changed.
    """
    from dsbuild.cards import render_card, write_card  # imported here: datasets is slow to import

    if check:
        from dsbuild.io.conll import read_utf8_text  # a README.md that is not UTF-8: one line, not a traceback

        current = dataset_dir / "README.md"
        if not current.is_file() or read_utf8_text(current) != render_card(dataset_dir):
            raise fail(f"{current} is out of date; run `dsbuild card {dataset_dir}`", EXIT_PROBLEMS)
        typer.echo(f"{current} is up to date")
        return
    if stdout:
        typer.echo(render_card(dataset_dir), nl=False)
        return
    typer.echo(f"Wrote {write_card(dataset_dir)}")


def register(app: typer.Typer) -> None:
    app.command("card")(card)
