"""``dsbuild validate DIR``: check a built dataset before pushing it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsbuild.cli._common import EXIT_PROBLEMS, VerboseOption, handle_errors


@handle_errors
def validate(
    dataset_dir: Annotated[Path, typer.Argument(help="A built dataset directory (OUT/NAME/VERSION).")],
    verbose: VerboseOption = False,
) -> None:
    """Check a built dataset: layout, Parquet vs features, counts, card metadata.

    Checks the OUT/NAME/VERSION layout, every Parquet file against the features in
    provenance.json, that inputs = kept + rejected for every split (and that rejects.parquet
    agrees), and the card's metadata against the Hub's allowed values (vendored, offline).
    Exits 1 and lists every problem found; exits 0 when there is none.
    """
    from dsbuild.validate import validate_dataset  # imported here: datasets is slow to import

    problems = validate_dataset(dataset_dir)
    if problems:
        typer.secho(f"{dataset_dir}: {len(problems)} problem(s)", fg=typer.colors.RED, err=True)
        for p in problems:
            typer.echo(f"  - {p}", err=True)
        raise typer.Exit(EXIT_PROBLEMS)
    typer.echo(f"{dataset_dir}: OK")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
