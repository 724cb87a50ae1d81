"""``speechreps train TYPE CONFIG CKPT_DIR [options]``: train a representation model (checkpoints, metrics, best by validation AP).

The options are shared with ``learn_speech_reps`` (see :mod:`speechreps.pipeline`).
"""

from __future__ import annotations

import argparse

ORDER = 30


def register(sub: argparse._SubParsersAction) -> None:
    from ..pipeline import register_action

    register_action(sub, "train", "train a representation model (checkpoints, metrics, best by validation AP)")
