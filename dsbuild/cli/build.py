"""``dsbuild build NAME``: run a builder into ``OUT/NAME/VERSION``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from dsbuild.cli._common import VerboseOption, echo_table, handle_errors
from dsbuild.config import load_config_file, parse_overrides, resolve_options
from dsbuild.registry import builders

log = logging.getLogger(__name__)


@handle_errors
def build(
    name: Annotated[str, typer.Argument(help="Builder name, as shown by `dsbuild list`.")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", metavar="KEY=VALUE",
        help="Set one builder option (repeatable); values are YAML (3, true, de; a list as a,b). "
             "Overrides --config. See `dsbuild info NAME` for the options.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="YAML (.yaml/.yml) or TOML (.toml) file mapping option names to values.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output root; the dataset goes to OUT/NAME/VERSION.")] = Path("out"),
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace OUT/NAME/VERSION if it exists (otherwise an existing version is an error).")] = False,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Ignore splits finished by an earlier, interrupted run of the same config and rebuild all.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Build a dataset: Parquet per config and split, rejects table, provenance.json and the card.

    Options resolve as defaults < --config file < --set. An interrupted build resumes from its
    finished splits when run again with the same options.
    """
    layers = []  # read the option layers first: their errors need no builder (and no slow imports)
    if config is not None:
        layers.append(load_config_file(config))
    if set_:
        layers.append(parse_overrides(set_))
    cls = builders.get(name)
    options = resolve_options(cls.Options, *layers)
    from dsbuild.executor import build as run_build  # imported here: datasets/pyarrow are slow to import

    result = run_build(cls(options), out, overwrite=overwrite, resume=not fresh)
    rows = [[cfg, split, c["in"], c["out"], c["rejected"]] for cfg, splits in result.counts.items()
            for split, c in splits.items()]
    echo_table(rows, ["CONFIG", "SPLIT", "IN", "KEPT", "REJECTED"])
    typer.echo(f"Wrote {result.path}")


def register(app: typer.Typer) -> None:
    app.command("build")(build)
