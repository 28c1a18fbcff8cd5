"""Run a builder: staging, per-split completion markers, accounting, Parquet, rejects, provenance, card.

Layout written for builder NAME at version VERSION::

    OUT/NAME/VERSION/
        README.md                          dataset card (YAML front matter + prose)
        provenance.json                    what was run, on what, with what; timings live only here
        quality.json                       quality figures, when the builder measured any
        rejects.parquet                    every input not kept, with its reason
        CONFIG/SPLIT-00000-of-0000N.parquet

Work happens in ``OUT/NAME/.VERSION.partial-CONFIGHASH/``. Each finished split leaves a marker
there, so a killed build re-run with the same options resumes at the first unfinished split.
The finished directory replaces ``OUT/NAME/VERSION`` with one rename.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

import dsbuild
from dsbuild.builder import BuildContext, Builder, ConfigSpec, Reject
from dsbuild.config import config_hash, options_to_dict
from dsbuild.errors import ConfigError, DsbuildError

log = logging.getLogger(__name__)

MAX_ROWS_PER_SHARD = 100_000
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
REJECT_SCHEMA = pa.schema([
    ("config", pa.string()), ("split", pa.string()), ("id", pa.string()),
    ("reason", pa.string()), ("detail", pa.string()), ("example", pa.string()),
])


class AccountingError(DsbuildError):
    """Inputs read != rows kept + rejects: a builder lost or invented examples."""


@dataclass
class BuildResult:
    path: Path
    counts: dict[str, dict[str, dict[str, int]]]  # config -> split -> {in, out, rejected}
    provenance: dict[str, Any]


def build(builder: Builder, out_dir: str | Path, *, overwrite: bool = False, shard_rows: int = MAX_ROWS_PER_SHARD,
          resume: bool = True) -> BuildResult:
    """Build ``builder`` into ``out_dir/NAME/VERSION`` and return where it went and what it counted.

    Args:
        builder: the builder, created with its resolved options.
        out_dir: output root.
        overwrite: replace an existing ``OUT/NAME/VERSION`` (atomically, once the new build is
            complete); without it an existing version is an error and nothing is touched.
        shard_rows: maximum rows per Parquet shard.
        resume: reuse splits finished by an earlier interrupted run with the same options
            (``False`` discards that staging directory first).
    """
    _check_names(builder)
    out_dir = Path(out_dir)
    final = out_dir / builder.name / builder.version
    if final.exists() and not overwrite:
        raise DsbuildError(f"{final} already exists; pass --overwrite to replace it, or bump the builder version")
    chash = config_hash(builder.options)
    staging = out_dir / builder.name / f".{builder.version}.partial-{chash}"
    if not resume and staging.exists():
        log.info("discarding the unfinished build in %s", staging)
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    ctx = BuildContext(work_dir=staging / "_work")
    ctx.work_dir.mkdir(exist_ok=True)
    started = time.time()

    with ctx.timer("prepare"):
        builder.prepare(ctx)
    configs = builder.configs()
    counts: dict[str, dict[str, dict[str, int]]] = {}
    reject_tables: list[pa.Table] = []
    split_files: dict[str, dict[str, list[str]]] = {}
    for config in configs:
        for split in config.splits:
            marker = staging / "_markers" / f"{config.name}.{split}.json"
            if marker.exists():
                done = json.loads(marker.read_text())
                _restore_context(ctx, done.get("context", {}))
                log.info("resuming: %s/%s already built (%d rows)", config.name, split, done["counts"]["out"])
            else:
                done = _run_split(builder, config, split, ctx, staging, shard_rows)
                done["context"] = _context_snapshot(ctx)
                _atomic_write_text(marker, json.dumps(done, sort_keys=True, default=str))
            counts.setdefault(config.name, {})[split] = done["counts"]
            split_files.setdefault(config.name, {})[split] = done["files"]
            reject_tables.append(pq.read_table(staging / done["rejects"]))
            ctx.facts.setdefault("split_facts", {}).setdefault(config.name, {})[split] = done.get("facts", {})
    with ctx.timer("finish"):
        builder.finish(ctx)

    rejects = pa.concat_tables(reject_tables) if reject_tables else REJECT_SCHEMA.empty_table()
    pq.write_table(rejects, staging / "rejects.parquet")
    for config in configs:  # split-level rejects files are replaced by the one table
        for split in config.splits:
            (staging / "_rejects" / f"{config.name}.{split}.parquet").unlink(missing_ok=True)
    if ctx.quality:
        _atomic_write_text(staging / "quality.json", json.dumps(ctx.quality, indent=2, sort_keys=True) + "\n")
    provenance = _provenance(builder, ctx, configs, counts, split_files, chash, started)
    _atomic_write_text(staging / "provenance.json", json.dumps(provenance, indent=2, sort_keys=True, default=str) + "\n")

    from dsbuild.cards import render_card  # late import: cards import executor helpers

    card = render_card(staging)
    _atomic_write_text(staging / "README.md", card)
    _warn_about_card_metadata(card)
    shutil.rmtree(staging / "_markers", ignore_errors=True)
    shutil.rmtree(staging / "_rejects", ignore_errors=True)
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    if final.exists():
        old = final.with_name(f".{builder.version}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)
    log.info("wrote %s: %d inputs = %d rows kept + %d rejected", final, provenance["totals"]["in"],
             provenance["totals"]["out"], provenance["totals"]["rejected"])
    return BuildResult(final, counts, provenance)


_CONTEXT_PARTS = ("inputs", "models", "seeds", "quality", "facts")


def _context_snapshot(ctx: BuildContext) -> dict[str, Any]:
    """What the builder recorded so far (inputs, models, seeds, quality, facts), JSON-safe.

    Stored in each split marker, so a resumed build still reports what skipped splits recorded.
    """
    snap = {part: getattr(ctx, part) for part in _CONTEXT_PARTS}
    snap["facts"] = {k: v for k, v in ctx.facts.items() if k not in ("split_facts", "current")}
    return json.loads(json.dumps(snap, sort_keys=True, default=str))


def _restore_context(ctx: BuildContext, snap: dict[str, Any]) -> None:
    """Merge a marker's snapshot into ``ctx``; values recorded in this run (e.g. by prepare) win."""
    for part in _CONTEXT_PARTS:
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


