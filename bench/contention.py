#!/usr/bin/env python
"""Throughput of each training step and of the DTW kernel, idle and beside one competing CPU-bound process.

    python bench/contention.py                         # every stage, the thread fix off and on
    python bench/contention.py --stages frame_cae,dtw --modes off/on/t1 --seconds 2
    python bench/contention.py --isolate               # see below

A stage is one model's training step (APC, CPC, CAPC, frame AE, frame CAE: forward, backward, clipping,
Adam, on batches shaped as the trainer's, from bench/train.py) at the sizes in ``--config`` (default
configs/demo.json), the numba all-pairs DTW kernel (D = 39 word-like tokens, bench/samediff.py), or the
cosine distances of 2,000 downsampled tokens (speechreps.evaluate.downsample: numpy / OpenBLAS).
Each (stage, mode) runs in a fresh worker process, because the OpenMP runtime reads its environment once,
when torch is imported. The worker warms up, then alternates ``--rounds`` times: ``--seconds`` idle, then
``--seconds`` with one competing process (a busy Python loop it starts and kills itself), and prints the
median of each; the slowdown is idle / busy. Figures are unpadded frames/s (training) or Mcells/s (DTW).

Modes:
  off   what speechreps did before speechreps.threads: libgomp's default spin-then-sleep waiting
        (GOMP_SPINCOUNT=300000, what an unset environment gives) and torch threads = cores, every stage
  on    speechreps.threads: passive OpenMP waiting set before torch's import, threads per stage
  tN[,KEY=VALUE...]   N torch threads with that environment (for exploring, e.g. t2,GOMP_SPINCOUNT=10000)

--competitor child (default) starts the competing process as a child of the worker; ``session`` starts it in
its own session. Where the kernel groups processes by session ("autogroup", /proc/sys/kernel/
sched_autogroup_enabled = 1) that matters: CPU time is shared fairly between sessions first, so another
user's process competes with the whole job, not with one of its threads, and ``nice`` on another session's
work does not lower its share against ours. --isolate (root only, autogroup kernels) gives each worker and its
competitor their own sessions at autogroup nice -19, so that other sessions' work on a shared machine barely
disturbs the measurement; the competitor then always has its own session too. The load average is printed
before and after, and beside every row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ("apc", "cpc", "capc", "frame_ae", "frame_cae", "dtw", "downsample")
# libgomp's spin count when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set (its documented default)
GOMP_DEFAULT_SPIN = "300000"
ISOLATE_NICE = -19


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def set_autogroup_nice(nice: int) -> str:
    """Give this process's session (autogroup) ``nice``; returns what the kernel now says, or why not."""
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError as exc:
        return f"not isolated ({exc.strerror})"


# ---------------------------------------------------------------------------------------------
# worker: one stage in one mode


def _mode_env(mode: str) -> tuple[dict[str, str], int | None]:
    """(environment to set before torch's import, torch threads or None for speechreps' choice)."""
    if mode == "off":
        return {"GOMP_SPINCOUNT": GOMP_DEFAULT_SPIN}, os.cpu_count()
    if mode == "on":
        return {}, None
    head, *pairs = mode.split(",")
    if not head.startswith("t") or not head[1:].isdigit():
        raise SystemExit(f"contention.py: unknown mode {mode!r}: off, on or tN[,KEY=VALUE...]")
    return dict(p.split("=", 1) for p in pairs), int(head[1:])


def _competitor(kind: str, isolate: bool) -> subprocess.Popen:
    # dies with the worker (Linux: PR_SET_PDEATHSIG = 1, SIGKILL), so that a killed run leaves no spinner
    code = "try:\n import ctypes; ctypes.CDLL(None).prctl(1, 9)\nexcept Exception:\n pass\nwhile True: pass"
    if isolate:  # its own session, at the same autogroup nice as the worker's
        code = f"open('/proc/self/autogroup', 'w').write('{ISOLATE_NICE}')\n" + code
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=isolate or kind == "session")


def _training_step(stage: str, config: str, threads: int | None):
    import torch

    sys.path.insert(0, str(HERE))
    from train import _Runner, make_batches  # bench/train.py: the trainer's step and batch shapes

    from speechreps.config import load_config

    cfg = load_config(config, stage)
    runner = _Runner(stage, cfg, original_style=False)
    if threads is None:
        from speechreps.threads import threads_for  # what Trainer.fit uses, of the cores torch would use

        threads = threads_for(runner.model, torch.device("cpu"), torch.get_num_threads())
    torch.set_num_threads(threads)
    batches = make_batches(runner.kind, cfg, 8, torch.Generator().manual_seed(0))
    state = {"i": 0}

    def step() -> float:
        batch, frames = batches[state["i"] % len(batches)]
        state["i"] += 1
        runner.step(batch, timed=False)
        return frames

    return step, threads


