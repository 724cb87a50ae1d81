"""All-pairs dynamic time warping with the cosine frame distance: reference, numba, torch.

Definition (docs/METRICS.md; Kamper's ``speech_dtw.multivariate_dtw_cost_cosine(s, t, True)``):

- frame distance ``d(x, y) = 1 - x.y / (|x| |y|)``; a **zero frame** (all components exactly 0) has
  no direction, so it is treated as orthogonal to everything: ``d = 1`` between a zero frame and any
  frame, another zero frame included (the recipe's code would produce NaN there);
- steps (1, 0), (0, 1), (1, 1), no slope or band constraint; the path runs from (0, 0) to
  (n - 1, m - 1); the cost is the sum of the frame distances on the path, minimised;
- ``normalize="sum"`` (default): the minimum cost divided by ``n + m``, exactly the recipe's
  ``dur_normalize``; ``normalize="path"``: divided by the number of cells on the minimum-cost path;
  where several predecessors tie in cost, the path prefers the diagonal step, then (1, 0) (advance in
  the first token), then (0, 1): the rule decides the path length only, never the cost.

Three implementations, which agree to 1e-5 (tests/test_dtw.py):

- :func:`pairwise_dtw_reference`: SciPy ``cdist`` frame distances in float64 and a plain Python DP;
  slow and obviously correct.
- the numba kernel (default on CPU): frames L2-normalised once (float32); tokens sorted by length and
  packed in chunks of ``LANES`` tokens, each chunk stored as a ``(D, frames x LANES)`` matrix, so one
  query token is aligned against ``LANES`` tokens at once, the DP recurrence running across the lanes,
  two rows kept in float64. The frame costs come from float32 matrix products (BLAS sgemm, called
  single-threaded from each numba thread): consecutive sorted queries are grouped up to
  ``GROUP_ROWS`` frames, and all frames of a group against one chunk are one product. Grouping is
  what makes it fast at high D: a chunk's matrix (0.5 MB at D=256) is read from memory once per group
  instead of once per query, and the product runs near the CPU's sgemm peak. One query per product
  (the earlier kernel) took 6.65 s where groups take 3.40 s, on the main job's 733 CPC test tokens
  (D=256, 2 threads). Groups are assigned
  to threads by estimated work (longest first onto the least-loaded thread) and processed in blocks,
  so memory is the output vector plus O(threads x group x chunk) scratch, whatever N is. Compiled
  once per install (``cache=True``).
- the torch kernel (:mod:`.dtw_torch`; default when CUDA is present, ``device=`` chooses): tiles of the pair triangle
  in length order are batched; frame costs by one batched matrix product; the DP runs along
  anti-diagonals (a wavefront), each diagonal one vector operation over all pairs of the tile.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from ..errors import UserError

NORMALIZE = ("sum", "path")

# Tokens aligned at once by the numba kernel (vector lanes), and the most query frames (of consecutive
# queries) whose frame costs against one chunk are one matrix product (a longer query is a group alone).
LANES = 8
GROUP_ROWS = 512


# ---------------------------------------------------------------------------------------------
# Input checks and shared preparation


def _as_segments(segments: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = []
    dim = None
    for i, s in enumerate(segments):
        a = np.asarray(s)
        if a.ndim != 2:
            raise UserError(f"segment {i} has shape {a.shape}, expected [frames, dims]")
        if a.shape[0] == 0:
            raise UserError(f"segment {i} has no frames")
        if dim is None:
            dim = a.shape[1]
        elif a.shape[1] != dim:
            raise UserError(f"segment {i} has {a.shape[1]} dims, segment 0 has {dim}")
        if not np.isfinite(a).all():
            raise UserError(f"segment {i} contains NaN or infinity")
        out.append(a)
    return out


def _check_normalize(normalize: str) -> None:
    if normalize not in NORMALIZE:
        raise UserError(f"unknown DTW normalisation {normalize!r}: choose sum or path")


def l2_normalize(segment: np.ndarray) -> np.ndarray:
    """Unit-length frames as float32 (norms computed in float64); zero frames stay zero."""
    a = np.asarray(segment, dtype=np.float64)
    norms = np.sqrt(np.einsum("td,td->t", a, a))
    out = np.divide(a, norms[:, None], out=np.zeros_like(a), where=norms[:, None] > 0)
    return out.astype(np.float32)


def _condensed(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    lo = np.minimum(i, j).astype(np.int64)
    hi = np.maximum(i, j).astype(np.int64)
    return n * lo - lo * (lo + 1) // 2 + (hi - lo - 1)


# ---------------------------------------------------------------------------------------------
# Reference


def cosine_frame_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[n, m]`` float64 cosine distances by ``scipy.spatial.distance.cdist``; zero frames -> 1."""
    from scipy.spatial.distance import cdist

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    za = ~a.any(axis=1)
    zb = ~b.any(axis=1)
    dist = np.ones((len(a), len(b)))
    if (~za).any() and (~zb).any():
        dist[np.ix_(~za, ~zb)] = cdist(a[~za], b[~zb], "cosine")
    return dist


