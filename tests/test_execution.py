"""Sharded execution: identical bytes for any number of workers, resume, crashes, kills, bad options."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsbuild.errors import ConfigError, DsbuildError
from dsbuild.execution.shards import ShardError
from dsbuild.executor import build
from tests.plugins.sharding import FAIL_ENV, SLEEP_ENV, ToySharded

ROOT = Path(__file__).resolve().parents[1]


def digests(path: Path) -> dict[str, str]:
    """SHA-256 of every published file except provenance.json (it holds timings)."""
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file() and f.name != "provenance.json"}


def toy(n: int = 50) -> ToySharded:
    from dsbuild.config import resolve_options

    return ToySharded(resolve_options(ToySharded.Options, {"n": n}))


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(toy(), tmp_path_factory.mktemp("w1"), shard_size=8).path


def test_two_workers_write_the_same_bytes_as_one(one_worker: Path, tmp_path: Path) -> None:
    two = build(toy(), tmp_path, shard_size=8, workers=2).path
    assert digests(two) == digests(one_worker)
    prov = json.loads((two / "provenance.json").read_text())
    assert prov["execution"]["workers"] == 2 and prov["execution"]["shards"] == 3 * 7  # 3 splits of 50 / 8
    assert prov["totals"] == {"in": 150, "out": 150 - 3 * 8, "rejected": 3 * 8}  # every 7th of 50: 0, 7, ..., 49


def test_shard_facts_are_summed_and_reach_finish(one_worker: Path) -> None:
    prov = json.loads((one_worker / "provenance.json").read_text())
    assert prov["facts"]["split_facts"]["x"]["train"]["translated"] == 50
    assert prov["facts"]["split_facts"]["x"]["train"]["by_split"] == {"train": 50}
    assert json.loads((one_worker / "quality.json").read_text()) == {"translated": 150}
    assert [m["name"] for m in prov["models"]] == ["toy-translator"]


def test_output_does_not_depend_on_shard_size_when_steps_do_not(one_worker: Path, tmp_path: Path) -> None:
    assert digests(build(toy(), tmp_path, shard_size=1000).path) == digests(one_worker)


def test_failing_shard_names_itself_and_the_rerun_resumes(one_worker: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "x/test/16")
    with pytest.raises(ShardError, match=r"x/test shard 2 failed: ValueError: toy translator broke on purpose"):
        build(toy(), tmp_path, shard_size=8)
    staging = next((tmp_path / "toy-sharded").glob(".1.0.0.partial-*"))
    done = sorted(str(m.parent.relative_to(staging / "_shards")) for m in staging.glob("_shards/*/*/*/done"))
    assert done[:2] == ["x/test/00000", "x/test/00001"] and "x/test/00002" not in done
    monkeypatch.delenv(FAIL_ENV)
    before = {m: m.stat().st_mtime_ns for m in staging.glob("_shards/*/*/*/done")}
    result = build(toy(), tmp_path, shard_size=8, workers=2)
    assert digests(result.path) == digests(one_worker)
    # finished shards were not redone: their markers were never rewritten (checked before cleanup via stats)
    assert before and not staging.exists()


def test_failing_shard_in_a_worker_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAIL_ENV, "y/train/24")
    with pytest.raises(ShardError, match=r"y/train shard 3 failed: ValueError: toy translator broke on purpose"):
        build(toy(), tmp_path, shard_size=8, workers=2)


@pytest.mark.parametrize("options, message", [
    ({"workers": 0}, "--workers must be"),
    ({"workers": -2}, "--workers must be"),
    ({"workers": "2"}, "--workers must be"),
    ({"workers": 2, "devices": "cuda:0"}, "1 device"),
    ({"devices": "gpu0"}, "unknown device"),
    ({"shard_size": 0}, "--shard-size must be"),
    ({"ray_address": "127.0.0.1:1"}, "--ray-address needs --executor ray"),
    ({"executor": "slurm"}, "Unknown executor 'slurm'"),
])
def test_bad_execution_options_are_one_clear_error(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(DsbuildError, match=message):
        build(toy(5), tmp_path, **options)
    assert not (tmp_path / "toy-sharded").exists() or not list((tmp_path / "toy-sharded").iterdir())


def test_empty_out_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--out is empty"):
        build(toy(5), "")


# ---------------------------------------------------------------------- processes: kills and the lock
BUILD_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.plugins.sharding import ToySharded
from dsbuild.config import resolve_options
from dsbuild.executor import build
from dsbuild.errors import DsbuildError
try:
    r = build(ToySharded(resolve_options(ToySharded.Options, {{"n": 50}})), sys.argv[1], shard_size=8,
              workers=int(sys.argv[2]), progress=False)
except DsbuildError as err:
    print(str(err), file=sys.stderr)
    sys.exit(2)
print(r.path)
"""