def _dtw_step(threads: int | None, n_tokens: int):
    sys.path.insert(0, str(HERE))
    from samediff import cells, make_tokens  # bench/samediff.py's word-like tokens

    from speechreps.evaluate.dtw import pairwise_dtw

    segs = make_tokens(n_tokens, 39)
    n_cells = cells(segs) / 1e6

    def step() -> float:
        pairwise_dtw(segs, n_jobs=threads, backend="numba")
        return n_cells

    import numba

    return step, threads or numba.config.NUMBA_NUM_THREADS


def _downsample_step(n_tokens: int):
    sys.path.insert(0, str(HERE))
    from samediff import make_tokens

    from speechreps.evaluate.downsample import pairwise_downsample

    segs = make_tokens(n_tokens, 39)

    def step() -> float:
        pairwise_downsample(segs)
        return n_tokens * (n_tokens - 1) / 2 / 1e6

    return step, 1


def _rate(step, seconds: float) -> float:
    done, t0 = 0.0, time.perf_counter()
    while True:
        done += step()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def worker(args: argparse.Namespace) -> None:
    isolated = set_autogroup_nice(ISOLATE_NICE) if args.isolate else "not isolated"
    env, threads = _mode_env(args.mode)
    os.environ.update(env)  # before torch (and with it libgomp) is imported
    import speechreps  # noqa: F401  (first, as the CLIs do: in mode "on" it sets passive OpenMP waiting)
    if args.stage == "dtw":
        step, threads = _dtw_step(threads, args.dtw_tokens)
    elif args.stage == "downsample":
        step, threads = _downsample_step(2000)
    else:
        step, threads = _training_step(args.stage, args.config, threads)
    _rate(step, min(1.0, args.seconds))  # warm-up: compilation, allocator, caches
    idle, busy = [], []
    for _ in range(args.rounds):
        idle.append(_rate(step, args.seconds))
        comp = _competitor(args.competitor, args.isolate)
        try:
            time.sleep(0.2)
            busy.append(_rate(step, args.seconds))
        finally:
            comp.kill()
            comp.wait()
    import torch

    print(json.dumps({"idle": statistics.median(idle), "busy": statistics.median(busy), "threads": threads,
                      "omp": torch.__config__.parallel_info().count("OpenMP") > 0, "load": os.getloadavg()[0],
                      "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")},
                      "autogroup": isolated}))


# ---------------------------------------------------------------------------------------------
# driver


def run_worker(stage: str, mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", stage, "--mode", mode, "--config", args.config,
           "--seconds", str(args.seconds), "--rounds", str(args.rounds), "--competitor", args.competitor,
           "--dtw-tokens", str(args.dtw_tokens)] + (["--isolate"] if args.isolate else [])  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, start_new_session=args.isolate)
    if out.returncode != 0:
        raise SystemExit(f"worker {stage}/{mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", default=",".join(STAGES))
    p.add_argument("--modes", default="off/on", help="separated by '/': e.g. off/on/t1/t2,GOMP_SPINCOUNT=10000")
    p.add_argument("--config", default=str(HERE.parent / "configs" / "demo.json"))
    p.add_argument("--seconds", type=float, default=3.0, help="per measurement (idle, busy)")
    p.add_argument("--rounds", type=int, default=2, help="idle/busy alternations per stage and mode (median)")
    p.add_argument("--competitor", choices=("child", "session"), default="child")
    p.add_argument("--isolate", action="store_true", help="own sessions at autogroup nice -19 (root)")
    p.add_argument("--dtw-tokens", type=int, default=300)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        args.stage = args.worker
        return worker(args)
    modes = args.modes.split("/")
    print(f"# {uptime()}")
    print(f"# {os.cpu_count()} cores; competitor: {args.competitor}; isolate: {args.isolate}; "
          f"autogroup: {Path('/proc/sys/kernel/sched_autogroup_enabled').read_text().strip() if Path('/proc/sys/kernel/sched_autogroup_enabled').exists() else 'n/a'}; "
          f"config {Path(args.config).name}; {args.rounds} x {args.seconds:g} s idle/busy per row")  # fmt: skip
    print("| stage | mode | threads | idle | with 1 competitor | slowdown | load (1 min) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for stage in args.stages.split(","):
        unit = {"dtw": "Mcells/s", "downsample": "Mpairs/s"}.get(stage, "frames/s")
        for mode in modes:
            r = run_worker(stage, mode, args)
            print(f"| {stage} | {mode} | {r['threads']} | {_num(r['idle'])} {unit} | {_num(r['busy'])} | "
                  f"{r['idle'] / r['busy']:.2f}x | {r['load']:.2f} |", flush=True)
    print(f"# {uptime()}")


if __name__ == "__main__":
    main()
