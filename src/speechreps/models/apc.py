"""Autoregressive predictive coding (Chung et al., 2019) and its correspondence variant (CAPC).

APC reads MFCC frames with a stack of unidirectional GRU layers and a linear layer predicts the frame
``num_pred_steps`` ahead from the top layer; the loss is the L1 distance, averaged over the real
(unpadded) frames whose target lies inside the same utterance. With ``residual`` each layer above the
first adds its input to its output, as in Chung et al.'s APC (the original code of this toolkit's paper
has no such connections, hence off by default). Each GRU layer is its own module (the
original's ``[nn.GRU(h, h)] * (n - 1)`` shared one module between the upper layers), so ``encode()`` can
return every layer.

CAPC is the same network trained on aligned segment pairs: input X, target its DTW-aligned partner Y.
"""

from __future__ import annotations

import torch
from torch import nn

from speechreps.config import APCConfig
from speechreps.models.base import PairBatch, UtteranceBatch, length_mask
from speechreps.models.gru import FastGRU


def random_crop(lengths: torch.Tensor, max_len: int, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame indices of one random ``crop``-frame window per sequence, and the cropped lengths.

    Returns ``index (B, crop)`` (clamped into ``[0, max_len)``) and ``new_lengths (B,)``. Sequences
    shorter than ``crop`` keep all their frames (from 0). Draws from torch's global RNG.
    """
    spare = (lengths - crop).clamp(min=0)  # (B,)
    start = (torch.rand(lengths.shape, device=lengths.device) * (spare + 1).float()).long().clamp(max=spare)
    index = (start[:, None] + torch.arange(crop, device=lengths.device)[None, :]).clamp(max=max_len - 1)
    return index, lengths.clamp(max=crop)


def gather_frames(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, T, D), index (B, L) -> (B, L, D)."""
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[-1]))


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the frames where ``mask`` (B, T) is true (and all dims). 0 if none."""
    err = (pred - target).abs().sum(-1)  # (B, T)
    n = mask.sum()
    return (err * mask).sum() / (n.clamp(min=1) * pred.shape[-1])


class GRUStack(nn.Module):
    """``num_layers`` separate unidirectional GRU modules; returns every layer's output.

    ``residual``: layer ``k > 1`` returns ``GRU_k(h) + h`` (its input ``h`` has the same width), so each
    layer's features keep what the layer below found and the gradient reaches the lower layers directly.

    Separate modules (rather than one ``nn.GRU(num_layers=n)``) because the per-layer outputs are the
    features; the fused module runs its layers one after another on a CPU too. Each is a
    :class:`~speechreps.models.gru.FastGRU` (``nn.GRU``'s parameters and results, a faster CPU backward).
    """

    def __init__(self, input_dim: int, hidden_dim: int, num_layers: int, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.layers = nn.ModuleList(
            [FastGRU(input_dim if i == 0 else hidden_dim, hidden_dim) for i in range(num_layers)]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k, gru in enumerate(self.layers):
            h, _ = gru(x)  # (B, T, H)
            x = h + x if self.residual and k > 0 else h
            outs.append(x)
        return outs


class APC(nn.Module):
    """APC over padded utterances (``UtteranceBatch``); layers ``gru1 .. gruN``, default the top one."""


    def __init__(self, cfg: APCConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = tuple(f"gru{i + 1}" for i in range(cfg.num_layers))
        self.default_layer = self.layers[-1]
        self.encoder = GRUStack(cfg.input_dim, cfg.hidden_dim, cfg.num_layers, cfg.residual)
        self.predictor = nn.Linear(cfg.hidden_dim, cfg.input_dim)
        self.use_aux = bool(cfg.include_aux_loss) and type(self) is APC
        if self.use_aux:
            # The auxiliary APC: its own GRU stack and predictor, as in the original.
            self.aux_encoder = GRUStack(cfg.input_dim, cfg.hidden_dim, cfg.num_layers, cfg.residual)
            self.aux_predictor = nn.Linear(cfg.hidden_dim, cfg.input_dim)

    # -- features -------------------------------------------------------------------------------
    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """feats (B, T, D), lengths (B,) -> {gruK: (B, T, hidden_dim)}, padded frames zero."""
        mask = length_mask(lengths, feats.shape[1])[:, :, None].to(feats.dtype)
        hs = self.encoder(feats)
        return {name: h * mask for name, h in zip(self.layers, hs)}

    # -- training -------------------------------------------------------------------------------
    def _crop(self, x: torch.Tensor, lengths: torch.Tensor, *more: torch.Tensor):
        crop = self.cfg.seq_len
        if crop <= 0 or x.shape[1] <= crop:
            return (x, lengths, *more)
        index, lengths = random_crop(lengths, x.shape[1], crop)
        return (gather_frames(x, index), lengths, *(gather_frames(m, index) for m in more))

    def _prediction_loss(self, x, y, lengths, encoder, predictor, n: int) -> torch.Tensor:
        """L1 between predictor(h_t) and y_{t+n}, over t with t + n < length."""
        T = x.shape[1]
        if T <= n:
            return x.sum() * 0.0
        h = encoder(x[:, : T - n])[-1]  # the last n inputs predict nothing: skip them
        pred = predictor(h)  # (B, T-n, D)
        mask = length_mask(lengths - n, T - n)  # t + n < length
        return masked_l1(pred, y[:, n:], mask)

    def _aux_loss(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """All auxiliary windows of the batch as one batch of (B * num_aux_anchors) short sequences."""
        cfg = self.cfg
        B, T, D = x.shape
        M, L, back = cfg.num_aux_anchors, cfg.aux_seq_len, cfg.num_aux_steps_back
        # Anchors a uniform in [back, length) (window start a - back); utterances shorter than back start at 0.
        n_starts = (lengths - back).clamp(min=1)  # (B,)
        start = (torch.rand(B, M, device=x.device) * n_starts[:, None].float()).long()
        start = torch.minimum(start, n_starts[:, None] - 1)  # (B, M)
        index = start[:, :, None] + torch.arange(L, device=x.device)  # (B, M, L)
        win_len = (lengths[:, None] - start).clamp(min=0, max=L).reshape(B * M)
        win = gather_frames(x, index.clamp(max=T - 1).reshape(B, M * L)).reshape(B * M, L, D)
        return self._prediction_loss(win, win, win_len, self.aux_encoder, self.aux_predictor, cfg.num_pred_steps_aux)

    def loss(self, batch: UtteranceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        x, lengths = self._crop(batch.feats, batch.lengths)
        loss = self._prediction_loss(x, x, lengths, self.encoder, self.predictor, self.cfg.num_pred_steps)
        metrics = {"l1": float(loss.detach())}
        if self.use_aux and self.cfg.aux_loss_weight > 0:
            aux = self._aux_loss(x, lengths)
            metrics["aux_l1"] = float(aux.detach())
            loss = loss + self.cfg.aux_loss_weight * aux
        return loss, metrics


class CAPC(APC):
    """Correspondence APC: ``PairBatch``, X predicts its aligned partner Y ``num_pred_steps`` ahead.

    Built from a :class:`~speechreps.config.CAPCConfig` (the APC network without the auxiliary loss).
    """

    def loss(self, batch: PairBatch) -> tuple[torch.Tensor, dict[str, float]]:
        x, lengths, y = self._crop(batch.x, batch.lengths, batch.y)
        loss = self._prediction_loss(x, y, lengths, self.encoder, self.predictor, self.cfg.num_pred_steps)
        return loss, {"l1": float(loss.detach())}
