"""Same-different word discrimination (Carlin et al., 2011): average precision and PR breakeven.

Every pair of word tokens is a trial; a pair is *positive* when the two labels are equal. Pairs are
ranked by distance (closest first) and:

- **AP** is the mean, over the positive pairs, of the precision at that pair's rank;
- **PRB** (precision-recall breakeven) follows Kamper's ``samediff.py``: precision and recall at
  every rank, precision made monotone by taking at each rank the maximum precision at that rank or
  any later one (the interpolated precision), then the rank where ``|recall - precision|`` is
  smallest (the first such rank), and PRB = (recall + precision) / 2 there.

**Ties.** Pairs with equal distances are ranked by a *stable* sort on distance over the condensed
(``scipy.spatial.distance.pdist``) pair order: ties keep the order (0,1), (0,2), ..., (1,2), ...
Kamper's script uses an unstable ``argsort``, which leaves the order of ties unspecified; for
distances computed in floating point, exact ties other than between identical tokens are rare, and
this rule makes the fast and the reference implementations agree exactly.

**Cross-speaker AP** (``ap_cross_speaker``): the pairs of the same word by the *same* speaker are
removed from the trial list; the positives are then the same-word different-speaker pairs, and
*all* different-word pairs stay as negatives, those of the same speaker included. Keeping the
same-speaker different-word pairs is deliberate: features that encode the speaker rather than the
word put exactly those pairs near the top, and that is what this figure must penalise. (Kamper's
"SWDP" variant instead keeps the same-speaker positives in the ranking, counted as hits but not
averaged over; ours removes them, so a same-speaker match can neither help nor hurt.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

DISTANCES = ("dtw", "downsample")


# ---------------------------------------------------------------------------------------------
# Pair bookkeeping (condensed order of scipy.spatial.distance.pdist: (0,1), (0,2), ..., (1,2), ...)


def n_pairs(n: int) -> int:
    return n * (n - 1) // 2


def matches_array(labels: Sequence[Any]) -> np.ndarray:
    """Boolean condensed vector: ``True`` where the two items of a pair have equal labels."""
    codes = np.unique(np.array([str(x) for x in labels]), return_inverse=True)[1].reshape(-1)
    n = len(codes)
    out = np.empty(n_pairs(n), dtype=bool)
    pos = 0
    for i in range(n - 1):
        k = n - i - 1
        np.equal(codes[i + 1 :], codes[i], out=out[pos : pos + k])
        pos += k
    return out


def _check(distances: np.ndarray, matches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distances = np.asarray(distances, dtype=np.float64).reshape(-1)
    matches = np.asarray(matches, dtype=bool).reshape(-1)
    if distances.shape != matches.shape:
        raise ValueError(f"distances {distances.shape} and matches {matches.shape} differ in length")
    if np.isnan(distances).any():
        raise ValueError("distances contain NaN")
    return distances, matches


def _ranked(distances: np.ndarray, matches: np.ndarray) -> tuple[np.ndarray, int]:
    """Matches in rank order (stable sort by distance) and the number of positives."""
    distances, matches = _check(distances, matches)
    n_pos = int(matches.sum())
    if n_pos == 0:
        raise UserError("no positive pairs: no word type occurs twice, so AP is undefined")
    order = np.argsort(distances, kind="stable")
    return matches[order], n_pos


def average_precision(distances: np.ndarray, matches: np.ndarray) -> float:
    """Mean over positive pairs of the precision at the pair's rank (stable sort by distance)."""
    ranked, n_pos = _ranked(distances, matches)
    hits = np.cumsum(ranked, dtype=np.int64)
    ranks = np.flatnonzero(ranked) + 1  # 1-based ranks of the positives
    return float(np.sum(hits[ranks - 1] / ranks) / n_pos)


def precision_recall_curve(distances: np.ndarray, matches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) at every rank, in rank order (raw precision, not interpolated)."""
    ranked, n_pos = _ranked(distances, matches)
    hits = np.cumsum(ranked, dtype=np.int64)
    precision = hits / np.arange(1, len(ranked) + 1)
    recall = hits / n_pos
    return precision, recall


def precision_recall_breakeven(distances: np.ndarray, matches: np.ndarray) -> float:
    """Kamper's PRB: first rank minimising |recall - interpolated precision|; their mean there."""
    precision, recall = precision_recall_curve(distances, matches)
    interp = np.maximum.accumulate(precision[::-1])[::-1]
    i = int(np.argmin(np.abs(recall - interp)))
    return float((recall[i] + interp[i]) / 2.0)


