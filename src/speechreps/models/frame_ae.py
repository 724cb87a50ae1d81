"""Frame autoencoder and frame correspondence autoencoder (Kamper et al., 2015).

A per-frame MLP: ``num_layers`` Linear + ReLU layers of ``hidden_dim``, a linear bottleneck of
``bottleneck_dim``, the mirror image back, and a *linear* output layer (the original's decoder ended in a
ReLU, which cannot produce the negative values that normalised MFCCs mostly are). MSE loss.

The AE reconstructs its input frame; the CAE (same network) maps a frame to its DTW-aligned partner in
the other word of a pair (the data supplies both directions) and starts from a trained AE
(:meth:`FrameCAE.init_from`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from speechreps.config import FrameAEConfig, FrameCAEConfig
from speechreps.errors import UserError
from speechreps.models.base import FramePairBatch, length_mask


class FrameAE(nn.Module):
    """Frame AE on ``FramePairBatch`` (the trainer gives y = x). Layers ``enc1 .. encN``, ``bottleneck``."""

    default_layer = "bottleneck"

    def __init__(self, cfg: FrameAEConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = tuple(f"enc{i + 1}" for i in range(cfg.num_layers)) + ("bottleneck",)
        self.enc = nn.ModuleList(
            [nn.Linear(cfg.input_dim if i == 0 else cfg.hidden_dim, cfg.hidden_dim) for i in range(cfg.num_layers)]
        )
        self.bottleneck = nn.Linear(cfg.hidden_dim, cfg.bottleneck_dim)
        dec: list[nn.Module] = []
        for i in range(cfg.num_layers):
            dec += [nn.Linear(cfg.bottleneck_dim if i == 0 else cfg.hidden_dim, cfg.hidden_dim), nn.ReLU(inplace=True)]
        dec.append(nn.Linear(cfg.hidden_dim, cfg.input_dim))  # linear output: no clamp
        self.decoder = nn.Sequential(*dec)

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for lin in self.enc:
            x = F.relu(lin(x))
            outs.append(x)
        outs.append(self.bottleneck(x))
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) frames -> (..., D) reconstructions / predicted partner frames."""
        h = x
        for lin in self.enc:
            h = F.relu(lin(h))
        return self.decoder(self.bottleneck(h))

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """feats (B, T, D), lengths (B,) -> {layer: (B, T, d)}, padded frames zero."""
        mask = length_mask(lengths, feats.shape[1])[:, :, None].to(feats.dtype)
        return {name: h * mask for name, h in zip(self.layers, self._encode(feats))}

    def loss(self, batch: FramePairBatch) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.mse_loss(self(batch.x), batch.y)
        return loss, {"mse": float(loss.detach())}


class FrameCAE(FrameAE):
    """Frame CAE: same network as :class:`FrameAE`, trained on DTW-aligned frame pairs x -> y."""

    def init_from(self, other_checkpoint_state: Mapping) -> None:
        """Copy the weights of a trained frame AE into this model.

        Accepts the AE's ``state_dict`` or a checkpoint dict holding it under ``"model"``,
        ``"model_state"`` or ``"state_dict"``. Shapes must match (same hidden_dim / num_layers /
        bottleneck_dim / input_dim), else :class:`UserError`.
        """
        state = other_checkpoint_state
        for key in ("model", "model_state", "state_dict"):
            if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
                state = state[key]
                break
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise UserError(f"frame_cae: the frame_ae checkpoint lacks weights {', '.join(missing[:3])} (not a frame_ae checkpoint?)")
        for k, v in own.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise UserError(
                    f"frame_cae: frame_ae checkpoint weight {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)} "
                    "(hidden_dim, num_layers, bottleneck_dim and input_dim must match the frame_ae's)"
                )
        self.load_state_dict({k: state[k] for k in own})


__all__ = ["FrameAE", "FrameCAE", "FrameAEConfig", "FrameCAEConfig"]
