"""``ray`` executor: shards run by Ray actors, on this machine or on a Ray cluster.

Each of ``--workers`` actors receives the prepared builder once (one object in the Ray object
store), keeps its :class:`~dsbuild.execution.shards.ShardWorker` (so models load once per actor)
and writes each shard's files straight into the staging folder. On a real cluster that folder
must be on a filesystem every node shares (``--out`` on NFS, Lustre...); the driver checks it.

Where Ray comes from, in order: a Ray already initialised in this process; ``--ray-address``
(``host:port``, ``ray://host:10001`` or ``auto``); ``RAY_ADDRESS``; a cluster started on this
machine with ``ray start``; else a new local instance that listens on loopback only and is shut
down at the end. A cluster that cannot be reached is one :class:`~dsbuild.errors.ConfigError`:
within seconds when nothing answers on its port, within about 40 s when something that is not
Ray does (Ray alone would retry for about 14 minutes).

Actors ask Ray for ``--threads`` CPUs each (default: the cluster's CPUs shared out) and, when
``--devices`` names CUDA devices, one GPU each (``gpus_per_worker``); Ray places them and sets
``CUDA_VISIBLE_DEVICES``, so an actor with a GPU uses ``cuda:0``. Environment variables are not
copied to a cluster: ``DSBUILD_*`` and the Hugging Face offline switches are passed to the actors,
anything else (credentials, caches) must be set up on the nodes.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import re
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dsbuild._optional import require
from dsbuild.builder import Builder, WorkerInfo
from dsbuild.errors import ConfigError
from dsbuild.execution.base import Executor, OnDone, OnStep, drain, limit_threads
from dsbuild.execution.local import run_guarded, unwrap
from dsbuild.execution.shards import ShardError, ShardTask, ShardWorker, shard_dir
from dsbuild.registry import executors

log = logging.getLogger(__name__)

#: environment variables passed to the actors besides ``DSBUILD_*`` (never credentials)
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY",
                 "HF_HUB_DISABLE_XET", "TOKENIZERS_PARALLELISM")
_SECRET = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")
_LOCALHOST = ("localhost", "127.0.0.1", "::1", "[::1]")
#: seconds to wait for a TCP answer from a cluster's address before asking Ray to connect
PROBE_TIMEOUT = 5.0
#: seconds a finished shard may take to appear on the driver's view of a shared filesystem
SHARED_FS_GRACE = 15.0
_HINT = "start one with `ray start --head` or fix --ray-address"


@executors.register("ray")
class RayExecutor(Executor):
    """Shards run by ``workers`` Ray actors, each keeping its models for every shard it runs."""

    name = "ray"

    def __init__(self, workers: int = 1, devices: Sequence[str] | None = None, threads: int | None = None,
                 address: str | None = None, gpus_per_worker: float | None = None) -> None:
        super().__init__(workers, devices, threads)
        if importlib.util.find_spec("ray") is None:  # fail before any build folder is made
            _import_ray()
        self.address = (str(address).strip() or None) if address is not None else None
        if self.address is not None:
            _check_address(self.address, "--ray-address")
        if gpus_per_worker is not None and (isinstance(gpus_per_worker, bool)
                                            or not isinstance(gpus_per_worker, (int, float)) or gpus_per_worker < 0):
            raise ConfigError(f"gpus_per_worker must be a number >= 0 (e.g. 1, or 0.5 to share a GPU), "
                              f"not {gpus_per_worker!r}")
        cuda = bool(self.devices) and all(d.startswith("cuda") for d in self.devices)
        self.gpus_per_worker = gpus_per_worker if gpus_per_worker is not None else (1 if cuda else 0)
        self._kind = _address_kind(self.address or os.environ.get("RAY_ADDRESS") or None)
        self._started = False
        self._cpus: float | None = None

    def describe(self) -> dict[str, Any]:
        out = {**super().describe(), "ray_address": self._kind, "gpus_per_worker": self.gpus_per_worker}
        if self._cpus is not None:
            out["cpus_per_worker"] = self._cpus
        return out

    # ------------------------------------------------------------------ run
    def run(self, builder: Builder, staging: Path, tasks: Iterable[ShardTask], on_done: OnDone,
            on_step: OnStep | None = None) -> None:
        """Run every task on the actors; ``on_step`` is not used (progress is per shard under Ray)."""
        ray = self._connect()
        actors: list[Any] = []
        inflight: dict[Any, int] = {}  # shard result ref -> index of the actor running it
        settle = False
        try:
            cpus, threads = self._cpus_per_actor(ray)
            self._cpus = cpus
            self._check_room(ray, cpus)
            payload = ray.put(pickle.dumps(builder, protocol=pickle.HIGHEST_PROTOCOL))
            actor_cls = ray.remote(_ShardActor)
            env = _actor_env(threads)
            for i in range(self.workers):
                device = "cuda:0" if self.gpus_per_worker else self.device_for(i)
                actors.append(actor_cls.options(num_cpus=cpus, num_gpus=self.gpus_per_worker, max_restarts=0,
                                                runtime_env={"env_vars": env})
                              .remote(payload, str(staging), i, device, self.workers, threads))
            log.info("Ray: %d actor(s), %g CPU and %g GPU each (%s)", self.workers, cpus, self.gpus_per_worker,
                     self._kind)
            self._drain(ray, actors, inflight, Path(staging), tasks, on_done)
        except BaseException as err:
            settle = not isinstance(err, (KeyboardInterrupt, SystemExit))
            raise
        finally:
            if settle and inflight:
                # a shard failed: let the shards in flight finish (as the local executor does), so their work is
                # kept and a re-run never races an actor still writing (ray.kill returns before the actor is gone)
                try:
                    ray.wait(list(inflight), num_returns=len(inflight))
                except (Exception, KeyboardInterrupt):  # noqa: BLE001 - Ray going away, or Ctrl-C: stop them now
                    pass
            for actor in actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already dead, or Ray going away
                    pass
            if self._started:
                ray.shutdown()
                self._started = False

    def _drain(self, ray: Any, actors: list[Any], owner: dict[Any, int], staging: Path, tasks: Iterable[ShardTask],
               on_done: OnDone) -> None:
        load = [0] * len(actors)  # shards queued or running per actor

        def submit(task: ShardTask) -> Any:
            i = min(range(len(actors)), key=lambda k: (load[k], k))
            ref = actors[i].run_shard.remote(task)
            load[i] += 1
            owner[ref] = i
            return ref

        def wait_any(refs: list[Any]) -> list[Any]:
            ready, rest = ray.wait(refs, num_returns=1)
            if rest:
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            return ready

        def collect(ref: Any, task: ShardTask) -> dict[str, Any]:
            load[owner.pop(ref)] -= 1
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError:
                raise ShardError(f"{task.label}: a Ray worker died (killed, out of memory or its node was lost); "
                                 f"finished shards are kept: run the same command again to resume") from None
            except ray.exceptions.RayError as err:
                raise ShardError(f"{task.label} failed in Ray: {_reason(err)} (finished shards are kept; run the "
                                 f"same command again to resume)") from None
            stats = unwrap(result, task)
            _check_shared(staging, task)
            return stats

        drain(tasks, submit=submit, wait_any=wait_any, collect=collect, on_done=on_done, limit=2 * self.workers)

    # ------------------------------------------------------------------ resources
    def _cpus_per_actor(self, ray: Any) -> tuple[float, int]:
        """CPUs each actor asks Ray for, and its torch/BLAS threads.

        ``--threads`` if given; else the cluster's CPUs shared out over the actors, at most one
        node's worth, and a fraction of a CPU when there are more actors than CPUs.
        """
        if self.threads:
            return self.threads, self.threads
        cpus = [n.get("Resources", {}).get("CPU", 0) for n in _alive_nodes(ray)]
        if not cpus or not sum(cpus):
            return self.threads_per_worker(), self.threads_per_worker()
        share = min(int(sum(cpus)) // self.workers, int(max(cpus)))
        if share >= 1:
            return share, share
        return max(0.01, int(sum(cpus) * 100 / self.workers) / 100), 1

    def _check_room(self, ray: Any, cpus: float) -> None:
        """A cluster that cannot hold the actors: an error on our own instance, a warning on a cluster (it may grow)."""
        nodes = [n.get("Resources", {}) for n in _alive_nodes(ray)]
        if not nodes:
            return
        need = {"CPU": cpus, "GPU": self.gpus_per_worker}
        short = [f"{need[r] * self.workers:g} {r}" for r in need
                 if need[r] and (sum(n.get(r, 0) for n in nodes) < need[r] * self.workers
                                 or max(n.get(r, 0) for n in nodes) < need[r])]
        if not short:
            return
        have = ", ".join(f"{sum(n.get(r, 0) for n in nodes):g} {r}" for r in need)
        message = (f"{self.workers} Ray worker(s) need {' and '.join(short)} ({cpus:g} CPU and {self.gpus_per_worker:g} "
                   f"GPU each) but the Ray cluster has {have}")
        if self._kind == "local":
            raise ConfigError(f"{message}; use fewer --workers or --threads, or --devices without CUDA")
        log.warning("%s; the actors wait until the cluster has room", message)

    # ------------------------------------------------------------------ connecting
    def _connect(self) -> Any:
        """Ray, initialised: the one already running here, a cluster, or a new local instance."""
        ray = _import_ray()
        if ray.is_initialized():
            if self.address:
                log.warning("Ray is already initialised in this process: using it, not --ray-address %s", self.address)
            self._kind, self._started = "running", False
            return ray
        address = self.address
        where = "--ray-address"
        if address is None and os.environ.get("RAY_ADDRESS", "").strip():
            address, where = os.environ["RAY_ADDRESS"].strip(), "RAY_ADDRESS"
        options = _init_options()
        if address is None:
            found = _machine_cluster(ray)
            if found and _probe(found) is None:
                self._join(ray, found, "--ray-address", options)
                self._kind = "machine"
            else:
                self._start_local(options)
        elif address == "local":
            self._start_local(options)
        else:
            self._join(ray, address, where, options)
            self._kind = _address_kind(address)
        self._started = True
        return ray

    def _start_local(self, options: dict[str, Any]) -> None:
        try:
            start_local_ray(**options)
        except Exception as err:  # noqa: BLE001 - one line, not Ray's traceback
            raise ConfigError(f"could not start a local Ray instance: {_reason(err)}") from None
        self._kind = "local"

    @staticmethod
    def _join(ray: Any, address: str, where: str, options: dict[str, Any]) -> None:
        hint = _HINT if where == "--ray-address" else f"{_HINT} (or RAY_ADDRESS)"
        _check_address(address, where)
        if address != "auto":
            problem = _probe(address)
            if problem is not None:
                raise ConfigError(f"cannot reach the Ray cluster at {address}: {problem}; {hint}")
        if "://" in address:  # Ray Client passes init options on to the server's ray.init: none
            options = {}
        try:
            with _bounded_connect():
                ray.init(address=address, **options)
        except Exception as err:  # noqa: BLE001 - ConnectionError, RuntimeError, version mismatch...
            try:
                ray.shutdown()
            except Exception:  # noqa: BLE001
                pass
            raise ConfigError(f"cannot reach the Ray cluster at {address}: {_reason(err)}; {hint}") from None


# ---------------------------------------------------------------------- inside the actors
class _ShardActor:
    """A Ray actor (made with ``ray.remote``) that runs shards with one ShardWorker, made on first use."""

    def __init__(self, payload: bytes, staging: str, index: int, device: str | None, workers: int,
                 threads: int) -> None:
        self._args = (payload, staging, index, device, workers, threads)
        self._worker: ShardWorker | None = None

    def run_shard(self, task: ShardTask) -> Any:
        return run_guarded(self, task)  # type: ignore[arg-type] - duck-typed: has run()

    def run(self, task: ShardTask) -> dict[str, Any]:
        if self._worker is None:  # here, so a builder that cannot be unpickled is a shard error, not a dead actor
            payload, staging, index, device, workers, threads = self._args
            limit_threads(threads)
            self._worker = ShardWorker(pickle.loads(payload), Path(staging), WorkerInfo(index, device, workers))
        return self._worker.run(task)


# ---------------------------------------------------------------------- helpers
def start_local_ray(**options: Any) -> Any:
    """``ray.init`` of a new Ray instance on this machine that listens on loopback (127.0.0.1) only.

    ``ray.init(_node_ip_address="127.0.0.1")`` is not enough: Ray turns a loopback address into
    the machine's routable one unless its ``ENABLE_RAY_CLUSTER`` switch is off (as on macOS and
    Windows), so it is switched off while the instance starts.
    """
    ray = _import_ray()
    options.setdefault("include_dashboard", False)
    try:
        from ray._private import ray_constants
    except ImportError:  # pragma: no cover - a Ray without it: Ray's own default address
        ray_constants = None
    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if saved is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        return ray.init(address="local", **options)
    finally:
        if saved is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved


def _import_ray() -> Any:
    return require("ray", extra="ray", purpose="--executor ray")


def _init_options() -> dict[str, Any]:
    quiet = not logging.getLogger("dsbuild").isEnabledFor(logging.DEBUG)
    return {"include_dashboard": False, "log_to_driver": False,
            "logging_level": logging.ERROR if quiet else logging.INFO}


def _actor_env(threads: int) -> dict[str, str]:
    """What the actors get from the driver's environment: DSBUILD_* switches, offline switches, thread counts."""
    env = {k: v for k, v in os.environ.items()
           if (k.startswith("DSBUILD_") or k in FORWARDED_ENV) and not _SECRET.search(k)}
    env.update({var: str(threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    return env


def _check_address(address: str, where: str) -> None:
    if address in ("auto", "local"):
        return
    match = _ADDRESS.match(address)
    if not match or match["scheme"] not in (None, "ray"):
        raise ConfigError(f"{where} {address!r} is not a Ray address; give HOST:PORT of the head node "
                          f"(e.g. 10.0.0.5:6379), ray://HOST:10001, auto or local")


def _address_kind(address: str | None) -> str:
    """What kind of Ray a build used, for provenance (never the address itself)."""
    if address is None or address == "local":
        return "local"
    if address == "auto":
        return "auto"
    return "client" if "://" in address else "cluster"


def _alive_nodes(ray: Any) -> list[dict[str, Any]]:
    try:
        return [n for n in ray.nodes() if n.get("Alive")]
    except Exception:  # noqa: BLE001 - resources are advisory
        return []


def _machine_cluster(ray: Any) -> str | None:
    """The address of a cluster started on this machine with ``ray start`` (what ``ray.init()`` would join)."""
    try:
        from ray._private import services

        return services.canonicalize_bootstrap_address(None)
    except Exception:  # noqa: BLE001 - none, or a Ray that finds it differently: start our own
        return None


def _probe(address: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when something answers on the address's host and port, else why not (one line)."""
    match = _ADDRESS.match(address)
    if not match:
        return None  # let Ray judge
    host, port = match["host"].strip("[]"), int(match["port"])
    hosts = [host]
    if host in _LOCALHOST:  # Ray connects to the machine's own address instead of loopback
        try:
            import ray

            hosts.append(ray.util.get_node_ip_address())
        except Exception:  # noqa: BLE001
            pass
    problem = None
    for candidate in hosts:
        try:
            with socket.create_connection((candidate, port), timeout=timeout):
                return None
        except socket.timeout:
            problem = problem or f"no answer within {timeout:g} s"
        except OSError as err:
            problem = problem or (err.strerror or str(err)).strip()
    return problem


@contextmanager
def _bounded_connect() -> Iterator[None]:
    """Ray retries a connection ~20 times (about 14 minutes for a silent port); try once (~40 s at most)."""
    key = "RAY_gcs_server_port_wait_time_s"
    saved = os.environ.get(key)
    if saved is None:
        os.environ[key] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)


def _reason(err: BaseException) -> str:
    """The innermost cause of ``err`` as one short line."""
    seen = err
    while seen.__cause__ is not None or (seen.__context__ is not None and not seen.__suppress_context__):
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    lines = [ln.strip() for ln in str(seen).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(seen).__name__
    text = re.sub(r"^ray\.exceptions\.", "", text).rstrip(".;")
    return text[:300]


def _check_shared(staging: Path, task: ShardTask) -> None:
    """A shard an actor finished must be visible here; if not, the staging folder is not shared."""
    marker = shard_dir(staging, task) / "done"
    deadline = time.monotonic() + SHARED_FS_GRACE
    while not marker.exists():
        if time.monotonic() > deadline:
            raise ConfigError(f"{task.label} was finished by a Ray worker but its files are not in {staging} on this "
                              f"machine: with a Ray cluster, --out must be a folder every node shares (NFS, ...)")
        time.sleep(0.2)


__all__ = ["FORWARDED_ENV", "RayExecutor", "start_local_ray"]
