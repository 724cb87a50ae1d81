"""Training data of the CAE-RNN: word-segment pairs of any input features, and their batches.

**Input features.** An AWE model reads word segments of some frame-level features. Which ones is
an :class:`InputFeatures` object, which answers two questions: the features of the *training
utterances* (term pairs are cut from them), and the features of the word tokens of a split (the
same-different sets; the training split's word tokens give ground-truth pairs when the dataset has
no term pairs). Three kinds:

- :class:`MFCCInput`: the dataset's own archives (``<ds>_train_data``, ``<ds>_<split>_words``);
- :class:`ModelInput`: a trained frame-level model (a ``speechreps train`` checkpoint folder)
  encodes the training utterances, and the word tokens in their utterance's context (as
  ``speechreps extract`` does), on the fly;
- :class:`ArchiveInput`: archives already extracted (e.g. by the main job,
  ``<run>/features/s<seed>/<trained_on>/<ds>_<split>_<type>_<layer>.npz``), with
  ``train_utterances`` an archive of the training *utterances* in the learned features (keys
  ``<utt>_<start>-<end>`` like ``<ds>_train_data``) when pairs are cut from term pairs.

**Pairs** (:func:`training_pairs`): the correspondence frame models' own (:func:`speechreps.data.pairs.dataset_pairs`): a term-pair file
(``--pairs``: discovered terms, frames into the training utterances), else the dataset's
``<ds>_train_pairs`` (ground truth written by ``speechreps prepare``), else all same-word pairs of
the training word tokens (at most ``max_pairs_per_word`` per type). Segments are named like word
tokens, ``<cluster>_<utt>_<start>-<end>``, so that one segment used by several pairs is one token.

**Batches.** :class:`SegmentPairDataset` holds *directed* pairs: each undirected pair ``(a, b)``
gives ``a -> b`` and ``b -> a`` (the input is encoded, the other is the decoder's target); an
AE-RNN dataset holds ``a -> a`` for each distinct segment. A :class:`SequencePairBatch` pads input
and target separately, each with its own lengths.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import model_types
from ..data.archive import load_archive
from ..data.datasets import pad
from ..data.pairs import SegmentPairs, dataset_pairs
from ..data.words import WordSet
from ..errors import UserError, WarningCounter


# ---------------------------------------------------------------------------------------------
# Input features


class InputFeatures(abc.ABC):
    """Frame-level features an AWE model reads (see the module docstring)."""

    name = "input"

    @abc.abstractmethod
    def train_utterances(self, ds) -> Mapping[str, np.ndarray]:
        """The training utterances in these features (term pairs are cut from them)."""

    @abc.abstractmethod
    def words(self, ds, split: str) -> Mapping[str, np.ndarray]:
        """The word tokens of ``split`` in these features."""

    def word_set(self, ds, split: str) -> WordSet:
        """The word tokens of ``split`` in these features, with their labels and speakers (what scoring takes)."""
        path = ds.word_tokens(split)
        return WordSet.from_arrays(self.words(ds, split), ds.speaker_rule(path), ds.name, split, path)

    def describe(self) -> str:
        return self.name


class MFCCInput(InputFeatures):
    """The dataset's own archives (MFCC, or whatever ``speechreps prepare`` computed)."""

    name = "mfcc"

    def train_utterances(self, ds) -> Mapping[str, np.ndarray]:
        return load_archive(ds.utterances("train"))

    def words(self, ds, split: str) -> Mapping[str, np.ndarray]:
        return load_archive(ds.word_tokens(split))


class ModelInput(InputFeatures):
    """Features of a trained frame-level model (``CKPT_DIR`` of ``speechreps train``), computed on demand.

    ``layer``: the model's default layer when ``None``. Words are encoded in their utterance's
    context when the split's utterance archive is registered (isolated otherwise), training
    utterances whole. Results are cached per (dataset, split).
    """

    def __init__(self, ckpt_dir: str | Path, layer: str | None = None, device: Any = "cpu",
                 checkpoint: str = "best"):
        from ..trained import load_trained_model

        self.ckpt_dir = Path(ckpt_dir)
        if not self.ckpt_dir.is_dir():
            raise UserError(f"frame-level model folder {self.ckpt_dir} does not exist")
        self.device = device
        self.model, self.path, _ = load_trained_model(self.ckpt_dir, prefer=checkpoint, config=self.ckpt_dir / "config.json",
                                                         device=device)
        rep = self.rep_type = model_types.type_of_config(self.model.cfg)
        self.layer = layer or self.model.default_layer
        if self.layer not in self.model.layers:
            raise UserError(f"layer {self.layer!r}: the {rep} model of {self.ckpt_dir} has layers {', '.join(self.model.layers)}")
        self.name = rep
        self._cache: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def describe(self) -> str:
        return f"{self.rep_type} layer {self.layer} of {self.path}"

    def train_utterances(self, ds) -> Mapping[str, np.ndarray]:
        from ..extract import encode_segments

        key = (str(ds.utterances("train")), "utterances")
        if key not in self._cache:
            utts = load_archive(ds.utterances("train"))
            keys = list(utts)
            enc = encode_segments(self.model, [utts[k] for k in keys], [self.layer], self.device)
            self._cache[key] = dict(zip(keys, enc[self.layer]))
        return self._cache[key]

    def words(self, ds, split: str) -> Mapping[str, np.ndarray]:
        from ..extract import word_features

        words_path = ds.word_tokens(split)
        key = (str(words_path), split)
        if key not in self._cache:
            words = load_archive(words_path)
            utt_path = ds.data.get(split)
            utts = load_archive(utt_path) if utt_path is not None and utt_path.is_file() and utt_path != words_path else None
            feats, _ = word_features(self.model, words, utts, [self.layer], device=self.device)
            self._cache[key] = feats[self.layer]
        return self._cache[key]


