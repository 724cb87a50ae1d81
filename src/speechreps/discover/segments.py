"""Candidate segments of an utterance archive and their fixed-dimensional embeddings.

Every utterance is cut into overlapping windows of a few lengths (``window_lengths``, ``hop``). A
window's embedding is the mean of each of ``n_chunks`` equal chunks of its frames, concatenated and
made unit length: a cheap stand-in for the Fourier downsampling of the evaluation that costs one
subtraction of cumulative sums per chunk, so embedding all windows is linear in corpus length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..data.archive import parse_utterance_key
from ..errors import UserError


@dataclass
class FrameStore:
    """All utterances' frames concatenated (standardised per dimension), with where each one lies.

    ``offsets[u]`` is utterance ``u``'s first row in ``frames``; ``key_start[u]`` the frame of the
    utterance (its archive key's start) that row corresponds to, so that row ``offsets[u] + t`` is
    frame ``key_start[u] + t`` of utterance ``utts[u]``.
    """

    keys: list[str]
    utts: list[str]
    key_start: np.ndarray  # (U,) int64
    offsets: np.ndarray  # (U + 1,) int64
    frames: np.ndarray  # (F, D) float32, standardised
    units: np.ndarray  # (F, D) float32, standardised and unit length (for cosine DTW)

    @property
    def n_frames(self) -> int:
        return int(self.offsets[-1])


def load_frames(utterances: Mapping[str, np.ndarray]) -> FrameStore:
    """Concatenate and standardise (zero mean, unit variance per dimension over all frames)."""
    from ..evaluate.dtw import l2_normalize

    keys = list(utterances)
    if not keys:
        raise UserError("discover: the utterance archive is empty")
    parsed = [parse_utterance_key(k) for k in keys]
    arrays = [np.asarray(utterances[k], dtype=np.float32) for k in keys]
    dims = {a.shape[1] for a in arrays if a.ndim == 2}
    if len(dims) != 1 or any(a.ndim != 2 for a in arrays):
        raise UserError("discover: every utterance must be a [frames, dims] array of one dimension")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    frames = np.concatenate(arrays).astype(np.float32)
    if not np.isfinite(frames).all():
        raise UserError("discover: the utterance archive holds NaN or infinite values")
    mean = frames.mean(axis=0, dtype=np.float64)
    std = frames.std(axis=0, dtype=np.float64)
    frames -= mean.astype(np.float32)
    frames /= np.maximum(std, 1e-8).astype(np.float32)
    return FrameStore(keys=keys, utts=[p.utt for p in parsed], key_start=np.array([p.start for p in parsed], np.int64),
                      offsets=offsets, frames=frames, units=l2_normalize(frames))


@dataclass
class Windows:
    """Candidate segments: utterance index, first row in the frame store, length (frames)."""

    utt: np.ndarray  # (N,) int64
    row: np.ndarray  # (N,) int64, into FrameStore.frames
    length: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.utt)


def make_windows(store: FrameStore, lengths: tuple[int, ...], hop: int) -> Windows:
    """Every window of each length that fits in an utterance, starting every ``hop`` frames.

    An utterance shorter than the shortest length contributes one window of its own length (when it
    has at least 4 frames), so short corpora still have candidates.
    """
    utt, row, length = [], [], []
    for u in range(len(store.keys)):
        n = int(store.offsets[u + 1] - store.offsets[u])
        for L in lengths:
            if n >= L:
                starts = np.arange(0, n - L + 1, hop, dtype=np.int64)
                utt.append(np.full(len(starts), u, np.int64))
                row.append(store.offsets[u] + starts)
                length.append(np.full(len(starts), L, np.int64))
        if n < min(lengths) and n >= 4:
            utt.append(np.array([u]))
            row.append(np.array([store.offsets[u]]))
            length.append(np.array([n]))
    if not utt:
        raise UserError("discover: no utterance is long enough for a candidate segment (4 frames)")
    return Windows(np.concatenate(utt), np.concatenate(row), np.concatenate(length))


def embed_windows(store: FrameStore, windows: Windows, n_chunks: int, block: int = 8192) -> np.ndarray:
    """``(N, n_chunks * D)`` float32 unit vectors: chunk means of each window, concatenated.

    Windows shorter than ``n_chunks`` frames repeat frames (chunk bounds are floored, at least 1 frame).
    """
    dim = store.frames.shape[1]
    csum = np.zeros((store.n_frames + 1, dim), dtype=np.float64)  # (F + 1, D)
    np.cumsum(store.frames, axis=0, dtype=np.float64, out=csum[1:])
    out = np.empty((len(windows), n_chunks * dim), dtype=np.float32)
    frac = np.arange(n_chunks + 1, dtype=np.float64) / n_chunks
    for b0 in range(0, len(windows), block):
        row = windows.row[b0 : b0 + block, None]
        L = windows.length[b0 : b0 + block, None]
        bounds = np.floor(frac[None, :] * L).astype(np.int64)  # (B, n_chunks + 1)
        lo, hi = bounds[:, :-1], np.maximum(bounds[:, 1:], bounds[:, :-1] + 1)
        hi = np.minimum(hi, L)
        lo = np.minimum(lo, hi - 1)
        sums = csum[row + hi] - csum[row + lo]  # (B, n_chunks, D)
        means = (sums / (hi - lo)[..., None]).astype(np.float32)
        flat = means.reshape(len(row), -1)
        flat /= np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
        out[b0 : b0 + block] = flat
    return out


def reduce_dim(emb: np.ndarray, dim: int, seed: int, sample: int = 10000) -> np.ndarray:
    """PCA to ``dim`` dimensions (fitted on a random sample), then unit length again; ``dim=0``: as is."""
    if dim <= 0 or dim >= emb.shape[1]:
        return emb
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(emb), size=min(sample, len(emb)), replace=False)
    x = emb[np.sort(idx)].astype(np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    proj = vt[:dim].T.astype(np.float32)  # (D_in, dim)
    out = (emb - mean.astype(np.float32)) @ proj
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(out, dtype=np.float32)
