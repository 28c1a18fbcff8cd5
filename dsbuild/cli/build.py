"""``dsbuild build NAME``: run a builder into ``OUT/NAME/VERSION``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from dsbuild.cli._common import VerboseOption, echo_table, handle_errors
from dsbuild.config import load_config_file, parse_overrides, resolve_options
from dsbuild.registry import builders

DEFAULT_SHARD_SIZE = 1000  # = dsbuild.executor.DEFAULT_SHARD_SIZE (not imported: pyarrow is slow to import)

log = logging.getLogger(__name__)


@handle_errors
def build(
    name: Annotated[str, typer.Argument(help="Builder name, as shown by `dsbuild list`.")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", metavar="KEY=VALUE",
        help="Set one builder option (repeatable); values are YAML (3, true, de; a list as a,b). "
             "Overrides --config. See `dsbuild info NAME` for the options.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", metavar="FILE", help="YAML (.yaml/.yml) or TOML (.toml) file mapping option names to values.")] = None,
    out: Annotated[str, typer.Option("--out", "-o", metavar="DIR", help="Output root; the dataset goes to OUT/NAME/VERSION.")] = "out",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace OUT/NAME/VERSION if it exists (otherwise an existing version is an error).")] = False,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Remove unfinished earlier builds of this version (any options) and rebuild all.")] = False,
    executor: Annotated[str, typer.Option(
        "--executor", "-e", metavar="NAME", help="Where shards run: local (worker processes here) or ray (a Ray cluster).")] = "local",
    workers: Annotated[int, typer.Option(
        "--workers", "-w", metavar="N", help="Worker processes (local) or actors (ray); each loads its models once.")] = 1,
    devices: Annotated[str | None, typer.Option(
        "--devices", metavar="DEV,DEV", help="One device per worker, e.g. cuda:0,cuda:1 (default: the "
                                             "builder's own choice).")] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", metavar="N", help="torch/BLAS threads per worker (default: cores / workers).")] = None,
    shard_size: Annotated[int, typer.Option(
        "--shard-size", metavar="N", help="Input examples per shard: the unit of parallel work and of resume.")] = DEFAULT_SHARD_SIZE,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", metavar="ADDR", help="With --executor ray: the cluster to join (host:port or "
                                              "ray://host:10001; default: RAY_ADDRESS, else a local instance).")] = None,
    allow_empty: Annotated[bool, typer.Option(
        "--allow-empty", help="Write the dataset even if it keeps no rows (otherwise that is an error).")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Build a dataset: Parquet per config and split, rejects table, provenance.json and the card.

    Options resolve as defaults < --config file < --set.

    Big inputs run shard by shard, on --workers processes or a Ray cluster.

    An interrupted build resumes from its finished shards when run again with the same options.
    """
    layers = []  # read the option layers first: their errors need no builder (and no slow imports)
    if config is not None:
        layers.append(load_config_file(config))
    if set_:
        layers.append(parse_overrides(set_))
    cls = builders.get(name)
    options = resolve_options(cls.Options, *layers)
    from dsbuild.executor import build as run_build  # imported here: datasets/pyarrow are slow to import

    result = run_build(cls(options), out, overwrite=overwrite, resume=not fresh, executor=executor, workers=workers,
                       devices=devices, threads=threads, shard_size=shard_size, ray_address=ray_address,
                       allow_empty=allow_empty)
    rows = [[cfg, split, c["in"], c["out"], c["rejected"]] for cfg, splits in result.counts.items()
            for split, c in splits.items()]
    echo_table(rows, ["CONFIG", "SPLIT", "IN", "KEPT", "REJECTED"])
    typer.echo(f"Wrote {result.path}")


def register(app: typer.Typer) -> None:
    app.command("build")(build)
