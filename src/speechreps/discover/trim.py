"""Trimming discovered pairs to the best-matching stretch of their DTW alignment.

A module of its own so that numba caches the kernel between runs: it calls the frame-pair code's
alignment (:func:`speechreps.data.pairs._dtw_path`) as a module global, which a kernel made inside a
function (as :mod:`.verify`'s are) cannot be cached with.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ..data.pairs import _dtw_path  # the alignment path the CAPC / frame CAE pairs use


@njit(cache=True, parallel=True, nogil=True)
def _trim(units, row_a, len_a, row_b, len_b, min_length, out):
    # out[p] = (start_a, end_a, start_b, end_b) offsets into the two segments, end exclusive
    for p in prange(len(row_a)):
        a = units[row_a[p]:row_a[p] + len_a[p]].astype(np.float64)
        b = units[row_b[p]:row_b[p] + len_b[p]].astype(np.float64)
        path_i, path_j, _ = _dtw_path(a, b)
        steps = len(path_i)
        prefix = np.zeros(steps + 1)
        for k in range(steps):
            prefix[k + 1] = prefix[k] + 1.0 - np.sum(a[path_i[k]] * b[path_j[k]])
        best, best_s, best_e = np.inf, 0, steps
        for s in range(steps):
            for e in range(s + 1, steps + 1):
                span_a = path_i[e - 1] - path_i[s] + 1
                span_b = path_j[e - 1] - path_j[s] + 1
                if span_a < min_length or span_b < min_length:
                    continue
                mean = (prefix[e] - prefix[s]) / (span_a + span_b)
                if mean < best:
                    best, best_s, best_e = mean, s, e
        out[p, 0], out[p, 1] = path_i[best_s], path_i[best_e - 1] + 1
        out[p, 2], out[p, 3] = path_j[best_s], path_j[best_e - 1] + 1


def trim_pairs(units: np.ndarray, row_a: np.ndarray, len_a: np.ndarray, row_b: np.ndarray, len_b: np.ndarray,
               min_length: int, jobs: int | None = None) -> np.ndarray:
    """Each pair cut to the stretch of its DTW path with the lowest mean frame distance that spans at
    least ``min_length`` frames on both sides; ``(P, 4)`` offsets ``start_a, end_a, start_b, end_b``
    into the two segments (end exclusive).

    Why: a window of fixed length that matches a repeated word usually also holds a bit of a
    neighbouring word, which differs between the two utterances and aligns badly; the least-average
    stretch of the alignment path (the fragment extraction of Park & Glass's segmental DTW, 2008)
    drops those edges. A pair with a segment shorter than ``min_length`` is left whole. The mean is
    the path's summed distance over the stretch divided by its two spans' lengths, the normalisation
    of :func:`.verify.pair_dtw`. Along a well-matched word the mean is about flat, so the stretch is often
    about ``min_length`` frames long: the best-matching core of the word, not all of it.
    """
    out = np.zeros((len(row_a), 4), dtype=np.int64)
    if len(out) == 0:
        return out
    len_a, len_b = np.asarray(len_a, dtype=np.int64), np.asarray(len_b, dtype=np.int64)
    old = numba.get_num_threads()
    if jobs:
        numba.set_num_threads(max(1, min(int(jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        _trim(np.ascontiguousarray(units, dtype=np.float32), *(np.ascontiguousarray(a, dtype=np.int64)
              for a in (row_a, len_a, row_b, len_b)), int(min_length), out)
    finally:
        numba.set_num_threads(old)
    return out
