"""One shard: its files in the staging folder, and the worker that runs a builder's steps on it.

Layout under ``STAGING/_shards/CONFIG/SPLIT/``::

    00003.input.pkl        the shard's input examples (written by the driver, removed once done)
    00003/part.parquet     its rows, with the config's Features
    00003/rejects.parquet  its rejects
    00003/stats.json       counts, facts, models, seeds, timings
    00003/done             completion marker, written last: a shard with it is never redone

Every file is written under a temporary name and renamed, so a killed worker leaves either a
finished shard or one that is simply run again.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dsbuild.builder import BuildContext, Builder, ConfigSpec, Reject, WorkerInfo
from dsbuild.errors import DsbuildError
from dsbuild.pipeline import Rows, builder_steps, run_steps

log = logging.getLogger(__name__)

REJECT_SCHEMA = pa.schema([
    ("config", pa.string()), ("split", pa.string()), ("id", pa.string()),
    ("reason", pa.string()), ("detail", pa.string()), ("example", pa.string()),
])
#: what a shard records into its context (and a resumed build restores)
CONTEXT_PARTS = ("inputs", "models", "seeds", "quality", "facts", "settings")


class AccountingError(DsbuildError):
    """Inputs read != rows kept + rejects: a builder lost or invented examples."""


class ShardError(DsbuildError):
    """A shard failed; the message names config, split, shard and the reason."""


@dataclass(frozen=True)
class ShardTask:
    """Shard ``index`` of one config and split, holding ``size`` input examples."""

    config: str
    split: str
    index: int
    size: int

    @property
    def label(self) -> str:
        return f"{self.config}/{self.split} shard {self.index}"


def shard_root(staging: Path, config: str, split: str) -> Path:
    return staging / "_shards" / config / split


def shard_dir(staging: Path, task: ShardTask) -> Path:
    return shard_root(staging, task.config, task.split) / f"{task.index:05d}"


def input_path(staging: Path, task: ShardTask) -> Path:
    return shard_root(staging, task.config, task.split) / f"{task.index:05d}.input.pkl"


def is_done(staging: Path, config: str, split: str, index: int) -> bool:
    return (shard_root(staging, config, split) / f"{index:05d}" / "done").exists()


def write_input(staging: Path, task: ShardTask, items: list[Any]) -> None:
    """Store a shard's input examples for whichever worker runs it."""
    atomic_write_bytes(input_path(staging, task), pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))


