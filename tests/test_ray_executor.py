"""The ``ray`` executor: same bytes as the local one, failing shard and resume, unreachable cluster, bad options.

One local Ray instance (2 CPUs, loopback only) serves the whole module; the executor finds it
already initialised and leaves it running. The unreachable-cluster test runs in a fresh
interpreter, so it cannot see that instance.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from dsbuild.errors import ConfigError  # noqa: E402
from dsbuild.execution.base import make_executor  # noqa: E402
from dsbuild.execution.ray_executor import RayExecutor, start_local_ray  # noqa: E402
from dsbuild.execution.shards import ShardError  # noqa: E402
from dsbuild.executor import build  # noqa: E402
from tests.plugins.sharding import FAIL_ENV, SLEEP_ENV  # noqa: E402
from tests.test_execution import ROOT, digests, toy  # noqa: E402

SHARDS = 3 * 7  # 3 splits of 50 examples, 8 per shard


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray for the module; actors import ``tests.plugins.sharding`` from the repo root."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    start_local_ray(num_cpus=2, log_to_driver=False, logging_level=logging.ERROR,
                    runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(toy(), tmp_path_factory.mktemp("w1"), shard_size=8, progress=False).path


class CountingRay(RayExecutor):
    """The ray executor, remembering which shards it ran."""

    def run(self, builder, staging, tasks, on_done, on_step=None):  # type: ignore[no-untyped-def]
        self.ran = []

        def done(task, stats):  # type: ignore[no-untyped-def]
            self.ran.append((task.config, task.split, task.index))
            on_done(task, stats)

        super().run(builder, staging, tasks, done, on_step)


def test_two_ray_workers_write_the_same_bytes_as_one_local_worker(ray_instance, one_worker: Path,
                                                                  tmp_path: Path) -> None:
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}  # loopback only
    result = build(toy(), tmp_path, shard_size=8, executor="ray", workers=2, progress=False)
    assert digests(result.path) == digests(one_worker)
    execution = json.loads((result.path / "provenance.json").read_text())["execution"]
    assert execution["executor"] == "ray" and execution["workers"] == 2 and execution["shards"] == SHARDS
    assert execution["ray_address"] == "running" and execution["gpus_per_worker"] == 0
    assert ray.is_initialized()  # not ours to shut down


def test_failing_shard_names_itself_and_the_rerun_resumes(ray_instance, one_worker: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "x/test/16")  # set after Ray started: reaches the actors through the executor
    with pytest.raises(ShardError, match=r"^x/test shard 2 failed: ValueError: toy translator broke on purpose"):
        build(toy(), tmp_path, shard_size=8, executor="ray", workers=2, progress=False)
    staging = next((tmp_path / "toy-sharded").glob(".1.0.0.partial-*"))
    done = {tuple(m.parent.relative_to(staging / "_shards").parts) for m in staging.glob("_shards/*/*/*/done")}
    # shard 9 (x/test/2) is drawn once 6 shards have finished: at most 2 * workers are in flight
    assert len(done) >= 6 and ("x", "test", "00002") not in done
    monkeypatch.delenv(FAIL_ENV)
    runner = CountingRay(workers=2)
    result = build(toy(), tmp_path, shard_size=8, executor=runner, progress=False)
    assert digests(result.path) == digests(one_worker)
    redone = {(c, s, f"{i:05d}") for c, s, i in runner.ran}
    # finished shards were not run again (a shard in flight at the failure may still have finished after it)
    assert not redone & done and 0 < len(redone) <= SHARDS - len(done)


def test_a_killed_ray_worker_stops_the_build_with_one_line(ray_instance, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    psutil = pytest.importorskip("psutil")
    monkeypatch.setenv(SLEEP_ENV, "0.4")
    killed: list[int] = []
    def actors() -> list:  # busy: "ray::_ShardActor.run_shard"; idle: "ray::_ShardActor"
        return [p for p in psutil.process_iter(["cmdline"]) if "_ShardActor" in " ".join(p.info["cmdline"] or [])]

    earlier = {p.pid for p in actors()}  # actors of earlier builds may still be on their way out

    def kill_an_actor() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            if list(tmp_path.glob("toy-sharded/.*/_shards/*/*/*/done")):
                for proc in actors():
                    if "run_shard" in " ".join(proc.info["cmdline"]) and proc.pid not in earlier:
                        proc.kill()
                        killed.append(proc.pid)
                        return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_an_actor, daemon=True)
    killer.start()
    with pytest.raises(ShardError, match=r"^\S+ shard \d+: a Ray worker died .*run the same command again to resume$"):
        build(toy(), tmp_path, shard_size=8, executor="ray", workers=2, progress=False)
    killer.join(timeout=5)
    assert killed


UNREACHABLE = """
import sys, time
sys.path.insert(0, {root!r})
from tests.plugins.sharding import ToySharded
from dsbuild.config import resolve_options
from dsbuild.executor import build
from dsbuild.errors import DsbuildError
t0 = time.monotonic()
try:
    build(ToySharded(resolve_options(ToySharded.Options, {{"n": 5}})), sys.argv[1], executor="ray",
          ray_address="127.0.0.1:1", progress=False)
except DsbuildError as err:
    print(f"{{time.monotonic() - t0:.1f}}", file=sys.stdout)
    print(str(err), file=sys.stderr)
    sys.exit(2)
"""


def test_an_unreachable_cluster_is_one_quick_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", UNREACHABLE.format(root=str(ROOT)), str(tmp_path)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 30
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("cannot reach the Ray cluster at 127.0.0.1:1: ")
    assert lines[0].endswith("; start one with `ray start --head` or fix --ray-address")
    assert not list((tmp_path / "toy-sharded").glob("1.0.0"))


@pytest.mark.parametrize("options, message", [
    ({"workers": 0}, "--workers must be"),
    ({"gpus_per_worker": -1}, "gpus_per_worker must be"),
    ({"address": "not an address"}, "--ray-address 'not an address' is not a Ray address"),
    ({"address": "http://head:8265"}, "is not a Ray address"),
])
def test_bad_ray_options_are_one_clear_error(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_executor("ray", **options)

def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"^--executor ray needs .*pip install 'dsbuild\[ray\]'"):
        make_executor("ray", workers=2)
