"""Run a builder: lock, staging, shards, executors, accounting, Parquet, rejects, provenance, card.

Layout written for builder NAME at version VERSION::

    OUT/NAME/VERSION/
        README.md                          dataset card (YAML front matter + prose)
        provenance.json                    what was run, on what, with what; timings live only here
        quality.json                       quality figures, when the builder measured any
        rejects.parquet                    every input not kept, with its reason
        CONFIG/SPLIT-00000-of-0000N.parquet

How a build runs:

1. **Lock** ``OUT/NAME/.VERSION.lock`` (:mod:`dsbuild.execution.lock`): one build of a version
   into one folder at a time.
2. **Stage** in ``OUT/NAME/.VERSION.partial-HASH/`` (HASH: the options and the shard size), so a
   re-run with the same options resumes; staging folders of other options are listed.
3. **Prepare** (``Builder.prepare``) once, in this process.
4. **Shards.** A sharded builder's source is cut into shards of ``shard_size`` examples, each
   run through its steps by the executor (``local`` with N processes, ``ray``); a small builder's
   ``generate`` runs here as one shard per split. Every shard leaves its part, rejects, stats and
   a completion marker (:mod:`dsbuild.execution.shards`); finished shards are never redone.
5. **Assemble** in shard order: rows re-cut into files of ``shard_rows``, one rejects table, facts
   summed, so the bytes do not depend on the number of workers or on the executor.
6. ``Builder.finish``, provenance, card, and one rename onto ``OUT/NAME/VERSION``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

import dsbuild
from dsbuild.builder import BuildContext, Builder, ConfigSpec, Reject
from dsbuild.config import config_hash, options_to_dict
from dsbuild.errors import ConfigError, DsbuildError
from dsbuild.execution.base import Executor, make_executor
from dsbuild.execution.lock import BuildLock
from dsbuild.execution.progress import BuildProgress
from dsbuild.pipeline import keep_first, merge_facts
from dsbuild.execution.shards import (CONTEXT_PARTS, REJECT_SCHEMA, AccountingError, ShardTask, atomic_write_bytes,
                                      is_done, read_stats, shard_root, write_input, write_shard)

log = logging.getLogger(__name__)

MAX_ROWS_PER_SHARD = 100_000
#: input examples per shard: big enough to keep model batches full, small enough that a lost
#: shard is cheap to redo (a minute or two of NLLB on one GPU)
DEFAULT_SHARD_SIZE = 1000
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REJECT_ROW_GROUP = 100_000

__all__ = ["AccountingError", "BuildResult", "DEFAULT_SHARD_SIZE", "REJECT_SCHEMA", "build", "staging_folders"]


@dataclass
class BuildResult:
    path: Path
    counts: dict[str, dict[str, dict[str, int]]]  # config -> split -> {in, out, rejected}
    provenance: dict[str, Any]


def build(builder: Builder, out_dir: str | Path, *, overwrite: bool = False, shard_rows: int = MAX_ROWS_PER_SHARD,
          resume: bool = True, executor: str | Executor = "local", workers: int = 1,
          devices: list[str] | str | None = None, threads: int | None = None,
          shard_size: int = DEFAULT_SHARD_SIZE, ray_address: str | None = None,
          progress: bool = True, allow_empty: bool = False) -> BuildResult:
    """Build ``builder`` into ``out_dir/NAME/VERSION`` and return where it went and what it counted.

    Args:
        builder: the builder, created with its resolved options.
        out_dir: output root.
        overwrite: replace an existing ``OUT/NAME/VERSION`` (atomically, once the new build is
            complete); without it an existing version is an error and nothing is touched.
        shard_rows: maximum rows per Parquet file.
        resume: reuse shards finished by an earlier interrupted run with the same options
            (``False`` first removes every unfinished build of this version, ``--fresh``).
        executor: ``"local"`` (worker processes on this machine), ``"ray"`` (a Ray cluster), or an
            :class:`~dsbuild.execution.base.Executor`.
        workers: worker processes (local) or actors (ray); each loads its models once.
        devices: one device per worker (``["cuda:0", "cuda:1"]`` or ``"cuda:0,cuda:1"``).
        threads: torch/BLAS threads per worker (default: the cores shared out evenly; with one
            local worker, left as they are).
        shard_size: input examples per shard (sharded builders).
        ray_address: with ``executor="ray"``, the cluster to join (default: a running local
            instance, else a new one).
        progress: show a progress bar (terminal) or periodic log lines.
        allow_empty: write a dataset that keeps no rows; without it a build whose inputs are empty
            or all rejected fails with one line saying why (its finished shards stay for a re-run).
    """
    _check_names(builder)
    out_dir = _check_out(out_dir)
    shard_size = _check_shard_size(shard_size)
    runner = _executor(executor, workers=workers, devices=devices, threads=threads, ray_address=ray_address)
    final = out_dir / builder.name / builder.version
    with BuildLock(out_dir / builder.name / f".{builder.version}.lock", f"{builder.name} {builder.version}"):
        if final.exists() and not overwrite:
            raise DsbuildError(f"{final} already exists; pass --overwrite to replace it, or bump the builder version")
        staging = _staging(builder, out_dir, shard_size, resume)
        try:
            return _build_locked(builder, final, staging, runner, shard_rows=shard_rows, shard_size=shard_size,
                                 progress=progress, allow_empty=allow_empty)
        except BaseException:
            if staging.exists() and not any(staging.glob("_shards/*/*/*/done")):
                shutil.rmtree(staging, ignore_errors=True)  # nothing finished: leave no clutter behind
            raise


def staging_folders(out_dir: str | Path, name: str | None = None) -> list[Path]:
    """Unfinished builds (staging folders) under ``out_dir``, for ``dsbuild clean`` and warnings."""
    root = Path(out_dir)
    pattern = f"{name}/.*.partial-*" if name else "*/.*.partial-*"
    return sorted(p for p in root.glob(pattern) if p.is_dir())


def _check_out(out_dir: str | Path) -> Path:
    if out_dir is None or not str(out_dir).strip():
        raise ConfigError("--out is empty; give the output folder, e.g. --out ./out")
    return Path(out_dir)


def _check_shard_size(shard_size: Any) -> int:
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ConfigError(f"--shard-size must be a whole number >= 1 (input examples per shard), not {shard_size!r}")
    return shard_size


def _executor(executor: str | Executor, **options: Any) -> Executor:
    if isinstance(executor, Executor):
        return executor
    address = options.pop("ray_address")
    if address and executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    if executor == "ray":
        options["address"] = address
    return make_executor(executor, **options)


def _staging(builder: Builder, out_dir: Path, shard_size: int, resume: bool) -> Path:
    """This build's staging folder; lists (or with ``resume=False`` removes) unfinished builds."""
    chash = config_hash(builder.options)
    key = f"{chash}-s{shard_size}" if builder.sharded else chash
    staging = out_dir / builder.name / f".{builder.version}.partial-{key}"
    others = [p for p in staging_folders(out_dir, builder.name)
              if p.name.startswith(f".{builder.version}.partial-")]
    if not resume:
        for old in others:
            log.info("--fresh: removing the unfinished build %s", old)
            shutil.rmtree(old, ignore_errors=True)
    else:
        left = [p.name for p in others if p != staging]
        if left:
            log.warning("unfinished builds of %s %s with other options in %s: %s (remove them with --fresh or "
                        "`dsbuild clean %s`)", builder.name, builder.version, out_dir / builder.name, ", ".join(left), out_dir)
        if staging.exists():
            log.info("resuming the unfinished build with the same options")
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def _build_locked(builder: Builder, final: Path, staging: Path, runner: Executor, *, shard_rows: int,
                  shard_size: int, progress: bool, allow_empty: bool) -> BuildResult:
    """The build proper, under the lock: prepare, shards, assembly, finish, outputs, publish."""
    ctx = BuildContext(work_dir=staging / "_work")
    ctx.work_dir.mkdir(exist_ok=True)
    started = time.time()
    with ctx.timer("prepare"):
        builder.prepare(ctx)
    configs = builder.configs()
    shard_counts = _run_shards(builder, configs, staging, runner, ctx, shard_size, progress)
    counts, split_files = _assemble(builder, configs, staging, shard_counts, ctx, shard_rows)
    if not allow_empty:
        _refuse_empty(builder, counts, staging)
    with ctx.timer("finish"):
        builder.finish(ctx)
    provenance = _provenance(builder, ctx, configs, counts, split_files, config_hash(builder.options), started)
    provenance["execution"] = {**runner.describe(), "shard_size": shard_size if builder.sharded else None,
                               "shards": sum(shard_counts.values())}
    _write_outputs(staging, ctx, provenance)
    _publish(staging, final)
    log.info("wrote %s: %d inputs = %d rows kept + %d rejected", final, provenance["totals"]["in"],
             provenance["totals"]["out"], provenance["totals"]["rejected"])
    return BuildResult(final, counts, provenance)


