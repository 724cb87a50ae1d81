"""Nearest neighbours of window embeddings: candidate pairs for DTW verification.

Two back-ends give each window its ``k_search`` most similar windows (inner product of unit vectors
= cosine similarity), of which those of the window's own utterance are dropped and the best ``k``
others kept:

- ``ivf``: faiss's inverted-file index (k-means cells, Jegou et al. 2011): ``4 sqrt(N)`` cells and
  each query searched in ``nprobe`` of them, so a query costs about ``sqrt(N)`` and the search
  ``N^1.5``, far below the quadratic all-pairs search; measured faster than HNSW at these sizes;
- ``exact``: blocks of matrix products (faiss's flat index), quadratic; the default for small sets
  where it is fast anyway and has no approximation error.
"""

from __future__ import annotations

import numpy as np

from .config import DiscoverConfig


def _faiss(jobs: int | None):
    import faiss

    if jobs:
        faiss.omp_set_num_threads(int(jobs))
    return faiss


def neighbours(emb: np.ndarray, cfg: DiscoverConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(sims, ids)``, each ``(N, k_search)``: the nearest windows of every window (ids -1 where none)."""
    faiss = _faiss(cfg.jobs)
    n, dim = emb.shape
    k = min(cfg.k_search + 1, n)
    kind = cfg.index if cfg.index != "auto" else ("exact" if n < cfg.exact_below else "ivf")
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
    else:
        n_cells = max(1, min(int(4 * np.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, n_cells, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(cfg.seed)
        sample = emb[np.sort(rng.choice(n, size=min(n, 40 * n_cells), replace=False))]
        index.cp.seed = cfg.seed
        index.cp.niter = 10
        index.train(sample)
        index.nprobe = min(cfg.nprobe, n_cells)
    index.add(emb)
    sims, ids = index.search(emb, k)
    return sims, ids


def candidate_pairs(sims: np.ndarray, ids: np.ndarray, utt: np.ndarray, cfg: DiscoverConfig
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unordered window pairs ``(i, j)``, ``i < j``, from different utterances, with their similarity.

    Each window contributes its ``k`` best neighbours from other utterances with similarity at least
    ``min_similarity``; a pair found from both sides is kept once.
    """
    n = len(ids)
    rows = np.repeat(np.arange(n, dtype=np.int64), ids.shape[1]).reshape(ids.shape)
    valid = (ids >= 0) & (sims >= cfg.min_similarity)
    valid &= utt[np.clip(ids, 0, None)] != utt[rows]
    # keep the first k valid neighbours of each row (they come sorted by similarity)
    rank = np.cumsum(valid, axis=1)
    valid &= rank <= cfg.k
    i, j, s = rows[valid], ids[valid].astype(np.int64), sims[valid]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * n + hi
    order = np.argsort(-s, kind="stable")
    _, first = np.unique(key[order], return_index=True)
    keep = order[first]
    return lo[keep], hi[keep], s[keep].astype(np.float32)
