"""Read NLI pairs from a local JSONL/CSV/TSV file or a Hugging Face Hub dataset, with strict labels.

Columns are found by name (``premise``/``sentence1``, ``hypothesis``/``sentence2``,
``label``/``gold_label``, ``id``/``pairID``/``idx``, ``language``/``lang``) or given explicitly.
Labels are normalised to ``entailment``/``neutral``/``contradiction``; integers map through the
dataset's ClassLabel names (Hub) or ``label_names``. A label outside that set (SNLI's ``-`` or
``-1`` for "no gold label") is an :class:`InputError` at load time naming the file and line,
unless ``drop_unknown`` is set: then the pair is returned with ``label=None`` and the raw value,
so the builder records it as a reject.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsbuild.errors import InputError
from dsbuild.io.jsonl import iter_json_objects

log = logging.getLogger(__name__)

LOCAL_SUFFIXES = {".jsonl", ".json", ".csv", ".tsv", ".txt"}
NLI_LABELS = ("entailment", "neutral", "contradiction")
DEFAULT_INT_LABELS = NLI_LABELS  # SNLI / MNLI / XNLI on the Hub: 0 entailment, 1 neutral, 2 contradiction
ALIASES = {"entailment": "entailment", "entails": "entailment", "neutral": "neutral",
           "contradiction": "contradiction", "contradicts": "contradiction"}
COLUMN_GUESSES = {
    "premise": ("premise", "sentence1", "text_a", "sentence_a"),
    "hypothesis": ("hypothesis", "sentence2", "text_b", "sentence_b"),
    "label": ("label", "gold_label", "labels"),
    "id": ("id", "pairID", "pair_id", "idx", "uid"),
    "language": ("language", "lang"),
}


@dataclass
class NliPair:
    """One seed pair with where it came from (``source`` and 1-based ``line`` or row index)."""

    id: str
    premise: str
    hypothesis: str
    label: str | None
    language: str
    source: str
    line: int
    raw_label: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def load_nli(source: str | Path, *, split: str = "test", hub_config: str | None = None, language: str = "",
             columns: dict[str, str] | None = None, label_names: Sequence[str] | None = None,
             drop_unknown: bool = False, limit: int | None = None) -> list[NliPair]:
    """Load NLI pairs from a local file (``.jsonl``, ``.json``, ``.csv``, ``.tsv``, ``.txt``), or through
    ``datasets.load_dataset`` from a Hub id or a local dataset folder."""
    path = Path(source)
    if path.is_file():
        records = _read_local(path)
        names = list(label_names) if label_names else list(DEFAULT_INT_LABELS)
        src = str(path)
    elif not path.is_dir() and (path.suffix.lower() in LOCAL_SUFFIXES or str(source).startswith((".", "/", "~"))):
        raise InputError("file not found (or not a regular file)", source=path,
                         hint="check the path, or give a Hub dataset id such as 'stanfordnlp/snli'")
    else:  # a Hub id, or a local dataset folder that datasets.load_dataset understands
        records, hub_names = _read_hub(str(source), split, hub_config)
        names = list(label_names) if label_names else (hub_names or list(DEFAULT_INT_LABELS))
        src = f"{source}{'/' + hub_config if hub_config else ''}:{split}"
    pairs: list[NliPair] = []
    cols: dict[str, str | None] | None = None
    for line, rec in records:
        if cols is None:
            cols = _resolve_columns(rec, columns or {}, src, line)
        if limit is not None and len(pairs) >= limit:
            break
        pairs.append(_pair(rec, cols, names, src, line, language, drop_unknown, len(pairs)))
    first_line: dict[str, int] = {}
    for p in pairs:  # row ids are SEED_ID-OPERATOR, so seed ids must be unique
        if p.id in first_line:
            raise InputError(f"pair id {p.id!r} repeats (first at line {first_line[p.id]})", source=src, line=p.line,
                             hint="give every pair a unique id, or drop the id column so ids become FILE-N")
        first_line[p.id] = p.line
    if not pairs:
        raise InputError("no NLI pairs found", source=src, hint="the file or split is empty; give a file with premise/hypothesis/label rows")
    return pairs


def _read_local(path: Path) -> list[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            if suffix in (".jsonl", ".json"):
                out.extend(iter_json_objects(path, hint="each line must be one JSON object with premise, hypothesis and label"))
            else:
                delim = "," if suffix == ".csv" else "\t"
                reader = csv.DictReader(fh, delimiter=delim, quoting=csv.QUOTE_MINIMAL if delim == "," else csv.QUOTE_NONE)
                for i, row in enumerate(reader, start=2):
                    out.append((i, dict(row)))
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 ({err.reason} at byte {err.start})", source=path, hint="re-encode the file as UTF-8") from None
    return out


def _read_hub(name: str, split: str, config: str | None) -> tuple[list[tuple[int, dict[str, Any]]], list[str] | None]:
    import datasets

    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as err:  # offline, unknown id, missing split: one clear message
        raise InputError(f"cannot load Hub dataset {name!r} (config {config!r}, split {split!r}): "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", source=name,
                         hint="check the id, config and split; without network, download it first or give a local "
                              "JSONL/CSV/TSV file with premise, hypothesis and label columns") from None
    names = None
    for key in COLUMN_GUESSES["label"]:
        feat = ds.features.get(key)
        if feat is not None and hasattr(feat, "names"):
            names = list(feat.names)
            break
    return [(i, dict(r)) for i, r in enumerate(ds, start=1)], names


def _resolve_columns(rec: dict[str, Any], given: dict[str, str], src: str, line: int) -> dict[str, str | None]:
    cols: dict[str, str | None] = {}
    for role, guesses in COLUMN_GUESSES.items():
        if given.get(role):
            if given[role] not in rec:
                raise InputError(f"column {given[role]!r} (for {role}) not found; columns are {sorted(rec)}",
                                 source=src, line=line, hint=f"set {role}_column to one of those")
            cols[role] = given[role]
        else:
            cols[role] = next((g for g in guesses if g in rec), None)
    for role in ("premise", "hypothesis", "label"):
        if cols[role] is None:
            raise InputError(f"no {role} column (looked for {', '.join(COLUMN_GUESSES[role])}); columns are {sorted(rec)}",
                             source=src, line=line, hint=f"name the column with --set {role}_column=NAME")
    return cols


def normalize_label(value: Any, names: Sequence[str]) -> str | None:
    """``entailment``/``neutral``/``contradiction`` or ``None`` for anything else (``-``, ``-1``, ``''``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        i = int(value)
        if 0 <= i < len(names):
            return ALIASES.get(str(names[i]).strip().lower())
        return None
    if isinstance(value, str):
        return ALIASES.get(value.strip().lower())
    return None


def _pair(rec: dict[str, Any], cols: dict[str, str | None], names: Sequence[str], src: str, line: int,
          language: str, drop_unknown: bool, index: int) -> NliPair:
    raw = rec.get(cols["label"])  # type: ignore[arg-type]
    label = normalize_label(raw, names)
    pid = str(rec.get(cols["id"])) if cols["id"] and rec.get(cols["id"]) not in (None, "") else f"{Path(src).stem}-{index}"
    if label is None and not drop_unknown:
        raise InputError(f"unknown NLI label {raw!r} (pair {pid})", source=src, line=line,
                         hint=f"labels must be one of {', '.join(NLI_LABELS)} (or integers 0-{len(names) - 1} for {list(names)}); "
                              "fix the file, or pass --set drop_unknown_labels=true to keep such pairs out as recorded rejects")
    lang = language or (str(rec.get(cols["language"])) if cols["language"] and rec.get(cols["language"]) else "en")
    return NliPair(id=pid, premise=str(rec.get(cols["premise"]) or "").strip(),  # type: ignore[arg-type]
                   hypothesis=str(rec.get(cols["hypothesis"]) or "").strip(), label=label, language=lang,  # type: ignore[arg-type]
                   source=src, line=line, raw_label=raw)
