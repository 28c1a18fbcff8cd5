"""Scaling benchmark (issue 10): translate-train with 1 and 2 local workers, memory at N and 10N, Ray.

What it builds: ``translate-train`` with the tiny synthetic Marian model (``en -> qsy``,
:func:`dsbuild.synthetic.cached_tiny_marian`, trained and cached the first time: minutes) on
synthetic source sentences (:func:`dsbuild.synthetic.generate_pairs`, unique, source side only,
written as token JSONL ``{"id", "tokens", "tags"}``); the translations come from the model.

Projection method: ``markers`` (default, ``--method``). Measured with 1 worker on one thread
(CPU seconds per sentence, while the machine was shared): ``markers`` ~3 ms/sentence, of which
almost all is the MT model (the marked source translated, plus the separate span translations the
label matching asks for); reading the markers back and assigning labels is well under 5 %. It
still runs on every sentence, and it is a real method (EasyProject) the tiny model was trained
for. ``alignment`` with eflomal spends about two thirds of its time in eflomal (a sampler trained
on each shard: ~8 s against ~4.5 s of MT for 1,000 sentences) and, by default, runs its two
directions on two threads, which would break the one-thread-per-worker rule (``--method
alignment`` here sets eflomal ``threads: 1`` and no extra corpus); ``constrained`` spends more in
its marker search than in translation. Both measure the projector more than the executor.

rows/s = input sentences / seconds of the ``build()`` call. Fairness of the 1-vs-2-worker
comparison: the same input, options, batch size and shard size; one thread per worker
(``build(threads=1)`` and ``translator_options: {threads: 1}``); greedy search;
every build starts with an empty translation cache (the cache folder is deleted before each build,
always the same path so the options, and so the files, are identical across builds); builds of
the two settings alternate (1, 2, 1, 2, ...) and the median of ``--repeats`` is reported. Every
build runs in a fresh process (this script with a hidden ``--child SPEC``), as ``dsbuild build``
would, and the time is that of its ``build()`` call: a 1-worker build (in that process) imports
torch and loads the model inside it, a 2-worker build spawns two processes that do the same. That
start-up (seconds per worker; ~10-25 s when the machine is overloaded) is a real cost of a build,
and ``--n`` must be large enough to amortise it; per build, "outside steps" (wall time minus the
step seconds per worker) is logged. One untimed 64-sentence build first warms the OS file cache.

Memory: N and 10N sentences (``--rss-n``), 1 worker, each in a fresh process; peak RSS = the
larger of the process's ``ru_maxrss`` and the peak summed RSS of its process tree sampled every
50 ms with psutil (when installed), which covers external tools such as eflomal (a child still
running this process's command line is a fork not yet exec'd, sharing its pages, and is skipped).
RUSAGE_CHILDREN is not used: a child forked from this process (``git`` for provenance) is
charged with this process's size before it execs, so it reported ~the parent's 510 MB again.
The input files are written by the parent, so generating sentences does not count. Torch and
the model (~500 MB) dominate the ratio; the growth in MB is printed too.

Ray: in a fresh process, a new local instance with ``num_cpus=2, include_dashboard=False`` on
127.0.0.1 (``dsbuild.execution.ray_executor.start_local_ray``; untimed), the same build with
``executor="ray"`` and 2 workers (timed), shutdown. Its files (every file but
``provenance.json``) are compared by SHA-256 with those of the first 1-worker local build (the
2-worker local build is compared too). If the Ray executor is not available the script says why
and reports ``ray_identical no``.

Defaults (``--n 32000 --rss-n 2000 --repeats 3``): about 14 minutes on a quiet 2-core machine
(~3 ms of CPU per sentence per worker, 6-11 s of start-up and assembly per build). Measured
2026-12-04 on this machine: with 16,000 sentences 1.65 (start-up is ~6 s of a 26 s build), with
32,000 1.83; so the default is 32,000.
Smoke run: ``--n 300 --rss-n 100 --repeats 1 --shard-size 50``.

    HF_HUB_OFFLINE=1 python scripts/bench_scale.py [--n 32000] [--rss-n 2000] [--repeats 3]
        [--batch-size 32] [--shard-size 500] [--method markers] [--no-ray] [--keep] [-v]

Output: first line the setting (model, sentences, batch size, shard size, threads per worker,
machine cores); last line exactly
``scale: workers2/workers1 X.XX, rss10x/rss1x Y.YY, ray_identical yes|no``.
Diagnostics go to stderr through ``logging``.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

log = logging.getLogger("bench_scale")

THREADS = 1  # torch threads per worker, for every setting
GOAL_SPEEDUP = 1.7
GOAL_RSS = 1.25
WARMUP_SENTENCES = 64


@dataclass
class Run:
    label: str
    seconds: float
    n_in: int
    n_out: int
    step_seconds: float  # summed over shards (worker-seconds in steps)
    workers: int
    path: Path
    translator_stats: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.n_in / self.seconds

    @property
    def outside_steps(self) -> float:
        """Wall time not spent in steps on a worker: start-up, shard I/O, assembly, idle tail."""
        return self.seconds - self.step_seconds / self.workers


# ---------------------------------------------------------------------- setup
def write_inputs(folder: Path, sizes: list[int], seed: int) -> dict[int, Path]:
    """Token JSONL files with the first n sentences of one unique synthetic set, for each n."""
    from dsbuild.synthetic import generate_pairs

    top = max(sizes)
    t0 = time.perf_counter()
    pairs = generate_pairs(top, seed=seed, id_prefix="bench", unique=True)
    lines = [json.dumps({"id": p.id, "tokens": p.source.words, "tags": p.source.tags()}) for p in pairs]
    del pairs
    out = {}
    for n in sorted(set(sizes)):
        path = folder / f"source-{n}.jsonl"
        path.write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
        out[n] = path
    log.info("wrote %d unique synthetic source sentences in %.1f s", top, time.perf_counter() - t0)
    return out


def builder_options(source: Path, model: Path, cache: Path, method: str, batch_size: int) -> dict[str, Any]:
    from dsbuild.synthetic import SRC_LANG, TGT_LANG

    opts: dict[str, Any] = dict(
        source=str(source), src_lang=SRC_LANG, target_langs=[TGT_LANG], translator="hf-seq2seq", model=str(model),
        beam_size=1, batch_size=batch_size, cache_dir=str(cache), target_tokenizer="whitespace",
        translator_options={"threads": THREADS, "progress": False}, policy="keep-partial", method=method)
    if method == "alignment":  # no extra corpus (none for en-qsy), one thread for eflomal like for torch
        opts.update(aligner="eflomal", extra_parallel=False, aligner_options={"threads": 1})
    return opts


def make_builder(opts: dict[str, Any]) -> Any:
    # imported directly, not through the registry: listing every builder imports all of them
    from builders.translate_train import TranslateTrain
    from dsbuild.config import resolve_options

    return TranslateTrain(resolve_options(TranslateTrain.Options, opts))


def run_build(label: str, opts: dict[str, Any], out: Path, *, executor: str, workers: int, shard_size: int) -> Run:
    """One build from an empty translation cache, timed around ``build()``."""
    from dsbuild.executor import build

    cache = Path(opts["cache_dir"])
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    builder = make_builder(opts)
    t0 = time.perf_counter()
    result = build(builder, out, executor=executor, workers=workers, threads=THREADS, shard_size=shard_size,
                   progress=False)
    seconds = time.perf_counter() - t0
    prov = result.provenance
    timings = (prov.get("timings") or {}).get("seconds") or {}
    steps = sum(v for k, v in timings.items() if k.startswith("step/"))
    tstats = (prov.get("facts") or {}).get("translate_train", {}).get("translator_stats") or {}
    run = Run(label, seconds, prov["totals"]["in"], prov["totals"]["out"], steps, workers, result.path, tstats)
    log.info("%s: %.1f s, %.1f rows/s (%d in, %d kept), steps %.1f worker-s, outside steps %.1f s%s", label,
             seconds, run.rate, run.n_in, run.n_out, steps, run.outside_steps,
             f", translator {tstats}" if tstats else "")
    return run


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except provenance.json (timings, executor, host)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "provenance.json"}


def compare(a: Path, b: Path) -> tuple[bool, str]:
    ha, hb = file_hashes(a), file_hashes(b)
    if ha == hb:
        return True, f"{len(ha)} files"
    differ = sorted(k for k in set(ha) | set(hb) if ha.get(k) != hb.get(k))
    return False, f"{len(differ)} of {len(set(ha) | set(hb))} files differ: {', '.join(differ[:5])}"


# ---------------------------------------------------------------------- one build per fresh process
class TreeSampler:
    """Peak summed RSS of this process and its descendants, sampled every ``interval`` s (psutil)."""

    def __init__(self, interval: float = 0.05) -> None:
        import threading

        self.peak = 0
        self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self, interval: float) -> None:
        import psutil

        me = psutil.Process()
        mine = me.cmdline()
        while not self._stop.is_set():
            own = children = 0
            try:
                own = me.memory_info().rss
                for child in me.children(recursive=True):
                    try:
                        # a fork() not yet exec'd (subprocess with preexec_fn, e.g. eflomal) maps our
                        # own pages: counting it would count this process twice
                        if child.cmdline() != mine:
                            children += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, own + children)
            self.peak_children = max(self.peak_children, children)
            self._stop.wait(interval)


def child_main(spec_path: str) -> int:
    """``--child SPEC``: one build in this fresh process (Ray started here first when asked); JSON on stdout."""
    import contextlib

    spec = json.loads(Path(spec_path).read_text())
    try:
        import psutil  # noqa: F401 - optional: the process tree's RSS

        sampler: Any = TreeSampler()
    except ImportError:
        sampler = None
    ray = None
    if spec["executor"] == "ray":
        import ray

        t0 = time.perf_counter()
        options = dict(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        try:  # the executor's helper keeps Ray on loopback (_node_ip_address alone does not)
            from dsbuild.execution.ray_executor import start_local_ray
        except ImportError:
            ray.init(address="local", _node_ip_address="127.0.0.1", **options)
        else:
            start_local_ray(**options)
        log.info("ray.init: %.1f s, node %s", time.perf_counter() - t0, ray.util.get_node_ip_address())
    try:
        with sampler if sampler is not None else contextlib.nullcontext():
            run = run_build(spec["label"], spec["options"], Path(spec["out"]), executor=spec["executor"],
                            workers=spec["workers"], shard_size=spec["shard_size"])
    finally:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": run.seconds, "n_in": run.n_in, "n_out": run.n_out, "step_seconds": run.step_seconds,
                      "path": str(run.path), "translator_stats": run.translator_stats, "self_kb": self_kb,
                      "tree_peak_kb": sampler.peak // 1024 if sampler else None,
                      "children_peak_kb": sampler.peak_children // 1024 if sampler else None}))
    return 0


def run_child(label: str, opts: dict[str, Any], out: Path, *, executor: str, workers: int, shard_size: int,
              work: Path, verbose: bool) -> tuple[Run, dict[str, Any]]:
    """Run one build in a fresh ``python scripts/bench_scale.py --child`` process."""
    slug = "".join(c if c.isalnum() else "-" for c in label)
    spec = work / f"spec-{slug}.json"
    spec.write_text(json.dumps({"label": label, "options": opts, "out": str(out), "executor": executor,
                                "workers": workers, "shard_size": shard_size}))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(spec)] + (["-v"] if verbose else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parents[1]))
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: the build process failed (exit {proc.returncode}); its log is above")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    run = Run(label, info["seconds"], info["n_in"], info["n_out"], info["step_seconds"], workers, Path(info["path"]),
              info["translator_stats"])
    # RUSAGE_CHILDREN is useless here: a forked child (git, eflomal) is charged with the parent's size
    info["peak_mb"] = max(info["self_kb"], info["tree_peak_kb"] or 0) / 1024
    log.info("%s: peak RSS %.0f MB (process high-water %.0f MB; sampled process tree %s MB, children %s MB)", label,
             info["peak_mb"], info["self_kb"] / 1024,
             f"{info['tree_peak_kb'] / 1024:.0f}" if info["tree_peak_kb"] is not None else "n/a (no psutil)",
             f"{info['children_peak_kb'] / 1024:.0f}" if info["children_peak_kb"] is not None else "n/a")
    return run, info


def ray_unavailable() -> str | None:
    """Why the Ray executor cannot be used here, or ``None``."""
    try:
        from dsbuild.registry import executors

        executors.get("ray")
        import ray  # noqa: F401
    except Exception as err:  # noqa: BLE001 - absent, half-written or broken: report, do not crash
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        return f"ray executor unavailable: {type(err).__name__}: {first}"
    return None


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32000, help="sentences for the rows/s measurements")
    ap.add_argument("--rss-n", type=int, default=2000, help="N of the memory measurement (runs N and 10N)")
    ap.add_argument("--repeats", type=int, default=3, help="builds per worker setting (median reported)")
    ap.add_argument("--ray-repeats", type=int, default=1, help="Ray builds (median reported)")
    ap.add_argument("--batch-size", type=int, default=32, help="MT batch size")
    ap.add_argument("--shard-size", type=int, default=500, help="input sentences per shard")
    ap.add_argument("--method", choices=["markers", "alignment", "constrained"], default="markers")
    ap.add_argument("--seed", type=int, default=20260, help="seed of the synthetic sentences")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray build (reports ray_identical no)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (inputs, outputs)")
    ap.add_argument("-v", "--verbose", action="store_true", help="dsbuild's own INFO logs too")
    ap.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)
    if args.child:
        return child_main(args.child)
    if min(args.n, args.rss_n, args.repeats, args.ray_repeats, args.batch_size, args.shard_size) < 1:
        ap.error("--n, --rss-n, --repeats, --ray-repeats, --batch-size and --shard-size must be >= 1")
    if args.n < 8 * args.shard_size:
        log.warning("--n %d is only %d shard(s) of %d: 2 workers cannot share them evenly (use >= 8 shards)",
                    args.n, -(-args.n // args.shard_size), args.shard_size)

    from dsbuild.synthetic import SRC_LANG, TGT_LANG, cached_tiny_marian

    t_start = time.perf_counter()
    model = cached_tiny_marian()
    info = json.loads((model / "training.json").read_text())
    cores = os.cpu_count() or 1
    print(f"bench_scale: model {model.name} ({SRC_LANG}->{TGT_LANG}, {info.get('parameters', '?')} parameters, "
          f"greedy), method {args.method}, sentences {args.n} (memory: {args.rss_n} and {10 * args.rss_n}), "
          f"batch size {args.batch_size}, shard size {args.shard_size}, threads per worker {THREADS}, "
          f"machine cores {cores}, repeats {args.repeats}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="dsbuild-bench-scale-"))
    common = dict(shard_size=args.shard_size, work=work, verbose=args.verbose)
    try:
        inputs = write_inputs(work, [args.n, args.rss_n, 10 * args.rss_n, WARMUP_SENTENCES], args.seed)
        cache = work / "translation-cache"  # one path, emptied before every build: identical options
        opts = builder_options(inputs[args.n], model, cache, args.method, args.batch_size)

        # warm-up (untimed): the OS file cache (Python modules, torch libraries, model files)
        run_child("warm-up", builder_options(inputs[WARMUP_SENTENCES], model, cache, args.method, args.batch_size),
                  work / "out-warmup", executor="local", workers=1, **common)

        # 1 vs 2 local workers, alternating, each build in a fresh process
        runs: dict[int, list[Run]] = {1: [], 2: []}
        for rep in range(args.repeats):
            for workers in (1, 2):
                run, _ = run_child(f"local workers={workers} #{rep + 1}", opts, work / f"out-local{workers}-{rep}",
                                   executor="local", workers=workers, **common)
                runs[workers].append(run)
        med = {w: statistics.median(r.seconds for r in rs) for w, rs in runs.items()}
        rate = {w: args.n / s for w, s in med.items()}
        speedup = rate[2] / rate[1]
        for w in (1, 2):
            times = ", ".join(f"{r.seconds:.1f}" for r in runs[w])
            outside = statistics.median(r.outside_steps for r in runs[w])
            print(f"local workers {w}: {rate[w]:.1f} rows/s (median build {med[w]:.1f} s of {times} s; "
                  f"outside steps {outside:.1f} s)")
        print(f"workers2/workers1: {speedup:.2f} (goal >= {GOAL_SPEEDUP})")
        reference = runs[1][0].path
        same2, detail2 = compare(reference, runs[2][0].path)
        print(f"local 2 workers identical to 1 worker: {'yes' if same2 else 'no'} ({detail2})")

        # memory at N and 10N, 1 worker, each in a fresh process
        rss = {}
        for n in (args.rss_n, 10 * args.rss_n):
            ropts = builder_options(inputs[n], model, work / f"cache-rss-{n}", args.method, args.batch_size)
            _, rss[n] = run_child(f"memory n={n}", ropts, work / f"out-rss-{n}", executor="local", workers=1,
                                  **common)
        small, big = rss[args.rss_n]["peak_mb"], rss[10 * args.rss_n]["peak_mb"]
        rss_ratio = big / small
        print(f"peak RSS (1 worker, fresh process): {small:.0f} MB at {args.rss_n} sentences, {big:.0f} MB at "
              f"{10 * args.rss_n}; ratio {rss_ratio:.2f} (goal <= {GOAL_RSS}), growth {big - small:+.0f} MB")

        # Ray: a fresh local instance with 2 CPUs in the build's process
        why = "ray skipped (--no-ray)" if args.no_ray else ray_unavailable()
        ray_list: list[Run] = []
        if why is None:
            try:
                for rep in range(args.ray_repeats):
                    run, _ = run_child(f"ray workers=2 #{rep + 1}", opts, work / f"out-ray-{rep}", executor="ray",
                                       workers=2, **common)
                    ray_list.append(run)
            except RuntimeError as err:
                why = f"ray build failed: {err}"
        ray_same = False
        if why:
            print(f"ray: {why}")
        else:
            ray_same, detail = compare(reference, ray_list[0].path)
            ray_med = statistics.median(r.seconds for r in ray_list)
            print(f"ray workers 2 (num_cpus=2): {args.n / ray_med:.1f} rows/s (median build {ray_med:.1f} s of "
                  f"{', '.join(f'{r.seconds:.1f}' for r in ray_list)} s); identical to local 1 worker: "
                  f"{'yes' if ray_same else 'no'} ({detail})")
        log.info("total %.0f s", time.perf_counter() - t_start)
        print(f"scale: workers2/workers1 {speedup:.2f}, rss10x/rss1x {rss_ratio:.2f}, "
              f"ray_identical {'yes' if ray_same else 'no'}")
    finally:
        if args.keep:
            log.info("kept %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
