"""The executor interface: run shard tasks somewhere, report each finished one.

An executor owns parallelism (a builder never does): it receives a lazy stream of
:class:`~dsbuild.execution.shards.ShardTask` from the driver, runs each with a
:class:`~dsbuild.execution.shards.ShardWorker` (one per process or actor, so models load once per
worker) and calls ``on_done`` as shards finish. Shard outputs go to the staging folder, so the
driver assembles the dataset in shard order whatever ran them, and in whichever order they ended.

Executors are registered by name (``local``, ``ray``); third parties add more through the
entry-point group ``dsbuild.executors``.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dsbuild.builder import Builder
from dsbuild.errors import ConfigError
from dsbuild.execution.shards import ShardTask

OnDone = Callable[[ShardTask, dict[str, Any]], None]
OnStep = Callable[[ShardTask, str, int], None]
_DEVICE = re.compile(r"^(cpu|mps|(cuda|xpu|npu)(:\d+)?)$")
H = TypeVar("H", bound=Hashable)


class Executor(ABC):
    """Runs shard tasks of one build. Subclasses: ``LocalExecutor``, ``RayExecutor``."""

    name: str = ""

    def __init__(self, workers: int = 1, devices: Sequence[str] | None = None, threads: int | None = None) -> None:
        self.workers = check_workers(workers)
        self.devices = check_devices(devices, self.workers)
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ConfigError(f"--threads must be a whole number >= 1, not {threads!r}")
        self.threads = threads

    @abstractmethod
    def run(self, builder: Builder, staging: Path, tasks: Iterable[ShardTask], on_done: OnDone,
            on_step: OnStep | None = None) -> None:
        """Run every task (lazily drawn from ``tasks``); call ``on_done(task, stats)`` as each ends.

        A failing shard raises :class:`~dsbuild.execution.shards.ShardError`; shards that
        finished keep their files, so a re-run resumes.
        """

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers, "devices": list(self.devices) or None}

    def device_for(self, index: int) -> str | None:
        return self.devices[index] if self.devices else None

    def threads_per_worker(self) -> int:
        """Threads each worker may use: as given, else the machine's cores shared out evenly."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)


def check_workers(workers: Any) -> int:
    """``--workers``: a whole number >= 1."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be a whole number >= 1 (e.g. --workers 2), not {workers!r}")
    return workers


def check_devices(devices: Sequence[str] | str | None, workers: int) -> list[str]:
    """``--devices cuda:0,cuda:1``: known device names, at least one per worker."""
    if devices is None:
        return []
    if isinstance(devices, str):
        devices = [d for d in devices.split(",")]
    names = [str(d).strip() for d in devices]
    bad = [d for d in names if not _DEVICE.match(d)]
    if bad:
        raise ConfigError(f"--devices: unknown device name(s) {', '.join(map(repr, bad))}; use cpu, cuda:N, mps "
                          f"or xpu:N, comma-separated (e.g. --devices cuda:0,cuda:1)")
    if names and len(names) < workers:
        raise ConfigError(f"--devices names {len(names)} device(s) for {workers} workers; give one device per "
                          f"worker (e.g. --devices {','.join(f'cuda:{i}' for i in range(workers))}) or fewer --workers")
    return names


def make_executor(name: str = "local", **options: Any) -> Executor:
    """The executor registered as ``name``, created with ``options`` (workers, devices, ...)."""
    from dsbuild.registry import executors

    cls = executors.get(name)
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"executor {name!r}: {err}") from None


def drain(tasks: Iterable[ShardTask], submit: Callable[[ShardTask], H],
          wait_any: Callable[[list[H]], Iterable[H]], collect: Callable[[H, ShardTask], dict[str, Any]],
          on_done: OnDone, limit: int) -> None:
    """Keep up to ``limit`` tasks in flight; report each as it finishes; stop at the first failure.

    Shared by the executors: ``submit(task)`` starts a task and returns a handle (a future, a Ray
    object ref), ``wait_any(handles)`` blocks until at least one is finished and returns the
    finished ones, ``collect(handle, task)`` returns the stats or raises (a ShardError). Tasks are
    drawn lazily from ``tasks``, so the driver never reads far ahead of the workers.
    """
    pending: dict[H, ShardTask] = {}
    source = iter(tasks)
    exhausted = False
    while pending or not exhausted:
        while not exhausted and len(pending) < limit:
            task = next(source, None)
            if task is None:
                exhausted = True
                break
            pending[submit(task)] = task
        if not pending:
            break
        done = wait_any(list(pending))
        for handle in sorted(done, key=lambda h: (pending[h].config, pending[h].split, pending[h].index)):
            task = pending.pop(handle)
            on_done(task, collect(handle, task))


def limit_threads(threads: int) -> None:
    """Give torch and BLAS ``threads`` threads, so workers share the cores instead of fighting."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
