"""Check a built dataset directory: layout, Parquet vs features, accounting, card metadata.

:func:`validate_dataset` returns a list of problems (empty when the dataset is sound); ``dsbuild
validate DIR`` prints them and exits non-zero. Nothing here touches the network.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq

from dsbuild.cards import (UnreadableParquetError, parse_front_matter, read_json_file, render_card, split_files,
                           unreadable_parquet, validate_metadata)
from dsbuild.errors import DsbuildError

_SHARD = re.compile(r"^(?P<split>[\w.]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def validate_dataset(dataset_dir: str | Path) -> list[str]:
    """Every problem found in ``dataset_dir`` (``OUT/NAME/VERSION``), as one human-readable line each."""
    d = Path(dataset_dir)
    if not d.is_dir():
        return [f"{d}: not a directory"]
    problems: list[str] = []
    for name in ("provenance.json", "README.md", "rejects.parquet"):
        if not (d / name).is_file():
            problems.append(f"{name} is missing (rebuild the dataset with `dsbuild build`)")
    if not (d / "provenance.json").is_file():
        return problems
    try:
        prov = read_json_file(d / "provenance.json", "provenance.json")
    except DsbuildError as err:
        return problems + [str(err)]
    if not isinstance(prov, dict):
        return problems + [f"provenance.json holds a JSON {type(prov).__name__}, not an object; rebuild the dataset"]

    builder = prov.get("builder", {}) if isinstance(prov.get("builder"), dict) else {}
    version = str(builder.get("version", ""))
    if not _SEMVER.match(version):
        problems.append(f"builder version {version!r} is not semver x.y.z")
    elif d.name != version:
        problems.append(f"directory name {d.name!r} does not match the builder version {version!r} (expected OUT/NAME/VERSION)")

    if (d / "quality.json").is_file():
        try:
            read_json_file(d / "quality.json", "quality.json")
        except DsbuildError as err:
            problems.append(str(err))
    for check in (_check_configs, _check_accounting, _check_card):
        try:
            problems += check(d, prov)
        except (KeyError, TypeError, AttributeError, ValueError) as err:  # a hand-edited or foreign provenance.json
            problems.append(f"provenance.json is malformed ({check.__name__[7:]} check stopped at "
                            f"{type(err).__name__}: {err}); rebuild the dataset")
    return problems


def _check_configs(d: Path, prov: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    configs = prov.get("configs") or []
    if not configs:
        problems.append("provenance.json lists no configs")
    known_dirs = set()
    for config in configs:
        name = config["name"]
        known_dirs.add(name)
        try:
            expected = datasets.Features.from_dict(config["features"])
        except Exception as err:  # noqa: BLE001 - reported, not raised
            problems.append(f"config {name}: features in provenance.json cannot be read ({err})")
            continue
        listed: set[str] = set()
        for split in config["splits"]:
            files = split_files(d, config, split)
            listed |= set(files)
            if not files:
                problems.append(f"config {name} split {split}: no Parquet files")
                continue
            ns = set()
            rows = 0
            unreadable = False
            for rel in files:
                path = d / rel
                m = _SHARD.match(Path(rel).name)
                if Path(rel).parent.name != name or not m or m.group("split") != split:
                    problems.append(f"{rel}: not named {name}/{split}-0000i-of-0000N.parquet")
                elif m:
                    ns.add(m.group("n"))
                if not path.is_file():
                    problems.append(unreadable_parquet(rel, FileNotFoundError(errno.ENOENT, "missing"), _builder_name(prov)))
                    unreadable = True
                    continue
                problem = _unreadable(path, rel, _builder_name(prov))
                if problem:
                    problems.append(problem)
                    unreadable = True
                    continue
                schema = pq.read_schema(path)
                rows += pq.read_metadata(path).num_rows
                if schema.metadata is None or b"huggingface" not in schema.metadata:
                    problems.append(f"{rel}: no embedded datasets.Features (schema metadata 'huggingface')")
                    continue
                actual = datasets.Features.from_arrow_schema(schema)
                if actual != expected:
                    problems.append(f"{rel}: features differ from provenance.json: {_diff_features(expected, actual)}")
            if len(ns) > 1 or (ns and int(next(iter(ns))) != len(files)):
                problems.append(f"config {name} split {split}: shard names say of-{sorted(ns)} but there are {len(files)} files")
            out = prov.get("counts", {}).get(name, {}).get(split, {}).get("out")
            if out is not None and out != rows and not unreadable:  # an unreadable file is reported above
                problems.append(f"config {name} split {split}: {rows} rows in Parquet but provenance counts {out} kept")
        on_disk = {str(p.relative_to(d)) for p in (d / name).glob("*.parquet")} if (d / name).is_dir() else set()
        for extra in sorted(on_disk - listed):
            problems.append(f"{extra}: Parquet file not listed in provenance.json (stale file from another build?)")
    return problems


def _builder_name(prov: dict[str, Any]) -> str | None:
    builder = prov.get("builder")
    return builder.get("name") if isinstance(builder, dict) else None


def _unreadable(path: Path, rel: str, builder: str | None) -> str | None:
    """A problem line when the Parquet file at ``path`` cannot be read through (footer and every row group)."""
    try:
        pf = pq.ParquetFile(path)
        for i in range(pf.num_row_groups):  # decode the data too: a damaged page is not in the footer
            pf.read_row_group(i)
    except Exception as err:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ...
        return unreadable_parquet(rel, err, builder)
    return None


def _diff_features(expected: datasets.Features, actual: datasets.Features) -> str:
    diffs = []
    for key in list(expected) + [k for k in actual if k not in expected]:
        if key not in actual:
            diffs.append(f"column {key!r} missing")
        elif key not in expected:
            diffs.append(f"unexpected column {key!r}")
        elif expected[key] != actual[key]:
            diffs.append(f"column {key!r} is {actual[key]} instead of {expected[key]}")
    if not diffs and list(expected) != list(actual):
        diffs.append(f"column order {list(actual)} instead of {list(expected)}")
    return "; ".join(diffs) or "differ"


def _check_accounting(d: Path, prov: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    counts = prov.get("counts", {})
    rejected_on_disk: dict[tuple[str, str], int] = {}
    rejects_readable = True
    if (d / "rejects.parquet").is_file():
        problem = _unreadable(d / "rejects.parquet", "rejects.parquet", _builder_name(prov))
        if problem:
            problems.append(problem)
            rejects_readable = False
        else:
            try:
                t = pq.read_table(d / "rejects.parquet", columns=["config", "split", "reason"]).to_pydict()
            except Exception as err:  # noqa: BLE001 - readable, but not a rejects table (columns missing...)
                problems.append(f"rejects.parquet: not a rejects table ({type(err).__name__}: {err}); "
                                f"rebuild the dataset")
                rejects_readable = False
            else:
                for c, s, reason in zip(t["config"], t["split"], t["reason"]):
                    rejected_on_disk[(c, s)] = rejected_on_disk.get((c, s), 0) + 1
                    if not reason:
                        problems.append(f"rejects.parquet: a reject in {c}/{s} has no reason")
    totals = {"in": 0, "out": 0, "rejected": 0}
    for config in prov.get("configs") or []:
        for split in config["splits"]:
            c = counts.get(config["name"], {}).get(split)
            if c is None:
                problems.append(f"config {config['name']} split {split}: no counts in provenance.json")
                continue
            if c["in"] != c["out"] + c["rejected"]:
                problems.append(f"config {config['name']} split {split}: {c['in']} inputs != {c['out']} kept + "
                                f"{c['rejected']} rejected")
            on_disk = rejected_on_disk.get((config["name"], split), 0)
            if on_disk != c["rejected"] and rejects_readable:
                problems.append(f"config {config['name']} split {split}: rejects.parquet holds {on_disk} rejects but "
                                f"provenance counts {c['rejected']}")
            for k in totals:
                totals[k] += c[k]
    if prov.get("totals") and prov["totals"] != totals:
        problems.append(f"provenance totals {prov['totals']} do not add up to the per-split counts {totals}")
    return problems


def _check_card(d: Path, prov: dict[str, Any]) -> list[str]:
    path = d / "README.md"
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        return [f"README.md: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                f"run `dsbuild card DIR` to write it again"]
    try:
        meta, _ = parse_front_matter(text)
    except DsbuildError as err:
        return [str(err)]
    problems = validate_metadata(meta)
    names = [c["name"] for c in prov.get("configs") or []]
    card_configs = {c.get("config_name"): c for c in meta.get("configs") or [] if isinstance(c, dict)}
    for config in prov.get("configs") or []:
        entry = card_configs.get(config["name"])
        if entry is None:
            problems.append(f"README.md configs: config {config['name']!r} is missing (load_dataset cannot find it)")
            continue
        card_splits = {f.get("split"): f.get("path") for f in entry.get("data_files") or []}
        for split in config["splits"]:
            want = f"{config['name']}/{split}-*.parquet"
            if card_splits.get(split) != want:
                problems.append(f"README.md configs: {config['name']}/{split} data_files should be {want!r}, "
                                f"got {card_splits.get(split)!r}")
    for extra in sorted(set(card_configs) - set(names)):
        problems.append(f"README.md configs: {extra!r} is not a built config")
    infos = meta.get("dataset_info")
    infos = [infos] if isinstance(infos, dict) else infos or []
    for info in infos:
        for s in info.get("splits") or []:
            c = prov.get("counts", {}).get(info.get("config_name"), {}).get(s.get("name"))
            if c is not None and s.get("num_examples") != c["out"]:
                problems.append(f"README.md dataset_info: {info.get('config_name')}/{s.get('name')} num_examples "
                                f"{s.get('num_examples')} != {c['out']} rows kept")
    if not problems:
        try:
            if render_card(d) != text:
                problems.append("README.md differs from the card rendered from provenance.json; run `dsbuild card DIR`")
        except UnreadableParquetError:
            pass  # listed by the Parquet checks, with the file and the fix
        except Exception as err:  # noqa: BLE001
            problems.append(f"card cannot be rendered: {err}")
    return problems
