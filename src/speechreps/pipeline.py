"""train / evaluate / extract / all as functions, and the command-line options both CLIs share.

``speechreps train|evaluate|extract|all TYPE CONFIG CKPT_DIR [options]`` and the original
``learn_speech_reps TYPE ACTION CONFIG CKPT_DIR [SAVE_PATH] [options]`` both build a
:class:`RunOptions` from the options defined once here (:func:`add_run_options`) and call
:func:`run_action`.

Behaviour worth knowing:

- ``speechreps <action> --help`` lists only the options that action uses (:data:`OPTION_ACTIONS`);
  ``learn_speech_reps`` takes them all. ``--language`` defaults to the built-in corpus's
  ``synth_en`` for ``speechreps`` and to the original's ``english_full`` for ``learn_speech_reps``.

- ``data_paths.json``: ``--data-paths FILE``; by default ``./data_paths.json``, else
  ``./data/data_paths.json``, else ``./config/data_paths.json`` (where the original kept it).
- ``train`` starts from scratch, or with ``--load-from-epoch N`` resumes from ``CKPT_DIR/epoch_N.pt``
  (``--resume``: from the newest saved epoch). ``frame_cae`` starts from a trained frame AE:
  the config's ``ae_checkpoint`` (file or folder), else one trained first, with the config's
  ``frame_ae`` section, into ``CKPT_DIR/frame_ae/`` (reused when already trained there).
- validation during training (``validate_every``): DTW same-different AP of the default layer on a
  fixed random subset of at most ``VAL_MAX_TOKENS`` (300) validation word tokens, encoded in context
  (DTW over all pairs of a full validation set costs minutes per evaluation on a CPU); it picks
  ``best.pt``. The downsampled AP over all validation tokens is logged beside it.
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import UserError, check_jobs
from .run_options import ACTIONS, DEFAULT_LANGUAGE, LOG_EVERY_S, VAL_MAX_TOKENS, add_run_options

REPRESENTATION_TYPES = ("apc", "cpc", "capc", "frame_ae", "frame_cae")
SPLIT_FLAGS = {"train": "extract_training", "validation": "extract_validation", "test": "extract_test"}


# ---------------------------------------------------------------------------------------------
# Options


@dataclass
class RunOptions:
    representation_type: str
    config: Path
    ckpt_dir: Path
    language: str = DEFAULT_LANGUAGE
    load_from_epoch: int | None = None
    resume: bool = False
    save_path: Path | None = None
    extract_language: str | None = None
    splits: list[str] = field(default_factory=lambda: ["train", "validation", "test"])
    data_paths: Path | None = None
    pairs: Path | None = None
    layer: str | None = None
    isolated: bool = False
    checkpoint: str = "best"
    device: str | None = None
    jobs: int | None = None
    progress: bool = True
    val_tokens: int = VAL_MAX_TOKENS
    workers: int = 0
    # a second dataset whose validation AP is only logged (as ref_val_ap...), never used to pick best.pt:
    # the zero-resource track picks by discovered terms and records what gold labels would have picked
    reference_language: str | None = None
    utterances: bool = False
    log_every: float = LOG_EVERY_S


def options_from_args(args: argparse.Namespace, action: str) -> RunOptions:
    """Check the parsed arguments (one-line UserErrors) and turn them into :class:`RunOptions`."""
    rep = args.representation_type
    if rep not in REPRESENTATION_TYPES:
        raise UserError(f"unknown representation type {rep!r} (choose from {', '.join(REPRESENTATION_TYPES)})")
    if action not in ACTIONS:
        raise UserError(f"unknown action {action!r} (choose from {', '.join(ACTIONS)})")
    config = Path(args.config_file)
    if not config.is_file():
        raise UserError(f"config file {config} does not exist")
    if action in ("extract", "all") and not getattr(args, "save_path", None):
        raise UserError(f"action {action!r} needs --save_path (the folder for the extracted features)")
    if args.load_from_epoch is not None and args.load_from_epoch < 0:
        raise UserError(f"--load-from-epoch must be >= 0, got {args.load_from_epoch}")
    val_tokens = getattr(args, "val_tokens", VAL_MAX_TOKENS)
    if val_tokens < 0:
        raise UserError(f"--val-tokens must be >= 0, got {val_tokens}")
    workers = getattr(args, "workers", 0)
    if workers < 0:
        raise UserError(f"--workers must be >= 0, got {workers}")
    check_jobs(args.jobs)
    log_every = getattr(args, "log_every", LOG_EVERY_S)
    if log_every < 0:
        raise UserError(f"--log-every must be >= 0, got {log_every}")
    splits = [s for s, flag in SPLIT_FLAGS.items() if getattr(args, flag, False)] or list(SPLIT_FLAGS)
    save_path, pairs = getattr(args, "save_path", None), getattr(args, "pairs", None)
    return RunOptions(
        representation_type=rep, config=config, ckpt_dir=Path(args.checkpoint_path), language=args.language,
        load_from_epoch=args.load_from_epoch, resume=getattr(args, "resume", False),
        save_path=Path(save_path) if save_path else None, extract_language=getattr(args, "extract_language", None),
        splits=splits, data_paths=resolve_data_paths(args.data_paths),
        pairs=Path(pairs) if pairs else None, layer=getattr(args, "layer", None),
        isolated=getattr(args, "isolated", False), checkpoint=getattr(args, "checkpoint", "best"),
        device=args.device, jobs=args.jobs, progress=not getattr(args, "no_progress", False),
        val_tokens=val_tokens, workers=workers, log_every=log_every,
        utterances=getattr(args, "utterances", False),
    )


def resolve_data_paths(given: str | Path | None) -> Path:
    """``given``, else the first of ./data_paths.json, ./data/data_paths.json, ./config/data_paths.json."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise UserError(f"--data-paths {path} does not exist")
        return path
    for candidate in (Path("data_paths.json"), Path("data") / "data_paths.json", Path("config") / "data_paths.json"):
        if candidate.is_file():
            return candidate
    raise UserError("no data_paths.json in ., ./data or ./config: give --data-paths FILE (speechreps prepare writes one)")


