"""train / evaluate / extract / all as functions, and the command-line options both CLIs share.

``speechreps train|evaluate|extract|all TYPE CONFIG CKPT_DIR [options]`` and the original
``learn_speech_reps TYPE ACTION CONFIG CKPT_DIR [SAVE_PATH] [options]`` both build a
:class:`~speechreps.run_options.RunOptions` from the options defined once in :mod:`speechreps.run_options`
and call :func:`run_action`. TYPE is any type of the registry (:mod:`speechreps.model_types`).

Behaviour worth knowing:

- ``speechreps <action> --help`` lists only the options that action uses (:data:`OPTION_ACTIONS`);
  ``learn_speech_reps`` takes them all. ``--language`` defaults to the built-in corpus's
  ``synth_en`` for ``speechreps`` and to the original's ``english_full`` for ``learn_speech_reps``.

- ``data_paths.json``: ``--data-paths FILE``; by default ``./data_paths.json``, else
  ``./data/data_paths.json``, else ``./config/data_paths.json`` (where the original kept it).
- ``train`` starts from scratch, or with ``--load-from-epoch N`` resumes from ``CKPT_DIR/epoch_N.pt``
  (``--resume``: from the newest saved epoch). A type registered with ``init_from`` (``frame_cae``:
  ``frame_ae``) starts from a trained model of that type: the checkpoint its config names
  (``init_key``: ``ae_checkpoint``, file or folder), else one trained first, with the config's section
  of that type, into ``CKPT_DIR/<that type>/`` (reused when already trained there).
- validation during training (``validate_every``): :func:`speechreps.evaluate.scoring.make_validator`,
  DTW AP of the default layer on a fixed subset of at most 300 validation tokens; it picks ``best.pt``.
- ``evaluate`` / ``extract`` use ``CKPT_DIR/epoch_N.pt`` with ``--load-from-epoch N``, otherwise
  ``best.pt`` (``--checkpoint last``: ``last.pt``), falling back to ``last.pt``. The model is rebuilt
  from the config stored in the checkpoint.
- ``evaluate``: per split (validation, test) and layer (``--layer``, default all layers), AP and PRB
  with downsampled and DTW distances, all positives and cross-speaker positives, beside the input
  features' (MFCC's); printed as a table and written to ``CKPT_DIR/evaluation_<language>.json``.
- ``extract``: per requested split (``--extract-training/-validation/-test``; none = all three),
  ``SAVE_PATH/<language>_<split>_<type>_<layer>.npz`` (layer: ``--layer``, default the model's
  default layer); ``--extract-language`` names the dataset to extract (default ``--language``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from .config import TrainingConfig
from .errors import UserError
from .run_options import ACTIONS, RunOptions, add_run_options, options_from_args, resolve_data_paths

__all__ = ["ACTIONS", "RunOptions", "add_run_options", "options_from_args", "resolve_data_paths", "train",
           "evaluate", "extract", "run_all", "run_action", "register_action"]


def _load_dataset(opts: RunOptions, name: str | None = None):
    from .data.registry import load_dataset

    return load_dataset(opts.data_paths, name or opts.language)


def _trained_model(opts: RunOptions, device):
    from .trained import load_trained_model

    return load_trained_model(opts.ckpt_dir, opts.representation_type, epoch=opts.load_from_epoch,
                              prefer=opts.checkpoint, config=opts.config, device=device)


def _initial_state(opts: RunOptions, cfg: TrainingConfig, device, log: Callable[[str], None]) -> dict | None:
    """The trained ``init_from`` model state a type starts from (None for types without one): the
    checkpoint the config's ``init_key`` names, else one trained first into ``CKPT_DIR/<init_from>``."""
    from .config import load_config, planned_epochs
    from .model_types import get
    from .train import checkpoint as ckpt

    entry = get(opts.representation_type)
    if entry.init_from is None:
        return None
    given = getattr(cfg, entry.init_key) if entry.init_key else None
    if given:
        p = Path(given)
        path = ckpt.find_checkpoint(p, prefer="last") if p.is_dir() else p
        log(f"{entry.name}: initialising from the {entry.init_from} {path}")
        return ckpt.load(path)
    sub_dir = opts.ckpt_dir / entry.init_from
    try:
        sub_cfg = load_config(opts.config, entry.init_from)  # its seed: opts.seed, as train() applies it
    except UserError as exc:
        key = f"set {entry.init_key} in [{entry.name}] or " if entry.init_key else ""
        raise UserError(f"{entry.name} starts from a trained {entry.init_from}: {key}add a [{entry.init_from}] "
                        f"section to train one ({exc})") from None
    have = ckpt.saved_epochs(sub_dir)
    if not have or have[-1] < planned_epochs(sub_cfg):
        log(f"{entry.name}: no {entry.init_key or 'checkpoint'} in the config; training a {entry.init_from} "
            f"first into {sub_dir}")
        sub = dataclasses.replace(opts, representation_type=entry.init_from, ckpt_dir=sub_dir,
                                  load_from_epoch=have[-1] if have else None, resume=False, pairs=None)
        train(sub, log=log)
    path = ckpt.find_checkpoint(sub_dir, prefer="last")
    log(f"{entry.name}: initialising from the {entry.init_from} {path}")
    return ckpt.load(path)


