"""The one registry of model types, frame-level and word-level: everything else derives from it.

A :class:`ModelType` says what a type is: its config class, its model class, which batches it trains
on, which type must be trained first to initialise it, and whether the AWE comparison uses its
features. The CLI's TYPE choices, the config sections read, the main job's training order, the
zero-resource track's types, the AWE comparison's rows and the model factory all come from
:data:`MODEL_TYPES`, so adding a type is one :func:`register` call (see docs/DEVELOPING.md).

The acoustic-word-embedding models (``speechreps awe``, the ``awe`` section's ``model`` key) are
:class:`AWEModelType` entries in :data:`AWE_MODEL_TYPES`: config class, model class, the name of the
comparison table's column and, for the CAE-RNN, the pre-training phase (AE-RNN). The ``awe`` config
loader, ``awe train`` / ``load_awe`` and the comparison's table all read it.

This module imports no torch: the model class is named by an import path and loaded on first use, so
``speechreps --help`` stays fast. A test (or a plug-in) may register a class object directly.

Batch kinds (what ``model.loss()`` takes; :mod:`speechreps.data.datasets` builds the training set):

=====================  =====================================================================
``utterance``          training utterances, length-bucketed (APC)
``speaker_utterance``  ``n_speakers_per_batch x n_utterances_per_speaker`` utterance crops (CPC)
``pair``               DTW-aligned word-segment pairs, length-bucketed (CAPC)
``frame``              single training frames, the target is the input (frame AE)
``frame_pair``         DTW-aligned frame pairs of word pairs (frame CAE)
=====================  =====================================================================
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .awe.config import AWEConfig, ContrastiveRNNConfig
from .config import APCConfig, CAPCConfig, CPCConfig, FrameAEConfig, FrameCAEConfig, TrainingConfig
from .errors import UserError

#: Batch kinds whose training data are word pairs (gold, from a pair file, or discovered).
PAIR_KINDS = ("pair", "frame_pair")
BATCH_KINDS = ("utterance", "speaker_utterance", "pair", "frame", "frame_pair")


@dataclass(frozen=True)
class ModelType:
    """One representation type.

    ``model``: the class (``cfg -> nn.Module`` following :mod:`speechreps.models`' interface), or its
    import path ``"package.module:Class"``. ``init_from``: a type whose trained weights this one starts
    from (``model.init_from(state)``); it is trained first, and its config section is part of this
    type's training inputs. ``init_key``: the config field that may name such a trained checkpoint
    (file or folder) instead, so that none is trained. ``awe_input``: a row of the AWE comparison (``speechreps run --awe``).
    """

    name: str
    config: type[TrainingConfig]
    model: Any
    batch_kind: str
    init_from: str | None = None
    init_key: str | None = None
    awe_input: bool = True
    summary: str = ""

    def __post_init__(self) -> None:
        if self.batch_kind not in BATCH_KINDS:
            raise ValueError(f"{self.name}: unknown batch kind {self.batch_kind!r} (one of {', '.join(BATCH_KINDS)})")

    @property
    def uses_pairs(self) -> bool:
        """Trains on word pairs (so the zero-resource track trains it on discovered pairs)."""
        return self.batch_kind in PAIR_KINDS

    def model_class(self) -> type:
        return _resolve(self.model)

    def sections(self) -> tuple[str, ...]:
        """Config sections that decide a trained model of this type: its own, then its initialiser's."""
        return (self.name, *(get(self.init_from).sections() if self.init_from else ()))


def _resolve(model: Any) -> type:
    """A class, or the class an import path ``"package.module:Class"`` names (imported now)."""
    if isinstance(model, str):
        module, _, cls = model.partition(":")
        return getattr(importlib.import_module(module), cls)
    return model


MODEL_TYPES: dict[str, ModelType] = {}


def register(model_type: ModelType) -> ModelType:
    """Add a type (after those it is initialised from); registering a name again replaces it."""
    if model_type.init_from is not None and model_type.init_from not in MODEL_TYPES:
        raise ValueError(f"{model_type.name}: init_from {model_type.init_from!r} is not registered")
    MODEL_TYPES[model_type.name] = model_type
    return model_type


def unregister(name: str) -> None:
    """Remove a type (for tests that register one of their own)."""
    MODEL_TYPES.pop(name, None)


def names() -> tuple[str, ...]:
    """Every type, in registration order (which is a valid training order)."""
    return tuple(MODEL_TYPES)


def get(name: str, option: str = "representation type") -> ModelType:
    """The registered type ``name``; an unknown name is a one-line UserError naming ``option``."""
    try:
        return MODEL_TYPES[name]
    except KeyError:
        raise UserError(f"unknown {option} {name!r} (choose from {', '.join(MODEL_TYPES)})") from None


def training_order(types: Iterable[str], option: str = "--only") -> list[str]:
    """``types`` checked and in registration order, so that an ``init_from`` type comes before its user."""
    wanted = list(types)
    unknown = [t for t in wanted if t not in MODEL_TYPES]
    if unknown:
        raise UserError(f"{option}: unknown representation type(s) {', '.join(unknown)} "
                        f"(choose from {', '.join(MODEL_TYPES)})")
    return [t for t in MODEL_TYPES if t in wanted]


def type_of_config(cfg: TrainingConfig) -> str:
    """The registered type whose config class ``cfg`` is (exactly)."""
    for entry in MODEL_TYPES.values():
        if type(cfg) is entry.config:
            return entry.name
    raise TypeError(f"not a registered config: {type(cfg).__name__}")


register(ModelType("apc", APCConfig, "speechreps.models.apc:APC", "utterance",
                   summary="autoregressive predictive coding (GRU stack predicts frames ahead)"))
register(ModelType("cpc", CPCConfig, "speechreps.models.cpc:CPC", "speaker_utterance",
                   summary="contrastive predictive coding (InfoNCE, same-speaker negatives)"))
register(ModelType("capc", CAPCConfig, "speechreps.models.apc:CAPC", "pair",
                   summary="correspondence APC (a word predicts its aligned partner)"))
register(ModelType("frame_ae", FrameAEConfig, "speechreps.models.frame_ae:FrameAE", "frame", awe_input=False,
                   summary="frame autoencoder (the frame CAE's initialisation)"))
register(ModelType("frame_cae", FrameCAEConfig, "speechreps.models.frame_ae:FrameCAE", "frame_pair",
                   init_from="frame_ae", init_key="ae_checkpoint", summary="frame correspondence autoencoder (aligned frame pairs)"))


# ---------------------------------------------------------------------------------------------
# Acoustic word embedding models


@dataclass(frozen=True)
class AWEModelType:
    """One AWE model type: a model that maps a word segment to one vector, trained on segment pairs.

    ``model``: the class or its import path; the class follows :class:`speechreps.awe.model.RNNEncoder`'s
    interface (``embed``, ``loss``) and builds its own training data from the pairs with the classmethod
    ``training_data(pairs, max_frames) -> (dataset, description)``. ``pretrain``: the checkpoint type of a
    pre-training phase (the CAE-RNN's AE-RNN, in ``CKPT_DIR/<pretrain>/``), run when the config's
    ``ae_num_epochs`` > 0, with data from the classmethod ``pretraining_data``. ``title``: its name in tables.
    """

    name: str
    config: type[AWEConfig]
    model: Any
    title: str
    pretrain: str | None = None
    summary: str = ""

    def model_class(self) -> type:
        return _resolve(self.model)


AWE_MODEL_TYPES: dict[str, AWEModelType] = {}


def register_awe(model_type: AWEModelType) -> AWEModelType:
    """Add (or replace) an AWE model type."""
    AWE_MODEL_TYPES[model_type.name] = model_type
    return model_type


def get_awe(name: str, option: str = "awe model") -> AWEModelType:
    """The registered AWE model type ``name``; an unknown name is a one-line UserError naming ``option``."""
    try:
        return AWE_MODEL_TYPES[name]
    except KeyError:
        raise UserError(f"unknown {option} {name!r} (choose from {', '.join(AWE_MODEL_TYPES)})") from None


def awe_checkpoint_types() -> set[str]:
    """The ``representation_type`` a checkpoint of an AWE model (or of its pre-training) records."""
    return {n for t in AWE_MODEL_TYPES.values() for n in (t.name, t.pretrain) if n}


register_awe(AWEModelType("cae_rnn", AWEConfig, "speechreps.awe.model:CAERNN", "CAE-RNN", pretrain="ae_rnn",
                          summary="correspondence autoencoder RNN (Kamper 2019): a word reconstructs its partner"))
register_awe(AWEModelType("contrastive_rnn", ContrastiveRNNConfig, "speechreps.awe.contrastive:ContrastiveRNN",
                          "ContrastiveRNN", summary="RNN encoder with NT-Xent over the batch (Jacobs et al. 2021)"))
