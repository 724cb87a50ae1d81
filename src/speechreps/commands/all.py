"""``speechreps all TYPE CONFIG CKPT_DIR [options]``: train, evaluate and extract in one go.

The options are shared with ``learn_speech_reps`` (see :mod:`speechreps.pipeline`).
"""

from __future__ import annotations

import argparse

ORDER = 60


def register(sub: argparse._SubParsersAction) -> None:
    from ..pipeline import register_action

    register_action(sub, "all", "train, evaluate and extract in one go")