def dtw_reference(a: np.ndarray, b: np.ndarray, normalize: str = "sum") -> float:
    """Plain-Python DTW of two ``[T, D]`` tokens (see the module docstring for the definition)."""
    _check_normalize(normalize)
    dist = cosine_frame_distances(a, b)
    n, m = dist.shape
    inf = math.inf
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    length = [[0] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            best, steps = cost[i - 1][j - 1], length[i - 1][j - 1]  # (1, 1)
            if cost[i - 1][j] < best:  # (1, 0)
                best, steps = cost[i - 1][j], length[i - 1][j]
            if cost[i][j - 1] < best:  # (0, 1)
                best, steps = cost[i][j - 1], length[i][j - 1]
            cost[i][j] = float(dist[i - 1, j - 1]) + best
            length[i][j] = steps + 1
    return cost[n][m] / (n + m if normalize == "sum" else length[n][m])


def pairwise_dtw_reference(segments: Sequence[np.ndarray], normalize: str = "sum") -> np.ndarray:
    """Condensed all-pairs DTW by :func:`dtw_reference` (slow: for tests and small sets)."""
    segs = _as_segments(segments)
    n = len(segs)
    out = np.empty(n * (n - 1) // 2)
    pos = 0
    for i in range(n):
        for j in range(i + 1, n):
            out[pos] = dtw_reference(segs[i], segs[j], normalize)
            pos += 1
    return out


# ---------------------------------------------------------------------------------------------
# numba kernel


class _Packed:
    """Tokens sorted by length, unit frames concatenated, chunks of LANES tokens frame-major."""

    def __init__(self, segments: list[np.ndarray]):
        n = len(segments)
        lengths = np.array([len(s) for s in segments], dtype=np.int64)
        self.perm = np.argsort(lengths, kind="stable").astype(np.int64)  # sorted -> original
        self.lens = lengths[self.perm]
        dim = segments[0].shape[1]
        self.dim = dim
        units = [l2_normalize(segments[p]) for p in self.perm]
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.lens, out=self.offsets[1:])
        self.frames = np.ascontiguousarray(np.concatenate(units, axis=0), dtype=np.float32)  # (F, D)
        n_chunks = (n + LANES - 1) // LANES
        self.chunk_len = np.array(
            [self.lens[min(c * LANES + LANES, n) - 1] for c in range(n_chunks)], dtype=np.int64
        )  # longest (= last) token of each chunk
        self.chunk_off = np.zeros(n_chunks + 1, dtype=np.int64)
        np.cumsum(self.chunk_len * dim * LANES, out=self.chunk_off[1:])
        packed = np.zeros(int(self.chunk_off[-1]), dtype=np.float32)
        for c in range(n_chunks):
            m = int(self.chunk_len[c])
            block = np.zeros((dim, m, LANES), dtype=np.float32)  # (dim, frame, lane)
            for k in range(LANES):
                s = c * LANES + k
                if s < n:
                    block[:, : self.lens[s], k] = units[s].T
            packed[self.chunk_off[c] : self.chunk_off[c + 1]] = block.reshape(-1)
        self.packed = packed

    def work(self) -> np.ndarray:
        """Estimated cells per sorted query: its length x the padded lengths of the chunks it meets."""
        n = len(self.lens)
        per_chunk = self.chunk_len * LANES
        tail = np.cumsum(per_chunk[::-1])[::-1]  # cells of chunks c.. per query frame
        return self.lens * tail[np.arange(n) // LANES]


_KERNEL = None


def _numba_kernel():
    """Compile (or load from the on-disk cache) the numba kernel on first use."""
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    import numba
    from numba import njit, prange

    try:
        numba.threading_layer()
    except ValueError:
        # Threads not started yet: prefer numba's own pool over OpenMP, so that OpenBLAS (called
        # single-threaded from each thread) is never entered from inside an OpenMP region.
        numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]
    lanes = LANES

    @njit(cache=True, fastmath=False, parallel=True, nogil=True)
    def dtw_kernel(frames, offsets, lens, packed, chunk_off, chunk_len, perm, n_total, group_start, groups,
                   worker_ptr, max_rows, path_norm, out):  # fmt: skip
        dim = frames.shape[1]
        n_sorted = lens.shape[0]
        n_chunks = chunk_len.shape[0]
        max_m = 0
        for c in range(n_chunks):
            if chunk_len[c] > max_m:
                max_m = chunk_len[c]
        n_workers = worker_ptr.shape[0] - 1
        for w in prange(n_workers):
            prev = np.empty((max_m + 1, lanes), dtype=np.float64)
            cur = np.empty((max_m + 1, lanes), dtype=np.float64)
            prev_len = np.zeros((max_m + 1, lanes), dtype=np.float64)
            cur_len = np.zeros((max_m + 1, lanes), dtype=np.float64)
            buf = np.empty(max_rows * max_m * lanes, dtype=np.float32)
            for gi in range(worker_ptr[w], worker_ptr[w + 1]):
                g = groups[gi]
                s0 = group_start[g]
                s1 = group_start[g + 1]
                r0 = offsets[s0]
                g_rows = offsets[s1] - r0
                for c in range(s0 // lanes, n_chunks):
                    m = chunk_len[c]
                    y0 = chunk_off[c]
                    ychunk = packed[y0 : y0 + dim * m * lanes].reshape((dim, m * lanes))  # (D, m*lanes)
                    # frame dot products of every frame of the group's queries with every frame of every
                    # lane: one float32 matrix product (BLAS sgemm) -> (g_rows, m*lanes)
                    cost = buf[: g_rows * m * lanes].reshape((g_rows, m * lanes))
                    np.dot(frames[r0 : r0 + g_rows], ychunk, cost)
                    for s in range(s0, s1):
                        if c < s // lanes:
                            continue
                        k_first = s - c * lanes + 1 if c == s // lanes else 0
                        if k_first >= lanes or c * lanes + k_first >= n_sorted:
                            continue
                        n = lens[s]
                        a0 = offsets[s] - r0
                        for b in range(m + 1):
                            for k in range(lanes):
                                prev[b, k] = np.inf
                                prev_len[b, k] = 0.0
                        for k in range(lanes):
                            prev[0, k] = 0.0
                        # DP rows of query s, two rows in float64
                        for r in range(a0, a0 + n):
                            for k in range(lanes):
                                cur[0, k] = np.inf
                            if path_norm:
                                for b in range(m):
                                    for k in range(lanes):
                                        best = prev[b, k]
                                        steps = prev_len[b, k]
                                        if prev[b + 1, k] < best:
                                            best = prev[b + 1, k]
                                            steps = prev_len[b + 1, k]
                                        if cur[b, k] < best:
                                            best = cur[b, k]
                                            steps = cur_len[b, k]
                                        cur[b + 1, k] = (1.0 - np.float64(cost[r, b * lanes + k])) + best
                                        cur_len[b + 1, k] = steps + 1.0
                            else:
                                for b in range(m):
                                    for k in range(lanes):
                                        best = prev[b, k]
                                        if prev[b + 1, k] < best:
                                            best = prev[b + 1, k]
                                        if cur[b, k] < best:
                                            best = cur[b, k]
                                        cur[b + 1, k] = (1.0 - np.float64(cost[r, b * lanes + k])) + best
                            prev, cur = cur, prev
                            prev_len, cur_len = cur_len, prev_len
                        for k in range(k_first, lanes):
                            t = c * lanes + k
                            if t >= n_sorted:
                                break
                            mt = lens[t]
                            denom = prev_len[mt, k] if path_norm else np.float64(n + mt)
                            i = perm[s]
                            j = perm[t]
                            if i > j:
                                i, j = j, i
                            out[n_total * i - i * (i + 1) // 2 + (j - i - 1)] = prev[mt, k] / denom

    _KERNEL = (numba, dtw_kernel)
    return _KERNEL


def _assign(queries: np.ndarray, work: np.ndarray, n_workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Longest-first onto the least-loaded worker; returns (queries grouped by worker, worker_ptr)."""
    order = queries[np.argsort(-work[queries], kind="stable")]
    load = np.zeros(n_workers)
    owner = np.empty(len(order), dtype=np.int64)
    for idx, q in enumerate(order):
        w = int(np.argmin(load))
        owner[idx] = w
        load[w] += work[q]
    by_worker = np.argsort(owner, kind="stable")
    ptr = np.zeros(n_workers + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_workers), out=ptr[1:])
    return order[by_worker].astype(np.int64), ptr


def _n_threads(n_jobs: int | None) -> int:
    import numba

    top = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None or n_jobs <= 0:
        return top
    return max(1, min(int(n_jobs), top))


def _groups(lens: np.ndarray, max_rows: int) -> np.ndarray:
    """Start indices (and the end) of runs of consecutive sorted queries with at most ``max_rows`` frames."""
    starts = [0]
    rows = 0
    for s, n in enumerate(lens):
        if rows and rows + n > max_rows:
            starts.append(s)
            rows = 0
        rows += int(n)
    starts.append(len(lens))
    return np.array(starts, dtype=np.int64)


def _pairwise_dtw_numba(segs: list[np.ndarray], normalize: str, n_jobs: int | None, progress: bool) -> np.ndarray:
    numba, kernel = _numba_kernel()
    n = len(segs)
    out = np.full(n * (n - 1) // 2, np.nan)
    if n < 2:
        return out
    pk = _Packed(segs)
    max_rows = max(GROUP_ROWS, int(pk.lens.max()))
    group_start = _groups(pk.lens, max_rows)
    work = np.add.reduceat(pk.work().astype(np.float64), group_start[:-1])  # per group
    n_groups = len(work)
    threads = _n_threads(n_jobs)
    # Blocks of groups with about equal work: bounded time per call, a progress bar between calls.
    n_blocks = int(min(n_groups, max(1, math.ceil(work.sum() / 2e8))))
    cum = np.cumsum(work)
    edges = np.searchsorted(cum, np.linspace(0, cum[-1], n_blocks + 1)[1:-1])
    blocks = np.split(np.arange(n_groups, dtype=np.int64), edges)
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(1, user_api="blas")  # each numba thread calls BLAS single-threaded
    try:
        from tqdm import tqdm

        bar = tqdm(total=len(out), unit="pair", unit_scale=True, disable=None if progress else True,
                   desc="DTW", leave=False, delay=2)  # fmt: skip
        for q in blocks:
            if len(q) == 0:
                continue
            groups, ptr = _assign(q, work, threads * 2)
            kernel(pk.frames, pk.offsets, pk.lens, pk.packed, pk.chunk_off, pk.chunk_len, pk.perm, n, group_start,
                   groups, ptr, max_rows, normalize == "path", out)  # fmt: skip
            bar.update(int(sum(n - 1 - s for g in q for s in range(group_start[g], group_start[g + 1]))))
        bar.close()
    finally:
        numba.set_num_threads(old)
        limits.restore_original_limits()
    return out


# ---------------------------------------------------------------------------------------------
# Dispatch


def cuda_available() -> bool:
    """True when torch sees a CUDA device (torch is only imported when a GPU driver is present)."""
    if not (os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia")):
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - broken torch install
        return False


def pairwise_dtw(
    segments: list[np.ndarray],
    normalize: str = "sum",
    n_jobs: int | None = None,
    device: str | None = None,
    backend: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Condensed all-pairs DTW distances (``pdist`` order), float64 ``(N*(N-1)/2,)``.

    ``device``: ``None`` = CUDA (torch) when present, else the numba CPU kernel; ``"cpu"`` = numba
    kernel; ``"cuda"`` / ``"cuda:K"`` = torch on that GPU. ``backend`` overrides: ``"numba"``,
    ``"torch"`` (on ``device``, default CPU), ``"reference"``. ``n_jobs``: CPU threads (default all).
    """
    _check_normalize(normalize)
    if device is not None and device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"unknown device {device!r}: use cpu, cuda or cuda:K")
    segs = _as_segments(segments)
    if backend is None:
        if device is None:
            device = "cuda" if cuda_available() else "cpu"
        backend = "numba" if device == "cpu" else "torch"
    if backend == "reference":
        return pairwise_dtw_reference(segs, normalize)
    if backend == "numba":
        return _pairwise_dtw_numba(segs, normalize, n_jobs, progress)
    if backend == "torch":
        device = device or "cpu"
        if device.startswith("cuda") and not cuda_available():
            raise UserError(f"device {device!r} requested but torch sees no CUDA device")
        if n_jobs and device == "cpu":
            import torch

            torch.set_num_threads(_n_threads(n_jobs))
        from .dtw_torch import pairwise_dtw_torch

        return pairwise_dtw_torch(segs, normalize, device, progress)
    raise UserError(f"unknown DTW backend {backend!r}: choose numba, torch or reference")
