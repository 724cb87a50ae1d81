"""The report's table: one line per setting; several seeds give mean ± standard deviation."""

from __future__ import annotations

import statistics

from speechreps.report import samediff_table


def _row(features, seed, split, distance, ap, xspk):
    return {"features": features, "layer": "c" if features != "mfcc" else None, "trained_on": None if features == "mfcc" else "en",
            "evaluated_on": "en", "split": split, "distance": distance, "seed": seed, "ap": ap, "ap_cross_speaker": xspk}


def test_seeds_give_mean_and_standard_deviation():
    rows = [_row("mfcc", None, s, d, 0.4, 0.3) for s in ("validation", "test") for d in ("downsample", "dtw")]
    aps = {0: 0.50, 1: 0.56, 2: 0.59}
    rows += [_row("cpc", seed, s, d, ap, ap - 0.1) for seed, ap in aps.items() for s in ("validation", "test")
             for d in ("downsample", "dtw")]
    lines = samediff_table(rows).splitlines()
    assert len(lines) == 4  # header, rule, mfcc, cpc: the seeds share one line
    mfcc, cpc = lines[2].split(" | "), lines[3].split(" | ")
    assert mfcc[4] == "0.400" and mfcc[5] == "0.300"
    mean, sd = statistics.mean(aps.values()), statistics.stdev(aps.values())
    assert cpc[4] == f"{mean:.3f}±{sd:.3f}" == "0.550±0.046"
    assert cpc[5] == f"{mean - 0.1:.3f}±{sd:.3f}"
