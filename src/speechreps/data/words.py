"""The word tokens of one split of a dataset, with the utterances they were cut from.

Scoring (evaluate, training validation, the main job, per-layer AP, AWE evaluation) and extraction all
start from the same thing: a split's same-different word tokens in archive order, their labels and
speakers, and, to encode a word in its context, the split's utterance archive. :class:`WordSet` is that
thing, loaded once by :meth:`WordSet.load`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .archive import load_archive


@dataclass
class WordSet:
    """A split's word tokens: ``keys`` (archive order, empty tokens dropped), ``labels`` and ``speakers``
    per key, ``words`` (``{key: (T, D)}`` input features), ``utterances`` (the split's utterance archive,
    or None when it has none or it is the word archive itself) and ``path`` (the word archive)."""

    dataset: str
    split: str
    path: Path
    keys: list[str]
    labels: list[str]
    speakers: list[str]
    words: dict[str, np.ndarray]
    utterances: Mapping[str, np.ndarray] | None

    @classmethod
    def load(cls, ds, split: str, context: bool = True) -> "WordSet":
        """The word tokens of ``split`` of dataset ``ds`` (a :class:`~speechreps.data.registry.DatasetPaths`);
        ``context=False`` skips reading the utterance archive."""
        path = ds.word_tokens(split)
        utt_path = ds.data.get(split)
        utterances = None
        if context and utt_path is not None and utt_path.is_file() and utt_path != path:
            utterances = load_archive(utt_path)
        return cls.from_arrays(load_archive(path), ds.speaker_rule(path), ds.name, split, path, utterances)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], speaker_rule=None, dataset: str = "", split: str = "",
                    path: Path | None = None, utterances: Mapping[str, np.ndarray] | None = None) -> "WordSet":
        """The tokens of a word-token archive already in memory (features of any kind keyed
        ``<label>_<utt>_<start>-<end>``: e.g. a frame model's features or AWEs), speakers by ``speaker_rule``."""
        from ..evaluate.samediff import word_tokens

        _, labels, speakers, keys = word_tokens(arrays, speaker_rule)
        return cls(dataset, split, Path(path) if path else Path(), keys, labels, speakers,
                   {k: arrays[k] for k in keys}, utterances)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def segments(self) -> list[np.ndarray]:
        """The input features of each token, in key order."""
        return [self.words[k] for k in self.keys]

    def subset(self, index: Sequence[int]) -> "WordSet":
        """The tokens at ``index`` (same utterances)."""
        keys = [self.keys[i] for i in index]
        return WordSet(self.dataset, self.split, self.path, keys, [self.labels[i] for i in index],
                       [self.speakers[i] for i in index], {k: self.words[k] for k in keys}, self.utterances)

    def has_pairs(self) -> bool:
        """Whether some word occurs twice (same-different needs a positive pair)."""
        return len(set(self.labels)) < len(self.labels)
