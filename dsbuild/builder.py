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

Builders that translate, project or tag big inputs are **sharded** instead (see
:mod:`dsbuild.pipeline`): rather than ``generate`` they declare a lazily read ``source`` and a
list of ``steps`` per config and split; the executor cuts the source into shards and runs the
steps shard by shard, in one process, several worker processes or on a Ray cluster::

        def source(self, config, split):          # lazily: bounded memory
            yield from read_conll_lazily(path)
        def steps(self, config, split):
            return [Translate(self), Project(self), ToRow(self)]

``prepare`` runs once, in the driver, before any shard (global work: label sets, aligner
priors); the builder is then pickled to each worker, so models belong in ``worker_cache`` (loaded
lazily, once per worker, never pickled). Facts a step records in ``ctx.facts`` are summed over
shards (numbers add, other values: the first shard's) and reach ``finish`` in
``ctx.facts["split_facts"][config][split]``.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
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
        #: descriptions and settings that must not be summed over shards (a projector's settings):
        #: the first shard's value is kept, and lands in ``facts`` of the whole build
        self.settings: dict[str, Any] = {}
        self.quality: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self._read = 0

    def read(self, n: int = 1) -> None:
        """Count ``n`` input examples consumed (each must end as a row or a reject)."""
        self._read += n

    #: top-level packages whose files are shipped data: named relative to the folder holding them
    SHIPPED_PACKAGES: ClassVar[tuple[str, ...]] = ("builders", "dsbuild", "cards")

    @staticmethod
    def portable_path(path: str | Path) -> str:
        """How published files (rows, rejects, cards) name a local file: never by where it lies here.

        Shipped data (a file inside the ``builders``, ``dsbuild`` or ``cards`` package) is named
        relative to the folder holding those packages (``builders/data/europarl_ner/en-europarl.test.conll02``),
        so a build from another checkout or install names it alike; any other file (the user's) by
        its file name alone, since its folder says only where it sat on the building machine.
        """
        given = Path(path)
        root = Path(__file__).resolve().parent.parent  # dsbuild/builder.py -> the folder holding the packages
        try:
            resolved = given.resolve()
        except (OSError, RuntimeError):  # a symlink loop or an unreadable folder: name it by its file name
            return given.name
        for package in BuildContext.SHIPPED_PACKAGES:
            if resolved.is_relative_to(root / package):
                return resolved.relative_to(root).as_posix()
        return given.name

    def add_input(self, path: str | Path, *, role: str = "", license: str = "") -> None:
        """Record an input file: its portable path (see :meth:`portable_path`), name, size and SHA-256.

        ``path`` is what cards show and what provenance is sorted by, so both are the same whichever
        folder the build ran from; the absolute ``local_path`` is kept for provenance.json alone
        (a user re-running the build needs to know which file it was).
        """
        path = Path(path)
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        local = str(path.resolve())
        # keyed by the absolute path: two user files with the same name in different folders stay two inputs
        self.inputs[local] = {"path": self.portable_path(path), "name": path.name, "sha256": h.hexdigest(),
                              "bytes": path.stat().st_size, "role": role, "license": license, "local_path": local}

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


@dataclass
class WorkerInfo:
    """Where a worker runs: its index among the build's workers and its device (``cuda:1``, ``cpu``)."""

    index: int = 0
    device: str | None = None
    workers: int = 1


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
        #: where this process runs shards: set by the executor (device per worker, worker index)
        self.worker = WorkerInfo()
        #: per-process cache of loaded models; dropped when the builder is sent to a worker
        self.worker_cache: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["worker_cache"] = {}  # models stay in the process that loaded them
        return state

    def cached(self, key: str, load: Any) -> Any:
        """``load()`` once per worker process under ``key`` (a model, a table), then the same object."""
        cache = self.__dict__.setdefault("worker_cache", {})
        if key not in cache:
            cache[key] = load()
        return cache[key]

    @property
    def sharded(self) -> bool:
        """Whether the builder declares ``source``/``steps`` (run shard by shard) instead of ``generate``."""
        return type(self).steps is not Builder.steps

    @abstractmethod
    def info(self) -> DatasetInfo:
        """Dataset-level facts for the card."""

    @abstractmethod
    def configs(self) -> list[ConfigSpec]:
        """The configs this build emits, with their features and splits."""

    def generate(self, config: ConfigSpec, split: str, ctx: BuildContext) -> Iterator[dict[str, Any] | Reject]:
        """Yield one row (dict matching ``config.features``) or :class:`Reject` per input example.

        Small builders implement this and run as one shard per split; sharded builders implement
        :meth:`source` and :meth:`steps` instead.
        """
        raise NotImplementedError(f"builder {self.name!r} implements neither generate() nor source()/steps()")

    def source(self, config: ConfigSpec, split: str) -> Iterable[Any]:
        """Sharded builders: the input examples of one config and split, read lazily, in a stable order."""
        raise NotImplementedError(f"builder {self.name!r} declares steps() but no source()")

    def steps(self, config: ConfigSpec, split: str) -> list[Any]:
        """Sharded builders: the :class:`~dsbuild.pipeline.Step` list applied to each shard."""
        raise NotImplementedError

    def count(self, config: ConfigSpec, split: str) -> int | None:
        """Sharded builders, optional: how many input examples ``source`` yields (for progress ETA)."""
        return None

    def prepare(self, ctx: BuildContext) -> None:
        """Optional shared work before any split is generated (load data, train aligners)."""

    def finish(self, ctx: BuildContext) -> None:
        """Optional work after all splits (compute quality figures into ``ctx.quality``)."""