# ---------------------------------------------------------------------------------------------
# Actions


def _setup(opts: RunOptions):
    import torch

    from .train import distributed
    from .train.trainer import default_device

    if opts.jobs:
        torch.set_num_threads(opts.jobs)
    device = default_device(opts.device)
    distributed.init_from_env(device)  # under torchrun: join the process group (see train/distributed.py)
    return distributed.device_for_rank(device)


def _load_dataset(opts: RunOptions, name: str | None = None):
    from .data.registry import load_dataset

    return load_dataset(opts.data_paths, name or opts.language)


def validation_subset(n_tokens: int, max_tokens: int = VAL_MAX_TOKENS, seed: int = 0):
    """Indices of the fixed random subset of at most ``max_tokens`` of ``n_tokens`` validation tokens
    that training validation scores by DTW (all of them when there are fewer; sorted)."""
    import numpy as np

    if 0 < max_tokens < n_tokens:
        return np.sort(np.random.default_rng(seed).choice(n_tokens, size=max_tokens, replace=False))
    return np.arange(n_tokens)


def make_validator(ds, model, device, n_jobs: int | None = None, max_tokens: int = VAL_MAX_TOKENS, seed: int = 0
                   ) -> Callable[[Any], dict[str, float]] | None:
    """A function ``model -> {"val_ap": ..., ...}`` on the validation word tokens, or None without them.

    ``val_ap`` (which picks ``best.pt``) is the DTW same-different AP of the model's default layer on
    a fixed random subset of at most ``max_tokens`` validation tokens (the same subset every time;
    all tokens when there are fewer): DTW over all pairs of a full validation set at 256-512
    dimensions costs minutes per evaluation on a CPU. ``val_ap_downsample`` is the downsampled AP
    over all validation tokens (cheap), ``val_ap_cross_speaker`` the DTW cross-speaker AP of the subset.
    ``max_tokens=0``: no DTW; ``val_ap`` is the downsampled AP over all tokens.
    """

    from .data.archive import load_archive
    from .evaluate.samediff import word_tokens

    if not ds.has_word_tokens("validation"):
        return None
    words_path = ds.word_tokens("validation")
    words = load_archive(words_path)
    _, labels, speakers, keys = word_tokens(words, ds.speaker_rule(words_path))
    words = {k: words[k] for k in keys}
    utt_path = ds.data.get("validation")
    utterances = load_archive(utt_path) if utt_path is not None and utt_path.is_file() and utt_path != words_path else None
    subset = validation_subset(len(keys), max_tokens, seed)

    def validate(m) -> dict[str, float]:
        from .extract import word_features

        feats, _ = word_features(m, words, utterances, [m.default_layer], device=device)
        segs = [feats[m.default_layer][k] for k in keys]
        out: dict[str, float] = {}
        try:
            if max_tokens <= 0:
                raise UserError("no DTW subset")
            res = _samediff([segs[i] for i in subset], [labels[i] for i in subset], [speakers[i] for i in subset],
                            "dtw", n_jobs)
            out["val_ap"] = res.ap
            if res.ap_cross_speaker is not None:
                out["val_ap_cross_speaker"] = res.ap_cross_speaker
        except UserError:  # the subset holds no two tokens of one word: fall back to all tokens, downsampled
            pass
        out["val_ap_downsample"] = _samediff(segs, labels, speakers, "downsample", n_jobs).ap
        out.setdefault("val_ap", out["val_ap_downsample"])
        return out

    return validate


