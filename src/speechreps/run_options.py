"""The options of ``speechreps train|evaluate|extract|all`` and ``learn_speech_reps``, defined once.

Each ``speechreps`` action lists only the options it uses (:data:`OPTION_ACTIONS`), so that its
``--help`` is a true list; ``learn_speech_reps`` takes its action as a positional argument and so
accepts them all. :func:`options_from_args` turns the parsed options into a :class:`RunOptions`.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError, check_jobs

ACTIONS = ("train", "evaluate", "extract", "all")
VAL_MAX_TOKENS = 300
LOG_EVERY_S = 30.0

#: The built-in corpus's English dataset (``speechreps run`` / ``prepare ... --name synth_en``): the
#: default ``--language`` of ``speechreps train|evaluate|extract|all``. ``learn_speech_reps`` keeps the
#: original's ``english_full``.
DEFAULT_LANGUAGE = "synth_en"
LEGACY_LANGUAGE = "english_full"

#: Which actions use each option (the rest ignore it): ``speechreps <action> --help`` lists only these.
OPTION_ACTIONS: dict[str, tuple[str, ...]] = {
    "--language": ACTIONS, "--load-from-epoch": ACTIONS, "--resume": ("train", "all"),
    "--save_path": ("extract", "all"), "--extract-language": ("evaluate", "extract", "all"),
    "--extract-training": ("extract", "all"), "--extract-validation": ("extract", "all"),
    "--extract-test": ("extract", "all"), "--data-paths": ACTIONS, "--pairs": ("train", "all"),
    "--layer": ("evaluate", "extract", "all"), "--isolated": ("evaluate", "extract", "all"),
    "--utterances": ("extract", "all"),
    "--checkpoint": ("evaluate", "extract", "all"), "--device": ACTIONS, "--jobs": ACTIONS,
    "--val-tokens": ("train", "all"), "--workers": ("train", "all"), "--no-progress": ("train", "all"),
    "--log-every": ("train", "all"),
}


def add_run_options(p: argparse.ArgumentParser, action: str | None = None, language: str = DEFAULT_LANGUAGE) -> None:
    """The options of ``action`` (train / evaluate / extract / all; None: every option, for
    ``learn_speech_reps``, whose action is a positional argument), defined once for both CLIs."""
    def add(flag: str, *names: str, **kw) -> None:
        if action is None or action in OPTION_ACTIONS[flag]:
            if action is not None:  # "train: resume ..." -> "resume ..." in that action's own help
                kw["help"] = re.sub(r"^(train|evaluate / extract): ", "", kw["help"])
            p.add_argument(flag, *names, **kw)

    add("--language", default=language,
        help={"train": "dataset name in data_paths.json to train on",
              "evaluate": "dataset name in data_paths.json the model was trained on, and evaluated on "
                          "unless --eval-language",
              "extract": "dataset name in data_paths.json the model was trained on, and extracted "
                         "unless --extract-language"}.get(action, "dataset name in data_paths.json to train "
                                                                  "(and evaluate) on") + f" (default: {language})")
    add("--load-from-epoch", type=int, default=None, metavar="N",
        help={"train": "resume from CKPT_DIR/epoch_N.pt", "evaluate": "evaluate CKPT_DIR/epoch_N.pt",
              "extract": "extract with CKPT_DIR/epoch_N.pt"}.get(
            action, "train: resume from CKPT_DIR/epoch_N.pt; evaluate/extract: use that checkpoint"))
    add("--resume", action="store_true", help="train: resume from the newest CKPT_DIR/epoch_N.pt if any")
    add("--save_path", "--save-path", dest="save_path", default=None, metavar="P",
        help="folder for extracted features (required for extract and all)")
    if action == "evaluate":
        p.add_argument("--eval-language", "--extract-language", dest="extract_language", default=None, metavar="L",
                       help="dataset to evaluate on (default: --language)")
    else:
        add("--extract-language", default=None, metavar="L",
            help="dataset to extract (and evaluate) features of (default: --language)")
    add("--extract-training", action="store_true", help="extract the training split")
    add("--extract-validation", action="store_true", help="extract the validation split")
    add("--extract-test", action="store_true", help="extract the test split (none of the three: all three)")
    add("--data-paths", default=None, metavar="FILE",
        help="data_paths.json (default: ./data_paths.json, else ./data/data_paths.json, else ./config/data_paths.json)")
    add("--pairs", default=None, metavar="FILE",
        help="capc / frame_cae: term-pair file to train on (discovered terms; frames into the training utterances)")
    add("--layer", default=None,
        help="layer to evaluate / extract: a layer name, 'default' or 'all' "
             "(default: all layers for evaluate, the model's default layer for extract)")
    add("--utterances", action="store_true",
        help="extract: whole utterances (keys of the utterance archive) instead of word tokens, e.g. as "
             "input for speechreps discover; splits without word tokens get this anyway")
    add("--isolated", action="store_true",
        help="encode word tokens on their own instead of in their utterance's context")
    add("--checkpoint", choices=("best", "last"), default="best",
        help="evaluate / extract: which checkpoint without --load-from-epoch (default: best, else last)")
    add("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    add("--jobs", type=int, default=None, help="CPU threads for torch and for the DTW evaluation")
    add("--val-tokens", type=int, default=VAL_MAX_TOKENS, metavar="N",
        help=f"train: validation AP (picks best.pt) by DTW on a fixed subset of N validation tokens "
             f"(default {VAL_MAX_TOKENS}); 0: downsampled AP on all of them (fast)")
    add("--workers", type=int, default=0, metavar="N",
        help="train: data-loader processes that collate batches (default 0: in the training process)")
    if action is None or action in OPTION_ACTIONS["--no-progress"]:
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
    else:  # evaluate / extract draw no bars: accepted (scripts pass it to every action), not listed
        p.add_argument("--no-progress", action="store_true", help=argparse.SUPPRESS)
    add("--log-every", type=float, default=LOG_EVERY_S, metavar="S",
        help=f"train: without a progress bar (output not a terminal, or --no-progress), a line with the "
             f"rate and the time left every S seconds within an epoch (default {LOG_EVERY_S:g}; 0: never)")


# ---------------------------------------------------------------------------------------------
# Parsed options -> RunOptions

SPLIT_FLAGS = {"train": "extract_training", "validation": "extract_validation", "test": "extract_test"}


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
    seed: int | None = None  # overrides the config's seed (and that of a type trained first to initialise it)
    utterances: bool = False
    log_every: float = LOG_EVERY_S


def options_from_args(args: argparse.Namespace, action: str) -> RunOptions:
    """Check the parsed arguments (one-line UserErrors) and turn them into :class:`RunOptions`."""
    from .model_types import get

    rep = get(args.representation_type).name
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
