"""The ``"awe"`` config section: the AWE models (CAE-RNN / AE-RNN, ContrastiveRNN) and the downsampling baseline.

It lives in the same JSON files as the frame-level sections (``configs/demo.json``,
``configs/paper.json``), as one more top-level key ``"awe"``; :func:`speechreps.config.load_config`
reads only the section it is asked for, so the other sections are unaffected. A mistake raises one
:class:`~speechreps.errors.UserError` line naming file, section and key, as for the other sections.

The section's ``model`` key names a registered AWE model type (:mod:`speechreps.model_types`), whose
config class reads the rest. Defaults are those of Kamper's CAE-RNN (ICASSP 2019, ``recipe_bucktsong_awe``): a 3-layer GRU
encoder and decoder of 400 units, a 130-dimensional embedding, Adam with learning rate 0.001.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainingConfig, non_negative, positive, read_section, section_from_dict
from ..errors import UserError

SECTION = "awe"
DOWNSAMPLE_METHODS = ("fourier", "interpolate")


@dataclass(kw_only=True)
class AWEConfig(TrainingConfig):
    """CAE-RNN training (and AE-RNN pre-training) settings; sizes as in Kamper (2019).

    - ``input_dim``: frame dimension; set from the input features when a model is built (MFCC 39,
      learned features their own width), so the value in the file is only a default.
    - ``embedding_dim``: size of the acoustic word embedding (the linear layer after the encoder).
    - ``enc_hidden_dim`` x ``enc_num_layers``: encoder GRU; ``bidirectional``: a bidirectional encoder
      (the embedding then reads the last states of both directions).
    - ``dec_hidden_dim`` x ``dec_num_layers``: decoder GRU, fed the embedding at every step.
    - ``batch_size``: directed pairs per batch; ``num_buckets``: length buckets (by input length).
    - ``ae_num_epochs``: AE-RNN pre-training epochs on the single tokens of the pairs (0 = none);
      ``ae_learning_rate`` (0 = ``learning_rate``).
    - ``max_pairs``: at most this many (undirected) training pairs, drawn with ``seed`` (0 = all);
      ``max_pairs_per_word``: cap per word type for ground-truth pairs from word tokens.
    - ``max_frames``: tokens longer than this are cut to their first ``max_frames`` frames for
      training only (0 = never; Kamper's recipe used 100). Embedding never cuts.
    - ``frame_stride``: the CAE-RNN reads (and reconstructs) one frame per ``frame_stride`` frames
      (1 = every frame, as in the paper; 2-3 trade a little resolution for 2-3x faster training);
      ``stride_mode``: ``"subsample"`` (every s-th frame) or ``"mean"`` (the mean of each s frames:
      nothing is dropped, and the noise is averaged).
    - ``normalize_inputs``: standardise every input dimension with the mean and standard deviation
      of the training segments (kept in the model). MFCCs are already normalised per speaker;
      learned features are not, and some have a small or uneven scale.
    - ``downsample_n`` / ``downsample_method``: the downsampling baseline (``fourier`` as in
      docs/METRICS.md, or ``interpolate``, linear).
    """

    model: str = "cae_rnn"
    learning_rate: float = 0.001
    num_epochs: int = 20
    batch_size: int = 300
    num_buckets: int = 3
    validate_every: int = 1
    embedding_dim: int = 130
    enc_hidden_dim: int = 400
    enc_num_layers: int = 3
    dec_hidden_dim: int = 400
    dec_num_layers: int = 3
    bidirectional: bool = False
    ae_num_epochs: int = 0
    ae_learning_rate: float = 0.0
    max_pairs: int = 0
    max_pairs_per_word: int = 100
    max_frames: int = 0
    frame_stride: int = 1
    stride_mode: str = "subsample"
    normalize_inputs: bool = False
    downsample_n: int = 10
    downsample_method: str = "fourier"

    def check(self, bad) -> None:
        super().check(bad)
        positive(self, bad, "embedding_dim", "enc_hidden_dim", "enc_num_layers", "dec_hidden_dim",
                  "dec_num_layers", "max_pairs_per_word", "downsample_n", "frame_stride")
        non_negative(self, bad, "ae_num_epochs", "ae_learning_rate", "max_pairs", "max_frames")
        from ..model_types import AWE_MODEL_TYPES

        if self.model not in AWE_MODEL_TYPES:
            bad("model", f"must be one of {', '.join(AWE_MODEL_TYPES)}, got {self.model!r}")
        elif type(self) is not AWE_MODEL_TYPES[self.model].config:
            bad("model", f"{self.model!r} is configured by {AWE_MODEL_TYPES[self.model].config.__name__}, "
                         f"not {type(self).__name__}")
        if self.stride_mode not in ("subsample", "mean"):
            bad("stride_mode", f'must be "subsample" or "mean", got {self.stride_mode!r}')
        if self.downsample_method not in DOWNSAMPLE_METHODS:
            bad("downsample_method", f"must be one of {', '.join(DOWNSAMPLE_METHODS)}, got {self.downsample_method!r}")


@dataclass(kw_only=True)
class ContrastiveRNNConfig(AWEConfig):
    """:class:`AWEConfig` plus the NT-Xent settings.

    - ``temperature``: the softmax temperature of the cosine similarities (smaller: sharper);
    - ``mask_same_label``: leave tokens that share the anchor's label out of its negatives.
    - ``drop_hardest``: the share of each batch's pairs with the highest loss left out of the
      gradient (0 = none): the "small-loss" rule for noisy labels (Han et al., NeurIPS 2018). Term
      discovery pairs different words too (a third or more of its pairs); a wrong positive has a
      high NT-Xent loss and, kept, drags the embedding towards matching anything. On clean (gold)
      pairs the hardest pairs are the informative ones, and dropping them costs AP.
    - ``drop_hardest_discovered``: the ``drop_hardest`` used instead when the pairs come from term
      discovery (the main job's discovered-pair rows, ``awe train --discovered-pairs``).
    """

    model: str = "contrastive_rnn"
    temperature: float = 0.1
    mask_same_label: bool = True
    drop_hardest: float = 0.0
    drop_hardest_discovered: float = 0.0

    def check(self, bad) -> None:
        super().check(bad)
        if not self.temperature > 0:
            bad("temperature", f"must be a number > 0, got {self.temperature}")
        for key in ("drop_hardest", "drop_hardest_discovered"):
            if not 0 <= getattr(self, key) < 1:
                bad(key, f"must be a share in [0, 1), got {getattr(self, key)}")
        if self.ae_num_epochs:
            bad("ae_num_epochs", "must be 0 for the contrastive_rnn (it has no decoder to pre-train)")


def for_discovered_pairs(cfg: AWEConfig) -> AWEConfig:
    """The config to train on pairs found by term discovery: a ContrastiveRNN's
    ``drop_hardest_discovered`` as its ``drop_hardest`` (other models: ``cfg`` unchanged)."""
    share = getattr(cfg, "drop_hardest_discovered", None)
    return cfg if share is None else dataclasses.replace(cfg, drop_hardest=share)


def config_class(model: Any, where: str = SECTION) -> type[AWEConfig]:
    """The config dataclass of AWE model type ``model`` (the registry's :data:`~speechreps.model_types.AWE_MODEL_TYPES`)."""
    from ..model_types import AWE_MODEL_TYPES

    if not isinstance(model, str) or model not in AWE_MODEL_TYPES:
        raise UserError(f"{where} model must be one of {', '.join(AWE_MODEL_TYPES)}, got {json.dumps(model)}")
    return AWE_MODEL_TYPES[model].config


def awe_config_from_dict(section: Any, source: str = "<dict>") -> AWEConfig:
    """Validate an ``"awe"`` section (a dict) into the config class of its ``model`` (the frame sections' loader)."""
    model = section.get("model", "cae_rnn") if isinstance(section, dict) else "cae_rnn"
    return section_from_dict(config_class(model, f"{source}: [{SECTION}]"), section, SECTION, source)


def load_awe_config(path: str | os.PathLike | None = None) -> AWEConfig:
    """The ``"awe"`` section of the JSON file at ``path`` (default: the packaged ``demo.json``).

    A file without an ``"awe"`` section is an error (one line) rather than silently the defaults,
    which are paper-size and take hours on a CPU.
    """
    path = Path(path) if path is not None else Path(__file__).resolve().parent.parent / "configs" / "demo.json"
    return awe_config_from_dict(read_section(path, SECTION), source=str(path))


def awe_config_to_dict(cfg: AWEConfig) -> dict:
    return dataclasses.asdict(cfg)
