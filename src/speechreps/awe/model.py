"""The correspondence autoencoder RNN (CAE-RNN) and its autoencoder pre-training (AE-RNN).

Kamper, "Truly unsupervised acoustic word embeddings using weak top-down constraints in
encoder-decoder models", ICASSP 2019. An encoder GRU stack reads a word segment ``x``; a linear
layer maps its final state to a fixed-size embedding ``z``; a decoder GRU stack, given ``z`` as its
input at every step, produces a sequence that a linear layer maps back to frames. The CAE-RNN
reconstructs the *other* segment ``y`` of a pair of same-word segments (both directions are in
the data), the AE-RNN the input itself. The loss is the squared error over the target's real
frames only: per sequence the mean over its frames and dimensions, then the mean over the batch,
so padding never counts and long and short targets weigh the same.

``frame_stride`` > 1 (not in the paper; 1 by default) makes encoder and decoder read and write
one frame per s (every s-th, or the mean of each s: ``stride_mode``): s times fewer recurrent
steps, which on a CPU is the difference between a CAE-RNN that learns in minutes and one that
needs hours.

Both are one class, :class:`CAERNN`; what it reconstructs is decided by the batches
(:class:`speechreps.awe.data.SequencePairBatch`): AE pre-training is the same network trained on
``a -> a`` batches, after which CAE training continues from its weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from .config import AWEConfig
from ..data.pairs import SegmentPairs
from .data import SegmentPairDataset, SequencePairBatch


class RNNEncoder(nn.Module):
    """The part every RNN AWE model shares: input standardisation, frame stride, encoder GRU, embedding layer.

    :class:`CAERNN` adds a decoder; :class:`speechreps.awe.contrastive.ContrastiveRNN` a contrastive
    loss. ``cfg`` needs ``input_dim``, ``enc_hidden_dim``, ``enc_num_layers``, ``bidirectional``,
    ``embedding_dim``, ``normalize_inputs``, ``frame_stride`` and ``stride_mode`` (an :class:`AWEConfig`).
    """

    def __init__(self, cfg: AWEConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.input_dim
        self.encoder = nn.GRU(d, cfg.enc_hidden_dim, cfg.enc_num_layers, batch_first=True,
                              bidirectional=cfg.bidirectional)
        n_dir = 2 if cfg.bidirectional else 1
        self.to_embedding = nn.Linear(cfg.enc_hidden_dim * n_dir, cfg.embedding_dim)

    def _add_normalization(self) -> None:
        """The buffers of ``normalize_inputs``, registered last so that parameter order and init stay put."""
        if self.cfg.normalize_inputs:  # per-dimension statistics of the training segments (set_normalization)
            self.register_buffer("input_mean", torch.zeros(self.cfg.input_dim))
            self.register_buffer("input_std", torch.ones(self.cfg.input_dim))

    def set_normalization(self, mean, std) -> None:
        """Standardise input and target frames with these per-dimension statistics (``normalize_inputs``)."""
        if not self.cfg.normalize_inputs:
            raise ValueError("set_normalization needs a model built with normalize_inputs: true")
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-5))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) frames standardised per dimension when ``normalize_inputs``, else as they are."""
        if not self.cfg.normalize_inputs:
            return x
        return (x - self.input_mean) / self.input_std

    @property
    def embedding_dim(self) -> int:
        return self.cfg.embedding_dim

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Padded segments ``x`` (B, T, D) with ``lengths`` (B,) -> embeddings (B, embedding_dim).

        The encoder runs on packed sequences, so an embedding does not depend on padding.
        """
        x, lengths = self.stride(self.normalize(x), lengths)
        packed = pack_padded_sequence(x, lengths.detach().cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)  # h: (layers * dirs, B, H)
        if self.cfg.bidirectional:
            last = torch.cat([h[-2], h[-1]], dim=-1)  # (B, 2H): forward and backward of the top layer
        else:
            last = h[-1]  # (B, H)
        return self.to_embedding(last)  # (B, E)

    def stride(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame per ``frame_stride`` frames: (B, T, D) -> (B, ceil(T / s), D), lengths likewise.

        ``stride_mode`` "subsample": every s-th frame; "mean": the mean of each run of s frames, the
        last run of a sequence averaged over its real frames only (padding never leaks in).
        """
        s = self.cfg.frame_stride
        if s == 1:
            return x, lengths
        new_lengths = torch.div(lengths + s - 1, s, rounding_mode="floor")
        if self.cfg.stride_mode == "subsample":
            return x[:, ::s], new_lengths
        B, T, D = x.shape
        pad = -T % s  # zero frames that complete the last run
        mask = (torch.arange(T, device=x.device)[None, :] < lengths[:, None].to(x.device)).to(x.dtype)  # (B, T)
        sums = F.pad(x * mask[:, :, None], (0, 0, 0, pad)).reshape(B, -1, s, D).sum(2)
        counts = F.pad(mask, (0, pad)).reshape(B, -1, s).sum(2).clamp(min=1)
        return sums / counts[:, :, None], new_lengths

