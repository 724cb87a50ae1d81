"""The representation models. Which type is which class is said once, in :mod:`speechreps.model_types`.

Interface (see ``base.py`` for the batch classes) — every model class has:

- ``__init__(cfg)``: built from its config dataclass (the type's ``config`` in the registry).
- ``loss(batch)`` takes the batches of its type's ``batch_kind`` (registry): ``"utterance"`` (APC:
  ``UtteranceBatch``; ``speakers`` unused), ``"speaker_utterance"`` (CPC: ``UtteranceBatch`` of
  ``n_speakers_per_batch x n_utterances_per_speaker`` utterances with ``speakers`` set; negatives come
  from the same speaker), ``"pair"`` (CAPC: ``PairBatch``, x predicts its aligned partner y),
  ``"frame"`` (frame AE: ``FramePairBatch`` with ``y = x``), ``"frame_pair"`` (frame CAE: aligned frame
  pairs, both directions).
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

from speechreps import model_types
from speechreps.config import TrainingConfig
from speechreps.models.apc import APC, CAPC
from speechreps.models.cpc import CPC
from speechreps.models.frame_ae import FrameAE, FrameCAE


def build_model(representation_type: str, cfg: TrainingConfig) -> nn.Module:
    """A fresh model of the registered ``representation_type`` from its config dataclass."""
    entry = model_types.get(representation_type)
    if not isinstance(cfg, entry.config):
        raise TypeError(f"{representation_type} needs a {entry.config.__name__}, got {type(cfg).__name__}")
    return entry.model_class()(cfg)


__all__ = ["build_model", "APC", "CAPC", "CPC", "FrameAE", "FrameCAE"]
