"""Acoustic word embeddings of word-token archives, embedding files, and their same-different AP.

**Embedding files.** :func:`save_embeddings` writes an ``.npz`` keyed exactly like the input
word-token archive (``<label>_<utt>_<start>-<end>``); each value is a float32 array of shape
``[1, dim]``: one "frame" of ``dim`` numbers. Keeping the arrays 2-D makes the file a valid feature
archive (``[frames, dims]``), so every archive tool reads it, ``speechreps samediff`` included
(with one frame the downsampled distance is the cosine distance of the embeddings).

**Embeddings.** :func:`downsample_embeddings`: each token resampled to ``n`` frames along time
(Fourier, ``scipy.signal.resample``, as docs/METRICS.md, or linear interpolation) and flattened
(``n * D`` numbers), no training. :func:`model_embeddings`: a trained CAE-RNN's embeddings.

**Evaluation**: same-different AP and PRB over all pairs of tokens with the cosine distance between
embeddings, all positives and cross-speaker positives: :func:`speechreps.evaluate.scoring.score` with
``distance="cosine"`` on a :class:`~speechreps.data.words.WordSet` (:func:`evaluate_embeddings` for a
mapping keyed like word tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.archive import save_archive
from ..errors import UserError


def downsample_embeddings(words: Mapping[str, np.ndarray], n: int = 10, method: str = "fourier") -> dict[str, np.ndarray]:
    """``{key: [T, D]}`` -> ``{key: [1, n * D]}`` float32: resampled to ``n`` frames and flattened."""
    from ..evaluate.downsample import downsample

    if n < 1:
        raise UserError(f"downsampling needs n >= 1 frames, got {n}")
    return {k: downsample(v, n, method).astype(np.float32)[None, :] for k, v in words.items()}


@torch.no_grad()
def model_embeddings(model: torch.nn.Module, words: Mapping[str, np.ndarray], device: Any = "cpu",
                     max_batch_size: int = 256, max_batch_frames: int = 65536) -> dict[str, np.ndarray]:
    """``{key: [T, D]}`` -> ``{key: [1, E]}`` float32 embeddings of a trained CAE-RNN (eval mode, in key order).

    Tokens are batched by length (:func:`speechreps.data.samplers.inference_batches`, as extraction); the encoder reads packed sequences, so padding changes nothing.
    """
    from ..data.datasets import pad
    from ..data.samplers import inference_batches

    keys = list(words)
    if not keys:
        return {}
    dim = int(np.asarray(words[keys[0]]).shape[1])
    if dim != model.cfg.input_dim:
        raise UserError(f"the word tokens have {dim}-dimensional frames, the AWE model reads {model.cfg.input_dim}")
    was_training = model.training
    model.eval()
    out: dict[str, np.ndarray] = {}
    try:
        for idx in inference_batches([len(words[k]) for k in keys], max_batch_size, max_batch_frames):
            x, lengths = pad([np.asarray(words[keys[k]], dtype=np.float32) for k in idx])
            z = model.embed(x.to(device), lengths.to(device)).float().cpu().numpy()  # (B, E)
            for b, k in enumerate(idx):
                out[keys[k]] = z[b][None, :]
    finally:
        model.train(was_training)
    return {k: out[k] for k in keys}


def save_embeddings(path: str | Path, embeddings: Mapping[str, np.ndarray]) -> Path:
    """Write ``{key: [1, dim]}`` as an ``.npz`` archive (atomically); 1-D values are made ``[1, dim]``."""
    arrays = {}
    for k, v in embeddings.items():
        v = np.asarray(v, dtype=np.float32)
        arrays[k] = v[None, :] if v.ndim == 1 else v
        if arrays[k].ndim != 2 or arrays[k].shape[0] != 1:
            raise ValueError(f"embedding {k!r} has shape {v.shape}, expected [dim] or [1, dim]")
    return save_archive(path, arrays)


def evaluate_embeddings(embeddings: Mapping[str, np.ndarray], speaker_rule: Any = None):
    """Same-different result (:class:`~speechreps.evaluate.samediff.SameDiffResult`) of word embeddings
    keyed like word tokens (``<label>_<utt>_<start>-<end>``, speaker by ``speaker_rule``, default
    ``buckeye``): :func:`speechreps.evaluate.scoring.score` with the cosine distance."""
    from ..data.words import WordSet
    from ..evaluate.scoring import score

    if len(embeddings) < 2:
        raise UserError(f"same-different needs at least 2 embedded word tokens, got {len(embeddings)}")
    return score(embeddings, WordSet.from_arrays(embeddings, speaker_rule), "cosine")
