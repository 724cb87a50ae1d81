"""Checkpoints: everything needed to resume a run bit-for-bit, written atomically.

Files in the checkpoint folder ``CKPT_DIR``:

- ``epoch_<N>.pt``: the state after epoch N (every ``checkpoint_interval`` epochs and at the end);
- ``last.pt``: the newest checkpoint (a hard link to the newest ``epoch_<N>.pt``, a copy where
  links are not possible);
- ``best.pt``: the checkpoint with the best validation AP so far (when validating);
- ``config.json``: the resolved config of the run.

A checkpoint is a dict: ``model``, ``optimizer``, ``scheduler``, ``scaler`` (AMP), ``sampler``,
``rng`` (torch / CUDA / NumPy / Python states), ``epoch``, ``config`` (the resolved config
section, a plain dict), ``representation_type``, ``best`` (best validation AP and its epoch),
``versions`` (speechreps, torch, Python). Every file is written to a temporary name and renamed, so
a kill mid-write leaves the previous checkpoint intact and no partial file under a real name.

Loading never runs code from the file. A checkpoint holds only tensors, numbers, strings, lists and
dicts (the NumPy generator state is stored as a tensor), and is read with ``torch.load(...,
weights_only=True)``, whose unpickler refuses every other class or function. Checkpoints written by
speechreps 0.1.0 before this rule also hold NumPy arrays (the legacy NumPy RNG state) and a
``TorchVersion`` string; exactly those four data-only classes are allowed on top, so old
checkpoints load unchanged. A file that names anything else (``os.system``, ``builtins.exec``, ...)
is refused with a one-line error before any of it is built.

Order of the writes after an epoch: the ``metrics.jsonl`` row, then ``epoch_<N>.pt``, then ``best.pt``
(if it improved), then ``last.pt``. A kill between any two leaves a state the next run repairs
(:func:`repair`, under the folder's lock): a metrics row without its checkpoint is dropped on resume
(that epoch is trained again), and links that lag behind the newest ``epoch_<N>.pt`` are relinked.
Readers (``evaluate``, ``extract``) resolve lagging links the same way without writing
(:func:`find_checkpoint`).
"""

from __future__ import annotations

import os
import pickle
import platform
import random
import re
import shutil
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import UserError
from ..fileio import atomic_path

_EPOCH = re.compile(r"^epoch_(\d+)\.pt$")


def epoch_path(ckpt_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(ckpt_dir) / f"epoch_{int(epoch)}.pt"


def versions() -> dict[str, str]:
    # str(): torch.__version__ is a TorchVersion, a class the safe loader would have to allow
    return {"speechreps": __version__, "torch": str(torch.__version__), "python": platform.python_version()}


def _numpy_state() -> dict[str, Any]:
    """NumPy's legacy global RNG state as plain data (its key array as an int64 tensor)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_state(state: Any) -> None:
    if isinstance(state, dict):  # this module's plain-data form
        keys = np.asarray(state["keys"].numpy(), dtype=np.uint32)
        state = (state["kind"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    np.random.set_state(state)  # or the tuple of checkpoints written before the plain-data form


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": _numpy_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    _set_numpy_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename (atomic)."""
    path = Path(path)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)
    return path


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Make ``dst`` the same file as ``src``, atomically (hard link under a temp name, then rename)."""
    src, dst = Path(src), Path(dst)
    with atomic_path(dst, suffix=".pt") as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def _legacy_data_classes() -> list[Any]:
    """The data-only classes that checkpoints written before the plain-data rule contain."""
    from torch.torch_version import TorchVersion

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, TorchVersion, *_numpy_dtype_classes()]


def _numpy_dtype_classes() -> list[type]:
    """NumPy 2's per-dtype classes (``numpy.dtypes.UInt32DType``, ...), which some pickles name."""
    dtypes = getattr(np, "dtypes", None)
    return [c for c in vars(dtypes).values() if isinstance(c, type) and issubclass(c, np.dtype)] if dtypes else []


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint without running code from it (see the module docstring).

    A missing, unreadable or unsafe file is a :class:`UserError`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(_legacy_data_classes()):
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if (reason := _unsafe_reason(exc)) is not None:
            raise UserError(f"checkpoint {path} is refused: {reason}; loading it could run code, so speechreps "
                            "never does (only tensors, numbers, strings, lists and dicts are read)") from None
        raise UserError(f"checkpoint {path} cannot be read: {_first_line(exc)}") from None
    except Exception as exc:  # truncated / not a checkpoint
        raise UserError(f"checkpoint {path} cannot be read: {_first_line(exc)}") from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise UserError(f"{path} is not a speechreps checkpoint")
    return obj


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _unsafe_reason(exc: Exception) -> str | None:
    """The line of torch's weights-only refusal that names a class or function it would not build.

    ``None`` when the refusal names none (random bytes, a truncated file): that file is unreadable, not unsafe.
    """
    for line in str(exc).splitlines():
        line = line.strip()
        if "GLOBAL" in line:
            return line.rstrip(".")
    return None

