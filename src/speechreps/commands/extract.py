"""``speechreps extract TYPE CONFIG CKPT_DIR [options]``: write a trained model's features of the word tokens as .npz archives.

The options are shared with ``learn_speech_reps`` (see :mod:`speechreps.pipeline`).
"""

from __future__ import annotations

import argparse

ORDER = 50


def register(sub: argparse._SubParsersAction) -> None:
    from ..pipeline import register_action

    register_action(sub, "extract", "write a trained model's features of the word tokens as .npz archives")
