"""``dsbuild clean OUT``: remove unfinished builds (staging folders) left under an output folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from dsbuild.cli._common import VerboseOption, handle_errors
from dsbuild.errors import DsbuildError


@handle_errors
def clean(
    out: Annotated[Path, typer.Argument(help="An output root given to `dsbuild build --out`.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only list what would be removed.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Remove the staging folders of failed or interrupted builds under OUT (finished datasets stay).

    A staging folder whose build is still running (its lock is held) is left alone.
    """
    from dsbuild.execution.lock import BuildLock, BuildLockedError
    from dsbuild.executor import staging_folders

    if not out.is_dir():
        raise DsbuildError(f"{out} is not a folder; give the --out folder of earlier builds")
    found = staging_folders(out)
    if not found:
        typer.echo(f"{out}: no unfinished builds")
        return
    for staging in found:
        version = staging.name[1:].split(".partial-")[0]
        size = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
        what = f"{staging.relative_to(out)} ({size / 1e6:.1f} MB)"
        if dry_run:
            typer.echo(f"would remove {what}")
            continue
        try:
            with BuildLock(staging.parent / f".{version}.lock", f"{staging.parent.name} {version}"):
                shutil.rmtree(staging)
        except BuildLockedError as err:
            typer.echo(f"kept {what}: {err}")
            continue
        typer.echo(f"removed {what}")


def register(app: typer.Typer) -> None:
    app.command("clean")(clean)
