"""``speechreps evaluate TYPE CONFIG CKPT_DIR [options]``: same-different AP of a trained model's features beside the input features'.

The options are shared with ``learn_speech_reps`` (see :mod:`speechreps.pipeline`).
"""

from __future__ import annotations

import argparse

ORDER = 40


def register(sub: argparse._SubParsersAction) -> None:
    from ..pipeline import register_action

    register_action(sub, "evaluate", "same-different AP of a trained model's features beside the input features'")
