"""Unsupervised term discovery on an utterance feature archive: the steps, timed.

1. windows of a few lengths every ``hop`` frames over each utterance (:mod:`.segments`);
2. a fixed-dimensional embedding of each window (chunk means, PCA), so similar segments are near
   neighbours in one vector space;
3. each window's nearest neighbours from other utterances, by an approximate index (faiss inverted
   file, exact below ``exact_below`` windows) (:mod:`.search`);
4. overlapping candidates of one utterance pair reduced to the most similar one, then each survivor
   verified by DTW on the frames; a pair passes when its cost lies ``dtw_z`` robust standard
   deviations (1.4826 x the median absolute deviation) below the median DTW cost of random window
   pairs, a threshold that adapts to any feature type's scale (:mod:`.verify`);
5. overlapping verified pairs reduced once more by DTW cost; optionally each pair cut to the best
   stretch of its DTW path (``trim``, :func:`.trim.trim_pairs`) or grown outward while its cost
   stays low (``extend``, :func:`.verify.extend_pairs`);
6. or, with ``target_coverage``, the operating point is a share of the audio: the best pairs (lowest
   cost, at least ``coverage_floor_z`` below random pairs) until their segments cover that share of
   all frames (:func:`coverage_threshold`);
7. intervals merged into nodes and nodes into clusters (:mod:`.cluster`).

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
from .trim import trim_pairs
from .verify import extend_pairs, non_overlapping, pair_dtw

RANDOM_PAIRS = 20000
TRIM_BLOCK = 4096  # pairs trimmed at a time while the coverage target is sought (then twice as many)


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
                      "n_clusters": clusters.n_clusters, "dtw_threshold": threshold,
                      "coverage_frames": frame_coverage(found.store.n_frames, *_rows(found.store, *a, *b))})


def _covered_counts(n_frames: int, row_a: np.ndarray, len_a: np.ndarray, row_b: np.ndarray, len_b: np.ndarray,
                    order: np.ndarray) -> np.ndarray:
    """Frames covered by the first k pairs of ``order`` (their segments' union), for every k."""
    covered = np.zeros(n_frames, bool)
    counts = np.empty(len(order), np.int64)
    total = 0
    for k, p in enumerate(order):
        for row, length in ((row_a[p], len_a[p]), (row_b[p], len_b[p])):
            span = covered[row:row + length]
            total += int(length) - int(np.count_nonzero(span))
            span[:] = True
        counts[k] = total
    return counts


def frame_coverage(n_frames: int, row_a: np.ndarray, len_a: np.ndarray, row_b: np.ndarray, len_b: np.ndarray) -> float:
    """The share of all ``n_frames`` frames that the pairs' segments cover (no label needed): segment
    starts and ends as +1 / -1 on a difference array, a frame covered where the running sum is positive."""
    if len(row_a) == 0 or n_frames == 0:
        return 0.0
    starts = np.concatenate([row_a, row_b])
    depth = np.zeros(n_frames + 1, np.int64)
    np.add.at(depth, starts, 1)
    np.add.at(depth, starts + np.concatenate([len_a, len_b]), -1)
    return float(np.count_nonzero(np.cumsum(depth[:-1]) > 0)) / n_frames


def coverage_threshold(n_frames: int, row_a: np.ndarray, len_a: np.ndarray, row_b: np.ndarray, len_b: np.ndarray,
                       cost: np.ndarray, target: float) -> float:
    """The highest DTW cost at which the pairs of at most that cost cover at most ``target`` of the
    ``n_frames`` frames (segments as rows of the frame store); ``inf`` when all of them do.

    Why a share of the audio rather than a cost: on the built-in training splits one share lands both
    languages, and MFCCs and CPC features, at about the same purity, where a cost threshold, even one
    relative to random pairs, does not (README, "Two operating points"). No label is used.
    """
    if len(cost) == 0:
        return float("inf")
    order = np.argsort(cost, kind="stable")
    counts = _covered_counts(n_frames, row_a, len_a, row_b, len_b, order)
    sorted_cost = cost[order]
    # pairs of equal cost go in or out together
    last_of_cost = np.r_[sorted_cost[1:] != sorted_cost[:-1], True]
    fits = (counts <= target * n_frames) & last_of_cost
    if counts[-1] <= target * n_frames:
        return float("inf")
    if not fits.any():
        return float(np.nextafter(sorted_cost[0], -np.inf))
    return float(sorted_cost[np.nonzero(fits)[0].max()])


def _rows(store: FrameStore, ua, sa, ea, ub, sb, eb):
    """Utterance frames -> ``(row_a, len_a, row_b, len_b)`` of the frame store."""
    to_row = store.offsets[:-1] - store.key_start
    return to_row[ua] + sa, ea - sa, to_row[ub] + sb, eb - sb


def operating_threshold(found: "Discovery", cfg: DiscoverConfig) -> float:
    """The threshold ``cfg`` asks for, applied to a discovery made at a looser one (for
    :func:`restrict`): the absolute one, the z one, or the coverage target's (below its z floor)."""
    if cfg.dtw_threshold is not None:
        return float(cfg.dtw_threshold)
    med, mad = found.stats.get("null_median"), found.stats.get("null_mad")
    if med is None:
        raise UserError("discover: this discovery used an absolute threshold; no z threshold applies")
    threshold = z_cost(med, mad, cfg.floor_z)
    if cfg.target_coverage is not None:
        keep = found.cost <= threshold
        rows = _rows(found.store, *(a[keep] for a in (found.utt_a, found.start_a, found.end_a, found.utt_b,
                                                      found.start_b, found.end_b)))
        threshold = min(threshold, coverage_threshold(found.store.n_frames, *rows, found.cost[keep],
                                                      cfg.target_coverage))
    return threshold


def _trimmed(store: FrameStore, cfg: DiscoverConfig, row_a, len_a, row_b, len_b):
    """The pairs cut to the best stretch of their DTW paths (:func:`.trim.trim_pairs`)."""
    cut = trim_pairs(store.units, row_a, len_a, row_b, len_b, cfg.trim, cfg.jobs)
    return row_a + cut[:, 0], cut[:, 1] - cut[:, 0], row_b + cut[:, 2], cut[:, 3] - cut[:, 2]


def _timed(stats: dict, name: str, t0: float) -> float:
    t = time.perf_counter()
    stats[f"seconds_{name}"] = round(t - t0, 3)
    return t


def z_cost(median: float, mad: float, z: float) -> float:
    """``median - z * 1.4826 * MAD``: the cost ``z`` robust standard deviations below the median."""
    return median - z * 1.4826 * mad


def robust_spread(null: np.ndarray) -> tuple[float, float]:
    """Median and median absolute deviation of the random pairs' costs (what :func:`z_cost` reads)."""
    median = float(np.median(null))
    return median, float(np.median(np.abs(null - median)))


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
    null_median = null_mad = None
    if cfg.dtw_threshold is not None:
        floor = float(cfg.dtw_threshold)
    else:
        null = _random_costs(store, windows, RANDOM_PAIRS, rng, cfg.jobs)
        if len(null) == 0:
            raise UserError("discover: the archive needs at least two utterances")
        null_median, null_mad = robust_spread(null)
        floor = z_cost(null_median, null_mad, cfg.floor_z)
    cost = pair_dtw(store.units, windows.row[i], windows.length[i], windows.row[j], windows.length[j], cfg.jobs)
    ok = cost <= floor
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
                                                        cost, floor, cfg.extend, cfg.hop, cfg.extend_slack, cfg.jobs)
        t = _timed(stats, "extend", t)
    threshold = floor
    if cfg.dtw_threshold is None and cfg.target_coverage is not None:
        # best pairs first, trimmed a growing block at a time, until the target share is passed: only
        # the pairs kept (and the last block) are trimmed, however loose the floor
        order = np.argsort(cost, kind="stable")
        ua, row_a, len_a, ub, row_b, len_b, cost = (a[order] for a in (ua, row_a, len_a, ub, row_b, len_b, cost))
        done, block = 0, TRIM_BLOCK
        while True:
            if cfg.trim > 0 and done < len(cost):
                part = slice(done, min(done + block, len(cost)))
                row_a[part], len_a[part], row_b[part], len_b[part] = _trimmed(store, cfg, row_a[part], len_a[part],
                                                                              row_b[part], len_b[part])
                done, block = part.stop, block * 2
            else:
                done = len(cost)
            threshold = min(floor, coverage_threshold(store.n_frames, row_a[:done], len_a[:done], row_b[:done],
                                                      len_b[:done], cost[:done], cfg.target_coverage))
            if done == len(cost) or threshold < cost[done - 1]:
                break
        ok = cost <= threshold
        ua, row_a, len_a, ub, row_b, len_b, cost = (a[ok] for a in (ua, row_a, len_a, ub, row_b, len_b, cost))
    elif cfg.trim > 0:
        row_a, len_a, row_b, len_b = _trimmed(store, cfg, row_a, len_a, row_b, len_b)
    if cfg.trim > 0:
        t = _timed(stats, "trim", t)

    # rows of the frame store -> frames of the utterance
    def frames_of(u, row, length):
        start = row - store.offsets[u] + store.key_start[u]
        return u, start, start + length

    (ua, sa, ea), (ub, sb, eb) = frames_of(ua, row_a, len_a), frames_of(ub, row_b, len_b)
    clusters = cluster_pairs(ua, sa, ea, ub, sb, eb, cfg.node_overlap, 1.0 - cost, cfg.resolution, cfg.seed)
    _timed(stats, "cluster", t)
    stats["null_median"], stats["null_mad"] = null_median, null_mad
    stats.update(n_utterances=len(store.keys), n_frames=store.n_frames, n_windows=len(windows),
                 n_candidates=int(keep.size), n_pairs=len(cost), n_nodes=len(clusters.node_cluster),
                 n_clusters=clusters.n_clusters, dtw_threshold=threshold, dtw_floor=floor,
                 coverage_frames=frame_coverage(store.n_frames, row_a, len_a, row_b, len_b),
                 seconds=round(time.perf_counter() - t_start, 3))
    log(f"discover: {stats['n_windows']} windows, {stats['n_pairs']} pairs, {stats['n_nodes']} terms in "
        f"{stats['n_clusters']} clusters ({stats['seconds']:.1f} s)")
    return Discovery(store, ua, sa, ea, ub, sb, eb, cost, clusters, threshold, stats)
