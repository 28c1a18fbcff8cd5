"""The builder contract (after HF datasets' old ``DatasetBuilder``): info, configs, splits, examples.

A builder is a recipe::

    @builders.register("my-data")
    class MyData(Builder):
        name = "my-data"
        version = "1.0.0"
        description = "One line for `dsbuild list`."
        Options = MyOptions                       # a dataclass, see dsbuild.config.option

        def info(self) -> DatasetInfo: ...        # languages, licence, sources, citations
        def configs(self) -> list[ConfigSpec]: ...  # name, features, splits per config
        def generate(self, config, split, ctx):   # yields rows (dicts) or Reject(...)
            for ex in source:
                ctx.read()                        # one input example consumed
                yield row  # or: yield Reject(id, reason)

The executor (:mod:`dsbuild.executor`) runs it: it checks that every input ended as a row or a
reject, writes Parquet shards, the rejects table, ``provenance.json`` and the card.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import datasets


@dataclass
class Source:
    """An upstream source of a dataset, named in the card with its licence and citation."""

    name: str
    license: str
    url: str = ""
    citation: str = ""
    description: str = ""


@dataclass
class DatasetInfo:
    """What the card's metadata and prose say about the dataset as a whole.

    Values of ``license``, ``task_categories``, ``task_ids``, ``size_categories`` and friends are
    checked against the Hub's allowed lists (vendored in ``dsbuild/resources``).
    """

    pretty_name: str
    summary: str
    languages: list[str]
    license: str
    task_categories: list[str]
    task_ids: list[str] = field(default_factory=list)
    multilinguality: str = "monolingual"
    source_datasets: list[str] = field(default_factory=lambda: ["original"])
    annotations_creators: list[str] = field(default_factory=lambda: ["machine-generated"])
    language_creators: list[str] = field(default_factory=lambda: ["found"])
    tags: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    method: str = ""
    limitations: str = ""
    homepage: str = ""
    #: with ``license="other"``: a short id for the licence (lowercase, ``-``), and where to read it
    license_name: str = ""
    license_link: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ConfigSpec:
    """One dataset config: its name, features, splits, and (optionally) its language."""

    name: str
    features: datasets.Features
    splits: list[str]
    description: str = ""
    language: str | None = None


@dataclass
class Reject:
    """An input example that was not kept, with the reason why.

    ``reason`` is a short stable code (``"unprojected-span"``, ``"empty-sentence"``) so rejects
    can be counted by reason; ``detail`` is free text for humans; ``example`` is the input as a
    JSON-safe dict, so nothing is lost.
    """

    id: str
    reason: str
    detail: str = ""
    example: dict[str, Any] | None = None


class BuildContext:
    """What a builder reports to the executor while it runs.

    The executor reads counts from it to check that nothing was lost, and copies inputs, models,
    seeds, facts and quality figures into ``provenance.json``, ``quality.json`` and the card.
    """

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir  # scratch space for caches that survive a killed build
        self.inputs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.seeds: dict[str, int] = {}
        self.facts: dict[str, Any] = {}
        self.quality: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self._read = 0

    def read(self, n: int = 1) -> None:
        """Count ``n`` input examples consumed (each must end as a row or a reject)."""
        self._read += n

    def add_input(self, path: str | Path, *, role: str = "", license: str = "") -> None:
        """Record an input file with its SHA-256 checksum."""
        path = Path(path)
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        self.inputs[str(path)] = {"path": str(path), "name": path.name, "sha256": h.hexdigest(),
                                  "bytes": path.stat().st_size, "role": role, "license": license}

    def add_model(self, name: str, *, revision: str | None = None, kind: str = "", **params: Any) -> None:
        """Record a model (MT model, aligner, classifier) with its revision and parameters."""
        self.models[name] = {"name": name, "revision": revision, "kind": kind, "params": params}

    def add_seed(self, name: str, seed: int) -> None:
        self.seeds[name] = seed

    def timer(self, name: str) -> _Timer:
        """``with ctx.timer("align"): ...`` adds the elapsed seconds to ``timings[name]``."""
        return _Timer(self.timings, name)


class _Timer:
    def __init__(self, sink: dict[str, float], name: str) -> None:
        self.sink, self.name = sink, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.sink[self.name] = self.sink.get(self.name, 0.0) + time.perf_counter() - self.t0


class Builder(ABC):
    """Base class of dataset builders. See the module docstring for the contract."""

    name: ClassVar[str]
    version: ClassVar[str]  # semver x.y.z
    description: ClassVar[str]
    Options: ClassVar[type]
    #: card template in ``cards/``; falls back to ``base.md.j2``
    card_template: ClassVar[str | None] = None
    #: (version, what changed) pairs, newest first, for the card's version history
    history: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, options: Any | None = None) -> None:
        self.options = options if options is not None else self.Options()

    @abstractmethod
    def info(self) -> DatasetInfo:
        """Dataset-level facts for the card."""

    @abstractmethod
    def configs(self) -> list[ConfigSpec]:
        """The configs this build emits, with their features and splits."""

    @abstractmethod
    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        """Yield one row (dict matching ``config.features``) or :class:`Reject` per input example."""

    def prepare(self, ctx: BuildContext) -> None:
        """Optional shared work before any split is generated (load data, train aligners)."""

    def finish(self, ctx: BuildContext) -> None:
        """Optional work after all splits (compute quality figures into ``ctx.quality``)."""