def _run_shards(builder: Builder, configs: list[ConfigSpec], staging: Path, runner: Executor, ctx: BuildContext,
                shard_size: int, progress: bool) -> dict[tuple[str, str], int]:
    """Run every unfinished shard (sharded builders on the executor, small ones here); shards per split."""
    bar = BuildProgress(builder.name, _total(builder, configs), enabled=progress)
    shard_counts: dict[tuple[str, str], int] = {}
    try:
        if builder.sharded:
            tasks = _tasks(builder, configs, staging, shard_size, shard_counts, bar)
            runner.run(builder, staging, tasks, on_done=lambda task, stats: bar.advance(task.size),
                       on_step=lambda task, name, n: bar.set_phase(f"{task.label}: {name} ({n} examples)"))
        else:
            for config in configs:
                for split in config.splits:
                    _run_generate(builder, config, split, ctx, staging, bar)
                    shard_counts[(config.name, split)] = 1
    finally:
        bar.close()
    return shard_counts


def _write_outputs(staging: Path, ctx: BuildContext, provenance: dict[str, Any]) -> None:
    """quality.json, provenance.json and the card; then the scratch folders go."""
    from dsbuild.cards import render_card  # late import: cards import executor helpers

    if ctx.quality:
        _atomic_write_text(staging / "quality.json", json.dumps(ctx.quality, indent=2, sort_keys=True) + "\n")
    _atomic_write_text(staging / "provenance.json", json.dumps(provenance, indent=2, sort_keys=True, default=str) + "\n")
    card = render_card(staging)
    _atomic_write_text(staging / "README.md", card)
    _warn_about_card_metadata(card)
    for scratch in ("_shards", "_work"):
        shutil.rmtree(staging / scratch, ignore_errors=True)