def train(opts: RunOptions, log: Callable[[str], None] = print, cfg: TrainingConfig | None = None):
    """Train ``opts.representation_type``; returns the :class:`~speechreps.train.trainer.TrainResult`.

    ``cfg``: the config to train with (the main job passes each seed's); default: the section of
    ``opts.config``. The config file also gives the section of an ``init_from`` type trained first.
    """
    from .config import load_config
    from .train import distributed
    from .trained import setup_device

    rep = opts.representation_type
    cfg = cfg if cfg is not None else load_config(opts.config, rep)
    if opts.seed is not None:
        cfg = dataclasses.replace(cfg, seed=opts.seed)
    device = setup_device(opts.device, opts.jobs)
    if not distributed.is_main():  # under DDP only rank 0 talks
        return _train_locked(opts, rep, cfg, device, lambda msg: None)
    from .train.checkpoint import folder_lock

    with folder_lock(opts.ckpt_dir):  # before any work: a second run into CKPT_DIR fails at once
        return _train_locked(opts, rep, cfg, device, log)


def _train_locked(opts: RunOptions, rep: str, cfg: TrainingConfig, device, log: Callable[[str], None]):
    from .checks import build_checked, check_training_data
    from .data.datasets import make_training_set
    from .data.packed import open_features
    from .errors import WarningCounter
    from .evaluate.scoring import make_validator, with_reference
    from .model_types import get
    from .train import checkpoint as ckpt
    from .train.trainer import Trainer, seed_everything

    ds = _load_dataset(opts)
    if ds.data.get("train") is not None:
        check_training_data(open_features(ds.utterances("train")), ds.utterances("train"), cfg.input_dim)
    load_from = ckpt.resume_point(opts.ckpt_dir, opts.resume, opts.load_from_epoch)
    init_state = _initial_state(opts, cfg, device, log) if load_from is None else None
    seed_everything(cfg.seed)
    model = build_checked(rep, cfg, f"config {opts.config} [{rep}]")
    if init_state is not None:
        model.init_from(init_state)
    warnings = WarningCounter(what="training pair", strict_hint=None)
    t0 = time.time()
    train_set = make_training_set(get(rep).batch_kind, cfg, ds, opts.pairs, warnings)
    warnings.report()
    log(f"{rep}: training on {train_set.describe} ({time.time() - t0:.1f} s to load) on {device}")
    validate = make_validator(ds, device, opts.jobs, opts.val_tokens) if cfg.validate_every > 0 else None
    if validate is not None and opts.reference_language:
        validate = with_reference(validate, make_validator(_load_dataset(opts, opts.reference_language),
                                                           device, opts.jobs, opts.val_tokens))
    trainer = Trainer(model, train_set, cfg, opts.ckpt_dir, rep, device=device, validate=validate,
                      progress=opts.progress, log=log, workers=opts.workers, log_every=opts.log_every)
    result = trainer.fit(load_from_epoch=load_from)
    if result.best_ap is not None:
        log(f"{rep}: best validation AP {result.best_ap:.4f} at epoch {result.best_epoch}")
    return result


