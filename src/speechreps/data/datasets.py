"""Training data per representation type: datasets that collate padded batches.

Utterance features are opened with :func:`speechreps.data.packed.open_features`: memory-mapped (a
packed copy from ``speechreps pack``, or the uncompressed ``.npz`` in place), so the feature set need
not fit in RAM; only a compressed ``.npz`` is read into memory. The frame AE trains on a packed
archive's whole frame matrix when there is one (otherwise the frames are concatenated in memory).

A *training set* pairs a dataset (reads, collates) with a sampler (picks; checkpointable). The
trainer only needs ``train_set.sampler`` (iterable of index batches, ``state_dict``) and
``train_set.collate(indices) -> batch`` and ``train_set.n_frames(indices)`` (unpadded frames, for
throughput). Batches are the types of :mod:`speechreps.models.base`.

Which data a type trains on (:func:`make_training_set`), by its registered ``batch_kind``:

=====================  ===========================================================================
``utterance``          training utterances, length-bucketed batches (APC)
``speaker_utterance``  training utterances, speakers x utterances batches, random ``seq_len`` crops (CPC)
``pair``               DTW-aligned segment pairs (CAPC), length-bucketed
``frame``              single frames, target = input (frame AE), shuffled frame batches
``frame_pair``         DTW-aligned frame pairs (frame CAE), shuffled frame batches
=====================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import APCConfig, CAPCConfig, CPCConfig, TrainingConfig
from ..errors import UserError, WarningCounter
from ..models.base import FramePairBatch, PairBatch, UtteranceBatch
from .archive import SpeakerRule, load_archive, parse_utterance_key
from .samplers import BucketBatchSampler, FrameBatchSampler, SpeakerBatchSampler


def pad(arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (T_i, D) arrays -> zero-padded (B, T_max, D) float32 tensor and (B,) long lengths."""
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    out = np.zeros((len(arrays), int(lengths.max()), arrays[0].shape[1]), dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return torch.from_numpy(out), torch.from_numpy(lengths)


class UtteranceDataset:
    """Utterances with speaker ids; collates :class:`UtteranceBatch` (speaker index within the batch).

    Indices are ints, or ``(index, crop_start)`` tuples from :class:`SpeakerBatchSampler`, in which
    case each utterance is cropped to ``seq_len`` frames from ``crop_start``.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], speaker_rule: SpeakerRule | None = None,
                 seq_len: int | None = None, frame_cap: int | None = None):
        self.keys = list(arrays)
        self.frame_cap = frame_cap or None  # the model crops to this many frames (counted so)
        if not self.keys:
            raise UserError("the training archive holds no utterances")
        self.feats = [np.asarray(arrays[k], dtype=np.float32) for k in self.keys]
        self.lengths = np.array([len(f) for f in self.feats], dtype=np.int64)
        self.seq_len = seq_len
        if speaker_rule is not None:
            names = [speaker_rule(parse_utterance_key(k).utt) for k in self.keys]
        else:
            names = ["?"] * len(self.keys)
        self.speaker_names = sorted(set(names))
        index = {s: i for i, s in enumerate(self.speaker_names)}
        self.speakers = np.array([index[s] for s in names], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def _item(self, ref: Any) -> tuple[np.ndarray, int]:
        if isinstance(ref, tuple):
            i, start = ref
            f = self.feats[i]
            if self.seq_len:
                f = f[start : start + self.seq_len]
            return f, i
        return self.feats[ref], ref

    def collate(self, refs: Sequence[Any]) -> UtteranceBatch:
        items = [self._item(r) for r in refs]
        feats, lengths = pad([f for f, _ in items])
        _, within = np.unique(self.speakers[[i for _, i in items]], return_inverse=True)
        return UtteranceBatch(feats, lengths, torch.from_numpy(within.astype(np.int64).reshape(-1)))

    def n_frames(self, refs: Sequence[Any]) -> int:
        """Unpadded frames the model trains on (after its own ``seq_len`` crop, if any)."""
        n = np.array([len(self._item(r)[0]) for r in refs])
        return int(np.minimum(n, self.frame_cap).sum() if self.frame_cap else n.sum())


class PairDataset:
    """Aligned segment pairs ``(x, y)`` of equal length; collates :class:`PairBatch`."""

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], frame_cap: int | None = None):
        self.frame_cap = frame_cap or None  # the model crops to this many frames (counted so)
        if not pairs:
            raise UserError("no segment pairs to train on")
        for x, y in pairs:
            if len(x) != len(y):
                raise ValueError("PairDataset needs aligned pairs of equal length")
        self.pairs = [(np.asarray(x, np.float32), np.asarray(y, np.float32)) for x, y in pairs]
        self.lengths = np.array([len(x) for x, _ in self.pairs], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.pairs)

    def collate(self, refs: Sequence[int]) -> PairBatch:
        x, lengths = pad([self.pairs[i][0] for i in refs])
        y, _ = pad([self.pairs[i][1] for i in refs])
        return PairBatch(x, y, lengths)

    def n_frames(self, refs: Sequence[int]) -> int:
        n = self.lengths[list(refs)]
        return int(np.minimum(n, self.frame_cap).sum() if self.frame_cap else n.sum())


class FrameDataset:
    """Single frames: ``x`` (N, D) and targets ``y`` (N, D) (``y`` is ``x`` for the frame AE)."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None = None):
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.y = self.x if y is None else torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        if self.x.shape != self.y.shape:
            raise ValueError(f"frame pairs differ in shape: {tuple(self.x.shape)} vs {tuple(self.y.shape)}")
        self.lengths = None

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device | str) -> "FrameDataset":
        """Keep the frames on the training device (one gather per batch, no host-device copy)."""
        same = self.y is self.x
        self.x = self.x.to(device)
        self.y = self.x if same else self.y.to(device)
        return self

    def collate(self, idx: np.ndarray) -> FramePairBatch:
        t = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(self.x.device)
        return FramePairBatch(self.x[t], self.y[t])

    def n_frames(self, idx: np.ndarray) -> int:
        return len(idx)


