"""Training configs: one dataclass per representation type, read from the original JSON shape.

The config file is the original tool's: one top-level section per representation type
(``"apc"``, ``"cpc"``, ``"capc"``, ``"frame_ae"``, ``"frame_cae"``), each with the original's keys.
:func:`load_config` reads one section and validates every key; a mistake (unknown key, wrong type,
missing section, missing required value, value out of range) raises :class:`UserError` with one line
that names the file, the section and the key, e.g.
``configs/x.json: [apc] num_layers must be an integer >= 1, got 0``.

Keys of the original that mean nothing here are accepted and ignored (listed in :data:`IGNORED_KEYS`);
keys that start with ``_`` or ``#`` are comments and ignored too.

Meaning of the shared keys (:class:`TrainingConfig`):

- ``batch_size``: utterances per batch (APC), segment pairs per batch (CAPC), frames per batch
  (frame AE / CAE). CPC batches are ``n_speakers_per_batch x n_utterances_per_speaker`` utterances;
  its ``batch_size`` is accepted (the original's key) and not used.
- ``num_buckets``: length buckets for the bucket sampler (batches are drawn from utterances of similar
  length, so that little padding is computed).
- ``lr_milestones`` / ``lr_gamma``: ``MultiStepLR`` over epochs.
- ``grad_clip``: max gradient norm over all parameters (0 = off). ``amp``: autocast, in ``amp_dtype`` on CUDA
  (``float16``, with loss scaling, or ``bfloat16``) and in bfloat16 on a CPU with native bfloat16 (AMX or
  AVX512-BF16; elsewhere float32, with a notice): :mod:`speechreps.train.precision`.
- ``validate_every``: epochs between validation-AP evaluations that pick the ``best`` checkpoint (0 = never).
- ``num_steps`` / ``steps_per_epoch``: a budget in optimizer steps instead of ``num_epochs`` (which it
  overrides), the same on any corpus size: the run is ``num_steps / steps_per_epoch`` "epochs" of
  ``steps_per_epoch`` steps each (default: one epoch of ``num_steps``), and everything counted in epochs
  counts those (see :mod:`speechreps.train.budget`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from speechreps.errors import UserError

T = TypeVar("T", bound="TrainingConfig")


@dataclass(kw_only=True)
class TrainingConfig:
    """Keys every section has (the original's names)."""

    learning_rate: float
    batch_size: int
    num_epochs: int = 0
    num_steps: int = 0
    steps_per_epoch: int = 0
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    num_buckets: int = 10
    checkpoint_interval: int = 1
    input_dim: int = 39
    seed: int = 0
    grad_clip: float = 5.0
    amp: bool = False
    amp_dtype: str = "float16"
    validate_every: int = 1

    def check(self, bad) -> None:
        """Range checks; ``bad(key, requirement)`` raises. Subclasses extend."""
        positive(self, bad, "learning_rate", "batch_size", "num_buckets", "checkpoint_interval", "input_dim")
        non_negative(self, bad, "grad_clip", "validate_every", "seed", "num_epochs", "num_steps", "steps_per_epoch")
        if self.num_steps == 0 and self.num_epochs == 0:
            bad("num_epochs", "or num_steps must be given (an integer >= 1)")
        if self.steps_per_epoch and not self.num_steps:
            bad("steps_per_epoch", "needs num_steps")
        if self.num_steps and self.steps_per_epoch and self.num_steps % self.steps_per_epoch:
            bad("num_steps", f"must be a multiple of steps_per_epoch ({self.steps_per_epoch}), got {self.num_steps}")
        if self.amp_dtype not in ("float16", "bfloat16"):
            bad("amp_dtype", "must be float16 or bfloat16")
        if not 0 < self.lr_gamma <= 1:
            bad("lr_gamma", "must be a number in (0, 1]")
        if any(m < 1 for m in self.lr_milestones) or list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            bad("lr_milestones", "must be a list of increasing epoch numbers >= 1")


@dataclass(kw_only=True)
class APCConfig(TrainingConfig):
    """Autoregressive predictive coding: ``num_layers`` GRU layers of ``hidden_dim``, predict ``num_pred_steps`` ahead.

    Auxiliary loss (``include_aux_loss``): a second, smaller-context APC (its own GRU stack and predictor)
    reads ``num_aux_anchors`` windows per utterance, each of ``aux_seq_len`` frames starting
    ``num_aux_steps_back`` frames before a random anchor, and predicts ``num_pred_steps_aux`` frames
    ahead inside the window; its L1 loss is added with weight ``aux_loss_weight``. All windows run as one batch.

    ``seq_len`` (not in the original): if > 0, training utterances longer than this are cut to a random
    crop of ``seq_len`` frames inside the model's loss (0 = whole utterances).

    ``residual`` (not in the original; Chung et al.'s APC has it): each GRU layer above the first adds
    its input to its output. Off by default, so that checkpoints saved before it existed load as they
    were trained; adds no parameters.
    """

    hidden_dim: int = 512
    num_layers: int = 3
    num_pred_steps: int = 3
    include_aux_loss: bool = False
    num_pred_steps_aux: int = 10
    num_aux_anchors: int = 5
    num_aux_steps_back: int = 20
    aux_seq_len: int = 20
    aux_loss_weight: float = 0.1
    seq_len: int = 0
    residual: bool = False

    def check(self, bad) -> None:
        super().check(bad)
        positive(self, bad, "hidden_dim", "num_layers", "num_pred_steps")
        non_negative(self, bad, "seq_len", "aux_loss_weight")
        if self.include_aux_loss:
            positive(self, bad, "num_pred_steps_aux", "num_aux_anchors", "num_aux_steps_back", "aux_seq_len")
            if self.num_pred_steps_aux >= self.aux_seq_len:
                bad("num_pred_steps_aux", f"must be smaller than aux_seq_len ({self.aux_seq_len})")


@dataclass(kw_only=True)
class CAPCConfig(APCConfig):
    """Correspondence APC: the APC network, input X predicts its aligned partner Y (``num_pred_steps`` ahead).

    ``num_pred_steps`` may be 0 here (predict the aligned partner frame itself). The auxiliary loss is not
    used for CAPC (``include_aux_loss`` must be false).
    """

    num_pred_steps: int = 0

    def check(self, bad) -> None:
        TrainingConfig.check(self, bad)
        positive(self, bad, "hidden_dim", "num_layers")
        non_negative(self, bad, "num_pred_steps", "seq_len")
        if self.include_aux_loss:
            bad("include_aux_loss", "is not supported for capc (must be false)")


@dataclass(kw_only=True)
class CPCConfig(TrainingConfig):
    """Contrastive predictive coding.

    Per-frame encoder: ``enc_layers`` blocks Linear(enc_dim) + LayerNorm + ReLU, dropout after block
    ``enc_layers // 2 + 1`` (the original's place), then Linear -> z (``z_dim``); LSTM -> c (``c_dim``);
    one linear predictor per step k = 1..``num_pred_steps``; InfoNCE with ``num_negatives`` negatives from
    the same speaker's utterances in the batch (``negatives_from: "speaker"``), or from the target's own
    utterance only (``"utterance"``: a subset of the same speaker's frames that shares the utterance's
    channel and noise, so that those cannot tell the target from a negative). Batches hold
    ``n_speakers_per_batch`` speakers x ``n_utterances_per_speaker`` utterances, each cut to a random crop
    of ``seq_len`` frames.
    """

    enc_dim: int = 512
    enc_layers: int = 5
    z_dim: int = 64
    c_dim: int = 256
    num_pred_steps: int = 12
    num_negatives: int = 17
    n_speakers_per_batch: int = 12
    n_utterances_per_speaker: int = 12
    seq_len: int = 100
    dropout: float = 0.5
    negatives_from: str = "speaker"

    def check(self, bad) -> None:
        super().check(bad)
        if self.negatives_from not in ("speaker", "utterance"):
            bad("negatives_from", f'must be "speaker" or "utterance", got {self.negatives_from!r}')
        positive(self, bad, "enc_dim", "enc_layers", "z_dim", "c_dim", "num_pred_steps", "num_negatives",
                  "n_speakers_per_batch", "n_utterances_per_speaker")
        if self.seq_len <= self.num_pred_steps:
            bad("seq_len", f"must be an integer > num_pred_steps ({self.num_pred_steps}), got {self.seq_len}")
        if not 0 <= self.dropout < 1:
            bad("dropout", f"must be a number in [0, 1), got {self.dropout}")


@dataclass(kw_only=True)
class FrameAEConfig(TrainingConfig):
    """Frame autoencoder: ``num_layers`` Linear(hidden_dim)+ReLU -> Linear bottleneck -> mirror -> linear output."""

    hidden_dim: int = 100
    num_layers: int = 4
    bottleneck_dim: int = 39

    def check(self, bad) -> None:
        super().check(bad)
        positive(self, bad, "hidden_dim", "num_layers", "bottleneck_dim")


@dataclass(kw_only=True)
class FrameCAEConfig(FrameAEConfig):
    """Frame correspondence autoencoder: frame x -> its DTW-aligned partner y, initialised from a frame AE.

    ``ae_checkpoint``: a trained ``frame_ae`` checkpoint (dir or file); relative paths are resolved against
    the config file's folder. ``None``: the caller trains a frame AE first (or starts from random weights).
    """

    ae_checkpoint: str | None = None


# Original keys that mean nothing here: accepted, ignored.
IGNORED_KEYS: dict[str, str] = {
    "dframe": "frames keep all their dimensions; use input_dim",
    "max_seq_len": "nothing is truncated any more; use seq_len for training crops",
    "device": "chosen automatically",
}


class _Bad(Exception):
    pass


def positive(cfg, bad, *keys: str) -> None:
    for k in keys:
        v = getattr(cfg, k)
        if not v > 0:
            kind = "an integer >= 1" if isinstance(v, int) else "a number > 0"
            bad(k, f"must be {kind}, got {v!r}")


def non_negative(cfg, bad, *keys: str) -> None:
    for k in keys:
        v = getattr(cfg, k)
        if not v >= 0:
            kind = "an integer >= 0" if isinstance(v, int) else "a number >= 0"
            bad(k, f"must be {kind}, got {v!r}")


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_describe(a) for a in args) + " or null"
    return str(tp)