def evaluate(opts: RunOptions, log: Callable[[str], None] = print) -> dict:
    """Same-different AP of the learned features (and of the input features) on validation and test words."""
    from .data.words import WordSet
    from .evaluate.scoring import score
    from .extract import resolve_layers, word_features
    from .fileio import write_json
    from .trained import setup_device

    device = setup_device(opts.device, opts.jobs)
    language = opts.extract_language or opts.language
    ds = _load_dataset(opts, language)
    model, path, epoch = _trained_model(opts, device)
    layers = resolve_layers(model, opts.layer or "all")
    report: dict[str, Any] = {"representation_type": opts.representation_type, "checkpoint": str(path),
                              "epoch": epoch, "language": language, "isolated": opts.isolated, "splits": {}}
    for split in ds.evaluation_splits():
        if not ds.has_word_tokens(split):
            log(f"evaluate: dataset {language!r} has no {split} word tokens; skipped")
            continue
        words = WordSet.load(ds, split, context=not opts.isolated)
        feats, counts = word_features(model, words.words, words.utterances, layers, opts.isolated, device,
                                      source=words.path)
        rows: dict[str, Any] = {}
        sets = [("input", "-", words.words)] + [(opts.representation_type, name, feats[name]) for name in layers]
        for feature, layer, features in sets:
            entry: dict[str, Any] = {"features": feature, "layer": layer, "dim": int(features[words.keys[0]].shape[1])}
            for distance in ("downsample", "dtw"):
                entry[distance] = score(features, words, distance, opts.jobs).to_dict()
            rows["input" if feature == "input" else layer] = entry
        report["splits"][split] = {"words": str(words.path), "n_tokens": len(words), "encoding": counts, "results": rows}
    if not report["splits"]:
        if not any(p is not None for p in ds.words.values()):
            ds.word_tokens("validation")  # raises: no word tokens at all (prepared without word alignments?)
        raise UserError(f"dataset {language!r} has no validation or test word tokens to evaluate on")
    out = opts.ckpt_dir / f"evaluation_{language}.json"
    write_json(out, report)
    log(format_evaluation(report))
    log(f"written {out}")
    return report


def format_evaluation(report: dict) -> str:
    """The evaluation as a plain table: AP / cross-speaker AP for downsampled and DTW distances."""
    def f(x):
        return "   -  " if x is None else f"{x:6.3f}"

    lines = [f"{report['representation_type']} (epoch {report['epoch']}) on {report['language']}",
             f"{'split':<11}{'features':<11}{'layer':<12}{'dim':>5}  {'AP ds':>6} {'APx ds':>6}  {'AP dtw':>6} {'APx dtw':>7}"]
    for split, s in report["splits"].items():
        for entry in s["results"].values():
            ds_, dtw = entry["downsample"], entry["dtw"]
            name = "mfcc/input" if entry["features"] == "input" else entry["features"]
            lines.append(f"{split:<11}{name:<11}{entry['layer']:<12}{entry['dim']:>5}  {f(ds_['ap'])} {f(ds_['ap_cross_speaker'])}"
                         f"  {f(dtw['ap'])} {f(dtw['ap_cross_speaker']):>7}")
    lines.append("AP: all same-word pairs positive; APx: cross-speaker positives only; ds: downsampled (10 frames), dtw: DTW")
    return "\n".join(lines)


