"""Downsampled-cosine distance: a cheap fixed-dimensional baseline to DTW.

Each token's ``[T, D]`` features are resampled along time to ``n`` frames by Fourier resampling
(``scipy.signal.resample``, as in Kamper's recipe), flattened to ``n * D`` numbers, and tokens are
compared with the cosine distance. A token whose downsampled vector is all zeros is at distance 1
from every other token (the same convention as the DTW frame distance).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError


def downsample(segment: np.ndarray, n: int = 10, method: str = "fourier") -> np.ndarray:
    """``[T, D]`` -> flat ``(n * D,)`` float64."""
    seg = np.asarray(segment, dtype=np.float64)
    if seg.ndim != 2 or seg.shape[0] == 0:
        raise UserError(f"cannot downsample a segment of shape {seg.shape}: expected [frames >= 1, dims]")
    if method == "fourier":
        from scipy.signal import resample

        out = resample(seg, n, axis=0)
    elif method == "interpolate":
        t_old = np.linspace(0.0, 1.0, seg.shape[0])
        t_new = np.linspace(0.0, 1.0, n)
        out = np.stack([np.interp(t_new, t_old, seg[:, d]) for d in range(seg.shape[1])], axis=1)
    else:
        raise UserError(f"unknown downsampling method {method!r}: choose fourier or interpolate")
    return out.reshape(-1)


def pairwise_downsample(segments: list[np.ndarray], n: int = 10, method: str = "fourier") -> np.ndarray:
    """Condensed (``pdist`` order) cosine distances between the downsampled tokens, float64."""
    if len(segments) < 2:
        return np.zeros(0, dtype=np.float64)
    x = np.stack([downsample(s, n, method) for s in segments])  # (N, n*D)
    norms = np.linalg.norm(x, axis=1)
    u = np.divide(x, norms[:, None], out=np.zeros_like(x), where=norms[:, None] > 0)
    n_tok = len(segments)
    out = np.empty(n_tok * (n_tok - 1) // 2, dtype=np.float64)
    pos = 0
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the products are too small to split, and OpenBLAS's idle threads spin (threads.py)
    with threadpool_limits(1, user_api="blas"):
        for i in range(n_tok - 1):  # one row of the triangle at a time: memory O(N) besides the output
            k = n_tok - i - 1
            out[pos : pos + k] = 1.0 - u[i + 1 :] @ u[i]
            pos += k
    return out