def _refuse_empty(builder: Builder, counts: dict[str, dict[str, dict[str, int]]], staging: Path) -> None:
    """A build that keeps no row is an error (never a silent 0-row success), unless allowed."""
    n_in = sum(c["in"] for splits in counts.values() for c in splits.values())
    n_out = sum(c["out"] for splits in counts.values() for c in splits.values())
    if n_out:
        return
    if not n_in:
        why = "its input holds no examples (an empty file, or options that select nothing)"
    else:
        reasons = pq.read_table(staging / "rejects.parquet", columns=["reason"]).column("reason").to_pylist()
        top = ", ".join(f"{r} {n}" for r, n in sorted(Counter(reasons).items(), key=lambda x: (-x[1], x[0]))[:3])
        why = f"all {n_in} inputs were rejected ({top})"
    raise DsbuildError(f"{builder.name}: the build kept 0 rows: {why}; check the input and the options "
                       f"(`dsbuild info {builder.name}`), or pass --allow-empty to write an empty dataset")


def _publish(staging: Path, final: Path) -> None:
    """Replace ``final`` with ``staging`` (one rename when there is nothing to replace)."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)


def _total(builder: Builder, configs: list[ConfigSpec]) -> int | None:
    if not builder.sharded:
        return None
    counts = [builder.count(c, s) for c in configs for s in c.splits]
    return None if any(n is None for n in counts) else sum(counts)  # type: ignore[misc]


# ---------------------------------------------------------------------- shards
def _tasks(builder: Builder, configs: list[ConfigSpec], staging: Path, shard_size: int,
           shard_counts: dict[tuple[str, str], int], bar: BuildProgress) -> Iterator[ShardTask]:
    """Cut each source into shards, lazily; write the inputs of unfinished shards, skip finished ones."""
    for config in configs:
        for split in config.splits:
            source = iter(builder.source(config, split))
            index = 0
            while True:
                items = list(islice(source, shard_size))
                if not items:
                    break
                task = ShardTask(config.name, split, index, len(items))
                if is_done(staging, config.name, split, index):
                    bar.skip(len(items))
                else:
                    write_input(staging, task, items)
                    yield task
                index += 1
                shard_counts[(config.name, split)] = index
            shard_counts.setdefault((config.name, split), 0)


def _run_generate(builder: Builder, config: ConfigSpec, split: str, ctx: BuildContext, staging: Path,
                  bar: BuildProgress) -> None:
    """A small builder's split as one shard, run here: ``generate`` with the build's own context."""
    task = ShardTask(config.name, split, 0, 0)
    if is_done(staging, config.name, split, 0):
        stats = read_stats(staging, config.name, split, 0)
        _restore_context(ctx, stats.get("context", {}))
        log.info("resuming: %s/%s already built (%d rows)", config.name, split, stats["counts"]["out"])
        bar.skip(stats["counts"]["in"])
        return
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    read_before = ctx._read
    ctx.facts["current"] = {}  # what generate() records for this split only
    t0 = time.perf_counter()
    with ctx.timer(f"generate/{config.name}/{split}"):
        for item in builder.generate(config, split, ctx):
            (rejects if isinstance(item, Reject) else rows).append(item)
    current = json.loads(json.dumps(ctx.facts.pop("current", {}), sort_keys=True, default=str))
    write_shard(staging, task, config, rows, rejects, builder.name, ctx, n_in=ctx._read - read_before,
                seconds=time.perf_counter() - t0, extra={"split_facts": current})
    bar.advance(len(rows) + len(rejects))


# ---------------------------------------------------------------------- assembly
def _assemble(builder: Builder, configs: list[ConfigSpec], staging: Path, shard_counts: dict[tuple[str, str], int],
              ctx: BuildContext, shard_rows: int) -> tuple[dict[str, dict[str, dict[str, int]]], dict[str, dict[str, list[str]]]]:
    """Join the shards in order: Parquet files, the rejects table, counts and facts."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    split_files: dict[str, dict[str, list[str]]] = {}
    # one rejects file, in row groups of a fixed size, so it does not depend on the shard size
    rejects_out = _RowGroupWriter(staging, ["rejects.parquet"], REJECT_SCHEMA, rows_per_file=sys.maxsize,
                                  group_rows=_REJECT_ROW_GROUP)
    for config in configs:
        for split in config.splits:
            n_shards = shard_counts.get((config.name, split), 0)
            stats = [read_stats(staging, config.name, split, i) for i in range(n_shards)]
            counts.setdefault(config.name, {})[split] = {
                k: sum(s["counts"][k] for s in stats) for k in ("in", "out", "rejected")}
            split_facts = _merge_stats(ctx, stats, sharded=builder.sharded)
            ctx.facts.setdefault("split_facts", {}).setdefault(config.name, {})[split] = split_facts
            _check_unique_ids(builder, config, split, staging, n_shards)
            split_files.setdefault(config.name, {})[split] = _write_split(staging, config, split, n_shards, shard_rows)
            for i in range(n_shards):
                rejects_out.add(pq.read_table(shard_root(staging, config.name, split) / f"{i:05d}" / "rejects.parquet"))
    rejects_out.close()
    return counts, split_files


