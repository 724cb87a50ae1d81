"""DTW verification of candidate pairs and removal of overlapping ones.

The DTW is the evaluation's (:mod:`speechreps.evaluate.dtw`): cosine distance between unit frames,
steps (1,0), (0,1), (1,1), accumulated cost divided by ``n + m``. The all-pairs kernel there aligns
every token with every other; discovery needs a *list* of pairs, so this kernel runs one DP per
listed pair (two rows, float64), pairs spread over numba's threads. Tests compare it with
:func:`speechreps.evaluate.dtw.dtw_reference`.
"""

from __future__ import annotations

import numpy as np

_KERNELS = None


def _kernels():
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS
    from numba import njit, prange

    @njit(cache=True, parallel=True, nogil=True, fastmath=True)
    def pair_dtw(units, row_a, len_a, row_b, len_b, out):
        dim = units.shape[1]
        for p in prange(len(row_a)):
            n, m = len_a[p], len_b[p]
            xa, yb = row_a[p], row_b[p]
            prev = np.full(m + 1, np.inf)
            cur = np.empty(m + 1)
            prev[0] = 0.0
            for i in range(n):
                cur[0] = np.inf
                for j in range(m):
                    dot = 0.0
                    for d in range(dim):
                        dot += units[xa + i, d] * units[yb + j, d]
                    best = prev[j]
                    if prev[j + 1] < best:
                        best = prev[j + 1]
                    if cur[j] < best:
                        best = cur[j]
                    cur[j + 1] = (1.0 - dot) + best
                prev, cur = cur, prev
            out[p] = prev[m] / (n + m)

    @njit(cache=True)
    def suppress(group, s1, e1, s2, e2, order, overlap):
        # greedy non-maximum suppression within each group (pairs of one utterance pair), best first:
        # a pair is dropped when an accepted pair of its group overlaps it on both sides
        keep = np.zeros(len(order), np.bool_)
        accepted = np.empty(len(order), np.int64)
        n_acc = 0
        start = 0
        for idx in range(len(order) + 1):
            if idx == len(order) or (idx > start and group[order[idx]] != group[order[start]]):
                start = idx
                n_acc = 0
                if idx == len(order):
                    break
            p = order[idx]
            ok = True
            for a in range(n_acc):
                q = accepted[a]
                ov1 = min(e1[p], e1[q]) - max(s1[p], s1[q])
                ov2 = min(e2[p], e2[q]) - max(s2[p], s2[q])
                if ov1 >= overlap * min(e1[p] - s1[p], e1[q] - s1[q]) and \
                        ov2 >= overlap * min(e2[p] - s2[p], e2[q] - s2[q]):
                    ok = False
                    break
            if ok:
                keep[p] = True
                accepted[n_acc] = p
                n_acc += 1
        return keep

    _KERNELS = (pair_dtw, suppress)
    return _KERNELS


def pair_dtw(units: np.ndarray, row_a: np.ndarray, len_a: np.ndarray, row_b: np.ndarray, len_b: np.ndarray,
             jobs: int | None = None) -> np.ndarray:
    """DTW cost / (n + m) of the segments ``units[row_a[p] : row_a[p] + len_a[p]]`` and likewise b."""
    import numba

    kernel, _ = _kernels()
    out = np.empty(len(row_a), dtype=np.float64)
    if len(out) == 0:
        return out
    old = numba.get_num_threads()
    if jobs:
        numba.set_num_threads(max(1, min(int(jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        kernel(np.ascontiguousarray(units, dtype=np.float32), *(np.ascontiguousarray(a, dtype=np.int64)
               for a in (row_a, len_a, row_b, len_b)), out)
    finally:
        numba.set_num_threads(old)
    return out


def non_overlapping(group: np.ndarray, s1: np.ndarray, e1: np.ndarray, s2: np.ndarray, e2: np.ndarray,
                    score: np.ndarray, overlap: float) -> np.ndarray:
    """Boolean mask of the pairs kept by greedy suppression, best (lowest ``score``) first per group.

    Pairs of one group (one pair of utterances, spans in the same orientation) that overlap an
    already kept pair by ``overlap`` of the shorter span on both sides are dropped: a repeated word
    is found by many shifted windows, and only the best-matching one should stay.
    """
    _, suppress = _kernels()
    if len(group) == 0:
        return np.zeros(0, bool)
    order = np.lexsort((score, group)).astype(np.int64)
    return suppress(*(np.ascontiguousarray(a, dtype=np.int64) for a in (group, s1, e1, s2, e2)), order, float(overlap))


def extend_pairs(units: np.ndarray, offsets: np.ndarray, utt_a: np.ndarray, row_a: np.ndarray, len_a: np.ndarray,
                 utt_b: np.ndarray, row_b: np.ndarray, len_b: np.ndarray, cost: np.ndarray, threshold: float,
                 max_extend: int, step: int, slack: float = 0.0, jobs: int | None = None):
    """Grow verified pairs outward: both segments of a pair by ``step`` frames at a time, first to the
    left, then to the right, while the pair's DTW cost stays at most ``threshold`` and at most
    ``slack`` above its cost before growing, both segments stay inside their utterances, and each side
    has grown at most ``max_extend`` frames.

    Why: windows of fixed lengths find a repeated word by its most similar part, which is often a
    fragment of it (the shortest window); the word's own frames around that part still align well,
    while frames of the neighbouring words (different in the two utterances) do not, so the cost tells
    where the repeated stretch ends. Returns new ``(row_a, len_a, row_b, len_b, cost)``.
    """
    row_a, len_a, row_b, len_b, cost = (np.array(a) for a in (row_a, len_a, row_b, len_b, cost))
    ceiling = np.minimum(threshold, cost + slack)
    for direction in (-1, 1):
        grown = np.zeros(len(cost), np.int64)
        active = np.ones(len(cost), bool)
        while active.any():
            idx = np.nonzero(active)[0]
            if direction < 0:
                na, nb = row_a[idx] - step, row_b[idx] - step
                inside = (na >= offsets[utt_a[idx]]) & (nb >= offsets[utt_b[idx]])
            else:
                na, nb = row_a[idx], row_b[idx]
                inside = ((na + len_a[idx] + step <= offsets[utt_a[idx] + 1])
                          & (nb + len_b[idx] + step <= offsets[utt_b[idx] + 1]))
            inside &= grown[idx] + step <= max_extend
            idx, na, nb = idx[inside], na[inside], nb[inside]
            active[:] = False
            if len(idx) == 0:
                break
            c = pair_dtw(units, na, len_a[idx] + step, nb, len_b[idx] + step, jobs)
            ok = c <= ceiling[idx]
            idx, na, nb = idx[ok], na[ok], nb[ok]
            row_a[idx], row_b[idx] = na, nb
            len_a[idx] += step
            len_b[idx] += step
            cost[idx] = c[ok]
            grown[idx] += step
            active[idx] = True
    return row_a, len_a, row_b, len_b, cost
