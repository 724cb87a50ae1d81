"""Settings of unsupervised term discovery, one typed dataclass validated at construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import UserError


# Louvain resolution of the clustering, relative to the pair graph's total weight (so that it means the same
# for 400 pairs as for 4,000; see cluster.py). 0.5 since 2026-12-03 (before that an absolute 1000, which is
# about 0.46 for synth_en's 1,558 pairs at z 5.5, but left every node alone on graphs of fewer than about
# 500 pairs). README, "Cluster resolution".
DEFAULT_RESOLUTION = 0.5
# The term-inventory operating point (``speechreps discover --term-inventory``): the best pairs until they
# cover 28 % of the frames, each trimmed to the best 40-frame-or-longer stretch of its alignment. On the
# built-in training splits it meets NED <= 0.20 at coverage >= 0.30 in both languages with one setting
# (English 0.190 / 0.316, Setswana 0.190 / 0.326), where no one z threshold does; the share was read off
# those splits' curves. Not the default: its pairs are fewer and fragments, and train worse models (the
# CPC-input AWE on them: 0.344 / 0.307 test AP against 0.468 / 0.425 on the default pairs, English /
# Setswana). README, "Two operating points".
TERM_INVENTORY = {"target_coverage": 0.28, "trim": 40}


@dataclass(frozen=True)
class DiscoverConfig:
    """Every knob of :func:`speechreps.discover.core.discover`; defaults measured on the built-in corpus.

    Frames are 10 ms. Window lengths cover a word or most of one (built-in words last 30-110 frames);
    matching windows of different lengths absorbs speaking-rate differences.
    """

    window_lengths: tuple[int, ...] = (40, 60, 80)  # candidate segment lengths (frames)
    hop: int = 5  # frames between window starts
    n_chunks: int = 8  # a window's embedding: the means of this many equal chunks, concatenated
    pca_dim: int = 64  # embeddings reduced to this many dimensions (0: no reduction)
    k: int = 5  # neighbours kept per window (from other utterances)
    k_search: int = 48  # neighbours asked of the index (same-utterance ones are dropped)
    min_similarity: float = 0.0  # cosine similarity of embeddings below which no candidate is kept
    index: str = "auto"  # "ivf" (approximate, ~N^1.5), "exact" (all pairs), "auto": exact when small
    exact_below: int = 20000  # auto: exact search below this many windows
    nprobe: int = 8  # ivf: cells searched per query
    dtw_z: float = 5.5  # keep pairs whose DTW cost lies this many robust deviations below random pairs' median
    dtw_threshold: float | None = None  # or an absolute DTW cost threshold (cost / (n + m), cosine frames)
    # or the best pairs until their segments cover this share of all frames (no label used), among those at
    # least coverage_floor_z robust deviations below random pairs' median
    target_coverage: float | None = None
    coverage_floor_z: float = 4.0
    trim: int = 0  # cut each pair to its DTW path's lowest-cost stretch of at least this many frames (0: off)
    extend: int = 0  # grow each verified pair outward by up to this many frames per side (0: no growing)
    extend_slack: float = 0.0  # ... while its DTW cost rises at most this much (and stays under the threshold)
    overlap: float = 0.5  # two windows overlap when they share this fraction of the shorter one
    node_overlap: float = 0.9  # intervals of one utterance sharing this fraction of the shorter are one node
    resolution: float = DEFAULT_RESOLUTION  # Louvain resolution: higher gives smaller, purer clusters
    max_pairs_per_cluster: int = 100  # pair file: at most this many pairs per cluster
    seed: int = 0
    jobs: int | None = None

    def __post_init__(self) -> None:
        lengths = tuple(int(x) for x in self.window_lengths)
        object.__setattr__(self, "window_lengths", lengths)
        if not lengths or min(lengths) < 4:
            raise UserError(f"discover: window lengths must be >= 4 frames, got {lengths}")
        checks = [
            (self.hop >= 1, "hop must be >= 1"),
            (1 <= self.n_chunks <= min(lengths), "n_chunks must be between 1 and the shortest window"),
            (self.pca_dim >= 0, "pca_dim must be >= 0"),
            (self.k >= 1 and self.k_search >= self.k, "need 1 <= k <= k_search"),
            (-1.0 <= self.min_similarity < 1.0, "min_similarity must lie in [-1, 1)"),
            (self.index in ("auto", "ivf", "exact"), "index must be auto, ivf or exact"),
            (self.nprobe >= 1 and self.exact_below >= 0, "nprobe must be >= 1"),
            (self.dtw_z > 0 and self.coverage_floor_z > 0, "dtw_z and coverage_floor_z must be > 0"),
            (self.resolution > 0, "resolution must be > 0"),
            (self.dtw_threshold is None or self.dtw_threshold > 0, "dtw_threshold must be > 0"),
            (0.0 < self.overlap <= 1.0 and 0.0 < self.node_overlap <= 1.0, "overlaps must lie in (0, 1]"),
            (self.max_pairs_per_cluster >= 1, "max_pairs_per_cluster must be >= 1"),
            (self.extend >= 0 and self.extend_slack >= 0, "extend and extend_slack must be >= 0"),
            (self.target_coverage is None or 0.0 < self.target_coverage <= 1.0, "target_coverage must lie in (0, 1]"),
            (self.trim >= 0, "trim must be >= 0"),
            (self.trim == 0 or self.extend == 0, "extend grows pairs and trim cuts them: use one (trim 0 to extend)"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"discover: {message}")

    @property
    def floor_z(self) -> float:
        """The z of the loosest pair kept: ``dtw_z``, or ``coverage_floor_z`` under a coverage target."""
        return self.coverage_floor_z if self.target_coverage is not None else self.dtw_z

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window_lengths"] = list(self.window_lengths)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "DiscoverConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{source}: unknown discover setting(s) {', '.join(unknown)}")
        values = dict(values)
        if "window_lengths" in values:
            values["window_lengths"] = tuple(values["window_lengths"])
        return cls(**values)
