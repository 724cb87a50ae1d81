"""The torch DTW kernel: the pair triangle in tiles, the DP as a wavefront (one vector op per anti-diagonal).

Used on CUDA (the default there) and, with ``backend="torch"``, on the CPU. Same definition and
results as the reference and the numba kernel in :mod:`speechreps.evaluate.dtw` (to 1e-5).
"""

from __future__ import annotations

import math

import numpy as np

from .dtw import _condensed, l2_normalize


def dtw_batch_torch(x, y, n_len, m_len, path_norm: bool):
    """DTW of B pairs: x (B, N, D) and y (B, M, D) unit frames (zero padded), true lengths n_len, m_len.

    Anti-diagonal wavefront: diagonal ``d`` holds the cells ``(i, d - i)`` of the (N+1, M+1) DP grid,
    indexed by ``i``; each diagonal depends on the two before it only.
    """
    import torch

    bsz, nmax, _ = x.shape
    mmax = y.shape[1]
    dev = x.device
    cost = (1.0 - torch.bmm(x, y.transpose(1, 2)).double()).reshape(bsz, nmax * mmax)  # (B, N*M)
    inf = torch.tensor(math.inf, dtype=torch.float64, device=dev)
    ii = torch.arange(nmax + 1, device=dev)
    prev2 = torch.full((bsz, nmax + 1), math.inf, dtype=torch.float64, device=dev)  # diagonal d-2
    prev1 = torch.full((bsz, nmax + 1), math.inf, dtype=torch.float64, device=dev)  # diagonal d-1
    prev2[:, 0] = 0.0  # diagonal 0 = cell (0, 0)
    len2 = torch.zeros((bsz, nmax + 1), dtype=torch.float64, device=dev)
    len1 = torch.zeros_like(len2)
    result = torch.empty(bsz, dtype=torch.float64, device=dev)
    steps_out = torch.empty(bsz, dtype=torch.float64, device=dev)
    ends = (n_len + m_len).tolist()
    by_end: dict[int, list[int]] = {}
    for b, e in enumerate(ends):
        by_end.setdefault(int(e), []).append(b)
    n_len_dev = n_len.to(dev)
    for d in range(2, nmax + mmax + 1):
        j = d - ii  # (N+1,)
        valid = (ii >= 1) & (j >= 1) & (j <= mmax)
        cidx = ((ii - 1).clamp(min=0) * mmax + (j - 1).clamp(0, mmax - 1)).clamp(0, nmax * mmax - 1)
        c = cost[:, cidx]  # (B, N+1)
        diag = torch.cat([prev2.new_full((bsz, 1), math.inf), prev2[:, :-1]], dim=1)  # cell (i-1, j-1)
        up = torch.cat([prev1.new_full((bsz, 1), math.inf), prev1[:, :-1]], dim=1)  # cell (i-1, j)
        left = prev1  # cell (i, j-1)
        best = torch.minimum(torch.minimum(diag, up), left)
        new = torch.where(valid, c + best, inf)
        if path_norm:
            ldiag = torch.cat([len2.new_zeros((bsz, 1)), len2[:, :-1]], dim=1)
            lup = torch.cat([len1.new_zeros((bsz, 1)), len1[:, :-1]], dim=1)
            steps = torch.where(up < diag, lup, ldiag)
            bsf = torch.minimum(diag, up)
            steps = torch.where(left < bsf, len1, steps) + 1.0
            len2, len1 = len1, steps
        prev2, prev1 = prev1, new
        if d in by_end:
            sel = torch.tensor(by_end[d], device=dev)
            result[sel] = new[sel, n_len_dev[sel]]
            if path_norm:
                steps_out[sel] = len1[sel, n_len_dev[sel]]
    denom = steps_out if path_norm else (n_len + m_len).to(dev, torch.float64)
    return result / denom


def pairwise_dtw_torch(segs: list[np.ndarray], normalize: str, device: str, progress: bool,
                       tile: int | None = None) -> np.ndarray:  # fmt: skip
    import torch

    dev = torch.device(device)
    n = len(segs)
    out = np.full(n * (n - 1) // 2, np.nan)
    if n < 2:
        return out
    lengths = np.array([len(s) for s in segs])
    perm = np.argsort(lengths, kind="stable")
    dim = segs[0].shape[1]
    tile = tile or (128 if dev.type == "cuda" else 64)
    n_tiles = (n + tile - 1) // tile
    units = [torch.from_numpy(l2_normalize(segs[p])) for p in perm]
    padded = []  # per tile: (tile, Lmax, D) on device, true lengths
    for t in range(n_tiles):
        toks = units[t * tile : (t + 1) * tile]
        lmax = max(len(u) for u in toks)
        block = torch.zeros((len(toks), lmax, dim), dtype=torch.float32)
        for k, u in enumerate(toks):
            block[k, : len(u)] = u
        padded.append((block.to(dev), torch.tensor([len(u) for u in toks])))
    from tqdm import tqdm

    pairs_total = len(out)
    bar = tqdm(total=pairs_total, unit="pair", unit_scale=True, disable=None if progress else True,
               desc="DTW", leave=False, delay=2)  # fmt: skip
    with torch.no_grad():
        for ta in range(n_tiles):
            xa, la = padded[ta]
            for tb in range(ta, n_tiles):
                yb, lb = padded[tb]
                ka, kb = len(la), len(lb)
                ia, ib = torch.meshgrid(torch.arange(ka), torch.arange(kb), indexing="ij")
                ia, ib = ia.reshape(-1), ib.reshape(-1)
                if ta == tb:
                    keep = ia < ib
                    ia, ib = ia[keep], ib[keep]
                if len(ia) == 0:
                    continue
                ia_d, ib_d = ia.to(dev), ib.to(dev)
                vals = dtw_batch_torch(xa[ia_d], yb[ib_d], la[ia], lb[ib], normalize == "path")
                si = perm[ta * tile + ia.numpy()]
                sj = perm[tb * tile + ib.numpy()]
                out[_condensed(si, sj, n)] = vals.cpu().numpy()
                bar.update(len(ia))
    bar.close()
    return out