@dataclass
class TrainingSet:
    """A dataset and the sampler that batches it; ``describe`` is one line for logs."""

    dataset: Any
    sampler: Any
    describe: str

    def collate(self, refs):
        return self.dataset.collate(refs)

    def n_frames(self, refs) -> int:
        return self.dataset.n_frames(refs)

    @classmethod
    def bucketed(cls, dataset: Any, cfg: TrainingConfig, describe: str) -> "TrainingSet":
        """``dataset`` (with per-item ``lengths``) in length-bucketed batches of ``cfg.batch_size``: the
        sequence models' batching (APC, CAPC, the AWE models)."""
        return cls(dataset, BucketBatchSampler(dataset.lengths, cfg.batch_size, cfg.num_buckets, seed=cfg.seed), describe)


def segment_pairs_for(ds, pairs_file: str | Path | None, warnings: WarningCounter | None = None,
                      seed: int = 0) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Unaligned training segment pairs of a dataset and where they came from (:func:`speechreps.data.pairs.dataset_pairs`)."""
    from .pairs import dataset_pairs

    found = dataset_pairs(ds, pairs_file, warnings, seed=seed)
    return found.arrays(), found.source


def _utterances(cfg: APCConfig, ds, pairs_file, warnings) -> TrainingSet:
    from .packed import open_features

    path = ds.utterances("train")
    data = UtteranceDataset(open_features(path), ds.speaker_rule(path), frame_cap=cfg.seq_len)
    return TrainingSet.bucketed(data, cfg, f"{len(data)} utterances of {path}")


def _speaker_utterances(cfg: CPCConfig, ds, pairs_file, warnings) -> TrainingSet:
    from .packed import open_features

    path = ds.utterances("train")
    data = UtteranceDataset(open_features(path), ds.speaker_rule(path), seq_len=cfg.seq_len)
    sampler = SpeakerBatchSampler(data.speakers, data.lengths, cfg.n_speakers_per_batch, cfg.n_utterances_per_speaker,
                                  seq_len=cfg.seq_len, seed=cfg.seed)
    return TrainingSet(data, sampler, f"{len(data)} utterances of {len(data.speaker_names)} speakers of {path}, "
                                      f"{sampler.n_speakers} speakers x {sampler.n_utterances} utterances per batch")


def _segment_pairs(cfg: CAPCConfig, ds, pairs_file, warnings) -> TrainingSet:
    from . import pairs as P

    if pairs_file is None and ds.aligned_train is not None:
        pairs, source = P.load_original_aligned(ds.aligned_train), f"aligned pairs {ds.aligned_train}"
    else:
        raw, source = segment_pairs_for(ds, pairs_file, warnings, cfg.seed)
        pairs = P.aligned_segment_pairs(raw)
    data = PairDataset(pairs, frame_cap=cfg.seq_len)
    return TrainingSet.bucketed(data, cfg, f"{len(data)} aligned segment pairs (both directions) from {source}")


def _frames(cfg: TrainingConfig, ds, pairs_file, warnings) -> TrainingSet:
    from .packed import open_packed

    path = ds.utterances("train")
    packed = open_packed(path)
    x = packed.matrix if packed is not None else np.concatenate(list(load_archive(path).values()))
    data = FrameDataset(x)
    return TrainingSet(data, FrameBatchSampler(len(data), cfg.batch_size, seed=cfg.seed), f"{len(data)} frames of {path}")


def _frame_pairs(cfg: TrainingConfig, ds, pairs_file, warnings) -> TrainingSet:
    from . import pairs as P

    if pairs_file is None and ds.word_1_train is not None and ds.word_2_train is not None:
        x, y = P.load_original_frame_pairs(ds.word_1_train, ds.word_2_train)
        source = f"aligned frames {ds.word_1_train} / {ds.word_2_train}"
    else:
        raw, source = segment_pairs_for(ds, pairs_file, warnings, cfg.seed)
        x, y = P.aligned_frame_pairs(raw)
        source = f"DTW-aligned frame pairs (both directions) of {source}"
    data = FrameDataset(x, y)
    return TrainingSet(data, FrameBatchSampler(len(data), cfg.batch_size, seed=cfg.seed), f"{len(data)} {source}")


#: batch kind (see :mod:`speechreps.model_types`) -> ``builder(cfg, ds, pairs_file, warnings)``
TRAINING_SETS: dict[str, Callable[..., TrainingSet]] = {
    "utterance": _utterances, "speaker_utterance": _speaker_utterances, "pair": _segment_pairs,
    "frame": _frames, "frame_pair": _frame_pairs,
}


def make_training_set(batch_kind: str, cfg: TrainingConfig, ds, pairs_file: str | Path | None = None,
                      warnings: WarningCounter | None = None) -> TrainingSet:
    """The training data of a model of ``batch_kind`` from dataset ``ds`` (a :class:`~speechreps.data.registry.DatasetPaths`)."""
    return TRAINING_SETS[batch_kind](cfg, ds, pairs_file, warnings)
