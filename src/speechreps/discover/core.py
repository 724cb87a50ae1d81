"""Unsupervised term discovery on an utterance feature archive: the steps, timed.

1. windows of a few lengths every ``hop`` frames over each utterance (:mod:`.segments`);
2. a fixed-dimensional embedding of each window (chunk means, PCA), so similar segments are near
   neighbours in one vector space;
3. each window's nearest neighbours from other utterances, by an approximate index (HNSW) whose
   cost grows about as N log N (:mod:`.search`);
4. overlapping candidates of one utterance pair reduced to the most similar one, then each survivor
   verified by DTW on the frames; a pair is kept when its cost is below a threshold, by default
   ``dtw_z`` robust standard deviations (1.4826 x the median absolute deviation) below the median DTW
   cost of random window pairs, so the same setting works for MFCCs and for learned features of any
   scale (:mod:`.verify`);
5. overlapping verified pairs reduced once more by DTW cost; optionally (``extend`` > 0) each pair
   grown outward while its DTW cost stays low (:func:`.verify.extend_pairs`: windows find the most
   similar part of a repeated word, often a fragment); intervals merged into nodes and nodes into
   clusters (:mod:`.cluster`).

Only the features are used: no transcription, no speaker labels.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..data.alignments import TermPair
from ..errors import UserError
from .cluster import Clusters, cluster_pairs
from .config import DiscoverConfig
from .search import candidate_pairs, neighbours
from .segments import FrameStore, embed_windows, load_frames, make_windows, reduce_dim
from .verify import extend_pairs, non_overlapping, pair_dtw

RANDOM_PAIRS = 20000


@dataclass
class Discovery:
    """What discovery found: verified pairs (in utterance frames), their clusters, and how long it took."""

    store: FrameStore
    utt_a: np.ndarray
    start_a: np.ndarray
    end_a: np.ndarray
    utt_b: np.ndarray
    start_b: np.ndarray
    end_b: np.ndarray
    cost: np.ndarray
    clusters: Clusters
    threshold: float
    stats: dict = field(default_factory=dict)

    def cluster_name(self, c: int) -> str:
        return f"pt{c:05d}"

    def term_pairs(self, max_per_cluster: int | None = None) -> list[TermPair]:
        """The verified pairs as term pairs (utterance ids, frames), best DTW cost first per cluster."""
        utts = self.store.utts
        cluster = self.clusters.node_cluster[self.clusters.pair_nodes[:, 0]]
        order = np.lexsort((self.cost, cluster))
        out, taken = [], {}
        for p in order:
            c = int(cluster[p])
            if max_per_cluster is not None and taken.get(c, 0) >= max_per_cluster:
                continue
            taken[c] = taken.get(c, 0) + 1
            out.append(TermPair(self.cluster_name(c), utts[self.utt_a[p]], int(self.start_a[p]), int(self.end_a[p]),
                                utts[self.utt_b[p]], int(self.start_b[p]), int(self.end_b[p])))
        return out

    def terms(self) -> list[tuple[str, str, int, int]]:
        """``(cluster, utt, start, end)`` of every node, in cluster order."""
        cl = self.clusters
        order = np.lexsort((cl.node_start, cl.node_utt, cl.node_cluster))
        return [(self.cluster_name(int(cl.node_cluster[k])), self.store.utts[cl.node_utt[k]], int(cl.node_start[k]),
                 int(cl.node_end[k])) for k in order]


def restrict(found: Discovery, threshold: float, cfg: DiscoverConfig) -> Discovery:
    """The same discovery with only the pairs of DTW cost <= ``threshold``, clustered anew (cheap:
    for precision / coverage curves over thresholds from one run at a loose threshold)."""
    keep = found.cost <= threshold
    a = (found.utt_a[keep], found.start_a[keep], found.end_a[keep])
    b = (found.utt_b[keep], found.start_b[keep], found.end_b[keep])
    clusters = cluster_pairs(*a, *b, cfg.node_overlap, 1.0 - found.cost[keep], cfg.resolution, cfg.seed)
    return Discovery(found.store, *a, *b, found.cost[keep], clusters, threshold,
                     {**found.stats, "n_pairs": int(keep.sum()), "n_nodes": len(clusters.node_cluster),
                      "n_clusters": clusters.n_clusters, "dtw_threshold": threshold})


def _timed(stats: dict, name: str, t0: float) -> float:
    t = time.perf_counter()
    stats[f"seconds_{name}"] = round(t - t0, 3)
    return t


def z_threshold(null: np.ndarray, z: float) -> float:
    """``median - z * 1.4826 * MAD`` of the null costs (a robust z-score threshold)."""
    median = float(np.median(null))
    return median - z * 1.4826 * float(np.median(np.abs(null - median)))


def _random_costs(store: FrameStore, windows, n: int, rng: np.random.Generator, jobs: int | None) -> np.ndarray:
    """DTW costs of random window pairs from different utterances: the null distribution."""
    i = rng.integers(0, len(windows), size=n)
    j = rng.integers(0, len(windows), size=n)
    keep = windows.utt[i] != windows.utt[j]
    i, j = i[keep], j[keep]
    return pair_dtw(store.units, windows.row[i], windows.length[i], windows.row[j], windows.length[j], jobs)


def discover(utterances: Mapping[str, np.ndarray], cfg: DiscoverConfig | None = None,
             log=lambda msg: None) -> Discovery:
    """Discover repeated segments in ``utterances`` (``{<utt>_<start>-<end>: [frames, dims]}``)."""
    cfg = cfg or DiscoverConfig()
    stats: dict = {}
    t = t_start = time.perf_counter()
    store = load_frames(utterances)
    windows = make_windows(store, cfg.window_lengths, cfg.hop)
    emb = reduce_dim(embed_windows(store, windows, cfg.n_chunks), cfg.pca_dim, cfg.seed)
    t = _timed(stats, "embed", t)
    sims, ids = neighbours(emb, cfg)
    i, j, sim = candidate_pairs(sims, ids, windows.utt, cfg)
    del emb, sims, ids
    t = _timed(stats, "search", t)
    # one candidate per overlapping group of one utterance pair: the most similar embedding
    ua, ub = windows.utt[i], windows.utt[j]
    group = ua * len(store.keys) + ub
    sa, sb = windows.row[i], windows.row[j]
    keep = non_overlapping(group, sa, sa + windows.length[i], sb, sb + windows.length[j], -sim, cfg.overlap)
    i, j = i[keep], j[keep]
    rng = np.random.default_rng(cfg.seed)
    if cfg.dtw_threshold is not None:
        threshold = float(cfg.dtw_threshold)
    else:
        null = _random_costs(store, windows, RANDOM_PAIRS, rng, cfg.jobs)
        if len(null) == 0:
            raise UserError("discover: the archive needs at least two utterances")
        threshold = z_threshold(null, cfg.dtw_z)
    cost = pair_dtw(store.units, windows.row[i], windows.length[i], windows.row[j], windows.length[j], cfg.jobs)
    ok = cost <= threshold
    i, j, cost = i[ok], j[ok], cost[ok]
    t = _timed(stats, "verify", t)
    # verified pairs that still overlap on both sides (from different lengths): the lowest cost stays
    ua, ub, sa, sb = windows.utt[i], windows.utt[j], windows.row[i], windows.row[j]
    keep = non_overlapping(ua * len(store.keys) + ub, sa, sa + windows.length[i], sb, sb + windows.length[j],
                           cost, cfg.overlap)
    i, j, cost = i[keep], j[keep], cost[keep]
    ua, ub = windows.utt[i], windows.utt[j]
    row_a, len_a, row_b, len_b = windows.row[i], windows.length[i], windows.row[j], windows.length[j]
    if cfg.extend > 0:
        row_a, len_a, row_b, len_b, cost = extend_pairs(store.units, store.offsets, ua, row_a, len_a, ub, row_b, len_b,
                                                        cost, threshold, cfg.extend, cfg.hop, cfg.extend_slack, cfg.jobs)
        t = _timed(stats, "extend", t)

    # rows of the frame store -> frames of the utterance
    def frames_of(u, row, length):
        start = row - store.offsets[u] + store.key_start[u]
        return u, start, start + length

    (ua, sa, ea), (ub, sb, eb) = frames_of(ua, row_a, len_a), frames_of(ub, row_b, len_b)
    clusters = cluster_pairs(ua, sa, ea, ub, sb, eb, cfg.node_overlap, 1.0 - cost, cfg.resolution, cfg.seed)
    _timed(stats, "cluster", t)
    stats["null_median"] = float(np.median(null)) if cfg.dtw_threshold is None else None
    stats["null_mad"] = float(np.median(np.abs(null - np.median(null)))) if cfg.dtw_threshold is None else None
    stats.update(n_utterances=len(store.keys), n_frames=store.n_frames, n_windows=len(windows),
                 n_candidates=int(keep.size), n_pairs=len(i), n_nodes=len(clusters.node_cluster),
                 n_clusters=clusters.n_clusters, dtw_threshold=threshold,
                 seconds=round(time.perf_counter() - t_start, 3))
    log(f"discover: {stats['n_windows']} windows, {stats['n_pairs']} pairs, {stats['n_nodes']} terms in "
        f"{stats['n_clusters']} clusters ({stats['seconds']:.1f} s)")
    return Discovery(store, ua, sa, ea, ub, sb, eb, cost, clusters, threshold, stats)