def _check_unique_ids(builder: Builder, config: ConfigSpec, split: str, staging: Path, n_shards: int) -> None:
    """Two rows with one id would be silently ambiguous downstream: an error naming the ids and the fix.

    Ids are hashed to 8 bytes per row (memory stays small for 10^7 rows); the duplicated ones are
    then looked up by name in a second pass.
    """
    import hashlib

    import numpy as np

    if "id" not in config.features:
        return
    parts = [shard_root(staging, config.name, split) / f"{i:05d}" / "part.parquet" for i in range(n_shards)]

    def ids() -> Iterator[str]:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(columns=["id"], batch_size=10_000):
                yield from batch.column(0).to_pylist()

    def h(value: str) -> int:
        return int.from_bytes(hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).digest(), "little")

    hashes = np.fromiter((h(i) for i in ids()), dtype=np.uint64)
    values, counts = np.unique(hashes, return_counts=True)
    repeated = set(values[counts > 1].tolist())
    if not repeated:
        return
    seen: dict[str, int] = {}
    for value in ids():
        if h(value) in repeated:
            seen[value] = seen.get(value, 0) + 1
    dup = sorted((k for k, n in seen.items() if n > 1), key=lambda k: (-seen[k], k))
    if not dup:  # hash collisions only
        return
    more = f" (and {len(dup) - 1} more duplicated ids)" if len(dup) > 1 else ""
    raise DsbuildError(f"{builder.name} {config.name}/{split}: example id {dup[0]!r} is used by {seen[dup[0]]} rows{more}; "
                       f"ids must be unique: fix the ids in the input (or drop the id field so they are numbered)")


