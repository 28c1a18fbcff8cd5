"""``dsbuild push DIR --repo-id ID``: upload a built dataset to the Hub and tag it ``vX.Y.Z``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsbuild.cli._common import VerboseOption, handle_errors


@handle_errors
def push(
    dataset_dir: Annotated[Path, typer.Argument(
        help="A built dataset directory (OUT/NAME/VERSION), as written by `dsbuild build`.")],
    repo_id: Annotated[str, typer.Option(
        "--repo-id", help="Dataset repository on the Hub, as namespace/name; created if it does not exist.")],
    revision: Annotated[str | None, typer.Option(
        "--revision", metavar="BRANCH",
        help="Branch to push to, created from main if missing (default: main). The tag goes on this branch's "
             "new commit.")] = None,
    private: Annotated[bool, typer.Option(
        "--private", help="Create the repository as private (an existing repository keeps its visibility).")] = False,
    create_pr: Annotated[bool, typer.Option(
        "--create-pr", help="Open a pull request against main instead of committing; no version tag is created "
                            "until it is merged and pushed again.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Push even if tag vX.Y.Z already exists, and move the tag to the new commit.")] = False,
    token: Annotated[str | None, typer.Option(
        "--token", envvar=None, show_default=False,
        help="Hub token with write access (default: HF_TOKEN, or the token saved by `hf auth login`).")] = None,
    verbose: VerboseOption = False,
) -> None:
    """Push a built dataset to the Hugging Face Hub, one config at a time, then tag the commit vX.Y.Z.

    The version comes from provenance.json. A version whose tag exists is refused before any upload, unless --force.

    The tag is created only after every file is uploaded: a failed push leaves no tag behind.

    The Hub endpoint is HF_ENDPOINT (default https://huggingface.co).
    """
    from dsbuild.hub import push_dataset  # late import: keeps `dsbuild --help` fast

    result = push_dataset(dataset_dir, repo_id, revision=revision, private=private, create_pr=create_pr,
                          force=force, token=token)
    where = f"{result.repo_id}@{result.revision}"
    typer.echo(f"Pushed {', '.join(result.configs)} (version {result.version}) to {where}, commit {result.commit_sha}")
    if result.tag:
        moved = " (moved from its previous commit)" if result.tag_moved else ""
        typer.echo(f"Tagged {result.tag}{moved}: load it with "
                   f"datasets.load_dataset({result.repo_id!r}, CONFIG, revision={result.tag!r})")
    if result.pr_url:  # push_dataset has logged why there is no tag
        typer.echo(f"Pull request: {result.pr_url}")


def register(app: typer.Typer) -> None:
    app.command("push")(push)