def average_precision_slow(distances: Sequence[float], matches: Sequence[bool]) -> float:
    """Obviously correct AP (a plain loop), the yardstick for :func:`average_precision` in tests."""
    order = sorted(range(len(distances)), key=lambda p: (float(distances[p]), p))
    n_pos = sum(bool(m) for m in matches)
    hits, total = 0, 0.0
    for rank, p in enumerate(order, start=1):
        if matches[p]:
            hits += 1
            total += hits / rank
    return total / n_pos


def precision_recall_breakeven_slow(distances: Sequence[float], matches: Sequence[bool]) -> float:
    """Obviously correct PRB (plain loops), the yardstick for :func:`precision_recall_breakeven`."""
    order = sorted(range(len(distances)), key=lambda p: (float(distances[p]), p))
    n_pos = sum(bool(m) for m in matches)
    precision, recall, hits = [], [], 0
    for rank, p in enumerate(order, start=1):
        hits += bool(matches[p])
        precision.append(hits / rank)
        recall.append(hits / n_pos)
    interp = [max(precision[r:]) for r in range(len(precision))]
    best = min(range(len(interp)), key=lambda r: (abs(recall[r] - interp[r]), r))
    return (recall[best] + interp[best]) / 2.0


# ---------------------------------------------------------------------------------------------
# The evaluation


@dataclass
class SameDiffResult:
    """Same-different figures for one set of tokens and one distance."""

    ap: float
    prb: float
    ap_cross_speaker: float | None
    prb_cross_speaker: float | None
    n_tokens: int
    n_types: int
    n_pairs: int
    n_positive: int
    n_positive_cross_speaker: int | None
    distance: str
    seconds: float
    # Kept for plots (precision-recall curve); not part of to_dict().
    distances: np.ndarray | None = field(default=None, repr=False, compare=False)
    matches: np.ndarray | None = field(default=None, repr=False, compare=False)
    cross_speaker_keep: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "distance": self.distance,
            "ap": self.ap,
            "prb": self.prb,
            "ap_cross_speaker": self.ap_cross_speaker,
            "prb_cross_speaker": self.prb_cross_speaker,
            "n_tokens": self.n_tokens,
            "n_types": self.n_types,
            "n_pairs": self.n_pairs,
            "n_positive": self.n_positive,
            "n_positive_cross_speaker": self.n_positive_cross_speaker,
            "seconds": self.seconds,
        }


def pairwise_distances(
    segments: list[np.ndarray],
    distance: str = "dtw",
    n_jobs: int | None = None,
    device: str | None = None,
    normalize: str = "sum",
) -> np.ndarray:
    """Condensed distances for ``distance`` in ``{"dtw", "downsample"}``."""
    if distance == "dtw":
        from .dtw import pairwise_dtw

        from ..progress import bars_enabled

        # a bar on a terminal, shown once the DTW has run for 2 s (a large set takes minutes on a CPU)
        return pairwise_dtw(segments, normalize=normalize, n_jobs=n_jobs, device=device, progress=bars_enabled())
    if distance == "downsample":
        from .downsample import pairwise_downsample

        return pairwise_downsample(segments)
    raise UserError(f"unknown distance {distance!r}: choose from {', '.join(DISTANCES)}")


