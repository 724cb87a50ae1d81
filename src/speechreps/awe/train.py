"""Train, load and evaluate AWE models: the Python API behind ``speechreps awe``.

``train_awe`` trains the config's ``model``, a registered AWE type (:data:`speechreps.model_types.AWE_MODEL_TYPES`:
the CAE-RNN, or the ContrastiveRNN of :mod:`speechreps.awe.contrastive`), on the pairs the frame models use
(:func:`speechreps.data.pairs.dataset_pairs`), through the generic
:class:`speechreps.train.trainer.Trainer` (checkpoints ``epoch_<N>.pt`` / ``last.pt`` / ``best.pt``, resume, ``metrics.jsonl``,
TensorBoard) into ``CKPT_DIR``, resuming like ``speechreps train`` (:func:`speechreps.train.checkpoint.resume_point`);
for a type with a pre-training phase and ``ae_num_epochs`` > 0 (the CAE-RNN's AE-RNN) that phase is
trained first into ``CKPT_DIR/ae_rnn/`` (reused when already complete there, resumed when partial) and
the model starts from its weights. Validation (``validate_every``): same-different AP of the embeddings of
the validation word tokens (cosine), which picks ``best.pt``.

``CKPT_DIR/awe_inputs.json`` records the input features the model was trained on (an
:class:`InputSpec`), so that ``embed`` / ``evaluate`` use the same ones by default.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import model_types
from ..errors import UserError, WarningCounter
from .config import AWEConfig, awe_config_from_dict
from .data import ArchiveInput, InputFeatures, MFCCInput, ModelInput, training_pairs

INPUTS_FILE = "awe_inputs.json"
PAIR_SOURCES = ("gold", "discovered")


@dataclass
class InputSpec:
    """Which input features, as recorded with a model: ``mfcc``, a frame ``model`` or ``archives``."""

    kind: str = "mfcc"
    frame_model: str | None = None
    layer: str | None = None
    words: dict[str, str] = field(default_factory=dict)  # split -> word-token archive (kind "archives")
    train_features: str | None = None  # training-utterance archive (kind "archives")
    name: str | None = None
    checkpoint: str = "best"  # kind "model": the frame model's best.pt or last.pt

    def build(self, device: Any = "cpu") -> InputFeatures:
        if self.kind == "mfcc":
            return MFCCInput()
        if self.kind == "model":
            if not self.frame_model:
                raise UserError("input features of kind 'model' need a frame-level model folder")
            return ModelInput(self.frame_model, self.layer, device, checkpoint=self.checkpoint)
        if self.kind == "archives":
            return ArchiveInput(self.name or "features", self.words, self.train_features)
        raise UserError(f"unknown input feature kind {self.kind!r} (mfcc, model, archives)")

    def label(self) -> str:
        return self.name or ("mfcc" if self.kind == "mfcc" else Path(self.frame_model or "features").name)


@dataclass
class AWETrainResult:
    ckpt_dir: Path
    best_ap: float | None
    best_epoch: int | None
    seconds: float  # training wall time (AE + CAE epochs, with validation; data preparation excluded)
    prepare_seconds: float  # cutting pairs / encoding the training utterances with a frame model
    n_pairs: int
    history: list[dict[str, Any]] = field(default_factory=list)


def _validator(ds, inputs: InputFeatures, device) -> Callable | None:
    if not ds.has_word_tokens("validation"):
        return None
    from ..evaluate.scoring import score
    from .embed import model_embeddings

    words = inputs.word_set(ds, "validation")

    def validate(model) -> dict[str, float]:
        res = score(model_embeddings(model, words.words, device), words, "cosine")
        out = {"val_ap": res.ap}
        if res.ap_cross_speaker is not None:
            out["val_ap_cross_speaker"] = res.ap_cross_speaker
        return out

    return validate


def train_awe(cfg: AWEConfig, ds, inputs: InputFeatures, ckpt_dir: str | Path, pairs_file: str | Path | None = None,
              device: Any = None, resume: bool = False, load_from_epoch: int | None = None,
              spec: InputSpec | None = None, log: Callable[[str], None] = print, progress: bool = True,
              tensorboard: bool = True, pairs: str = "gold") -> AWETrainResult:
    """Train ``cfg.model`` on ``ds`` in ``inputs``' features: a CAE-RNN (after optional AE-RNN pre-training) or a ContrastiveRNN.

    ``pairs``: where the training pairs came from, ``gold`` or ``discovered`` (term discovery),
    recorded with the model so that :func:`scored_checkpoint` knows which checkpoint to read.
    """
    if pairs not in PAIR_SOURCES:
        raise ValueError(f"pairs must be one of {PAIR_SOURCES}, got {pairs!r}")
    from ..fileio import write_json
    from ..train import checkpoint as ckpt
    from ..train.trainer import default_device, seed_everything

    ckpt_dir = Path(ckpt_dir)
    device = default_device(device) if not hasattr(device, "type") else device
    load_from_epoch = ckpt.resume_point(ckpt_dir, resume, load_from_epoch)
    t0 = time.perf_counter()
    warnings = WarningCounter(what="training pair", strict_hint=None)
    tp = training_pairs(ds, inputs, pairs_file, cfg.max_pairs, cfg.max_pairs_per_word, cfg.seed, warnings)
    warnings.report()
    cfg = dataclasses.replace(cfg, input_dim=tp.dim)
    validate = _validator(ds, inputs, device) if cfg.validate_every > 0 else None
    prepare_seconds = time.perf_counter() - t0
    log(f"awe: {tp.source}; input features {inputs.describe()} ({tp.dim}-d), {prepare_seconds:.1f} s to prepare")
    if spec is not None:
        write_json(ckpt_dir / INPUTS_FILE, {"dataset": ds.name, "data_paths": str(ds.source), "pairs": pairs,
                                            **dataclasses.asdict(spec)})

    seed_everything(cfg.seed)
    entry = model_types.get_awe(cfg.model)
    model = build_awe_model(cfg)
    if cfg.normalize_inputs:
        frames = np.concatenate([np.asarray(v, dtype=np.float64) for v in tp.segments.values()])
        model.set_normalization(frames.mean(axis=0), frames.std(axis=0))
    fit = dict(device=device, validate=validate, progress=progress, log=log, tensorboard=tensorboard)
    history: list[dict[str, Any]] = []
    if entry.pretrain and cfg.ae_num_epochs > 0 and load_from_epoch is None:
        pre_dir = ckpt_dir / entry.pretrain
        # pre-training counts epochs (ae_num_epochs) even when the main phase has a step budget
        pre_cfg = dataclasses.replace(cfg, num_epochs=cfg.ae_num_epochs, num_steps=0, steps_per_epoch=0,
                                      learning_rate=cfg.ae_learning_rate or cfg.learning_rate,
                                      lr_milestones=[m for m in cfg.lr_milestones if m <= cfg.ae_num_epochs])
        have = ckpt.saved_epochs(pre_dir)
        if have and have[-1] >= pre_cfg.num_epochs:
            log(f"awe: {entry.pretrain} pre-training already done, starting from {ckpt.find_checkpoint(pre_dir, prefer='last')}")
        else:
            history += _phase(model, model.pretraining_data(tp, cfg.max_frames), pre_cfg, pre_dir, entry.pretrain,
                              have[-1] if have else None, **fit)[1]
        model.load_state_dict(ckpt.load(ckpt.find_checkpoint(pre_dir, prefer="last"), map_location="cpu")["model"])
        seed_everything(cfg.seed + 1)  # the main phase draws its own random numbers, resumable from its checkpoints
    res, main_history = _phase(model, model.training_data(tp, cfg.max_frames), cfg, ckpt_dir, cfg.model, load_from_epoch, **fit)
    history += main_history
    if res.best_ap is not None:
        log(f"awe: best validation AP {res.best_ap:.4f} at epoch {res.best_epoch}")
    seconds = sum(r.get("seconds", 0.0) + r.get("val_seconds", 0.0) for r in history)  # training + validation
    return AWETrainResult(ckpt_dir, res.best_ap, res.best_epoch, round(seconds, 2), round(prepare_seconds, 2),
                          len(tp.pairs), history)


def _phase(model, data_and_what: tuple[Any, str], cfg: AWEConfig, out_dir: Path, name: str, load_from_epoch: int | None,
           device: Any, validate: Callable | None, progress: bool, log: Callable[[str], None], tensorboard: bool):
    """One training phase of ``model`` through the core Trainer: (its FitResult, its history rows with
    ``phase`` = ``name`` and ``seconds`` = training plus validation time of the epoch)."""
    from ..data.datasets import TrainingSet
    from ..train.trainer import Trainer

    data, what = data_and_what
    train_set = TrainingSet.bucketed(data, cfg, what)
    budget = (f"{cfg.num_steps} steps ({cfg.num_steps // (cfg.steps_per_epoch or cfg.num_steps)} blocks of "
              f"{cfg.steps_per_epoch or cfg.num_steps})" if cfg.num_steps else f"{cfg.num_epochs} epochs")
    drop = getattr(cfg, "drop_hardest", 0.0)
    dropping = f", the {drop:g} of each batch's pairs with the highest loss left out (drop_hardest)" if drop else ""
    log(f"awe: {name} training on {train_set.describe} for {budget}{dropping} into {out_dir}")
    trainer = Trainer(model, train_set, cfg, out_dir, name, device=device, validate=validate, progress=progress,
                      log=log, tensorboard=tensorboard)
    res = trainer.fit(load_from_epoch=load_from_epoch)
    return res, [{**r, "phase": name} for r in res.history]


def build_awe_model(cfg: AWEConfig):
    """A freshly initialised model of the registered AWE type ``cfg.model``."""
    return model_types.get_awe(cfg.model).model_class()(cfg)


def load_awe(ckpt_dir: str | Path, checkpoint: str = "best", epoch: int | None = None, device: Any = "cpu"):
    """The AWE model of ``ckpt_dir`` (``epoch_<epoch>.pt``, else best, else last) in eval mode, and its path."""
    from ..train import checkpoint as ckpt

    path = ckpt.find_checkpoint(ckpt_dir, epoch=epoch, prefer=checkpoint)
    state = ckpt.load(path, map_location="cpu")
    if state.get("representation_type") not in model_types.awe_checkpoint_types():
        raise UserError(f"checkpoint {path} holds a {state.get('representation_type')!r} model, not an AWE model")
    cfg = awe_config_from_dict(state["config"], source=str(path))
    model = build_awe_model(cfg)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), path


def scored_checkpoint(ckpt_dir: str | Path) -> str:
    """The checkpoint that stands for the AWE model of ``ckpt_dir``: ``last`` for one trained on
    discovered pairs, else ``best``.

    On discovered pairs the validation words are discovered terms too, labelled by their clusters,
    and their AP picks the wrong epoch: on the built-in corpus (seed 0, the demo ContrastiveRNN,
    MFCC / APC / CPC / CAPC / frame CAE inputs) it picked one of epochs 2-8 of 12 in nine of the ten
    rows, and ``last.pt`` scored higher on the gold test words in those nine (the tenth picked epoch
    12; README, "AWEs on discovered pairs: which checkpoint"). So there the step budget, not a
    label, ends training.
    """
    _, raw = read_input_spec(ckpt_dir)
    return "last" if raw.get("pairs") == "discovered" else "best"


def read_input_spec(ckpt_dir: str | Path) -> tuple[InputSpec | None, dict]:
    """The :class:`InputSpec` recorded by ``train_awe`` in ``ckpt_dir`` (``None`` if absent) and the raw record."""
    import json

    p = Path(ckpt_dir) / INPUTS_FILE
    if not p.is_file():
        return None, {}
    raw = json.loads(p.read_text())
    names = {f.name for f in dataclasses.fields(InputSpec)}
    return InputSpec(**{k: v for k, v in raw.items() if k in names}), raw


def evaluate_awe(ds, inputs: InputFeatures, model=None, cfg: AWEConfig | None = None, splits=None,
                 device: Any = "cpu") -> dict[str, dict[str, Any]]:
    """Same-different AP of downsampled embeddings and (with ``model``) the model's embeddings per split
    (default: the dataset's evaluation splits, validation and test, or ``all`` of a zero-resource one).

    Returns ``{split: {"downsample": SameDiffResult.to_dict(), <model type>: ..., "n_tokens": N}}``,
    the model type being ``model.cfg.model`` (``cae_rnn`` or ``contrastive_rnn``).
    """
    from ..evaluate.scoring import score
    from .embed import downsample_embeddings, model_embeddings

    cfg = cfg or (model.cfg if model is not None else AWEConfig())
    out: dict[str, dict[str, Any]] = {}
    splits = ds.evaluation_splits() if splits is None else splits
    for split in splits:
        if not ds.has_word_tokens(split):
            continue
        words = inputs.word_set(ds, split)
        entry: dict[str, Any] = {"n_tokens": len(words)}
        down = downsample_embeddings(words.words, cfg.downsample_n, cfg.downsample_method)
        entry["downsample"] = score(down, words, "cosine").to_dict()
        if model is not None:
            entry[model.cfg.model] = score(model_embeddings(model, words.words, device), words, "cosine").to_dict()
        out[split] = entry
    if not out:
        raise UserError(f"dataset {ds.name!r} has no word tokens in {', '.join(splits)}")
    return out
