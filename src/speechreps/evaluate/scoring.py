"""Scoring features of a :class:`~speechreps.data.words.WordSet`: the one path every job uses.

:func:`score` is what ``speechreps evaluate``, training validation (:func:`make_validator`), the main
job's table and per-layer rows, and the AWE evaluation call: features keyed like the word set, one
distance, one :class:`~speechreps.evaluate.samediff.SameDiffResult`.

Training validation scores the model's default layer with DTW on a fixed random subset of at most
``max_tokens`` validation tokens (:func:`validation_subset`): DTW over all pairs of a full validation
set at 256-512 dimensions costs minutes per evaluation on a CPU. Its downsampled AP over all tokens is
logged beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..data.words import WordSet
from ..errors import UserError
from ..run_options import VAL_MAX_TOKENS
from .samediff import SameDiffResult, samediff


def score(features: Mapping[str, np.ndarray], words: WordSet, distance: str = "dtw", jobs: int | None = None,
          device: Any = None) -> SameDiffResult:
    """Same-different AP/PRB of ``features`` (``{key: (T, d)}``, at least ``words.keys``) of the tokens of
    ``words``, with their labels and speakers; ``device`` is used by the DTW only (CUDA wavefront).

    ``distance``: ``"dtw"`` or ``"downsample"`` for frame-level features, ``"cosine"`` for one vector per
    token (acoustic word embeddings, ``[1, E]`` or ``[E]``): the cosine distance of the flattened vectors.
    """
    segments = [features[k] for k in words.keys]
    if distance == "cosine":
        x = np.stack([np.asarray(s, dtype=np.float64).reshape(-1) for s in segments])
        if not np.isfinite(x).all():
            raise UserError("embeddings contain NaN or infinity")
        return samediff(segments, words.labels, words.speakers, distance="cosine", distances=vector_cosine_distances(x))
    return samediff(segments, words.labels, words.speakers, distance=distance, n_jobs=jobs,
                    device=device if distance == "dtw" else None)


def vector_cosine_distances(x: np.ndarray) -> np.ndarray:
    """Condensed (``pdist`` order) cosine distances of (N, E) vectors; a zero vector is at distance 1."""
    from scipy.spatial.distance import pdist

    return np.nan_to_num(pdist(np.asarray(x, dtype=np.float64), "cosine"), nan=1.0)


def validation_subset(n_tokens: int, max_tokens: int = VAL_MAX_TOKENS, seed: int = 0) -> np.ndarray:
    """Indices of the fixed random subset of at most ``max_tokens`` of ``n_tokens`` validation tokens
    that training validation scores by DTW (all of them when there are fewer; sorted)."""
    if 0 < max_tokens < n_tokens:
        return np.sort(np.random.default_rng(seed).choice(n_tokens, size=max_tokens, replace=False))
    return np.arange(n_tokens)


def make_validator(ds, device, n_jobs: int | None = None, max_tokens: int = VAL_MAX_TOKENS, seed: int = 0
                   ) -> Callable[[Any], dict[str, float]] | None:
    """A function ``model -> {"val_ap": ..., ...}`` on dataset ``ds``'s validation words, None without them.

    ``val_ap`` (which picks ``best.pt``) is the DTW AP of the default layer on the fixed subset (see the
    module doc), ``val_ap_cross_speaker`` its cross-speaker AP, ``val_ap_downsample`` the downsampled AP
    over all tokens. ``max_tokens=0``, or a subset in which no word occurs twice: no DTW, and ``val_ap``
    is the downsampled AP.
    """
    if not ds.has_word_tokens("validation"):
        return None
    words = WordSet.load(ds, "validation")
    subset = words.subset(validation_subset(len(words), max_tokens, seed)) if max_tokens > 0 else None
    if subset is not None and not subset.has_pairs():
        subset = None

    def validate(model) -> dict[str, float]:
        from ..extract import word_features

        feats, _ = word_features(model, words.words, words.utterances, [model.default_layer], device=device)
        layer = feats[model.default_layer]
        out: dict[str, float] = {}
        if subset is not None:
            res = score(layer, subset, "dtw", n_jobs)
            out["val_ap"] = res.ap
            if res.ap_cross_speaker is not None:
                out["val_ap_cross_speaker"] = res.ap_cross_speaker
        out["val_ap_downsample"] = score(layer, words, "downsample", n_jobs).ap
        out.setdefault("val_ap", out["val_ap_downsample"])
        return out

    return validate


def with_reference(validate: Callable, reference: Callable | None) -> Callable:
    """``validate``'s metrics plus ``reference``'s under ``ref_`` names (logged, never deciding best.pt)."""
    if reference is None:
        return validate
    return lambda m: {**validate(m), **{f"ref_{k}": v for k, v in reference(m).items()}}
