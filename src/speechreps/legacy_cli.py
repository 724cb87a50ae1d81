"""``learn_speech_reps``: the original tool's command line, kept working.

``learn_speech_reps <representation_type> <action> <config_file> <checkpoint_path> [save_path] [options]``

- representation_type: apc, cpc, capc, frame_cae (and frame_ae); action: train, evaluate, extract, all;
- options as the original: ``--language`` (default english_full), ``--load-from-epoch N``,
  ``--save_path P`` (required for extract / all), ``--extract-language L``, ``--extract-training``,
  ``--extract-validation``, ``--extract-test`` (none of the three = all three);
- the save path may also come as a fifth positional argument, as in the original README's example
  ``learn_speech_reps cpc all config/config.json CKPT OUT``;
- plus the options of ``speechreps train|evaluate|extract|all`` (``--data-paths``, ``--device``, ``--jobs``,
  ``--pairs``, ``--layer``, ``--isolated``, ...), defined once in :mod:`speechreps.pipeline`.
"""

from __future__ import annotations

import argparse
import sys

from .errors import UserError
from .model_types import names
from .pipeline import ACTIONS, add_run_options, options_from_args, run_action
from .run_options import LEGACY_LANGUAGE


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="learn_speech_reps",
        description="Train, evaluate and extract self-supervised speech representations (the original interface).",
    )
    p.add_argument("representation_type", help=f"one of {', '.join(names())}")
    p.add_argument("action", help=f"one of {', '.join(ACTIONS)}")
    p.add_argument("config_file", help="JSON config, one section per representation type")
    p.add_argument("checkpoint_path", help="folder where checkpoints are saved or loaded")
    p.add_argument("save_path_positional", nargs="?", default=None, metavar="save_path",
                   help="same as --save_path (the original README's example passes it here)")
    add_run_options(p, None, language=LEGACY_LANGUAGE)  # every option: the action is a positional here
    p.set_defaults(func=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    if args.save_path_positional is not None:
        if args.save_path and args.save_path != args.save_path_positional:
            raise UserError(f"two save paths given: {args.save_path_positional!r} and --save_path {args.save_path!r}")
        args.save_path = args.save_path_positional
    opts = options_from_args(args, args.action)
    return run_action(args.action, opts)


def main(argv: list[str] | None = None) -> int:
    from .cli import run_cli

    return run_cli(build_parser(), argv, "learn_speech_reps")


if __name__ == "__main__":
    sys.exit(main())