class ArchiveInput(InputFeatures):
    """Features from archives on disk: ``words[split]`` word-token archives, ``train_utterances`` optional."""

    def __init__(self, name: str, words: Mapping[str, str | Path], train_utterances: str | Path | None = None):
        self.name = name
        self.word_paths = {s: Path(p) for s, p in words.items()}
        self.train_path = Path(train_utterances) if train_utterances else None
        for p in [*self.word_paths.values(), *([self.train_path] if self.train_path else [])]:
            if not p.is_file():
                raise UserError(f"features archive {p} does not exist")

    def describe(self) -> str:
        return f"{self.name} archives ({', '.join(str(p) for p in self.word_paths.values())})"

    def train_utterances(self, ds) -> Mapping[str, np.ndarray]:
        if self.train_path is None:
            raise UserError(f"{self.name}: term pairs are cut from the training utterances: give their features "
                            f"(--train-features ARCHIVE), or a frame-level model (--frame-model CKPT_DIR)")
        return load_archive(self.train_path)

    def words(self, ds, split: str) -> Mapping[str, np.ndarray]:
        if split not in self.word_paths:
            raise UserError(f"{self.name}: no features archive of the {split} word tokens was given")
        return load_archive(self.word_paths[split])


# ---------------------------------------------------------------------------------------------
# Pairs


def training_pairs(ds, inputs: InputFeatures, pairs_file: str | Path | None = None, max_pairs: int = 0,
                   max_pairs_per_word: int = 100, seed: int = 0,
                   warnings: WarningCounter | None = None) -> SegmentPairs:
    """The training pairs of dataset ``ds`` in ``inputs``' features: the frame models' pairs
    (:func:`speechreps.data.pairs.dataset_pairs`), at most ``max_pairs`` of them."""
    found = dataset_pairs(ds, pairs_file, warnings, max_pairs_per_word, seed,
                          utterances=lambda: inputs.train_utterances(ds), words=lambda: inputs.words(ds, "train"))
    found = found.sample(max_pairs, seed)
    return dataclasses.replace(found, source=f"{len(found.pairs)} pairs ({len(found.segments)} segments) from {found.source}")


# ---------------------------------------------------------------------------------------------
# Batches


@dataclass
class SequencePairBatch:
    """Input segments ``x`` (B, Tx, D) with ``x_lengths`` (B,), targets ``y`` (B, Ty, D) with ``y_lengths``.

    Row i's target is the *partner* of row i's input (CAE-RNN) or the input itself (AE-RNN).
    """

    x: torch.Tensor
    x_lengths: torch.Tensor
    y: torch.Tensor
    y_lengths: torch.Tensor

    def to(self, device: torch.device | str) -> "SequencePairBatch":
        return SequencePairBatch(self.x.to(device), self.x_lengths.to(device), self.y.to(device), self.y_lengths.to(device))


class SegmentPairDataset:
    """Directed pairs ``(input key, target key)`` over ``segments``; collates :class:`SequencePairBatch`.

    ``max_frames`` > 0 cuts inputs and targets to their first ``max_frames`` frames.
    """

    def __init__(self, segments: Mapping[str, np.ndarray], directed: Sequence[tuple[str, str]], max_frames: int = 0):
        if not directed:
            raise UserError("no segment pairs to train on")
        self.segments = segments
        self.directed = list(directed)
        self.max_frames = int(max_frames or 0)
        cap = self.max_frames or None
        self.lengths = np.array([len(segments[a][:cap]) for a, _ in self.directed], dtype=np.int64)
        self.target_lengths = np.array([len(segments[b][:cap]) for _, b in self.directed], dtype=np.int64)

    @classmethod
    def cae(cls, tp: SegmentPairs, max_frames: int = 0) -> "SegmentPairDataset":
        """Both directions of every pair: ``a -> b`` and ``b -> a``."""
        directed = [d for a, b in tp.pairs for d in ((a, b), (b, a))]
        return cls(tp.segments, directed, max_frames)

    @classmethod
    def ae(cls, tp: SegmentPairs, max_frames: int = 0) -> "SegmentPairDataset":
        """Each distinct segment reconstructs itself (AE-RNN pre-training)."""
        return cls(tp.segments, [(k, k) for k in sorted(tp.segments)], max_frames)

    def __len__(self) -> int:
        return len(self.directed)

    def collate(self, refs: Sequence[int]) -> SequencePairBatch:
        cap = self.max_frames or None
        x, xl = pad([self.segments[self.directed[i][0]][:cap] for i in refs])
        y, yl = pad([self.segments[self.directed[i][1]][:cap] for i in refs])
        return SequencePairBatch(x, xl, y, yl)

    def n_frames(self, refs: Sequence[int]) -> int:
        """Frames read by the encoder (the input side)."""
        return int(self.lengths[list(refs)].sum())