def _run_split(builder: Builder, config: ConfigSpec, split: str, ctx: BuildContext, staging: Path, shard_rows: int) -> dict[str, Any]:
    """Generate one split, writing a Parquet shard every ``shard_rows`` rows (memory stays bounded).

    Shards are written under temporary names and get their final ``-0000i-of-0000N`` names once the
    split is complete and its accounting checks out.
    """
    rejects: list[dict[str, Any]] = []
    buffer: list[dict[str, Any]] = []
    tmp_files: list[Path] = []
    n_rows = 0
    read_before = ctx._read
    ctx.facts["current"] = {}
    shard_dir = staging / config.name
    shard_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*shard_dir.glob(f"{split}-*.parquet"), *shard_dir.glob(f"{split}.tmp-*.parquet")]:
        stale.unlink()  # from a run killed before its marker was written

    def flush() -> None:
        path = shard_dir / f"{split}.tmp-{len(tmp_files):05d}.parquet"
        pq.write_table(_rows_to_table(buffer, config, split, builder.name), path)
        tmp_files.append(path)
        buffer.clear()

    with ctx.timer(f"generate/{config.name}/{split}"):
        for item in tqdm(builder.generate(config, split, ctx), desc=f"{builder.name} {config.name}/{split}", unit="ex", leave=False):
            if isinstance(item, Reject):
                rejects.append({"config": config.name, "split": split, "id": item.id, "reason": item.reason,
                                "detail": item.detail, "example": json.dumps(item.example, ensure_ascii=False, sort_keys=True, default=str)
                                if item.example is not None else None})
            else:
                buffer.append(item)
                n_rows += 1
                if len(buffer) >= shard_rows:
                    flush()
    n_in = ctx._read - read_before
    if n_in != n_rows + len(rejects):
        raise AccountingError(
            f"builder {builder.name!r} {config.name}/{split}: read {n_in} inputs but produced {n_rows} rows "
            f"+ {len(rejects)} rejects; every input must end as a row or a Reject (call ctx.read() per input)"
        )
    if buffer or not tmp_files:
        flush()
    files = []
    for i, tmp in enumerate(tmp_files):
        rel = f"{config.name}/{split}-{i:05d}-of-{len(tmp_files):05d}.parquet"
        os.replace(tmp, staging / rel)
        files.append(rel)
    rejects_path = staging / "_rejects" / f"{config.name}.{split}.parquet"
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA), rejects_path)
    return {"counts": {"in": n_in, "out": n_rows, "rejected": len(rejects)}, "files": files,
            "rejects": str(rejects_path.relative_to(staging)), "facts": ctx.facts.pop("current", {})}


def _rows_to_table(rows: list[dict[str, Any]], config: ConfigSpec, split: str, builder_name: str) -> pa.Table:
    """Rows as an Arrow table with the config's Features embedded; a bad row is named, not buried in Arrow."""
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