def _coerce(value: Any, tp) -> Any:
    """Return ``value`` as type ``tp`` or raise _Bad. Ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Bad
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _Bad
        return [_coerce(v, item) for v in value]
    args = typing.get_args(tp)
    if type(None) in args:
        if value is None:
            return None
        for a in args:
            if a is not type(None):
                try:
                    return _coerce(value, a)
                except _Bad:
                    pass
        raise _Bad
    raise TypeError(f"unsupported config field type {tp}")


def section_from_dict(cls: type[T], section: Any, name: str, source: str = "<dict>") -> T:
    """Build and validate the dataclass ``cls`` from the config section ``name`` (a dict).

    Every key is checked against the dataclass's fields and their types; a missing required key, an
    unknown key or a value out of range (the class's ``check``) is one UserError line naming
    ``source``, the section and the key.
    """
    where = f"{source}: [{name}]"
    if not isinstance(section, dict):
        raise UserError(f"{where} must be a JSON object of key: value, got {type(section).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in section.items():
        if key.startswith(("_", "#")) or key in IGNORED_KEYS:
            continue
        if key not in fields:
            raise UserError(f"{where} unknown key {key!r} (known keys: {', '.join(fields)})")
        try:
            kwargs[key] = _coerce(value, hints[key])
        except _Bad:
            raise UserError(f"{where} {key} must be {_describe(hints[key])}, got {json.dumps(value)}") from None
    for key, f in fields.items():
        if key not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{where} missing required key {key!r}")
    cfg = cls(**kwargs)

    def bad(key: str, requirement: str) -> None:
        raise UserError(f"{where} {key} {requirement}")

    cfg.check(bad)
    return cfg


def config_from_dict(section: dict, representation_type: str, source: str = "<dict>") -> TrainingConfig:
    """Build and validate the config of the registered ``representation_type`` from its section (a dict)."""
    from .model_types import get

    return section_from_dict(get(representation_type).config, section, representation_type, source)


def read_section(path: str | os.PathLike, name: str) -> dict:
    """The section ``name`` of the JSON config file at ``path`` (one UserError line if it cannot be had)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read config file ({e.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: must be a JSON object with one section per representation type")
    if name not in data:
        have = ", ".join(k for k in data if not k.startswith(("_", "#"))) or "none"
        raise UserError(f"{path}: missing section [{name}] (sections present: {have})")
    return data[name]


def load_config(path: str | os.PathLike, representation_type: str) -> TrainingConfig:
    """Read the JSON config file at ``path`` and return its validated section for ``representation_type``.

    A relative ``ae_checkpoint`` (frame_cae) is resolved against the config file's folder.
    """
    from .model_types import get

    get(representation_type)  # an unknown type is a one-line error before the file is read
    cfg = config_from_dict(read_section(path, representation_type), representation_type, source=str(path))
    if isinstance(cfg, FrameCAEConfig) and cfg.ae_checkpoint and not os.path.isabs(cfg.ae_checkpoint):
        cfg.ae_checkpoint = str(Path(path).parent / cfg.ae_checkpoint)
    return cfg


def planned_epochs(cfg: TrainingConfig) -> int:
    """The number of epochs a run of ``cfg`` ends at (``num_steps / steps_per_epoch`` under a step budget)."""
    if cfg.num_steps:
        return cfg.num_steps // (cfg.steps_per_epoch or cfg.num_steps)
    return cfg.num_epochs


def config_to_dict(cfg: TrainingConfig) -> dict:
    """The config as a JSON-ready dict (all keys, defaults filled in); ``config_from_dict`` reads it back."""
    return dataclasses.asdict(cfg)
