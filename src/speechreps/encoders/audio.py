"""The waveform behind each archive entry of a prepared dataset.

An encoder reads audio, not features, so it needs each utterance's samples. A dataset prepared by
``speechreps prepare`` records its corpus folder in ``<dataset folder>/prepare.json`` (key ``corpus``);
any other dataset (the recipe's archives, the original tool's) is given its corpus folder with
``--corpus``. In that folder the audio of utterance ``<utt>`` is ``audio/<utt>.wav|flac`` (or directly
``<utt>.wav|flac``), the layout ``prepare`` reads, at any sample rate (resampled to 16 kHz).

An archive key ``<utt>_<start>-<end>`` counts 10 ms frames from the start of that file, so its
samples start at ``start * 160`` and run to ``end * 160``, or to the end of the file when the last
frame's 25 ms window reaches it (``end * 160 + 400 >= samples``): whichever way the features were
framed (centred, or from the first sample as ``speechreps prepare`` does, which drops a tail shorter
than a frame), a whole-file utterance then gets the whole file.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import UserError
from .frames import HOP_SAMPLES

AUDIO_SUFFIXES = (".wav", ".flac")
WINDOW_SAMPLES = 400  # one 25 ms feature window


def corpus_of(ds, corpus: str | os.PathLike | None = None) -> Path:
    """The corpus folder of dataset ``ds``: ``corpus`` if given, else the one its ``prepare.json`` records."""
    if corpus is not None:
        root = Path(corpus)
        if not root.is_dir():
            raise UserError(f"--corpus {root} does not exist")
        return root
    for split in ("train", "validation", "test"):
        for path in (ds.data.get(split), ds.words.get(split)):
            manifest = path.parent / "prepare.json" if path is not None else None
            if manifest is not None and manifest.is_file():
                try:
                    root = json.loads(manifest.read_text())["corpus"]
                except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise UserError(f"{manifest} does not record the corpus folder ({exc}): give --corpus") from None
                if not Path(root).is_dir():
                    raise UserError(f"{manifest}: corpus folder {root} does not exist any more: give --corpus")
                return Path(root)
    raise UserError(f"dataset {ds.name!r} was not prepared by speechreps prepare (no prepare.json beside its "
                    f"archives): give its audio folder with --corpus")


class AudioSource:
    """Reads ``[start, end)`` (10 ms frames) of an utterance's audio file; keeps a few files decoded."""

    def __init__(self, root: str | os.PathLike, cache_files: int = 4):
        self.root = Path(root)
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_files = cache_files

    def path(self, utt: str) -> Path:
        for folder in (self.root / "audio", self.root):
            for suffix in AUDIO_SUFFIXES:
                p = folder / f"{utt}{suffix}"
                if p.is_file():
                    return p
        raise UserError(f"corpus {self.root}: no audio file for utterance {utt!r} (audio/{utt}.wav or .flac)")

    def file(self, utt: str) -> np.ndarray:
        """The whole file of ``utt``, mono float32 at 16 kHz."""
        from ..data.features import load_audio

        if utt not in self.cache:
            self.cache[utt] = load_audio(self.path(utt))
            while len(self.cache) > self.cache_files:
                self.cache.popitem(last=False)
        self.cache.move_to_end(utt)
        return self.cache[utt]

    def frames(self, utt: str, start: int, end: int) -> np.ndarray:
        """The samples of archive frames ``[start, end)`` of ``utt`` (module docstring); an error if none is left."""
        wave = self.file(utt)
        stop = end * HOP_SAMPLES
        if stop + WINDOW_SAMPLES >= len(wave):
            stop = len(wave)
        seg = wave[start * HOP_SAMPLES : stop]
        if len(seg) == 0:
            raise UserError(f"utterance {utt!r}: frames {start}-{end} lie after the end of its audio "
                            f"({len(wave) / 16000:.2f} s): is --corpus the corpus these archives were made from?")
        return seg

    def samples(self, utt: str, a: int, b: int) -> np.ndarray:
        """Samples ``[a, b)`` of ``utt``, zero-padded where they run past either end."""
        wave = self.file(utt)
        seg = wave[max(a, 0) : min(b, len(wave))]
        if len(seg) == 0:
            raise UserError(f"utterance {utt!r}: samples {a}-{b} lie outside its audio ({len(wave)} samples)")
        return np.pad(seg, (max(0, -a), max(0, b - len(wave))))
