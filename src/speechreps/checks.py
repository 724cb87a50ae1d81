"""Checks of the data a command is about to use, made before the work starts.

Each turns what would otherwise be a traceback deep inside training (a shape mismatch, a loss of NaN)
or a silently meaningless number into one line naming the archive, key or option.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np

from .errors import UserError


def check_dim(dim: int, input_dim: int, source: str | os.PathLike, what: str = "the model") -> None:
    """Features of ``dim`` dimensions from ``source`` must match the model's ``input_dim``."""
    if dim != input_dim:
        raise UserError(f"{source} holds {dim}-dimensional features but {what} takes input_dim {input_dim} "
                        f"(features of another type, or the wrong config/checkpoint?)")


def archive_dim(arrays: Mapping[str, np.ndarray], source: str | os.PathLike) -> int:
    """The feature dimension of a mapping of ``[frames, dims]`` arrays (the first member's)."""
    for key in arrays:
        return int(arrays[key].shape[1])
    raise UserError(f"archive {source} holds no arrays")


def check_training_data(arrays: Mapping[str, np.ndarray], source: str | os.PathLike, input_dim: int) -> None:
    """Every member of the training archive: ``input_dim`` columns and only finite values.

    One pass over the data (memory-mapped archives are paged in once); NaN or Inf would otherwise
    show up only as a loss of NaN some epochs later.
    """
    for key in arrays:
        arr = arrays[key]
        check_dim(int(arr.shape[1]), input_dim, f"archive {source} (key {key!r})")
        if not np.isfinite(arr).all():
            n_bad = int(arr.size - np.isfinite(arr).sum())
            raise UserError(f"archive {source}: key {key!r} holds {n_bad} NaN or infinite value(s); "
                            f"recompute or drop it before training")


def looks_like_utterances(keys: Iterable[str], speaker_of) -> bool:
    """Whether word-token-looking keys are really utterance keys ``<utt>_<start>-<end>``.

    Read as ``<label>_<utt>_<start>-<end>``, the key of utterance ``sp01_0003`` has the "label"
    ``sp01`` (its speaker) and the utterance id ``0003``, from which no speaker can be read, while
    the full ``sp01_0003`` yields one; and every span starts at frame 0 (whole utterances, as
    ``prepare`` writes them). Word tokens start where their word does. ``speaker_of``: the speaker
    rule (raises UserError when it cannot read one).
    """
    from .data.archive import parse_word_key

    parsed = [parse_word_key(k) for k in keys]
    if len(parsed) < 2 or any(p.start != 0 for p in parsed):
        return False

    def readable(utt: str) -> bool:
        try:
            speaker_of(utt)
            return True
        except UserError:
            return False

    return not any(readable(p.utt) for p in parsed) and all(readable(f"{p.label}_{p.utt}") for p in parsed)


def build_checked(rep: str, cfg, source: str | os.PathLike):
    """``build_model(rep, cfg)``, with a size too large to allocate as a one-line error naming ``source``."""
    from .models import build_model

    try:
        return build_model(rep, cfg)
    except (RuntimeError, MemoryError, OverflowError) as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, RuntimeError) and "alloc" not in text.lower() and "size" not in text.lower():
            raise
        raise UserError(f"{source}: the {rep} model of this config cannot be built ({text[:160]}); "
                        f"are its sizes (hidden_dim, num_layers, ...) what you meant?") from None


def model_input_dim(model) -> int | None:
    """The input dimension a built model expects (from its config), None if it does not say."""
    cfg = getattr(model, "cfg", None)
    dim = getattr(cfg, "input_dim", None)
    return int(dim) if dim is not None else None
