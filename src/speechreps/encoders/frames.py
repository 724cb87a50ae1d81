"""The encoder's frames against the archives' frames.

Archives and keys count 10 ms frames (``hop`` = 160 samples at 16 kHz): a word key
``<label>_<utt>_<start>-<end>`` was written as ``start = round(t0 * 100)``, ``end = round(t1 * 100) + 1``,
so the word spans the times ``[start * hop, (end - 1) * hop]`` (in samples). A wav2vec 2.0-style encoder
(HuBERT, WavLM) turns ``n`` samples into ``floor((n - W) / S) + 1`` frames through its convolutional
front end, with stride ``S`` (the product of ``conv_stride``: 320 samples, 20 ms) and receptive field
``W`` (400 samples, 25 ms); frame ``j`` sees samples ``[S j, S j + W)`` and is centred on ``S j + W / 2``.

**The rule.** Encoder frame ``j`` belongs to the word when its centre lies within the word's span:
``start * hop <= S j + W / 2 <= (end - 1) * hop``, all measured from the first sample the encoder read.
A word too short to contain any centre gets the one frame whose centre is nearest its midpoint, and
every span is clipped to the frames the encoder produced. At 10 ms / 20 ms this keeps 24 or 25
encoder frames of a 50-frame word.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOP_SAMPLES = 160  # one archive frame: 10 ms at 16 kHz


@dataclass(frozen=True)
class FrameGeometry:
    """Stride and receptive field (samples) of an encoder's convolutional front end."""

    stride: int = 320
    receptive_field: int = 400
    hop: int = HOP_SAMPLES

    @classmethod
    def from_conv(cls, kernels: list[int], strides: list[int], hop: int = HOP_SAMPLES) -> "FrameGeometry":
        """From the ``conv_kernel`` / ``conv_stride`` lists of a wav2vec 2.0-style config."""
        field, jump = 1, 1
        for k, s in zip(kernels, strides):
            field += (k - 1) * jump
            jump *= s
        return cls(stride=jump, receptive_field=field, hop=hop)

    def n_frames(self, n_samples: int) -> int:
        """Frames the front end gives for ``n_samples`` samples (0 below one receptive field)."""
        return 0 if n_samples < self.receptive_field else (n_samples - self.receptive_field) // self.stride + 1

    def span(self, start: int, end: int, n_frames: int) -> tuple[int, int]:
        """Encoder frames ``[a, b)`` of the archive span ``[start, end)`` (10 ms frames, counted from
        the first sample encoded), among ``n_frames`` encoder frames; never empty when ``n_frames > 0``."""
        if n_frames <= 0:
            return 0, 0
        half = self.receptive_field / 2
        t0, t1 = start * self.hop, (end - 1) * self.hop
        a = max(0, math.ceil((t0 - half) / self.stride))
        b = min(n_frames, math.floor((t1 - half) / self.stride) + 1)
        if b <= a:  # no centre inside: the frame nearest the midpoint
            j = min(max(round(((t0 + t1) / 2 - half) / self.stride), 0), n_frames - 1)
            return j, j + 1
        return a, b

    def samples(self, start: int, end: int) -> tuple[int, int]:
        """Samples ``[a, b)`` of an isolated word ``[start, end)`` (10 ms frames): its span
        ``[start * hop, (end - 1) * hop]``, widened around its midpoint to one receptive field if shorter."""
        a, b = start * self.hop, (end - 1) * self.hop + 1
        if b - a < self.receptive_field:
            mid = (a + b) // 2
            a = max(0, mid - self.receptive_field // 2)
            b = a + self.receptive_field
        return a, b

    def start_frame(self, archive_start: int) -> int:
        """The encoder frame number at which an utterance starting at archive frame ``archive_start`` begins
        (the keys of encoder-frame utterance archives: ``<utt>_<this>-<this + frames>``)."""
        return round(archive_start * self.hop / self.stride)
