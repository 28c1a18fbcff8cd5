"""``local`` executor: shards in this process (1 worker) or in N worker processes.

Worker processes are started with ``spawn`` (safe with torch and CUDA), receive the prepared
builder once, pin their device (``--devices``) and thread count, and keep their
:class:`~dsbuild.execution.shards.ShardWorker` (and so their loaded models) for every shard they
run. At most ``2 * workers`` shards are in flight, so the driver never reads far ahead of the
workers and memory stays bounded.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import queue
import threading
import traceback
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from dsbuild.builder import Builder, WorkerInfo
from dsbuild.errors import DsbuildError
from dsbuild.execution.base import Executor, OnDone, OnStep, drain, limit_threads
from dsbuild.execution.shards import ShardError, ShardTask, ShardWorker
from dsbuild.registry import executors

log = logging.getLogger(__name__)


@executors.register("local")
class LocalExecutor(Executor):
    """Shards on this machine: in-process with one worker, else a pool of worker processes."""

    name = "local"

    def run(self, builder: Builder, staging: Path, tasks: Iterable[ShardTask], on_done: OnDone,
            on_step: OnStep | None = None) -> None:
        if self.workers == 1:
            self._run_inline(builder, staging, tasks, on_done, on_step)
        else:
            self._run_pool(builder, staging, tasks, on_done, on_step)

    def _run_inline(self, builder: Builder, staging: Path, tasks: Iterable[ShardTask], on_done: OnDone,
                    on_step: OnStep | None) -> None:
        device = self.device_for(0)
        if self.threads:
            limit_threads(self.threads)
        worker = ShardWorker(builder, staging, WorkerInfo(0, device, 1), on_step=on_step)
        for task in tasks:
            on_done(task, unwrap(run_guarded(worker, task), task))

    def _run_pool(self, builder: Builder, staging: Path, tasks: Iterable[ShardTask], on_done: OnDone,
                  on_step: OnStep | None) -> None:
        ctx = mp.get_context("spawn")
        slots: Any = ctx.Queue()
        for i in range(self.workers):
            slots.put(i)
        steps: Any = ctx.Queue() if on_step else None
        payload = pickle.dumps(builder, protocol=pickle.HIGHEST_PROTOCOL)
        init = (payload, str(staging), slots, list(self.devices), self.workers, self.threads_per_worker(), steps)
        stop = threading.Event()
        relay = threading.Thread(target=_relay_steps, args=(steps, on_step, stop), daemon=True) if steps else None
        if relay:
            relay.start()
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker, initargs=init)
        try:
            _drain(pool, tasks, on_done, limit=2 * self.workers)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            stop.set()
            if relay:
                relay.join(timeout=5)


def _drain(pool: ProcessPoolExecutor, tasks: Iterable[ShardTask], on_done: OnDone, limit: int) -> None:
    """Keep up to ``limit`` tasks in flight; report each as it finishes; stop at the first failure."""

    def collect(fut: Future[Any], task: ShardTask) -> dict[str, Any]:
        try:
            result = fut.result()
        except BrokenProcessPool:
            raise ShardError(f"{task.label}: a worker process died (killed or out of memory); finished shards "
                             f"are kept: run the same command again to resume") from None
        return unwrap(result, task)

    drain(tasks, submit=lambda task: pool.submit(_run_in_worker, task),
          wait_any=lambda futures: wait(futures, return_when=FIRST_COMPLETED)[0], collect=collect,
          on_done=on_done, limit=limit)


# ---------------------------------------------------------------------- inside worker processes
_WORKER: dict[str, Any] = {}


def _init_worker(payload: bytes, staging: str, slots: Any, devices: list[str], workers: int, threads: int,
                 steps: Any) -> None:
    index = slots.get()
    limit_threads(threads)
    builder = pickle.loads(payload)
    device = devices[index] if devices else None
    on_step = (lambda task, name, n: steps.put((task, name, n))) if steps is not None else None
    _WORKER["worker"] = ShardWorker(builder, Path(staging), WorkerInfo(index, device, workers), on_step=on_step)


def _run_in_worker(task: ShardTask) -> tuple[str, Any]:
    return run_guarded(_WORKER["worker"], task)


def run_guarded(worker: ShardWorker, task: ShardTask) -> Any:
    """Run a shard; failures come back as values (exceptions may not survive pickling)."""
    try:
        return ("ok", worker.run(task))
    except DsbuildError as err:
        return ("user-error", str(err), traceback.format_exc(), type(err))
    except Exception as err:  # noqa: BLE001 - reported with the shard it happened in
        return ("error", f"{type(err).__name__}: {err}", traceback.format_exc())


def unwrap(result: Any, task: ShardTask) -> dict[str, Any]:
    """A worker's result -> stats, or a ShardError naming the config, split, shard and reason."""
    kind = result[0]
    if kind == "ok":
        return result[1]
    log.debug("%s failed:\n%s", task.label, result[2])
    first = str(result[1]).strip().splitlines()[0] if str(result[1]).strip() else kind
    message = (f"{task.label} failed: {first} (finished shards are kept; fix this and run the same command "
               f"again to resume; -v shows the traceback)")
    if kind == "user-error":  # keep the error's class (ConfigError, InputError...) for callers that catch it
        try:
            raise result[3](message)
        except TypeError:
            pass
    raise ShardError(message)


def _relay_steps(steps: Any, on_step: OnStep, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            task, name, n = steps.get(timeout=0.2)
        except queue.Empty:
            continue
        except (EOFError, OSError):
            return
        on_step(task, name, n)
