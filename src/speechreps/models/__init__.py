"""The representation models, registered by representation type.

Interface (see ``base.py`` for the batch classes) — every model class has:

- ``batch_kind``: which batches ``loss()`` takes:
  ``"utterance"`` (APC: ``UtteranceBatch``; ``speakers`` unused),
  ``"speaker_utterance"`` (CPC: ``UtteranceBatch`` of ``n_speakers_per_batch x n_utterances_per_speaker``
  utterances with ``speakers`` set; any layout works, negatives come from the same speaker),
  ``"pair"`` (CAPC: ``PairBatch``, x predicts its aligned partner y),
  ``"frame_pair"`` (frame AE: ``FramePairBatch`` with ``y = x``; frame CAE: aligned frame pairs, both directions).
- ``layers`` (tuple of names) and ``default_layer``:
  APC / CAPC ``("gru1", ..., "gruN")`` default the top layer; CPC ``("z", "c")`` default ``"c"``;
  frame AE / CAE ``("enc1", ..., "encN", "bottleneck")`` default ``"bottleneck"``.
- ``loss(batch) -> (scalar tensor, {name: float})`` — padded frames never enter it. APC and CAPC cut
  training sequences longer than ``cfg.seq_len`` (if > 0) to a random crop, CPC always to ``cfg.seq_len``,
  inside ``loss()`` (so the trainer may pass whole utterances); randomness from torch's global RNG.
- ``encode(feats (B, T, D), lengths (B,)) -> {layer: (B, T, d)}``, padded frames zero; call under
  ``model.eval()`` and ``torch.no_grad()`` (CPC's dropout is off in eval).
- ``FrameCAE.init_from(state)``: copy a trained frame AE's weights (a state_dict or a checkpoint dict
  with it under ``"model"`` / ``"model_state"`` / ``"state_dict"``); an instance method.
- ``model.cfg``: the config it was built from.

Models use no CUDA-only code and are autocast-safe (CPC's cross-entropy runs in float32).
"""

from __future__ import annotations

from torch import nn

from speechreps.config import CONFIG_CLASSES, TrainingConfig
from speechreps.errors import UserError
from speechreps.models.apc import APC, CAPC
from speechreps.models.cpc import CPC
from speechreps.models.frame_ae import FrameAE, FrameCAE

MODELS: dict[str, type[nn.Module]] = {"apc": APC, "cpc": CPC, "capc": CAPC, "frame_ae": FrameAE, "frame_cae": FrameCAE}


def build_model(representation_type: str, cfg: TrainingConfig) -> nn.Module:
    """A fresh model of ``representation_type`` from its config dataclass."""
    if representation_type not in MODELS:
        raise UserError(f"unknown representation type {representation_type!r} (choose from {', '.join(MODELS)})")
    expected = CONFIG_CLASSES[representation_type]
    if not isinstance(cfg, expected):
        raise TypeError(f"{representation_type} needs a {expected.__name__}, got {type(cfg).__name__}")
    return MODELS[representation_type](cfg)


__all__ = ["MODELS", "build_model", "APC", "CAPC", "CPC", "FrameAE", "FrameCAE"]