def read_stats(staging: Path, config: str, split: str, index: int) -> dict[str, Any]:
    return json.loads((shard_root(staging, config, split) / f"{index:05d}" / "stats.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------- the worker
class ShardWorker:
    """Runs shards of one builder in one process (the driver, a worker process or a Ray actor).

    The builder's steps are created and set up once per config and split, so models load once
    per worker, not once per shard.
    """

    def __init__(self, builder: Builder, staging: Path, info: WorkerInfo | None = None,
                 on_step: Callable[[ShardTask, str, int], None] | None = None) -> None:
        self.builder = builder
        self.staging = Path(staging)
        self.builder.worker = info or WorkerInfo()
        self.on_step = on_step
        self._configs = {c.name: c for c in builder.configs()}
        self._steps: dict[tuple[str, str], list[Any]] = {}
        self._work_dir = self.staging / "_work"
        self._work_dir.mkdir(parents=True, exist_ok=True)

    def run(self, task: ShardTask) -> dict[str, Any]:
        """Run one shard and write its files; returns its stats (also in ``stats.json``)."""
        started = time.perf_counter()
        config = self._configs[task.config]
        with input_path(self.staging, task).open("rb") as fh:
            items = pickle.load(fh)
        ctx = BuildContext(work_dir=self._work_dir)
        steps = self._steps_for(config, task.split, ctx)
        on_step = (lambda name, n: self.on_step(task, name, n)) if self.on_step else None
        finals = run_steps(steps, items, ctx, on_step=on_step)
        rows, rejects = split_outputs(finals, task, self.builder.name)
        stats = write_shard(self.staging, task, config, rows, rejects, self.builder.name, ctx, n_in=None,
                            seconds=time.perf_counter() - started)
        input_path(self.staging, task).unlink(missing_ok=True)
        return stats

    def _steps_for(self, config: ConfigSpec, split: str, ctx: BuildContext) -> list[Any]:
        key = (config.name, split)
        if key not in self._steps:
            steps = builder_steps(self.builder, config, split)
            for step in steps:
                step.setup(ctx)
            self._steps[key] = steps
        return self._steps[key]


def split_outputs(finals: list[Any], task: ShardTask, builder_name: str) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Final step values -> rows and rejects, in input order (``Rows`` expand in place)."""
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for value in finals:
        for unit in (value.items if isinstance(value, Rows) else [value]):
            if isinstance(unit, Reject):
                rejects.append(unit)
            elif isinstance(unit, dict):
                rows.append(unit)
            else:
                raise DsbuildError(f"builder {builder_name!r} {task.label}: its last step left a "
                                   f"{type(unit).__name__}, not a row or a Reject (builder bug: end the steps "
                                   f"with a step that makes rows)")
    return rows, rejects


def write_shard(staging: Path, task: ShardTask, config: ConfigSpec, rows: list[dict[str, Any]], rejects: list[Reject],
                builder_name: str, ctx: BuildContext, *, n_in: int | None, seconds: float,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a finished shard's part, rejects and stats, then its completion marker."""
    n_units = len(rows) + len(rejects)
    if n_in is not None and n_in != n_units:
        raise AccountingError(
            f"builder {builder_name!r} {task.config}/{task.split}: read {n_in} inputs but produced {len(rows)} rows "
            f"+ {len(rejects)} rejects; every input must end as a row or a Reject (call ctx.read() per input)")
    out = shard_dir(staging, task)
    out.mkdir(parents=True, exist_ok=True)
    (out / "done").unlink(missing_ok=True)
    atomic_write_table(rows_to_table(rows, config, task.split, builder_name), out / "part.parquet")
    atomic_write_table(rejects_table(rejects, task.config, task.split), out / "rejects.parquet")
    stats = {"task": [task.config, task.split, task.index], "counts": {"in": n_units, "out": len(rows),
             "rejected": len(rejects)}, "context": context_snapshot(ctx),
             "timings": {k: round(v, 3) for k, v in ctx.timings.items()}, "seconds": round(seconds, 3), **(extra or {})}
    atomic_write_bytes(out / "stats.json", json.dumps(stats, sort_keys=True, default=str).encode("utf-8"))
    atomic_write_bytes(out / "done", b"")
    return stats


def rejects_table(rejects: list[Reject], config: str, split: str) -> pa.Table:
    rows = [{"config": config, "split": split, "id": r.id, "reason": r.reason, "detail": r.detail,
             "example": json.dumps(r.example, ensure_ascii=False, sort_keys=True, default=str)
             if r.example is not None else None} for r in rejects]
    return pa.Table.from_pylist(rows, schema=REJECT_SCHEMA)


def rows_to_table(rows: list[dict[str, Any]], config: ConfigSpec, split: str, builder_name: str) -> pa.Table:
    """Rows as an Arrow table with the config's Features embedded; a bad row is named, not buried in Arrow."""
    import datasets

    if not rows:
        return config.features.arrow_schema.empty_table()
    columns = set(config.features)
    for row in rows:  # Dataset.from_list would quietly fill a missing column with nulls
        if not isinstance(row, dict) or set(row) != columns:
            row_id = row.get("id", "?") if isinstance(row, dict) else "?"
            got = f"has columns {sorted(row)}" if isinstance(row, dict) else f"is a {type(row).__name__}, not a dict"
            raise DsbuildError(f"builder {builder_name!r} {config.name}/{split}: row {row_id!r} {got}; the config's "
                               f"features are {sorted(columns)}. Make generate() yield rows matching ConfigSpec.features")
    try:
        return datasets.Dataset.from_list(rows, features=config.features).data.table
    except Exception as first_error:  # find the first row that does not fit, for a useful message
        for row in rows:
            problem = None
            try:
                datasets.Dataset.from_list([row], features=config.features)
            except Exception as err:  # noqa: BLE001 - reported with the row id
                problem = f"does not match the features: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
            if problem:
                row_id = row.get("id", "?")
                raise DsbuildError(f"builder {builder_name!r} {config.name}/{split}: row {row_id!r} {problem}; "
                                   f"make generate() yield rows matching ConfigSpec.features") from None
        raise DsbuildError(f"builder {builder_name!r} {config.name}/{split}: rows could not be converted to Arrow "
                           f"({type(first_error).__name__}: {str(first_error).splitlines()[0][:200]})") from first_error


def context_snapshot(ctx: BuildContext) -> dict[str, Any]:
    """What a builder recorded (inputs, models, seeds, quality, facts), JSON-safe."""
    snap = {part: getattr(ctx, part) for part in CONTEXT_PARTS}
    snap["facts"] = {k: v for k, v in ctx.facts.items() if k not in ("split_facts", "current")}
    return json.loads(json.dumps(snap, sort_keys=True, default=str))


# ---------------------------------------------------------------------- atomic files
@contextmanager
def _temporary_beside(path: Path) -> Iterator[str]:
    """A unique temporary file next to ``path``, renamed onto it when the block succeeds (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a unique temporary file and a rename."""
    with _temporary_beside(path) as tmp:
        Path(tmp).write_bytes(data)


def atomic_write_table(table: pa.Table, path: Path) -> None:
    with _temporary_beside(path) as tmp:
        pq.write_table(table, tmp)
