"""A trained model back from its checkpoint folder, and the device to run it on.

Every reader of a trained model (evaluate, extract, the main job's scoring and per-layer rows, an AWE
model's frame-level input, the zero-resource track) loads it here: the checkpoint chosen by epoch, or
``best.pt`` else ``last.pt``; the model rebuilt from the config stored in the checkpoint (a config
file only for checkpoints that hold none), through the type registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import UserError


def setup_device(device: str | None = None, jobs: int | None = None):
    """The torch device to use (``device``, else CUDA when present), with ``jobs`` CPU threads; under
    torchrun the process group is joined and each rank gets its own GPU (see train/distributed.py)."""
    import torch

    from .train import distributed
    from .train.trainer import default_device

    if jobs:
        torch.set_num_threads(jobs)
    dev = default_device(device)
    distributed.init_from_env(dev)
    return distributed.device_for_rank(dev)


def load_trained_model(ckpt_dir: str | os.PathLike, rep_type: str | None = None, *, epoch: int | None = None,
                       prefer: str = "best", config: str | os.PathLike | None = None, device: Any = None):
    """``(model in eval mode, checkpoint path, epoch)`` of the checkpoint folder ``ckpt_dir``.

    ``rep_type``: the type expected (a checkpoint of another type is a one-line error); None: the one the
    checkpoint names. ``config``: the config file read when the checkpoint stores no config.
    """
    from .checks import build_checked
    from .config import config_from_dict, load_config
    from .train import checkpoint as ckpt

    path = ckpt.find_checkpoint(Path(ckpt_dir), epoch=epoch, prefer=prefer)
    state = ckpt.load(path, map_location="cpu")
    saved = state.get("representation_type")
    if rep_type is None:
        if not saved:
            raise UserError(f"checkpoint {path} does not say which representation type it holds")
        rep_type = saved
    elif saved not in (None, rep_type):
        raise UserError(f"checkpoint {path} holds a {saved!r} model, not {rep_type!r}")
    if state.get("config"):
        cfg = config_from_dict(state["config"], rep_type, source=str(path))
    elif config is not None:
        cfg = load_config(config, rep_type)
    else:
        raise UserError(f"checkpoint {path} stores no config: give the config file it was trained with")
    model = build_checked(rep_type, cfg, f"checkpoint {path}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"checkpoint {path} does not fit a {rep_type} model: {str(exc).splitlines()[0]}") from None
    model.to(device or "cpu").eval()
    return model, path, int(state.get("epoch", 0))