def run_build(out: Path, workers: int = 1, sleep: float = 0.0, wait: bool = True) -> subprocess.Popen:
    env = {**os.environ, SLEEP_ENV: str(sleep), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT.format(root=str(ROOT)), str(out), str(workers)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    if wait:
        proc.wait(timeout=300)
    return proc


def finished_shards(out: Path) -> int:
    return len(list(out.glob("toy-sharded/.1.0.0.partial-*/_shards/*/*/*/done")))


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_shards", [0, 3, 11])
def test_kill_9_of_the_driver_then_resume_gives_identical_bytes(one_worker: Path, tmp_path: Path,
                                                                kill_after_shards: int) -> None:
    proc = run_build(tmp_path, sleep=0.15, wait=False)
    deadline = time.monotonic() + 120
    while finished_shards(tmp_path) < kill_after_shards and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / "toy-sharded" / "1.0.0").exists()
    again = run_build(tmp_path)
    assert again.returncode == 0, again.stderr.read()
    assert digests(tmp_path / "toy-sharded" / "1.0.0") == digests(one_worker)


@pytest.mark.slow
def test_kill_9_of_one_worker_stops_the_build_and_the_rerun_resumes(one_worker: Path, tmp_path: Path) -> None:
    import psutil

    proc = run_build(tmp_path, workers=2, sleep=0.3, wait=False)
    deadline = time.monotonic() + 120
    while finished_shards(tmp_path) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    children = [c for c in psutil.Process(proc.pid).children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]
    assert children, "no worker processes found"
    children[0].kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "a worker process died" in err and "Traceback" not in err
    again = run_build(tmp_path, workers=2)
    assert again.returncode == 0, again.stderr.read()
    assert digests(tmp_path / "toy-sharded" / "1.0.0") == digests(one_worker)


@pytest.mark.slow
def test_two_builds_at_once_never_lose_a_finished_dataset(tmp_path: Path) -> None:
    first = run_build(tmp_path)
    assert first.returncode == 0
    final = tmp_path / "toy-sharded" / "1.0.0"
    reference = digests(final)
    script = BUILD_SCRIPT.replace("shard_size=8,", "shard_size=8, overwrite=True,")
    for _ in range(5):  # each round races two builds; 5 rounds keep the suite short
        env = {**os.environ, SLEEP_ENV: "0.02", "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-c", script.format(root=str(ROOT)), str(tmp_path), "1"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                 for _ in range(2)]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        codes = sorted(rc for rc, _ in results)
        assert codes in ([0, 0], [0, 2]), results  # the second either waits its turn (ran after) or is refused
        for rc, err in results:
            if rc == 2:
                assert "another build of toy-sharded 1.0.0 into this folder is running (pid" in err
        assert digests(final) == reference  # the finished dataset is always there, whole


# ---------------------------------------------------------------------- lock, staging, progress, CLI
def test_stale_lock_of_a_dead_build_is_taken_over_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lock = tmp_path / "toy-sharded" / ".1.0.0.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": 999999, "host": "gone", "started": "2026-01-01T00:00:00Z"}))
    with caplog.at_level("WARNING"):
        build(toy(5), tmp_path, progress=False)
    assert "taking over the lock of a build that is no longer running (pid 999999 on gone" in caplog.text
    assert not lock.exists()  # released at the end