def _same_file(a: Path, b: Path) -> bool:
    """The same file: one hard link (cheap), or equal bytes (where links were not possible)."""
    import filecmp

    if not (a.is_file() and b.is_file()):
        return False
    return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)


def expected_links(ckpt_dir: str | os.PathLike) -> dict[str, Path]:
    """What ``last.pt`` and ``best.pt`` must be, judged by the newest ``epoch_<N>.pt``, where a kill left them behind.

    Empty when the links are consistent (``last.pt`` is the newest epoch file: it is linked last) or
    there is no epoch file. Otherwise ``last.pt`` -> the newest file, and ``best.pt`` -> it too when
    that checkpoint records itself as the best epoch.
    """
    d = Path(ckpt_dir)
    have = saved_epochs(d)
    if not have:
        return {}
    newest = epoch_path(d, have[-1])
    if _same_file(d / "last.pt", newest):
        return {}
    links = {"last.pt": newest}
    try:
        best = load(newest).get("best") or {}
    except UserError:
        return {}  # an unreadable newest file: leave the links alone, loading it will say why
    if best.get("epoch") == have[-1]:
        links["best.pt"] = newest
    return links


def repair(ckpt_dir: str | os.PathLike) -> list[str]:
    """Relink ``last.pt`` / ``best.pt`` that a kill left behind; returns the names relinked (hold the lock)."""
    d = Path(ckpt_dir)
    fixed = []
    for name, src in expected_links(d).items():
        if not _same_file(d / name, src):
            link_or_copy(src, d / name)
            fixed.append(name)
    return fixed


def saved_epochs(ckpt_dir: str | os.PathLike) -> list[int]:
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    return sorted(int(m[1]) for p in d.iterdir() if (m := _EPOCH.match(p.name)))


def resume_point(ckpt_dir: str | os.PathLike, resume: bool = False, load_from_epoch: int | None = None) -> int | None:
    """The epoch a training run starts from: ``load_from_epoch`` when given, else (``resume``) the newest
    saved epoch, else ``None`` (from scratch). A named epoch that is missing is an error now, before any
    data is loaded. Every trainer front end (``train``, ``awe train``, the main job) resumes through this."""
    if load_from_epoch is None and resume:
        have = saved_epochs(ckpt_dir)
        load_from_epoch = have[-1] if have else None
    if load_from_epoch is not None:
        find_checkpoint(ckpt_dir, epoch=load_from_epoch)
    return load_from_epoch


def find_checkpoint(ckpt_dir: str | os.PathLike, epoch: int | None = None, prefer: str = "best") -> Path:
    """``epoch_<epoch>.pt`` when ``epoch`` is given; else ``best.pt`` (``prefer="best"``) or ``last.pt``.

    Falls back from best to last to the highest ``epoch_<N>.pt``; nothing found is a UserError.
    """
    d = Path(ckpt_dir)
    if epoch is not None:
        p = epoch_path(d, epoch)
        if not p.is_file():
            have = saved_epochs(d)
            raise UserError(
                f"checkpoint {p} does not exist (saved epochs in {d}: {', '.join(map(str, have)) or 'none'})"
            )
        return p
    order = ["best.pt", "last.pt"] if prefer == "best" else ["last.pt"]
    lagging = expected_links(d)
    for name in order:
        if name in lagging:
            return lagging[name]
        if (d / name).is_file():
            return d / name
    have = saved_epochs(d)
    if have:
        return epoch_path(d, have[-1])
    raise UserError(f"no checkpoint in {d}: train first (action 'train' or 'all')")


def folder_lock(ckpt_dir: Path):
    """The exclusive lock of a checkpoint folder (one training run at a time)."""
    from ..locks import exclusive

    return exclusive(Path(ckpt_dir) / ".lock", f"checkpoint folder {ckpt_dir}")


def repair_folder(ckpt_dir: Path, log: Callable[[str], None]) -> None:
    """What a killed run left in ``ckpt_dir``: temporaries removed, lagging last.pt / best.pt relinked."""
    from ..crash import remove_stale_temporaries

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(ckpt_dir)
    fixed = repair(ckpt_dir)
    if fixed:
        log(f"{ckpt_dir}: {' and '.join(fixed)} lagged behind the newest epoch file (an interrupted run); relinked")