class CAERNN(RNNEncoder):
    """Encoder GRU -> linear embedding -> decoder GRU (embedding fed every step) -> linear frames.

    ``batch_kind`` is ``"sequence_pair"``: :meth:`loss` takes a :class:`SequencePairBatch`.
    """

    batch_kind = "sequence_pair"

    def __init__(self, cfg: AWEConfig):
        super().__init__(cfg)
        self.decoder = nn.GRU(cfg.embedding_dim, cfg.dec_hidden_dim, cfg.dec_num_layers, batch_first=True)
        self.to_frames = nn.Linear(cfg.dec_hidden_dim, cfg.input_dim)
        self._add_normalization()

    @classmethod
    def training_data(cls, pairs: SegmentPairs, max_frames: int = 0) -> tuple[SegmentPairDataset, str]:
        """Both directions of every pair: each segment reconstructs its partner."""
        return SegmentPairDataset.cae(pairs, max_frames), f"{len(pairs.pairs)} pairs, both directions"

    @classmethod
    def pretraining_data(cls, pairs: SegmentPairs, max_frames: int = 0) -> tuple[SegmentPairDataset, str]:
        """The AE-RNN phase: each distinct segment reconstructs itself."""
        return SegmentPairDataset.ae(pairs, max_frames), f"{len(pairs.segments)} single segments"

    def decode(self, z: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Embeddings (B, E) -> reconstructed frames (B, n_steps, D); the decoder reads ``z`` at every step."""
        inputs = z.unsqueeze(1).expand(-1, n_steps, -1)  # (B, T, E)
        out, _ = self.decoder(inputs)  # (B, T, H)
        return self.to_frames(out)  # (B, T, D)

    def forward(self, x: torch.Tensor, x_lengths: torch.Tensor, n_steps: int) -> torch.Tensor:
        return self.decode(self.embed(x, x_lengths), n_steps)

    def loss(self, batch: SequencePairBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Masked squared error between the decoder's output and the target ``y``."""
        y, y_lengths = self.stride(self.normalize(batch.y), batch.y_lengths)
        y_hat = self(batch.x, batch.x_lengths, y.shape[1])  # (B, Ty, D)
        return masked_mse(y_hat, y, y_lengths), {}


def masked_mse(y_hat: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over sequences of the mean squared error over each sequence's first ``lengths[i]`` frames."""
    mask = torch.arange(y.shape[1], device=y.device)[None, :] < lengths[:, None]  # (B, T)
    err = ((y_hat.float() - y.float()) ** 2).mean(dim=-1) * mask  # (B, T), zero on padding
    per_seq = err.sum(dim=1) / lengths.clamp(min=1).to(err.dtype)
    return per_seq.mean()