def _samediff(segments, labels, speakers, distance: str, n_jobs: int | None):
    from .evaluate.samediff import samediff

    return samediff(segments, labels, speakers, distance=distance, n_jobs=n_jobs)


def _with_reference(validate: Callable, reference: Callable | None) -> Callable:
    """``validate``'s metrics plus ``reference``'s under ``ref_`` names (logged, never deciding best.pt)."""
    if reference is None:
        return validate
    return lambda m: {**validate(m), **{f"ref_{k}": v for k, v in reference(m).items()}}


def _frame_ae_for(opts: RunOptions, cfg, device, log: Callable[[str], None]) -> dict:
    """The frame AE state a frame CAE starts from: cfg.ae_checkpoint, else trained into CKPT_DIR/frame_ae."""
    from .config import load_config, planned_epochs
    from .train import checkpoint as ckpt

    if cfg.ae_checkpoint:
        p = Path(cfg.ae_checkpoint)
        path = ckpt.find_checkpoint(p, prefer="last") if p.is_dir() else p
        log(f"frame_cae: initialising from the frame AE {path}")
        return ckpt.load(path)
    ae_dir = opts.ckpt_dir / "frame_ae"
    try:
        ae_cfg = load_config(opts.config, "frame_ae")
    except UserError as exc:
        raise UserError(f"frame_cae starts from a trained frame AE: set ae_checkpoint in [frame_cae] or add a "
                        f"[frame_ae] section to train one ({exc})") from None
    have = ckpt.saved_epochs(ae_dir)
    if not have or have[-1] < planned_epochs(ae_cfg):
        log(f"frame_cae: no ae_checkpoint in the config; training a frame AE first into {ae_dir}")
        sub = RunOptions(**{**opts.__dict__, "representation_type": "frame_ae", "ckpt_dir": ae_dir,
                            "load_from_epoch": have[-1] if have else None, "resume": False, "pairs": None})
        train(sub, log=log)
    path = ckpt.find_checkpoint(ae_dir, prefer="last")
    log(f"frame_cae: initialising from the frame AE {path}")
    return ckpt.load(path)


def train(opts: RunOptions, log: Callable[[str], None] = print):
    """Train ``opts.representation_type``; returns the :class:`~speechreps.train.trainer.TrainResult`."""
    from .config import load_config
    from .train import distributed

    rep = opts.representation_type
    cfg = load_config(opts.config, rep)
    device = _setup(opts)
    if not distributed.is_main():  # under DDP only rank 0 talks
        log = lambda msg: None  # noqa: E731
        return _train_locked(opts, rep, cfg, device, log)
    from .train.trainer import checkpoint_lock

    with checkpoint_lock(opts.ckpt_dir):  # before any work: a second run into CKPT_DIR fails at once
        return _train_locked(opts, rep, cfg, device, log)


def _train_locked(opts: RunOptions, rep: str, cfg, device, log: Callable[[str], None]):
    from .checks import build_checked, check_training_data
    from .data.datasets import make_training_set
    from .data.packed import open_features
    from .errors import WarningCounter
    from .train import checkpoint as ckpt
    from .train.trainer import Trainer, seed_everything

    ds = _load_dataset(opts)
    if ds.data.get("train") is not None:
        check_training_data(open_features(ds.utterances("train")), ds.utterances("train"), cfg.input_dim)
    load_from = opts.load_from_epoch
    if load_from is None and opts.resume:
        have = ckpt.saved_epochs(opts.ckpt_dir)
        load_from = have[-1] if have else None
    if load_from is not None:
        ckpt.find_checkpoint(opts.ckpt_dir, epoch=load_from)  # fail early when it is missing
    ae_state = _frame_ae_for(opts, cfg, device, log) if rep == "frame_cae" and load_from is None else None
    seed_everything(cfg.seed)
    model = build_checked(rep, cfg, f"config {opts.config} [{rep}]")
    if ae_state is not None:
        model.init_from(ae_state)
    warnings = WarningCounter(what="training pair", strict_hint=None)
    t0 = time.time()
    train_set = make_training_set(rep, model.batch_kind, cfg, ds, opts.pairs, warnings)
    warnings.report()
    log(f"{rep}: training on {train_set.describe} ({time.time() - t0:.1f} s to load) on {device}")
    validate = make_validator(ds, model, device, opts.jobs, opts.val_tokens) if cfg.validate_every > 0 else None
    if validate is not None and opts.reference_language:
        validate = _with_reference(validate, make_validator(_load_dataset(opts, opts.reference_language), model,
                                                            device, opts.jobs, opts.val_tokens))
    trainer = Trainer(model, train_set, cfg, opts.ckpt_dir, rep, device=device, validate=validate,
                      progress=opts.progress, log=log, workers=opts.workers, log_every=opts.log_every)
    result = trainer.fit(load_from_epoch=load_from)
    if result.best_ap is not None:
        log(f"{rep}: best validation AP {result.best_ap:.4f} at epoch {result.best_epoch}")
    return result