def test_a_held_lock_refuses_a_second_build_naming_the_holder(tmp_path: Path) -> None:
    from dsbuild.execution.lock import BuildLock, BuildLockedError

    with BuildLock(tmp_path / "toy-sharded" / ".1.0.0.lock", "toy-sharded 1.0.0"):
        with pytest.raises(BuildLockedError, match=rf"running \(pid {os.getpid()} on "):
            build(toy(5), tmp_path, progress=False)


def test_unfinished_builds_are_listed_and_fresh_or_clean_removes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    from typer.testing import CliRunner

    from dsbuild.cli import app

    monkeypatch.setenv(FAIL_ENV, "x/test/8")
    with pytest.raises(ShardError):
        build(toy(), tmp_path, shard_size=8, progress=False)
    left = list((tmp_path / "toy-sharded").glob(".1.0.0.partial-*"))
    assert len(left) == 1
    with caplog.at_level("WARNING"), pytest.raises(ShardError):
        build(toy(), tmp_path, shard_size=4, progress=False)  # other options: the first staging is listed
    assert left[0].name in caplog.text and "dsbuild clean" in caplog.text
    assert len(list((tmp_path / "toy-sharded").glob(".1.0.0.partial-*"))) == 2
    result = CliRunner().invoke(app, ["clean", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0 and result.output.count("would remove") == 2
    result = CliRunner().invoke(app, ["clean", str(tmp_path)])
    assert result.exit_code == 0 and result.output.count("removed") == 2
    assert not list((tmp_path / "toy-sharded").glob(".1.0.0.partial-*"))
    with pytest.raises(ShardError):
        build(toy(), tmp_path, shard_size=8, progress=False)
    monkeypatch.delenv(FAIL_ENV)
    build(toy(), tmp_path, shard_size=4, resume=False, progress=False)  # --fresh: every unfinished build goes
    assert not list((tmp_path / "toy-sharded").glob(".1.0.0.partial-*"))


def test_progress_is_logged_when_stderr_is_not_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DSBUILD_PROGRESS_SECONDS", "0")
    with caplog.at_level("INFO", logger="dsbuild.progress"):
        build(toy(), tmp_path, shard_size=8)
    lines = [r.getMessage() for r in caplog.records if r.name == "dsbuild.progress"]
    assert lines and all("ex/s" in line for line in lines)
    assert any(line.startswith("toy-sharded: 150/150 examples") for line in lines)
    assert any("ETA" in line for line in lines) and any("translate" in line for line in lines)


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be"),
    (["--devices", "cuda:0", "--workers", "2"], "1 device(s) for 2 workers"),
    (["--devices", "tpu9"], "unknown device name"),
    (["--shard-size", "-3"], "--shard-size must be"),
    (["--out", ""], "--out is empty"),
])
def test_cli_execution_options_fail_with_one_line(toy_sharded: type, args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from dsbuild.cli import app

    result = CliRunner().invoke(app, ["build", "toy-sharded", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_duplicate_example_ids_are_an_error_naming_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsbuild.spans import Example

    def source(self, config, split):  # noqa: ANN001, ANN202 - shard 0 and shard 2 both hold "x-7"
        for i in range(20):
            k = 7 if i == 17 else i
            yield Example.from_words(f"{config.name}-{split}-{k}", ["Ana", "visits", f"Town{i}"], tags=["B-PER", "O", "B-LOC"])

    monkeypatch.setattr(ToySharded, "source", source)
    with pytest.raises(DsbuildError, match=r"x/train: example id 'x-train-7' is used by 2 rows; ids must be unique"):
        build(ToySharded(ToySharded.Options(n=20, reject_every=0)), tmp_path, shard_size=8, workers=1, progress=False)
