"""What every representation model offers the trainer, the evaluator and the extractor.

A model is an ``nn.Module`` that

- computes its own loss from a batch: ``loss(batch) -> (scalar tensor, {name: float})``;
- encodes padded frame sequences: ``encode(feats, lengths) -> {layer_name: (B, T, d)}``, padded
  frames of the outputs are zero; ``default_layer`` names the layer extracted by default;
- is rebuilt from its config section: ``Model(config)`` where ``config`` is the model's dataclass.

Models are registered by representation type in :data:`speechreps.model_types.MODEL_TYPES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class UtteranceBatch:
    """Padded utterances (APC, CPC, frame AE).

    feats: (B, T, D) float; lengths: (B,) long; speakers: (B,) long speaker index within the batch
    (CPC draws negatives from utterances of the same speaker).
    """

    feats: torch.Tensor
    lengths: torch.Tensor
    speakers: torch.Tensor

    def to(self, device: torch.device | str) -> "UtteranceBatch":
        return UtteranceBatch(self.feats.to(device), self.lengths.to(device), self.speakers.to(device))


@dataclass
class PairBatch:
    """Aligned segment pairs (CAPC): ``y`` is DTW-aligned to ``x`` frame by frame.

    x, y: (B, T, D); lengths: (B,) long, the same for x and y.
    """

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor

    def to(self, device: torch.device | str) -> "PairBatch":
        return PairBatch(self.x.to(device), self.y.to(device), self.lengths.to(device))


@dataclass
class FramePairBatch:
    """Single frames (frame AE: y is x) or DTW-aligned frame pairs (frame CAE). x, y: (N, D)."""

    x: torch.Tensor
    y: torch.Tensor

    def to(self, device: torch.device | str) -> "FramePairBatch":
        return FramePairBatch(self.x.to(device), self.y.to(device))


def length_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True on real frames."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
