"""Dataset cards rendered from the facts a build recorded (provenance.json, quality.json, Parquet files).

A card is YAML front matter (Hub metadata, computed here, never hand-written) followed by a Markdown
body rendered from a Jinja template in the top-level ``cards`` package. ``cards/base.md.j2`` holds
the shared sections as blocks; a builder's template (``Builder.card_template``) extends it and
overrides blocks such as ``method``, ``quality`` or ``limitations``. Templates receive:

``prov``       the provenance dict (``prov.facts``, ``prov.quality``, ``prov.config``, ``prov.counts``, ``prov.info``)
``info``       ``prov.info`` (pretty_name, summary, sources, method, limitations, ...)
``meta``       the front-matter dict
``structure``  per config: name, language, description, features (name, type), splits (name, rows,
               in, out, rejected, files)
``rejects``    ``[{config, split, reason, count}]`` from ``rejects.parquet``
``quality``    quality figures (``quality.json``, else ``prov.quality``)
``totals``     ``{in, out, rejected}``

Cards hold no timings or timestamps, so two builds with the same config give byte-identical cards.
Metadata values are checked offline against the Hub's allowed lists in ``dsbuild/resources``.

A damaged dataset folder (a truncated or missing Parquet file, invalid provenance.json or
quality.json) is a :class:`~dsbuild.errors.DsbuildError` naming the file and what to do, never a
pyarrow traceback.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import datasets
import jinja2
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCardData

from dsbuild.errors import DsbuildError

BASE_TEMPLATE = "base.md.j2"
_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n", re.S)
T = TypeVar("T")


# --------------------------------------------------------------------------- allowed values
@functools.cache
def allowed_values() -> dict[str, Any]:
    """The vendored Hub metadata lists (licences, task categories and ids, sizes, creators, ISO 639-1)."""
    path = Path(__file__).parent / "resources" / "hub_metadata.json"
    return json.loads(path.read_text(encoding="utf-8"))


def size_category(n_rows: int) -> str:
    """The Hub ``size_categories`` value for a dataset of ``n_rows`` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
              (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T")]
    for bound, name in bounds:
        if n_rows < bound:
            return name
    return "n>1T"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def validate_metadata(meta: dict[str, Any]) -> list[str]:
    """Problems with card front matter ``meta`` against the Hub's allowed values (empty list: valid)."""
    allowed = allowed_values()
    problems: list[str] = []

    def check(key: str, values: list[Any], pool: list[str] | set[str], *, required: bool = True) -> None:
        if required and not values:
            problems.append(f"metadata {key!r} is missing or empty")
        for v in values:
            if v not in pool:
                problems.append(f"metadata {key}: {v!r} is not an allowed value")

    licenses = _as_list(meta.get("license"))
    check("license", licenses, allowed["licenses"])
    if "other" in licenses and not meta.get("license_name"):
        problems.append("metadata license is 'other' but license_name is missing (give a short licence id, e.g. europarl-terms)")
    if meta.get("license_name") and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", str(meta["license_name"])):
        problems.append(f"metadata license_name {meta['license_name']!r} must be lowercase letters, digits, '.' and '-'")
    categories = _as_list(meta.get("task_categories"))
    check("task_categories", categories, list(allowed["task_categories"]))
    task_ids = _as_list(meta.get("task_ids"))
    valid_ids = {t for c in categories for t in allowed["task_categories"].get(c, [])}
    all_ids = {t for ids in allowed["task_categories"].values() for t in ids}
    for t in task_ids:
        if t not in all_ids:
            problems.append(f"metadata task_ids: {t!r} is not an allowed value")
        elif t not in valid_ids:
            problems.append(f"metadata task_ids: {t!r} does not belong to task_categories {categories}")
    check("size_categories", _as_list(meta.get("size_categories")), allowed["size_categories"])
    check("multilinguality", _as_list(meta.get("multilinguality")), allowed["multilinguality"])
    check("annotations_creators", _as_list(meta.get("annotations_creators")), allowed["annotations_creators"])
    check("language_creators", _as_list(meta.get("language_creators")), allowed["language_creators"])
    languages = _as_list(meta.get("language"))
    if not languages:
        problems.append("metadata 'language' is missing or empty")
    for code in languages:
        problems.extend(check_language_code(code))
    for src in _as_list(meta.get("source_datasets")):
        if not isinstance(src, str) or not re.fullmatch(r"original|extended|extended\|[\w.\-/]+|[\w.\-/]+", src):
            problems.append(f"metadata source_datasets: {src!r} is not 'original', 'extended|NAME' or a dataset id")
    if not meta.get("pretty_name"):
        problems.append("metadata 'pretty_name' is missing")
    for tag in _as_list(meta.get("tags")):
        if not isinstance(tag, str) or not tag.strip():
            problems.append(f"metadata tags: {tag!r} is not a non-empty string")
    return problems


def check_language_code(code: Any) -> list[str]:
    """Problems with one ``language`` value: ISO 639-1 (known list) or ISO 639-2/3 (well-formed)."""
    if not isinstance(code, str):
        return [f"metadata language: {code!r} is not a string (quote codes such as 'no')"]
    base = code.split("-")[0]
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", code):
        return [f"metadata language: {code!r} is not an ISO 639 code (two or three lowercase letters, optional -subtags)"]
    if len(base) == 2 and base not in allowed_values()["iso639_1"]:
        return [f"metadata language: {code!r} is not an ISO 639-1 code"]
    return []


# --------------------------------------------------------------------------- damaged files
class UnreadableParquetError(DsbuildError):
    """A Parquet file of a built dataset cannot be read (truncated, damaged, missing or not Parquet).

    Args:
        path: the file, as the user would find it.
        error: what pyarrow or the OS raised.
        builder: the builder that wrote the dataset, for the rebuild command, when known.
    """

    def __init__(self, path: str | Path, error: BaseException, builder: str | None = None) -> None:
        self.path = Path(path)
        self.error = error
        self.builder = builder
        super().__init__(unreadable_parquet(path, error, builder))

    def for_builder(self, builder: str | None) -> UnreadableParquetError:
        """The same error, its fix naming ``builder``."""
        return UnreadableParquetError(self.path, self.error, builder)


def unreadable_parquet(path: str | Path, error: BaseException, builder: str | None = None) -> str:
    """One line for a Parquet file that cannot be read: the file, what is wrong, what to do."""
    code = getattr(error, "errno", None)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    reason = re.sub(r"^Could not open Parquet input source '[^']*':\s*", "", reason)
    reason = re.sub(r"\.?\s*Either the file is corrupted or this is not a parquet file\.?", "", reason).rstrip(". ")
    if isinstance(error, OSError) and isinstance(code, int) and code > 0:
        reason = os.strerror(code)
    if code == errno.ENOENT:
        what = "is listed in provenance.json but missing"
    elif code in (errno.EACCES, errno.EPERM):
        what = f"cannot be read ({reason}); fix its permissions, or"
    else:
        what = f"is truncated or damaged ({reason})"
    rebuild = f"`dsbuild build {builder} --out OUT --overwrite`" if builder else "`dsbuild build NAME --out OUT --overwrite`"
    return f"{path}: Parquet file {what}; rebuild the dataset with {rebuild} (or copy the folder again)"


def read_parquet(path: Path, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(path, *args, **kwargs)`` (a pyarrow reader); a file it cannot read is an :class:`UnreadableParquetError`."""
    try:
        return fn(path, *args, **kwargs)
    except (pa.ArrowException, OSError) as err:
        raise UnreadableParquetError(path, err) from None


def read_json_file(path: Path, label: str | None = None) -> Any:
    """A JSON file of a built dataset; invalid JSON or text that is not UTF-8 is a one-line DsbuildError.

    The message calls the file ``label`` (default: its path).
    """
    name = label or str(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DsbuildError(f"{name} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                           f"the file is damaged: rebuild the dataset") from None
    except UnicodeDecodeError as err:
        raise DsbuildError(f"{name} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                           f"the file is damaged: rebuild the dataset") from None


# --------------------------------------------------------------------------- facts from the built files
def _read_provenance(dataset_dir: Path) -> dict[str, Any]:
    path = dataset_dir / "provenance.json"
    if not path.is_file():
        raise DsbuildError(f"{dataset_dir}: no provenance.json here; give the directory of a built dataset "
                           f"(OUT/NAME/VERSION)")
    prov = read_json_file(path)
    if not isinstance(prov, dict):
        raise DsbuildError(f"{path}: holds a JSON {type(prov).__name__}, not an object; rebuild the dataset")
    return prov


def split_files(dataset_dir: Path, config: dict[str, Any], split: str) -> list[str]:
    """Relative paths of a split's shards: those recorded in provenance, else found on disk."""
    recorded = (config.get("files") or {}).get(split)
    if recorded:
        return list(recorded)
    return sorted(str(p.relative_to(dataset_dir)) for p in (dataset_dir / config["name"]).glob(f"{split}-*.parquet"))


def features_of(dataset_dir: Path, config: dict[str, Any]) -> datasets.Features:
    """A config's Features, from the embedded schema of its first shard (the truth), else provenance."""
    for split in config["splits"]:
        for rel in split_files(dataset_dir, config, split):
            if (dataset_dir / rel).is_file():
                schema = read_parquet(dataset_dir / rel, pq.read_schema)
                return datasets.Features.from_arrow_schema(schema)
    return datasets.Features.from_dict(config["features"])


def _type_name(feature: Any) -> str:
    if isinstance(feature, datasets.ClassLabel):
        return f"ClassLabel ({feature.num_classes}: {', '.join(feature.names)})"
    if isinstance(feature, datasets.Value):
        return feature.dtype
    if isinstance(feature, (datasets.List, datasets.LargeList)):
        return f"list of {_type_name(feature.feature)}"
    if isinstance(feature, dict):
        return "{" + ", ".join(f"{k}: {_type_name(v)}" for k, v in feature.items()) + "}"
    return type(feature).__name__


def structure(dataset_dir: Path, prov: dict[str, Any]) -> list[dict[str, Any]]:
    """Per config: features, and per split the rows, counts in/out/rejected, shard files and sizes."""
    out = []
    for config in prov.get("configs", []):
        features = features_of(dataset_dir, config)
        splits = []
        for split in config["splits"]:
            files = split_files(dataset_dir, config, split)
            rows = nbytes = 0
            for rel in files:
                meta = read_parquet(dataset_dir / rel, pq.read_metadata)
                rows += meta.num_rows
                nbytes += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            counts = prov.get("counts", {}).get(config["name"], {}).get(split, {})
            splits.append({"name": split, "rows": rows, "num_bytes": nbytes, "files": files,
                           "download_size": sum((dataset_dir / f).stat().st_size for f in files),
                           "in": counts.get("in", rows), "out": counts.get("out", rows),
                           "rejected": counts.get("rejected", 0)})
        out.append({"name": config["name"], "language": config.get("language"), "description": config.get("description", ""),
                    "features": features, "label_counts": _label_counts(dataset_dir, features, splits),
                    "feature_rows": [{"name": k, "type": _type_name(v)} for k, v in features.items()],
                    "splits": splits})
    return out


def _label_counts(dataset_dir: Path, features: datasets.Features, splits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ``{split, LABEL: n, ...}`` counting spans by label, for configs with a ``spans`` column."""
    spans = features.get("spans")
    inner = getattr(spans, "feature", None)
    if not isinstance(inner, dict) or "label" not in inner:
        return []
    rows, labels = [], set()
    for s in splits:
        counts: Counter[str] = Counter()
        for rel in s["files"]:
            col = read_parquet(dataset_dir / rel, pq.read_table, columns=["spans"]).column("spans").combine_chunks()
            counts.update(col.flatten().field("label").to_pylist())
        labels |= set(counts)
        rows.append((s["name"], counts))
    return [{"split": name, **{lab: c.get(lab, 0) for lab in sorted(labels)}, "total": sum(c.values())} for name, c in rows]


def reject_summary(dataset_dir: Path) -> list[dict[str, Any]]:
    """``[{config, split, reason, count}]`` from ``rejects.parquet``, sorted."""
    path = dataset_dir / "rejects.parquet"
    if not path.is_file():
        return []
    table = read_parquet(path, pq.read_table, columns=["config", "split", "reason"]).to_pydict()
    counts = Counter(zip(table["config"], table["split"], table["reason"]))
    return [{"config": c, "split": s, "reason": r, "count": n} for (c, s, r), n in sorted(counts.items())]


# --------------------------------------------------------------------------- front matter
def card_metadata(prov: dict[str, Any], struct: list[dict[str, Any]]) -> dict[str, Any]:
    """The card's YAML front matter, computed from provenance and the observed structure."""
    info = prov.get("info", {})
    total_rows = sum(s["rows"] for c in struct for s in c["splits"])
    license_ = info.get("license") or "unknown"
    meta: dict[str, Any] = {
        "pretty_name": info.get("pretty_name") or prov.get("builder", {}).get("name", ""),
        "language": list(info.get("languages") or []),
        "license": license_,
    }
    if license_ == "other":  # the Hub wants a name (and ideally a link) for a licence not on its list
        if info.get("license_name"):
            meta["license_name"] = info["license_name"]
        if info.get("license_link"):
            meta["license_link"] = info["license_link"]
    meta.update({
        "multilinguality": _as_list(info.get("multilinguality")) or ["monolingual"],
        "size_categories": [size_category(total_rows)],
        "source_datasets": _as_list(info.get("source_datasets")) or ["original"],
        "task_categories": _as_list(info.get("task_categories")),
        "task_ids": _as_list(info.get("task_ids")),
        "annotations_creators": _as_list(info.get("annotations_creators")),
        "language_creators": _as_list(info.get("language_creators")),
        "tags": sorted(set(_as_list(info.get("tags"))) | {"dsbuild"}),
        "configs": [{"config_name": c["name"],
                     "data_files": [{"split": s["name"], "path": f"{c['name']}/{s['name']}-*.parquet"} for s in c["splits"]]}
                    for c in struct],
    })
    infos = DatasetInfosDict()
    for c in struct:
        splits = datasets.SplitDict()
        for s in c["splits"]:
            splits.add(datasets.SplitInfo(name=s["name"], num_bytes=s["num_bytes"], num_examples=s["rows"]))
        infos[c["name"]] = datasets.DatasetInfo(
            features=c["features"], splits=splits,
            download_size=sum(s["download_size"] for s in c["splits"]),
            dataset_size=sum(s["num_bytes"] for s in c["splits"]))
    card_data = DatasetCardData()
    infos.to_dataset_card_data(card_data)  # datasets' own YAML form of Features and splits
    meta["dataset_info"] = card_data["dataset_info"]
    if len(struct) == 1 and isinstance(meta["dataset_info"], dict):
        meta["dataset_info"] = [{"config_name": struct[0]["name"], **{k: v for k, v in meta["dataset_info"].items()
                                                                     if k != "config_name"}}]
    return meta


def dump_front_matter(meta: dict[str, Any]) -> str:
    """``---\\nYAML---\\n`` with keys in the given order (deterministic)."""
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1_000_000) + "---\n"


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split a card into (metadata dict, Markdown body); raise DsbuildError when there is no valid front matter."""
    m = _FRONT_MATTER.match(text)
    if not m:
        raise DsbuildError("README.md has no YAML front matter (it must start with a line '---')")
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as err:
        raise DsbuildError(f"README.md front matter is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise DsbuildError("README.md front matter must be a YAML mapping")
    return meta, text[m.end():]


# --------------------------------------------------------------------------- rendering
def templates_dir() -> Path:
    """Directory of the card templates (the top-level ``cards`` package, shipped in the distribution)."""
    import cards

    return Path(cards.__file__).parent


def _number(value: Any) -> str:
    """Stable formatting for figures in tables: ints with separators, floats to 4 significant digits."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value, sort_keys=True, ensure_ascii=False) + "`"
    return _number(value).replace("|", "\\|").replace("\n", " ")


def md_table(rows: list[dict[str, Any]] | list[list[Any]], headers: list[str] | None = None) -> str:
    """A Markdown table from dict rows (columns: ``headers`` or the union of keys, in first-seen order)."""
    if not rows:
        return ""
    if isinstance(rows[0], dict):
        if headers is None:
            headers = []
            for r in rows:
                headers += [k for k in r if k not in headers]
        body = [[r.get(h, "") for h in headers] for r in rows]  # type: ignore[union-attr]
    else:
        body = [list(r) for r in rows]
        headers = headers or [""] * len(body[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in body]
    return "\n".join(lines)


def quality_tables(quality: Any, title_level: int = 3) -> str:
    """Render quality figures generically: scalars as a two-column table, nested dicts as tables."""
    if not quality:
        return ""
    if not isinstance(quality, dict):
        return "```json\n" + json.dumps(quality, indent=2, sort_keys=True, ensure_ascii=False) + "\n```"
    scalars = {k: v for k, v in quality.items() if not isinstance(v, (dict, list))}
    parts = []
    if scalars:
        parts.append(md_table([[k, v] for k, v in sorted(scalars.items())], ["figure", "value"]))
    for key in sorted(k for k, v in quality.items() if isinstance(v, (dict, list))):
        value = quality[key]
        parts.append("#" * title_level + f" {key}")
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()) \
                and all(not isinstance(x, (dict, list)) for v in value.values() for x in v.values()):
            parts.append(md_table([{"": k, **v} for k, v in sorted(value.items())]))
        elif isinstance(value, dict):
            parts.append(quality_tables(value, title_level + 1))
        elif value and all(isinstance(v, dict) for v in value):
            parts.append(md_table(value))
        else:
            parts.append("```json\n" + json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n```")
    return "\n\n".join(p for p in parts if p)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.ChainableUndefined,  # a missing fact renders empty instead of breaking the build
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False,
    )
    env.filters["table"] = md_table
    env.filters["quality_tables"] = quality_tables
    env.filters["num"] = _number
    env.filters["json_value"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str).replace("|", "\\|")
    env.filters["tojson_sorted"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return env


def card_context(dataset_dir: str | Path) -> dict[str, Any]:
    """Everything a template can use (see the module docstring)."""
    dataset_dir = Path(dataset_dir)
    prov = _read_provenance(dataset_dir)
    quality_path = dataset_dir / "quality.json"
    quality = read_json_file(quality_path) if quality_path.is_file() else prov.get("quality") or {}
    builder = prov.get("builder", {})
    try:
        struct = structure(dataset_dir, prov)
        rejects = reject_summary(dataset_dir)
    except UnreadableParquetError as err:
        raise err.for_builder(builder.get("name") if isinstance(builder, dict) else None) from None
    except (KeyError, TypeError, AttributeError) as err:  # a hand-edited or foreign provenance.json
        raise DsbuildError(f"{dataset_dir / 'provenance.json'}: malformed ({type(err).__name__}: {err}); "
                           f"rebuild the dataset") from None
    meta = card_metadata(prov, struct)
    return {
        "prov": prov, "info": prov.get("info", {}), "meta": meta, "structure": struct, "quality": quality,
        "rejects": rejects, "totals": prov.get("totals", {}), "builder": builder,
        "history": builder.get("history", []), "configs": [c["name"] for c in struct],
        "models": prov.get("models", []), "seeds": prov.get("seeds", {}),
        "inputs": [{k: i.get(k) for k in ("name", "role", "sha256", "bytes", "license")} for i in prov.get("inputs", [])],
        "dsbuild_version": prov.get("dsbuild", {}).get("version", ""),
        "repo_hint": f"{builder.get('name', 'NAME')}",
    }


def render_card(dataset_dir: str | Path) -> str:
    """Render README.md for a built dataset directory (front matter + templated body).

    The template is the builder's ``card_template`` when it exists in ``cards/``, else ``base.md.j2``.
    """
    ctx = card_context(dataset_dir)
    env = _environment()
    name = ctx["builder"].get("card_template") or BASE_TEMPLATE
    if not (templates_dir() / name).is_file():
        name = BASE_TEMPLATE
    body = env.get_template(name).render(**ctx)
    body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
    return dump_front_matter(ctx["meta"]) + "\n" + body


def write_card(dataset_dir: str | Path) -> Path:
    """Re-render and atomically write ``README.md``; return its path."""
    import os

    dataset_dir = Path(dataset_dir)
    text = render_card(dataset_dir)
    path = dataset_dir / "README.md"
    tmp = path.with_name("README.md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
