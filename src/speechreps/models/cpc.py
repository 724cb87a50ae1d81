"""Contrastive predictive coding over MFCC frames (van den Oord et al., 2018; the per-frame variant of
van Staden & Kamper, 2021, after bshall/VectorQuantizedCPC).

A per-frame MLP encoder maps each frame to ``z``; an LSTM summarises the past into ``c``; for each step
k = 1..K a linear predictor maps ``c_t`` to a guess of ``z_{t+k}``, scored (dot product / sqrt(z_dim))
against the true ``z_{t+k}`` and ``num_negatives`` other frames (InfoNCE).

Negatives (:func:`sample_negatives`): for every real target frame, ``num_negatives`` frames drawn
uniformly with replacement from the real frames of the utterances of the same speaker in the batch, never
the target frame itself (``negatives_from: "utterance"``: from the target's own utterance only).
Fallback: when a speaker (utterance) has at most ``num_negatives`` real frames in the batch,
its negatives come from all real frames of the batch (again never the target itself). Any batch layout
of speakers x utterances works; the speakers come from ``UtteranceBatch.speakers``. One set of negatives
per target frame is shared by the K predictions of that frame (k = 1..K each score it), which keeps the
gathered negatives K times smaller than drawing per step.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from speechreps.config import CPCConfig
from speechreps.models.apc import gather_frames, random_crop
from speechreps.models.base import UtteranceBatch, length_mask


class UniformDropout(nn.Module):
    """Inverted dropout (as ``nn.Dropout``: zero with probability ``p``, scale the rest by 1 / (1 - p)) whose
    mask is drawn as ``uniform >= p``.

    Why not ``nn.Dropout``: on CPU its ``bernoulli_`` is slow: 80 ms for the 14,400 x 512 encoder
    activations of a CPC step at the original's batch shape (2 threads), against 24 ms for ``rand_like``,
    on 2026-12-02; that was 8% of the step. The masks have the same distribution; they are different draws,
    so the random stream differs from ``nn.Dropout``'s. No parameters or buffers: a checkpoint's keys are
    the same either way.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def sample_negatives(valid: torch.Tensor, speakers: torch.Tensor, num_negatives: int) -> torch.Tensor:
    """Draw negatives for every real frame.

    valid: (B, T) bool, real frames; speakers: (B,) speaker index per utterance.
    Returns (B, T, N) long flat indices ``b * T + t`` into the (B*T) frames; rows of padded frames hold
    arbitrary (but in-range) indices. A frame's negatives are never the frame itself (as long as the batch
    has at least two real frames); see the module docstring for where they come from.
    """
    B, T = valid.shape
    device = valid.device
    flat_valid = valid.reshape(-1)
    frames = flat_valid.nonzero().squeeze(1)  # (F,) flat indices of real frames, in order
    n_frames = frames.numel()
    out = torch.zeros(B * T, num_negatives, dtype=torch.long, device=device)
    if n_frames < 2:
        return out.reshape(B, T, num_negatives)
    spk = speakers.to(device).long()[frames // T]  # (F,) speaker of each real frame
    _, spk = torch.unique(spk, return_inverse=True)  # speakers as 0..S-1
    order = torch.argsort(spk, stable=True)  # real frames grouped by speaker
    sorted_frames = frames[order]
    counts = torch.bincount(spk)  # (S,)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n_frames, device=device)  # position of each frame in the sorted list
    pool_start = starts[spk]  # (F,)
    pool_size = counts[spk]
    own = rank - pool_start  # the frame's own position inside its speaker's pool
    fallback = pool_size <= num_negatives
    pool_start = torch.where(fallback, torch.zeros_like(pool_start), pool_start)
    own = torch.where(fallback, rank, own)
    pool_size = torch.where(fallback, torch.full_like(pool_size, n_frames), pool_size)
    # uniform over the pool minus the frame itself: draw from size - 1 slots, skip over our own slot
    r = (torch.rand(n_frames, num_negatives, device=device) * (pool_size - 1)[:, None].float()).long()
    r = torch.minimum(r, (pool_size - 2)[:, None])
    r = r + (r >= own[:, None]).long()
    out[frames] = sorted_frames[pool_start[:, None] + r]
    return out.reshape(B, T, num_negatives)


class CPC(nn.Module):
    """CPC over batches of speakers x utterances (``UtteranceBatch`` with ``speakers``); layers ``z``, ``c``."""

    layers = ("z", "c")
    default_layer = "c"

    def __init__(self, cfg: CPCConfig):
        super().__init__()
        self.cfg = cfg
        blocks: list[nn.Module] = []
        for i in range(cfg.enc_layers):
            blocks += [
                nn.Linear(cfg.input_dim if i == 0 else cfg.enc_dim, cfg.enc_dim, bias=(i == 0)),
                nn.LayerNorm(cfg.enc_dim),
                nn.ReLU(inplace=True),
            ]
            if i == cfg.enc_layers // 2 and cfg.dropout > 0:
                blocks.append(UniformDropout(cfg.dropout))
        blocks.append(nn.Linear(cfg.enc_dim, cfg.z_dim))
        self.encoder = nn.Sequential(*blocks)
        self.context = nn.LSTM(cfg.z_dim, cfg.c_dim, batch_first=True)
        # K predictors W_1..W_K as one (c_dim -> K * z_dim) linear layer: the same maps, one matmul.
        self.predictors = nn.Linear(cfg.c_dim, cfg.num_pred_steps * cfg.z_dim)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """feats (B, T, D), lengths (B,) -> {"z": (B, T, z_dim), "c": (B, T, c_dim)}, padded frames zero."""
        mask = length_mask(lengths, feats.shape[1])[:, :, None].to(feats.dtype)
        z = self.encoder(feats)
        c, _ = self.context(z)
        return {"z": z * mask, "c": c * mask}

    def loss(self, batch: UtteranceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        x, lengths = batch.feats, batch.lengths
        if x.shape[1] > cfg.seq_len:
            index, lengths = random_crop(lengths, x.shape[1], cfg.seq_len)
            x = gather_frames(x, index)
        B, T, _ = x.shape
        K, N, Z = cfg.num_pred_steps, cfg.num_negatives, cfg.z_dim
        valid = length_mask(lengths, T)  # (B, T)
        z = self.encoder(x)  # (B, T, Z)
        c, _ = self.context(z)  # (B, T, C)
        preds = self.predictors(c).reshape(B, T, K, Z)  # preds[:, t, k] guesses z[:, t + k + 1]

        # negatives_from "utterance": every utterance its own group (same speaker, same channel and noise)
        groups = batch.speakers if cfg.negatives_from == "speaker" else torch.arange(B, device=x.device)
        neg_index = sample_negatives(valid, groups, N)  # (B, T, N)
        z_flat = z.reshape(B * T, Z)
        # align predictions with their targets: for target frame u and step k, the prediction made at u-k-1
        # (clamped to frame 0 where u-k-1 < 0: those entries are dropped by `use` below). One gather, so
        # its backward is one accumulation into preds, not K zero-filled copies of it (a slice per step
        # cost O(K^2) memory traffic: 2.5x slower at K = 20). index_select rather than advanced indexing
        # here and for the negatives: the same values, and its backward (index_add_) is several times
        # faster than advanced indexing's (index_put_ with accumulate).
        frame = torch.arange(T, device=x.device)
        steps = torch.arange(1, K + 1, device=x.device)
        source = (frame[:, None] - steps[None, :]).clamp(min=0)  # (T, K)
        rows = (torch.arange(B, device=x.device)[:, None, None] * T + source) * K + torch.arange(K, device=x.device)
        aligned = preds.reshape(B * T * K, Z).index_select(0, rows.reshape(-1)).view(B * T, K, Z)
        negatives = z_flat.index_select(0, neg_index.reshape(-1)).view(B * T, N, Z)
        # the positive's score apart from the negatives' (no (B, T, 1+N, Z) copy of every candidate), and
        # the negatives' scores as negatives @ predictions^T, (N x Z)(Z x K) per frame: in this orientation
        # the product's backward needs no transposed copies (1.5x faster than predictions @ negatives^T)
        positive = (aligned * z_flat[:, None, :]).sum(-1, keepdim=True)  # (B*T, K, 1)
        negative = torch.bmm(negatives, aligned.transpose(1, 2)).transpose(1, 2)  # (B*T, K, N)
        logits = torch.cat([positive, negative], 2).view(B, T, K, 1 + N) / math.sqrt(Z)  # target first
        # a (target u, step k) pair counts when u is real and the prediction's frame u - k - 1 exists
        use = valid[:, :, None] & (frame[None, :, None] >= steps[None, None, :])  # (B, T, K)
        logits = logits[use]  # (P, 1+N)
        if logits.shape[0] == 0:
            return z.sum() * 0.0, {"accuracy": 0.0}
        targets = torch.zeros(logits.shape[0], dtype=torch.long, device=x.device)
        # mean over pairs of each step, then over steps (as the original averaged its per-step losses)
        nll = F.cross_entropy(logits.float(), targets, reduction="none")
        step_of = steps.expand(B, T, K)[use] - 1
        per_step_n = torch.bincount(step_of, minlength=K).clamp(min=1)
        per_step = torch.zeros(K, device=x.device, dtype=nll.dtype).index_add_(0, step_of, nll) / per_step_n
        present = torch.bincount(step_of, minlength=K) > 0
        loss = per_step[present].mean()
        accuracy = float((logits.detach().argmax(1) == 0).float().mean())
        return loss, {"accuracy": accuracy}