def samediff(
    segments: list[np.ndarray],
    labels: list[str],
    speakers: list[str] | None = None,
    distance: str = "dtw",
    n_jobs: int | None = None,
    device: str | None = None,
    normalize: str = "sum",
    distances: np.ndarray | None = None,
) -> SameDiffResult:
    """Same-different AP/PRB of ``segments`` (each ``[T, D]``) with word ``labels``.

    With ``speakers`` (one per segment) the cross-speaker AP/PRB are computed too (see the module
    docstring). ``distances`` may pass precomputed condensed distances (then ``distance`` only names
    them).
    """
    t0 = time.perf_counter()
    n = len(segments)
    if len(labels) != n:
        raise ValueError(f"{n} segments but {len(labels)} labels")
    if speakers is not None and len(speakers) != n:
        raise ValueError(f"{n} segments but {len(speakers)} speakers")
    if n < 2:
        raise UserError(f"same-different needs at least 2 word tokens, got {n}")
    matches = matches_array(labels)
    if not matches.any():
        raise UserError(f"no positive pairs among {n} tokens: no word type occurs twice")
    if distances is None:
        distances = pairwise_distances(segments, distance, n_jobs=n_jobs, device=device, normalize=normalize)
    distances = np.asarray(distances, dtype=np.float64)
    if distances.shape != matches.shape:
        raise ValueError(f"{len(distances)} distances for {len(matches)} pairs")
    ap = average_precision(distances, matches)
    prb = precision_recall_breakeven(distances, matches)
    ap_x = prb_x = n_pos_x = keep = None
    if speakers is not None:
        same_speaker = matches_array(speakers)
        keep = ~(matches & same_speaker)
        n_pos_x = int((matches & ~same_speaker).sum())
        if n_pos_x > 0:
            ap_x = average_precision(distances[keep], matches[keep])
            prb_x = precision_recall_breakeven(distances[keep], matches[keep])
    return SameDiffResult(
        ap=ap,
        prb=prb,
        ap_cross_speaker=ap_x,
        prb_cross_speaker=prb_x,
        n_tokens=n,
        n_types=len(set(labels)),
        n_pairs=len(matches),
        n_positive=int(matches.sum()),
        n_positive_cross_speaker=n_pos_x,
        distance=distance,
        seconds=time.perf_counter() - t0,
        distances=distances,
        matches=matches,
        cross_speaker_keep=keep,
    )


def word_tokens(
    arrays: Mapping[str, np.ndarray] | str | Path,
    speaker_rule: Any = None,
    min_frames: int = 0,
    min_chars: int = 0,
) -> tuple[list[np.ndarray], list[str], list[str], list[str]]:
    """(segments, labels, speakers, keys) of a word-token archive, filtered by length.

    Keys are ``<label>_<utt>_<start>-<end>``; a key that does not parse raises :class:`UserError`.
    """
    from ..data.archive import load_archive, parse_word_key
    from ..data.archive import speaker_rule as make_rule

    if isinstance(arrays, (str, Path)):
        arrays = load_archive(arrays)
    rule = make_rule(speaker_rule)
    segments, labels, speakers, keys = [], [], [], []
    for key, arr in arrays.items():
        parsed = parse_word_key(key)
        arr = np.asarray(arr)
        if arr.ndim != 2:
            raise UserError(f"key {key!r} has shape {arr.shape}, expected [frames, dims]")
        if arr.shape[0] < max(min_frames, 1) or len(parsed.label) < min_chars:
            continue
        segments.append(arr)
        labels.append(parsed.label)
        speakers.append(rule(parsed.utt))
        keys.append(key)
    return segments, labels, speakers, keys


def evaluate_archive(
    arrays: Mapping[str, np.ndarray] | str | Path,
    speaker_rule: Any = None,
    distance: str = "dtw",
    min_frames: int = 0,
    min_chars: int = 0,
    **kw: Any,
) -> SameDiffResult:
    """Same-different evaluation of a word-token archive (path or ``{key: [T, D]}``).

    Labels and speakers come from the keys (:func:`speechreps.data.archive.parse_word_key` and a
    :class:`~speechreps.data.archive.SpeakerRule`, default ``buckeye``). Tokens shorter than
    ``min_frames`` or with labels shorter than ``min_chars`` are left out; empty tokens always are.
    Other keywords go to :func:`samediff` (``n_jobs``, ``device``, ``normalize``).
    """
    segments, labels, speakers, _ = word_tokens(arrays, speaker_rule, min_frames, min_chars)
    where = f"archive {arrays}" if isinstance(arrays, (str, Path)) else "word tokens"
    if len(segments) < 2:
        raise UserError(f"{where}: {len(segments)} word token(s) left after filtering; need at least 2")
    if not math.isfinite(float(sum(float(np.abs(s).sum()) for s in segments))):
        raise UserError(f"{where}: features contain NaN or infinity")
    try:
        return samediff(segments, labels, speakers, distance=distance, **kw)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
