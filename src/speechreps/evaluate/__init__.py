"""Same-different word discrimination: distances (DTW, downsampled cosine) and AP / PRB.

See :mod:`speechreps.evaluate.samediff` for the metric (ties, cross-speaker AP) and
:mod:`speechreps.evaluate.dtw` for the DTW definition (zero frames, normalisation) and kernels.
"""

from .downsample import pairwise_downsample
from .dtw import pairwise_dtw, pairwise_dtw_reference
from .samediff import (
    SameDiffResult,
    average_precision,
    evaluate_archive,
    matches_array,
    precision_recall_breakeven,
    precision_recall_curve,
    samediff,
)

__all__ = [
    "SameDiffResult",
    "average_precision",
    "evaluate_archive",
    "matches_array",
    "pairwise_downsample",
    "pairwise_dtw",
    "pairwise_dtw_reference",
    "precision_recall_breakeven",
    "precision_recall_curve",
    "samediff",
]