def extract(opts: RunOptions, log: Callable[[str], None] = print) -> list[Path]:
    """Write the learned features of the requested splits of ``--extract-language`` (default ``--language``)."""
    from .extract import extract_split, resolve_layers
    from .trained import setup_device

    if opts.save_path is None:
        raise UserError("extract needs --save_path (the folder for the extracted features)")
    from .crash import remove_stale_temporaries

    device = setup_device(opts.device, opts.jobs)
    language = opts.extract_language or opts.language
    ds = _load_dataset(opts, language)
    model, path, epoch = _trained_model(opts, device)
    layers = resolve_layers(model, opts.layer)
    # what an extract of these files killed mid-write left (others' temporaries in that folder stay)
    remove_stale_temporaries(opts.save_path, (f".{language}_*_{opts.representation_type}_*.tmp.npz",),
                             temporaries=False)
    written = []
    for split in (["all"] if ds.zero_resource else opts.splits):  # a zero-resource dataset's one split
        if opts.utterances or not ds.has_word_tokens(split):
            utt_path = ds.data.get(split)
            if utt_path is None or not utt_path.is_file():
                log(f"extract: dataset {language!r} has no {split} word tokens or utterances; skipped")
                continue
            from .extract import extract_utterances

            paths = extract_utterances(model, opts.representation_type, ds, split, opts.save_path, layers, device)
            log(f"extract: {', '.join(map(str, paths))} (whole utterances)")
            written += paths
            continue
        paths, counts = extract_split(model, opts.representation_type, ds, split, opts.save_path, layers,
                                      opts.isolated, device)
        for p in paths:
            log(f"extract: {p} ({counts['in_context']} words in context, {counts['isolated']} isolated)")
        written += paths
    if not written:
        raise UserError(f"dataset {language!r} has no word tokens in the requested splits ({', '.join(opts.splits)})")
    from .fileio import write_json

    write_json(Path(opts.save_path) / f"{language}_{opts.representation_type}_extract.json",
               {"checkpoint": str(path), "epoch": epoch, "representation_type": opts.representation_type,
                "language": language, "layers": layers, "isolated": opts.isolated, "files": [str(p) for p in written]})
    return written


def run_all(opts: RunOptions, log: Callable[[str], None] = print) -> dict:
    """train, then evaluate, then extract (the trained model: best, else last; see the module doc)."""
    if opts.save_path is None:
        raise UserError("action 'all' needs --save_path (the folder for the extracted features)")
    result = train(opts, log)
    trained = dataclasses.replace(opts, load_from_epoch=None)  # --load-from-epoch was the resume point
    report = evaluate(trained, log)
    files = extract(trained, log)
    return {"train": result, "evaluate": report, "extract": files}


def run_action(action: str, opts: RunOptions, log: Callable[[str], None] = print) -> int:
    {"train": train, "evaluate": evaluate, "extract": extract, "all": run_all}[action](opts, log)
    return 0


def add_positionals(p: argparse.ArgumentParser) -> None:
    """TYPE CONFIG CKPT_DIR of ``speechreps train|evaluate|extract|all``."""
    from .model_types import names

    p.add_argument("representation_type", metavar="TYPE", help=f"one of {', '.join(names())}")
    p.add_argument("config_file", metavar="CONFIG", help="JSON config, one section per representation type")
    p.add_argument("checkpoint_path", metavar="CKPT_DIR", help="folder for checkpoints, metrics and evaluation")


def register_action(sub: argparse._SubParsersAction, action: str, help: str) -> None:
    """Add ``speechreps <action> TYPE CONFIG CKPT_DIR [options]``."""
    p = sub.add_parser(action, help=help, description=f"{help[0].upper()}{help[1:]}.")
    add_positionals(p)
    add_run_options(p, action)
    p.set_defaults(func=lambda args: run_action(action, options_from_args(args, action)))
