"""``dsbuild info NAME``: what a builder makes and which options it takes."""

from __future__ import annotations

from typing import Annotated

import typer

from dsbuild.cli._common import VerboseOption, echo_table, handle_errors, shorten, terminal_width, wrap_text
from dsbuild.cli.list_builders import builder_summary
from dsbuild.config import describe_options
from dsbuild.registry import builders

#: widest TYPE and DEFAULT cells: longer types wrap, longer defaults are cut with "…"
TYPE_WIDTH = 22
DEFAULT_WIDTH = 22


@handle_errors
def info(
    name: Annotated[str, typer.Argument(help="Builder name, as shown by `dsbuild list`.")],
    verbose: VerboseOption = False,
) -> None:
    """Show a builder's description, version, options (type, default, help) and configs.

    A choice option shows its allowed values (reject | keep-partial); long defaults are cut with
    "…". The output fits the terminal's width.
    """
    cls = builders.get(name)
    summary = builder_summary(name, cls)
    width = terminal_width()
    typer.secho(f"{name} {summary['version']}", bold=True)
    doc = (getattr(cls, "description", "") or "").strip()
    if doc:
        _echo_wrapped(doc, width)
    typer.echo("")
    options_cls = getattr(cls, "Options", None)
    if options_cls is not None:
        rows = [[n, t, shorten(repr(d), DEFAULT_WIDTH), h] for n, t, d, h in describe_options(options_cls)]
        if rows:
            typer.echo("Options (set with --set NAME=VALUE or a --config file):")
            echo_table(rows, ["NAME", "TYPE", "DEFAULT", "HELP"], width=width,
                       max_widths={1: TYPE_WIDTH, 2: DEFAULT_WIDTH})
        else:
            typer.echo("Options: none")
        typer.echo("")
    configs = summary["configs"]
    _echo_wrapped("Configs with default options: " + (", ".join(configs) if configs is not None
                                                     else "? (needs options)"), width, indent="  ")
    history = getattr(cls, "history", None) or []
    if history:
        typer.echo("")
        typer.echo("History:")
        for version, change in history:
            _echo_wrapped(f"  {version}: {change}", width, indent="    ")


def _echo_wrapped(text: str, width: int, indent: str = "") -> None:
    """Print ``text`` wrapped to ``width`` columns, continuation lines indented by ``indent``."""
    for line in wrap_text(text, width, indent):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
