#!/usr/bin/env python
"""Benchmark of all-pairs cosine DTW: speechreps' kernels against the reference tools.

Random word-like tokens (lengths uniform in 30..120 frames) at D = 39 and 256, N = 500 and 2,000:

- ``fast``: speechreps' numba kernel (all threads), the default on CPU;
- ``torch-cpu``: speechreps' torch wavefront kernel on the CPU (the GPU path's code);
- ``reference``: SciPy cdist + plain Python DP (speechreps.evaluate.dtw.dtw_reference);
- ``dtaidistance``: ``dtw_ndim.distance_matrix_fast`` (C, OpenMP, all threads) on L2-normalised
  frames, whose squared-Euclidean cell cost is 2 x our cosine distance (converted and checked);
- ``recipe-style``: a compiled (numba) single-threaded cell-by-cell cosine DTW, called pair by pair
  from Python, the way Kamper's recipe drives its Cython ``multivariate_dtw_cost_cosine``.

Slow methods are timed on the pairs of a random subset of the tokens and compared per frame cell
(cells = n x m summed over pairs), which is what their cost is proportional to. Each figure is the
median of ``--repeats`` runs (the slowest, subset-timed ones once at the biggest sizes). The machine's
load (``uptime``) is printed before and after, as is the BLAS set-up; timings on a loaded machine
mean little in absolute terms, the ratios (measured in the same run) more.

    python bench/samediff.py                  # the full table (~10-20 min on 2 idle cores)
    python bench/samediff.py --big 5000       # plus the 5,000-token all-pairs wall time at D = 39
    python bench/samediff.py --quick          # a smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_tokens(n: int, dim: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(30, 121)), dim)).astype(np.float32) for _ in range(n)]


def cells(segs: list[np.ndarray]) -> float:
    lens = np.array([len(s) for s in segs], dtype=np.float64)
    return float((lens.sum() ** 2 - (lens**2).sum()) / 2)


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(median wall seconds, median CPU seconds of this process, last result)."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def recipe_kernel():
    import math as _m

    from numba import njit

    @njit(cache=True, fastmath=False)
    def recipe_dtw(s, t):  # the recipe's loop: cosine per cell from the raw frames, (N+1)x(M+1) matrix
        n, m, dim = s.shape[0], t.shape[0], s.shape[1]
        cost = np.full((n + 1, m + 1), 1.7976931348623157e308)
        cost[0, 0] = 0.0
        for i in range(n):
            for j in range(m):
                dot = 0.0
                nx = 0.0
                ny = 0.0
                for d in range(dim):
                    dot += s[i, d] * t[j, d]
                    nx += s[i, d] * s[i, d]
                    ny += t[j, d] * t[j, d]
                c = 1.0 - dot / (_m.sqrt(nx) * _m.sqrt(ny))
                best = cost[i, j]
                if cost[i, j + 1] < best:
                    best = cost[i, j + 1]
                if cost[i + 1, j] < best:
                    best = cost[i + 1, j]
                cost[i + 1, j + 1] = c + best
        return cost[n, m] / (n + m)

    return recipe_dtw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="500,2000")
    ap.add_argument("--dims", default="39,256")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fast-max-cells", type=float, default=1.5e9,
                    help="time the fast kernel on a token subset when all pairs exceed this many cells (x 39/D)")
    ap.add_argument("--big", type=int, default=0, help="also time all pairs of this many tokens at D=39 (e.g. 5000)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.dims, args.repeats = "120", "39", 2

    from threadpoolctl import threadpool_info

    import numba
    import torch

    from speechreps.evaluate.dtw import dtw_reference, l2_normalize, pairwise_dtw

    print(f"# bench/samediff.py  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"# before: {uptime()}")
    print(f"# cores: {os.cpu_count()}  numba threads: {numba.config.NUMBA_NUM_THREADS} ({numba.__version__})  "
          f"torch threads: {torch.get_num_threads()} ({torch.__version__})")  # fmt: skip
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        print(f"# {k}={os.environ.get(k, '(unset)')}")
    for info in threadpool_info():
        print(f"# blas: {info.get('internal_api')} {info.get('version')} {info.get('architecture')} "
              f"threads={info.get('num_threads')} {os.path.basename(info.get('filepath', ''))}")  # fmt: skip

    import dtaidistance
    from dtaidistance import dtw_ndim

    recipe = recipe_kernel()
    rng = np.random.default_rng(1)
    # warm-up: compile / load from cache every kernel outside the timings
    warm = make_tokens(20, 39, 99)
    pairwise_dtw(warm, device="cpu")
    pairwise_dtw(warm[:4], device="cpu", backend="torch")
    recipe(warm[0].astype(np.float64), warm[1].astype(np.float64))

    rows = []
    for dim in [int(x) for x in args.dims.split(",") if x]:
        for n in [int(x) for x in args.sizes.split(",") if x]:
            segs = make_tokens(n, dim, seed=n + dim)
            big = n >= 1000

            def subset(k: int) -> list[np.ndarray]:
                idx = rng.choice(n, size=min(k, n), replace=False)
                return [segs[i] for i in idx]

            # fast kernel: all pairs unless beyond the cell budget
            fast_set = segs
            budget = args.fast_max_cells * 39 / dim
            if cells(segs) > budget:
                k = int(n * math.sqrt(budget / cells(segs)))
                fast_set = subset(k)
            reps = 1 if big else args.repeats
            w, c, fast_d = timed(lambda: pairwise_dtw(fast_set, device="cpu"), reps)
            fast_rate = cells(fast_set) / w
            rows.append(("fast (numba, all threads)", n, dim, len(fast_set), w, c, cells(fast_set)))

            tset = subset(40)
            w, c, _ = timed(lambda: pairwise_dtw(tset, device="cpu", backend="torch"), 1)
            rows.append(("torch wavefront, CPU", n, dim, len(tset), w, c, cells(tset)))

            rset = subset(6 if dim > 100 else 8)
            w, c, _ = timed(lambda: [dtw_reference(a, b) for i, a in enumerate(rset) for b in rset[i + 1 :]], 1)
            rows.append(("reference (scipy + python)", n, dim, len(rset), w, c, cells(rset)))

            dset = subset(60 if dim > 100 else 120)
            units = [np.ascontiguousarray(l2_normalize(s), dtype=np.float64) for s in dset]
            w, c, dm = timed(lambda: dtw_ndim.distance_matrix_fast(units, parallel=True, compact=True), 1 if big else 2)
            rows.append(("dtaidistance (C, OpenMP)", n, dim, len(dset), w, c, cells(dset)))
            # check the conversion on this subset: dtai = sqrt(2 x summed cosine)
            lens = np.array([len(s) for s in dset])
            iu = np.triu_indices(len(dset), 1)
            conv = np.asarray(dm) ** 2 / 2 / (lens[iu[0]] + lens[iu[1]])
            ours = pairwise_dtw(dset, device="cpu")
            dtai_diff = float(np.abs(conv - ours).max())

            cset = subset(16 if dim > 100 else 30)
            c64 = [s.astype(np.float64) for s in cset]
            w, c, rec = timed(lambda: [recipe(a, b) for i, a in enumerate(c64) for b in c64[i + 1 :]], 1)
            rows.append(("recipe-style (numba 1 thread, per pair)", n, dim, len(cset), w, c, cells(cset)))
            rec_diff = float(np.abs(np.array(rec) - pairwise_dtw(cset, device="cpu")).max())
            print(f"# N={n} D={dim}: max |dtaidistance converted - fast| = {dtai_diff:.2e}, "
                  f"max |recipe-style - fast| = {rec_diff:.2e}", flush=True)  # fmt: skip
            rows.append(("-", n, dim, 0, 0, 0, 0))
            _ = fast_rate

    print()
    if not rows:
        head = None
    head = f"| {'method':<40} | {'N':>5} | {'D':>4} | {'tokens timed':>12} | {'pairs/s':>11} | {'Mcells/s':>9} | " \
           f"{'CPU s / wall s':>14} | {'fast is x faster':>16} |"  # fmt: skip
    print(head)
    print("|" + "|".join("-" * (len(x)) for x in head.split("|")[1:-1]) + "|")
    fast_rate = None
    for name, n, dim, k, w, c, cl in rows:
        if name == "-":
            continue
        pairs = k * (k - 1) / 2
        rate = cl / w
        if name.startswith("fast"):
            fast_rate = rate
        print(f"| {name:<40} | {n:>5} | {dim:>4} | {k:>12} | {pairs / w:>11,.0f} | {rate / 1e6:>9.2f} | "
              f"{c / w:>14.2f} | {fast_rate / rate:>16.1f} |")  # fmt: skip
    print("\npairs/s of subset-timed methods is for tokens of the same length distribution; "
          "'x faster' compares frame cells per second.")

    if args.big:
        segs = make_tokens(args.big, 39, seed=5000)
        c0, t0 = time.process_time(), time.perf_counter()
        d = pairwise_dtw(segs, device="cpu")
        w, c = time.perf_counter() - t0, time.process_time() - c0
        print(f"\nall pairs of {args.big} tokens at D=39 (fast kernel): {len(d):,} pairs, {cells(segs):.3g} cells, "
              f"{w:.1f} s wall ({w / 60:.2f} min), CPU {c:.1f} s, {len(d) / w:,.0f} pairs/s")  # fmt: skip
    print(f"# after: {uptime()}")
    print(f"# dtaidistance {dtaidistance.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
