"""From verified pairs to terms: intervals merged into nodes, nodes grouped into clusters.

Each verified pair names two intervals. Intervals of one utterance that share ``node_overlap`` of
the shorter one are the same occurrence of a term (one *node*; its span is the median of its
intervals' starts and ends). Pairs are edges between nodes; a cluster is a connected component of
that graph, split into communities by the Louvain method (Blondel et al. 2008; edges weighted by
DTW similarity): plain connected components (ZRTools, Jansen & Van Durme 2011) chain different
words through overlapping intervals into a few giant clusters, and the ZeroSpeech measures score
every two members of a cluster as a discovered pair.

The resolution is relative to the graph's total edge weight ``m``: networkx's Louvain gets
``resolution * 2m``. A node of degree ``k`` joins a community of total degree ``K`` when its edges
into it weigh more than ``resolution * k * K`` (networkx's modularity gain ``w/m - gamma k K / 2m^2``,
times ``m``), whatever the graph's size. With an absolute resolution the same setting splits a small
graph into single nodes (1000 did so below about 500 pairs, so no cluster had two members) and
merges a large one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import DEFAULT_RESOLUTION


@dataclass
class Clusters:
    """Nodes (utterance index, start, end in utterance frames) and each node's cluster (0..C-1)."""

    node_utt: np.ndarray
    node_start: np.ndarray
    node_end: np.ndarray
    node_cluster: np.ndarray
    pair_nodes: np.ndarray  # (P, 2): the two nodes of each verified pair

    @property
    def n_clusters(self) -> int:
        return int(self.node_cluster.max()) + 1 if len(self.node_cluster) else 0


def _merge_intervals(utt: np.ndarray, start: np.ndarray, end: np.ndarray, min_overlap: float) -> np.ndarray:
    """Node id of each interval: sorted per utterance, an interval joins the running node when it
    shares ``min_overlap`` of the shorter span with that node's first interval."""
    order = np.lexsort((end, start, utt))
    node = np.empty(len(utt), dtype=np.int64)
    current = -1
    ref_u = ref_s = ref_e = -1
    for idx in order:
        u, s, e = utt[idx], start[idx], end[idx]
        shared = min(e, ref_e) - max(s, ref_s)
        if u != ref_u or shared < min_overlap * min(e - s, ref_e - ref_s):
            current += 1
            ref_u, ref_s, ref_e = u, s, e
        node[idx] = current
    return node


def _node_medians(node: np.ndarray, values: np.ndarray, n_nodes: int) -> np.ndarray:
    """The median of ``values`` over each node's intervals (rounded down to a frame)."""
    order = np.argsort(node, kind="stable")
    bounds = np.searchsorted(node[order], np.arange(n_nodes + 1))
    vals = values[order]
    return np.array([int(np.median(vals[bounds[k]:bounds[k + 1]])) for k in range(n_nodes)], dtype=np.int64)


def _communities(n_nodes: int, edges: np.ndarray, weights: np.ndarray, resolution: float, seed: int) -> np.ndarray:
    """Louvain communities of the node graph -> community id per node (``resolution`` relative to the
    total edge weight, see the module doc)."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(n_nodes))
    for (a, b), w in zip(edges.tolist(), weights.tolist()):
        if a != b:
            graph.add_edge(a, b, weight=max(w, 1e-6))
    label = np.empty(n_nodes, dtype=np.int64)
    two_m = 2.0 * graph.size(weight="weight")
    communities = nx.community.louvain_communities(graph, weight="weight", resolution=resolution * max(two_m, 1e-12),
                                                   seed=seed)
    for c, members in enumerate(communities):
        label[list(members)] = c
    return label


def cluster_pairs(utt_a: np.ndarray, s_a: np.ndarray, e_a: np.ndarray, utt_b: np.ndarray, s_b: np.ndarray,
                  e_b: np.ndarray, node_overlap: float, weights: np.ndarray | None = None,
                  resolution: float = DEFAULT_RESOLUTION,
                  seed: int = 0) -> Clusters:
    """Nodes and clusters (Louvain communities) of the verified pairs (arrays of equal length P)."""
    p = len(utt_a)
    utt = np.concatenate([utt_a, utt_b])
    start = np.concatenate([s_a, s_b])
    end = np.concatenate([e_a, e_b])
    node = _merge_intervals(utt, start, end, node_overlap)
    n_nodes = int(node.max()) + 1 if len(node) else 0
    pair_nodes = np.stack([node[:p], node[p:]], axis=1)
    label = _communities(n_nodes, pair_nodes, np.ones(p) if weights is None else weights, resolution, seed)
    node_utt = np.zeros(n_nodes, np.int64)
    node_utt[node] = utt
    node_start, node_end = _node_medians(node, start, n_nodes), _node_medians(node, end, n_nodes)
    # clusters renumbered by size, largest first, so ids are stable and readable
    sizes = np.bincount(label)
    rank = np.empty_like(sizes)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes))
    return Clusters(node_utt, node_start, node_end, rank[label].astype(np.int64), pair_nodes)