def _write_split(staging: Path, config: ConfigSpec, split: str, n_shards: int, shard_rows: int) -> list[str]:
    """Stream the shard parts of a split into files of ``shard_rows`` rows, in row groups of a fixed
    size (so memory stays bounded and the bytes depend on neither the shard size nor the workers)."""
    root = shard_root(staging, config.name, split)
    parts = [root / f"{i:05d}" / "part.parquet" for i in range(n_shards)]
    total = sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
    n_files = max(1, -(-total // shard_rows))
    names = [f"{config.name}/{split}-{i:05d}-of-{n_files:05d}.parquet" for i in range(n_files)]
    (staging / config.name).mkdir(parents=True, exist_ok=True)
    schema = config.features.arrow_schema
    files = _RowGroupWriter(staging, names, schema, shard_rows)
    for part in parts:
        for batch in pq.ParquetFile(part).iter_batches(batch_size=ROW_GROUP_ROWS):
            files.add(pa.Table.from_batches([batch]).cast(schema))
    files.close()
    return names


#: rows per Parquet row group in published files (datasets' own writer batch size)
ROW_GROUP_ROWS = 1000


class _RowGroupWriter:
    """Writes rows into ``names`` in turn, ``rows_per_file`` each, in row groups of ``group_rows``."""

    def __init__(self, staging: Path, names: list[str], schema: pa.Schema, rows_per_file: int,
                 group_rows: int = ROW_GROUP_ROWS) -> None:
        self.staging, self.names, self.schema, self.rows_per_file = staging, names, schema, rows_per_file
        self.group_rows = group_rows
        self.pending: list[pa.Table] = []
        self.buffered = 0
        self.file_index = 0
        self.file_rows = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self.pending.append(table)
            self.buffered += table.num_rows
        while self.buffered >= self._next_group_size():
            self._write_group(self._next_group_size())

    def close(self) -> None:
        while self.buffered:
            self._write_group(min(self.buffered, self._next_group_size()))
        if self.writer is None and self.file_index == 0:  # an empty split: one empty file with the features
            self._open()
        self._finish_file()

    def _next_group_size(self) -> int:
        return min(self.group_rows, self.rows_per_file - self.file_rows)

    def _write_group(self, n: int) -> None:
        table = pa.concat_tables(self.pending)
        group, rest = table.slice(0, n).combine_chunks(), table.slice(n)
        self.pending, self.buffered = ([rest] if rest.num_rows else []), rest.num_rows
        if self.writer is None:
            self._open()
        assert self.writer is not None
        self.writer.write_table(group, row_group_size=n)
        self.file_rows += n
        if self.file_rows == self.rows_per_file:
            self._finish_file()

    def _open(self) -> None:
        self.tmp = self.staging / (self.names[self.file_index] + ".tmp")
        self.writer = pq.ParquetWriter(self.tmp, self.schema)

    def _finish_file(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        os.replace(self.tmp, self.staging / self.names[self.file_index])
        self.writer, self.file_index, self.file_rows = None, self.file_index + 1, 0


def _merge_stats(ctx: BuildContext, stats: list[dict[str, Any]], *, sharded: bool) -> dict[str, Any]:
    """Fold shard stats into the build context in shard order; returns the split's facts."""
    split_facts: dict[str, Any] = {}
    for s in stats:
        snap = s.get("context", {})
        if not sharded:  # generate() wrote into the build's own context: only restore what a resume lost
            _restore_context(ctx, snap)
            split_facts = s.get("split_facts", {})
            continue
        for key, seconds in s.get("timings", {}).items():  # summed over workers: CPU-ish seconds
            ctx.timings[key] = ctx.timings.get(key, 0.0) + seconds
        for part in ("inputs", "models", "seeds"):
            for key, value in (snap.get(part) or {}).items():
                getattr(ctx, part).setdefault(key, value)
        merge_facts(ctx.quality, snap.get("quality") or {})
        merge_facts(split_facts, snap.get("facts") or {})
        keep_first(ctx.facts, snap.get("settings") or {})
    return split_facts


def _restore_context(ctx: BuildContext, snap: dict[str, Any]) -> None:
    """Merge a shard's snapshot into ``ctx``; values recorded in this run (e.g. by prepare) win."""
    for part in CONTEXT_PARTS:
        target = getattr(ctx, part)
        for key, value in (snap.get(part) or {}).items():
            target.setdefault(key, value)


def _warn_about_card_metadata(card: str) -> None:
    """Log metadata values the Hub would reject, so a builder author hears about them at build time."""
    from dsbuild.cards import parse_front_matter, validate_metadata

    meta, _ = parse_front_matter(card)
    for problem in validate_metadata(meta):
        log.warning("card %s (fix the builder's info(); `dsbuild validate` will report it)", problem)


def _check_names(builder: Builder) -> None:
    """Versions are semver and names are path-safe, because both end up in paths and tags."""
    if not _SEMVER.match(str(getattr(builder, "version", ""))):
        raise ConfigError(f"builder {builder.name!r} has version {getattr(builder, 'version', None)!r}; "
                          f"use semver x.y.z (e.g. 1.0.0)")
    if not _SAFE_NAME.match(builder.name):
        raise ConfigError(f"builder name {builder.name!r} must be letters, digits, '.', '_' or '-'")


def _provenance(builder: Builder, ctx: BuildContext, configs: list[ConfigSpec], counts: dict, split_files: dict,
                chash: str, started: float) -> dict[str, Any]:
    totals = {k: sum(c[k] for splits in counts.values() for c in splits.values()) for k in ("in", "out", "rejected")}
    return {
        "dsbuild": {"version": dsbuild.__version__, "git_commit": _git_commit()},
        "builder": {"name": builder.name, "version": builder.version, "description": builder.description,
                    "history": [list(h) for h in builder.history], "card_template": builder.card_template},
        "config": options_to_dict(builder.options),
        "config_hash": chash,
        "info": builder.info().to_dict(),
        "configs": [{"name": c.name, "description": c.description, "language": c.language, "splits": c.splits,
                     "features": c.features.to_dict(), "files": split_files.get(c.name, {})} for c in configs],
        "counts": counts,
        "totals": totals,
        "inputs": sorted(ctx.inputs.values(), key=lambda d: d["path"]),
        "models": sorted(ctx.models.values(), key=lambda d: d["name"]),
        "seeds": ctx.seeds,
        "facts": ctx.facts,
        "quality": ctx.quality,
        "timings": {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                    "seconds": {k: round(v, 3) for k, v in ctx.timings.items()},
                    "total_seconds": round(time.time() - started, 3)},
        "environment": {"python": platform.python_version(), "datasets": datasets.__version__},
    }


def _git_commit() -> str | None:
    """The commit of the dsbuild checkout, when running from one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(dsbuild.__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
