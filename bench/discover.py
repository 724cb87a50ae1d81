"""How discovery time grows with corpus length: 1x, 4x and 16x the built-in training split.

The larger corpora repeat every utterance (under a new utterance id of the same speaker) with a
little Gaussian noise added to its features, so nothing is an exact copy. Prints per-stage seconds,
counts, and the growth exponent b of time ~ length^b (2 would be all-pairs search).

    python bench/discover.py [--data-paths data/data_paths.json --language synth_en] [--scales 1,4,16]
"""

from __future__ import annotations

import argparse
import math
import os
import time


def main() -> None:
    import numpy as np

    from speechreps.data.archive import load_archive, parse_utterance_key
    from speechreps.data.registry import load_dataset
    from speechreps.discover.config import DiscoverConfig
    from speechreps.discover.core import discover

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-paths", default="data/data_paths.json")
    ap.add_argument("--language", default="synth_en")
    ap.add_argument("--scales", default="1,4,16")
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()
    base = load_archive(load_dataset(args.data_paths, args.language).utterances("train"))
    rng = np.random.default_rng(0)
    print(f"load average before: {os.getloadavg()}")
    rows = []
    for scale in [int(s) for s in args.scales.split(",")]:
        arrays = {}
        for copy in range(scale):
            for key, x in base.items():
                k = parse_utterance_key(key)
                utt = k.utt if copy == 0 else f"{k.utt}r{copy:02d}"
                noisy = x if copy == 0 else x + 0.1 * rng.standard_normal(x.shape).astype(np.float32)
                arrays[f"{utt}_{k.start:06d}-{k.end:06d}"] = noisy
        t0 = time.perf_counter()
        found = discover(arrays, DiscoverConfig(jobs=args.jobs))
        seconds = time.perf_counter() - t0
        st = found.stats
        rows.append((scale, st["n_frames"], st["n_windows"], st["n_pairs"], st["seconds_embed"], st["seconds_search"],
                     st["seconds_verify"], st.get("seconds_trim", 0.0), st["seconds_cluster"], seconds,
                     os.getloadavg()[0]))
        print(f"{scale}x done: {seconds:.1f} s", flush=True)
    print("| scale | frames | minutes of audio | windows | pairs | embed s | search s | verify s | trim and select s "
          "| cluster s | total s | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]}x | {r[1]:,} | {r[1] / 6000:.1f} | {r[2]:,} | {r[3]:,} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.1f} | "
              f"{r[7]:.1f} | {r[8]:.1f} | {r[9]:.1f} | {r[10]:.1f} |")
    for a, b in zip(rows, rows[1:]):
        print(f"growth exponent {a[0]}x -> {b[0]}x: {math.log(b[9] / a[9]) / math.log(b[1] / a[1]):.2f}")
    if len(rows) > 1:
        print(f"growth exponent {rows[0][0]}x -> {rows[-1][0]}x: "
              f"{math.log(rows[-1][9] / rows[0][9]) / math.log(rows[-1][1] / rows[0][1]):.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
