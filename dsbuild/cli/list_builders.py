"""``dsbuild list``: the registered builders with versions, configs and one-line descriptions."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import typer

from dsbuild.cli._common import VerboseOption, echo_table, handle_errors
from dsbuild.registry import builders

log = logging.getLogger(__name__)


def builder_summary(name: str, cls: Any) -> dict[str, Any]:
    """Name, version, config names (``None`` when they cannot be computed without options) and description."""
    configs: list[str] | None
    try:
        configs = [c.name for c in cls().configs()]
    except Exception as err:  # noqa: BLE001 - a builder that needs options still gets listed
        log.debug("builder %s: configs need options (%s)", name, err)
        configs = None
    description = (getattr(cls, "description", "") or "").strip().splitlines()
    return {"name": name, "version": getattr(cls, "version", "?"), "configs": configs,
            "description": description[0] if description else ""}


@handle_errors
def list_builders(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """List the registered builders with their versions, configs and descriptions.

    Configs are those of a builder created with default options; '?' means the builder needs
    options (for example a data path) before it can say which configs it makes.
    """
    rows = [builder_summary(name, cls) for name, cls in builders.items()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("No builders registered.")
        return
    echo_table([[r["name"], r["version"], _configs_cell(r["configs"]), r["description"]] for r in rows],
               ["NAME", "VERSION", "CONFIGS", "DESCRIPTION"])
    typer.echo("\n`dsbuild info NAME` shows a builder's options; `dsbuild list --json` lists every config.")


def _configs_cell(configs: list[str] | None, width: int = 40) -> str:
    """Config names, shortened to about ``width`` characters with a count of those left out."""
    if configs is None:
        return "?"
    shown: list[str] = []
    for i, name in enumerate(configs):
        if shown and len(",".join([*shown, name])) > width:
            return ",".join(shown) + f" (+{len(configs) - i} more)"
        shown.append(name)
    return ",".join(shown)


def register(app: typer.Typer) -> None:
    app.command("list")(list_builders)