def load_trained_model(opts: RunOptions, device=None):
    """The model of ``opts.ckpt_dir`` (epoch / best / last, see module doc), in eval mode; and the checkpoint path."""
    from .checks import build_checked
    from .config import config_from_dict, load_config
    from .train import checkpoint as ckpt

    rep = opts.representation_type
    path = ckpt.find_checkpoint(opts.ckpt_dir, epoch=opts.load_from_epoch, prefer=opts.checkpoint)
    state = ckpt.load(path, map_location="cpu")
    if state.get("representation_type") not in (None, rep):
        raise UserError(f"checkpoint {path} holds a {state['representation_type']!r} model, not {rep!r}")
    cfg = config_from_dict(state["config"], rep, source=str(path)) if state.get("config") else load_config(opts.config, rep)
    model = build_checked(rep, cfg, f"checkpoint {path}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"checkpoint {path} does not fit a {rep} model: {str(exc).splitlines()[0]}") from None
    model.to(device or "cpu").eval()
    return model, path, int(state.get("epoch", 0))


def evaluate(opts: RunOptions, log: Callable[[str], None] = print) -> dict:
    """Same-different AP of the learned features (and of the input features) on validation and test words."""
    from .data.archive import load_archive
    from .evaluate.samediff import word_tokens
    from .extract import resolve_layers, word_features
    from .fileio import write_json

    device = _setup(opts)
    language = opts.extract_language or opts.language
    ds = _load_dataset(opts, language)
    model, path, epoch = load_trained_model(opts, device)
    layers = resolve_layers(model, opts.layer or "all")
    report: dict[str, Any] = {"representation_type": opts.representation_type, "checkpoint": str(path),
                              "epoch": epoch, "language": language, "isolated": opts.isolated, "splits": {}}
    for split in ds.evaluation_splits():
        if not ds.has_word_tokens(split):
            log(f"evaluate: dataset {language!r} has no {split} word tokens; skipped")
            continue
        words_path = ds.word_tokens(split)
        words = load_archive(words_path)
        segments, labels, speakers, keys = word_tokens(words, ds.speaker_rule(words_path))
        words = {k: words[k] for k in keys}
        utt_path = ds.data.get(split)
        utterances = None
        if not opts.isolated and utt_path is not None and utt_path.is_file() and utt_path != words_path:
            utterances = load_archive(utt_path)
        feats, counts = word_features(model, words, utterances, layers, opts.isolated, device, source=words_path)
        rows: dict[str, Any] = {}
        sets = [("input", "-", segments)] + [(opts.representation_type, name, [feats[name][k] for k in keys]) for name in layers]
        for feature, layer, segs in sets:
            entry: dict[str, Any] = {"features": feature, "layer": layer, "dim": int(segs[0].shape[1])}
            for distance in ("downsample", "dtw"):
                entry[distance] = _samediff(segs, labels, speakers, distance, opts.jobs).to_dict()
            rows["input" if feature == "input" else layer] = entry
        report["splits"][split] = {"words": str(words_path), "n_tokens": len(keys), "encoding": counts, "results": rows}
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

    if opts.save_path is None:
        raise UserError("extract needs --save_path (the folder for the extracted features)")
    from .crash import remove_stale_temporaries

    device = _setup(opts)
    language = opts.extract_language or opts.language
    ds = _load_dataset(opts, language)
    model, path, epoch = load_trained_model(opts, device)
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
    import dataclasses

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
    p.add_argument("representation_type", metavar="TYPE", help=f"one of {', '.join(REPRESENTATION_TYPES)}")
    p.add_argument("config_file", metavar="CONFIG", help="JSON config, one section per representation type")
    p.add_argument("checkpoint_path", metavar="CKPT_DIR", help="folder for checkpoints, metrics and evaluation")


def register_action(sub: argparse._SubParsersAction, action: str, help: str) -> None:
    """Add ``speechreps <action> TYPE CONFIG CKPT_DIR [options]``."""
    p = sub.add_parser(action, help=help, description=f"{help[0].upper()}{help[1:]}.")
    add_positionals(p)
    add_run_options(p, action)
    p.set_defaults(func=lambda args: run_action(action, options_from_args(args, action)))
