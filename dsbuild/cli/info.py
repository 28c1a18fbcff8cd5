"""``dsbuild info NAME``: what a builder makes and which options it takes."""

from __future__ import annotations

from typing import Annotated

import typer

from dsbuild.cli._common import VerboseOption, echo_table, handle_errors
from dsbuild.cli.list_builders import builder_summary
from dsbuild.config import describe_options
from dsbuild.registry import builders


@handle_errors
def info(
    name: Annotated[str, typer.Argument(help="Builder name, as shown by `dsbuild list`.")],
    verbose: VerboseOption = False,
) -> None:
    """Show a builder's description, version, options (type, default, help) and configs."""
    cls = builders.get(name)
    summary = builder_summary(name, cls)
    typer.secho(f"{name} {summary['version']}", bold=True)
    doc = (getattr(cls, "description", "") or "").strip()
    if doc:
        typer.echo(doc)
    typer.echo("")
    options_cls = getattr(cls, "Options", None)
    if options_cls is not None:
        rows = [[n, t, repr(d), h] for n, t, d, h in describe_options(options_cls)]
        if rows:
            typer.echo("Options (set with --set NAME=VALUE or a --config file):")
            echo_table(rows, ["NAME", "TYPE", "DEFAULT", "HELP"])
        else:
            typer.echo("Options: none")
        typer.echo("")
    configs = summary["configs"]
    typer.echo("Configs with default options: " + (", ".join(configs) if configs is not None else "? (needs options)"))
    history = getattr(cls, "history", None) or []
    if history:
        typer.echo("")
        typer.echo("History:")
        for version, change in history:
            typer.echo(f"  {version}: {change}")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
