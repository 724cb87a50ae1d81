#!/usr/bin/env python
"""Benchmark of pretrained-encoder features: extraction throughput and memory, and what 768-d DTW costs.

1. **Extraction.** A base-size model (12 blocks, 768-d: each family's default config) built from its
   config with random weights (the speed and memory do not depend on the values), saved with
   safetensors into a temporary folder and loaded the way ``speechreps encoder`` loads it; then every
   hidden layer of ``--seconds`` of audio (utterances of 2-8 s of noise, 16 kHz) is computed through
   :meth:`PretrainedEncoder.encode_all`, on ``--threads`` torch threads, alternating (4 utterances at a
   time) with speechreps' MFCC computation of the same audio, so that the ratio of the two shares the
   machine's load. Each family runs in a fresh process so that its peak RSS (``ru_maxrss``) is its own;
   the figures are seconds of audio per second of wall time and per second of the process's CPU time.
2. **DTW at 768 dimensions.** The fast all-pairs kernel (numba) on N random tokens at D = 768 with
   20 ms frames (15-60 frames, what a 0.3-1.2 s word gives an encoder) against D = 39 with 10 ms frames
   (30-120 frames, MFCC), timed alternately in one run: pairs/s, frame cells/s and the ratio of the wall
   times of scoring the same words both ways.

The machine's load (``uptime``) is printed before and after; on a shared machine the ratios mean more
than the absolute figures.

    python bench/encoder.py                       # HuBERT base, 120 s of audio, 2 threads; DTW N = 1000
    python bench/encoder.py --families hubert,wav2vec2,wavlm --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def extract_one(family: str, seconds: float, threads: int) -> dict:
    """(Run in a child process.) Build, save, load and time one base-size model."""
    import torch
    import transformers

    from speechreps.encoders.model import load_encoder

    torch.set_num_threads(threads)
    names = {"hubert": "Hubert", "wav2vec2": "Wav2Vec2", "wavlm": "WavLM"}[family]
    rss0 = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = getattr(transformers, f"{names}Model")(getattr(transformers, f"{names}Config")())
        model.save_pretrained(tmp)
        del model
        t0 = time.perf_counter()
        enc = load_encoder(tmp, device="cpu")
        load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()
    rng = np.random.default_rng(0)
    lengths, total = [], 0
    while total < seconds * 16000:
        lengths.append(int(rng.integers(2 * 16000, 8 * 16000)))
        total += lengths[-1]
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    from speechreps.data.features import FeatureConfig, compute_features

    enc.encode([waves[0][:32000]])  # warm-up
    compute_features(waves[0][:32000], FeatureConfig())
    walls, cpus = {"encoder": 0.0, "mfcc": 0.0}, {"encoder": 0.0, "mfcc": 0.0}
    frames = 0
    for chunk in range(0, len(waves), 4):  # alternate encoder and MFCC, 4 utterances at a time, same load for both
        idx = list(range(chunk, min(chunk + 4, len(waves))))
        c0, t0 = time.process_time(), time.perf_counter()
        frames += sum(h.shape[1] for _, h in enc.encode_all([lengths[i] for i in idx], lambda j: waves[idx[j]]))
        walls["encoder"] += time.perf_counter() - t0
        cpus["encoder"] += time.process_time() - c0
        c0, t0 = time.process_time(), time.perf_counter()
        for i in idx:
            compute_features(waves[i], FeatureConfig())
        walls["mfcc"] += time.perf_counter() - t0
        cpus["mfcc"] += time.process_time() - c0
    wall = walls["encoder"]
    return {"family": family, "layers": enc.n_layers - 1, "dim": enc.dim, "parameters_M": round(enc.n_parameters / 1e6, 1),
            "batched": enc.batched, "audio_s": round(total / 16000, 1), "frames": frames, "wall_s": round(wall, 2),
            "audio_s_per_s": round(total / 16000 / wall, 2), "audio_s_per_cpu_s": round(total / 16000 / cpus["encoder"], 2),
            "x_mfcc_wall": round(wall / walls["mfcc"], 1), "x_mfcc_cpu": round(cpus["encoder"] / cpus["mfcc"], 1),
            "load_s": round(load_s, 2),
            "rss_start_MB": round(rss0), "rss_loaded_MB": round(rss_loaded), "rss_peak_MB": round(rss_mb()),
            "threads": threads}


def dtw_costs(n: int, threads: int, repeats: int) -> list[dict]:
    from speechreps.evaluate.dtw import pairwise_dtw

    rng = np.random.default_rng(1)
    n_frames = rng.integers(30, 121, size=n)  # one set of words: MFCC frames, and half as many encoder frames
    sets = {
        "MFCC: D=39, 10 ms (30-120 frames)": [rng.standard_normal((int(t), 39)).astype(np.float32) for t in n_frames],
        "encoder: D=768, 20 ms (15-60 frames)": [rng.standard_normal((int(t) // 2, 768)).astype(np.float32)
                                                  for t in n_frames],
        "encoder: D=768, 10 ms (30-120 frames)": [rng.standard_normal((int(t), 768)).astype(np.float32) for t in n_frames],
    }
    pairwise_dtw([s[:5] for s in sets["MFCC: D=39, 10 ms (30-120 frames)"][:4]], device="cpu", n_jobs=threads)  # compile
    times: dict[str, list[float]] = {k: [] for k in sets}
    for _ in range(repeats):  # alternate, so that a change of load hits every setting alike
        for name, segs in sets.items():
            t0 = time.perf_counter()
            pairwise_dtw(segs, device="cpu", n_jobs=threads)
            times[name].append(time.perf_counter() - t0)
    rows = []
    base = None
    for name, segs in sets.items():
        wall = float(np.median(times[name]))
        lens = np.array([len(s) for s in segs], dtype=np.float64)
        cells = (lens.sum() ** 2 - (lens**2).sum()) / 2
        pairs = n * (n - 1) / 2
        base = base or wall
        rows.append({"setting": name, "N": n, "pairs_per_s": round(pairs / wall), "Mcells_per_s": round(cells / wall / 1e6, 1),
                     "wall_s": round(wall, 2), "x_mfcc_time": round(wall / base, 2)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="hubert", help="comma-separated: hubert, wav2vec2, wavlm")
    ap.add_argument("--seconds", type=float, default=120.0, help="seconds of audio per family (default 120)")
    ap.add_argument("--threads", type=int, default=2, help="torch / numba threads (default 2)")
    ap.add_argument("--dtw-n", type=int, default=1000, help="tokens for the DTW comparison (default 1000; 0: none)")
    ap.add_argument("--repeats", type=int, default=3, help="DTW repeats, median (default 3)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(extract_one(args.child, args.seconds, args.threads)))
        return 0
    print(f"before: {uptime()}")
    print(f"python {sys.version.split()[0]}; OPENBLAS/OMP threads: {os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("\n| family | blocks x dim | parameters | batched | audio s | wall s | audio s / s | audio s / CPU s | "
          "time vs MFCC (wall / CPU) | load s | peak RSS MB (loaded) | load average after |")
    print("|---|---|---:|---|---:|---:|---:|---:|---|---:|---|---|")
    for family in [f.strip() for f in args.families.split(",") if f.strip()]:
        out = subprocess.run([sys.executable, __file__, "--child", family, "--seconds", str(args.seconds),
                              "--threads", str(args.threads)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['family']} | {r['layers']} x {r['dim']} | {r['parameters_M']} M | {r['batched']} | {r['audio_s']} | "
              f"{r['wall_s']} | **{r['audio_s_per_s']}** | {r['audio_s_per_cpu_s']} | {r['x_mfcc_wall']}x / {r['x_mfcc_cpu']}x | "
              f"{r['load_s']} | {r['rss_peak_MB']} ({r['rss_loaded_MB']}) | "
              f"{uptime().split('load average:')[-1].strip()} |", flush=True)
    if args.dtw_n > 1:
        print(f"\nDTW, fast kernel, {args.threads} threads, all pairs of N = {args.dtw_n} tokens (median of {args.repeats}):\n")
        print("| setting | pairs/s | Mcells/s | wall s | time vs MFCC |")
        print("|---|---:|---:|---:|---:|")
        for r in dtw_costs(args.dtw_n, args.threads, args.repeats):
            print(f"| {r['setting']} | {r['pairs_per_s']:,} | {r['Mcells_per_s']} | {r['wall_s']} | {r['x_mfcc_time']}x |")
    print(f"\nafter: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
