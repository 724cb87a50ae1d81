"""Batch samplers: which items form each batch, in which order; checkpointable.

A sampler only picks indices; a dataset (:mod:`speechreps.data.datasets`) reads and collates them.
Every sampler owns a NumPy ``Generator`` seeded at construction, draws one epoch's order when
iterated, and exposes ``state_dict()`` / ``load_state_dict()`` (the generator's bit state), so that a
run resumed from a checkpoint draws exactly the batches the uninterrupted run would have drawn.

- :class:`BucketBatchSampler`: length-bucketed batches (APC, CAPC): items sorted by length, cut into
  ``num_buckets`` buckets of about equal count; each epoch shuffles within buckets, cuts batches
  inside a bucket (so little padding) and shuffles the batch order. Every item once per epoch.
- :class:`SpeakerBatchSampler`: CPC batches of ``n_speakers`` speakers x ``n_utterances``
  utterances, each with a random crop offset for ``seq_len`` frames.
- :class:`FrameBatchSampler`: a random permutation of single frames cut into batches (frame AE/CAE).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import UserError


class _Seeded:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class BucketBatchSampler(_Seeded):
    """Length-bucketed, shuffled batches of indices; every index exactly once per epoch.

    ``lengths[i]`` is item i's frame count. Items are sorted by length and split into ``num_buckets``
    contiguous buckets; a batch never spans two buckets (the last batch of a bucket may be smaller),
    so a batch pads to at most its bucket's longest item.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, num_buckets: int = 1, seed: int = 0,
                 shuffle: bool = True):
        super().__init__(seed)
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if len(self.lengths) == 0:
            raise UserError("no training items to batch")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        order = np.argsort(self.lengths, kind="stable")
        n_buckets = max(1, min(int(num_buckets), len(order)))
        self.buckets = [b for b in np.array_split(order, n_buckets) if len(b)]

    def __len__(self) -> int:
        return sum(-(-len(b) // self.batch_size) for b in self.buckets)

    def __iter__(self) -> Iterator[list[int]]:
        batches = []
        for bucket in self.buckets:
            items = self.rng.permutation(bucket) if self.shuffle else bucket
            batches.extend(items[i : i + self.batch_size].tolist() for i in range(0, len(items), self.batch_size))
        if self.shuffle:
            perm = self.rng.permutation(len(batches))
            batches = [batches[i] for i in perm]
        return iter(batches)


class SpeakerBatchSampler(_Seeded):
    """CPC batches: ``n_speakers`` speakers x ``n_utterances`` utterances, speaker-major order.

    Yields lists of ``(index, crop_start)``: the batch holds utterances ``index`` cropped to
    ``[crop_start, crop_start + seq_len)`` (``crop_start`` 0 and the whole utterance when it is
    shorter than ``seq_len``; its padding is then masked). Speakers are drawn without replacement
    within a batch; a speaker's utterances without replacement when it has enough, with replacement
    otherwise (the defined fallback for speakers with few utterances). When the data has fewer than
    ``n_speakers`` speakers, every batch holds all of them. An epoch is
    ``max(1, n_items // (n_speakers * n_utterances))`` batches, i.e. about one pass over the data.
    """

    def __init__(self, speakers: Sequence[int], lengths: Sequence[int], n_speakers: int, n_utterances: int,
                 seq_len: int | None = None, seed: int = 0):
        super().__init__(seed)
        if n_speakers < 1 or n_utterances < 1:
            raise UserError(f"n_speakers_per_batch and n_utterances_per_speaker must be >= 1, "
                            f"got {n_speakers} and {n_utterances}")
        speakers = np.asarray(speakers, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if len(speakers) == 0:
            raise UserError("no training utterances to batch")
        self.by_speaker = [np.flatnonzero(speakers == s) for s in np.unique(speakers)]
        self.n_speakers = min(int(n_speakers), len(self.by_speaker))
        self.n_utterances = int(n_utterances)
        self.seq_len = None if not seq_len else int(seq_len)
        self.n_batches = max(1, len(speakers) // (self.n_speakers * self.n_utterances))

    def __len__(self) -> int:
        return self.n_batches

    def _crop(self, index: int) -> int:
        if self.seq_len is None or self.lengths[index] <= self.seq_len:
            return 0
        return int(self.rng.integers(0, self.lengths[index] - self.seq_len + 1))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batches = []
        for _ in range(self.n_batches):
            chosen = self.rng.choice(len(self.by_speaker), size=self.n_speakers, replace=False)
            batch = []
            for s in chosen:
                utts = self.by_speaker[s]
                pick = self.rng.choice(utts, size=self.n_utterances, replace=len(utts) < self.n_utterances)
                batch.extend((int(i), self._crop(int(i))) for i in pick)
            batches.append(batch)
        return iter(batches)


class FrameBatchSampler(_Seeded):
    """Shuffled batches of single-frame indices ``0..n_frames-1``, each exactly once per epoch.

    Yields NumPy int64 index arrays (not lists: epochs have millions of frames).
    """

    def __init__(self, n_frames: int, batch_size: int, seed: int = 0, shuffle: bool = True):
        super().__init__(seed)
        if n_frames < 1:
            raise UserError("no training frames to batch")
        self.n_frames = int(n_frames)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self) -> int:
        return -(-self.n_frames // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self.rng.permutation(self.n_frames) if self.shuffle else np.arange(self.n_frames)
        return iter([order[i : i + self.batch_size] for i in range(0, self.n_frames, self.batch_size)])


def inference_batches(lengths: Sequence[int], max_batch_size: int, max_batch_frames: int) -> Iterator[np.ndarray]:
    """Indices of items grouped for encoding: sorted by length (stably), each batch at most ``max_batch_size``
    items and ``max_batch_frames`` padded frames (a single longer item is a batch of its own). Sorting keeps
    padding small; extraction of frame features and of AWEs both batch this way."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and j - i < max_batch_size and lengths[order[j]] * (j - i + 1) <= max_batch_frames:
            j += 1
        yield order[i:j]
        i = j

