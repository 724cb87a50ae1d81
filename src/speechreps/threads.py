"""CPU thread settings that keep training and scoring fast on a machine shared with other work.

Why: torch runs its intra-op parallel regions on an OpenMP pool (GNU libgomp in the CPU wheels). By
default a libgomp thread that reaches the end of a region busy-waits (spins) for a while before it sleeps,
so that the next region starts a few microseconds sooner. On an idle machine that is a small gain. When
another process holds one of the cores, it is a cliff: the thread that still has work is waiting for a
core while its partner spins on the other, and every one of the thousands of small operations in a
training step waits for the scheduler. On this project's 2-core machine, one busy process elsewhere made
the frame CAE's step 50-200x slower with 2 spinning threads; with passive waiting, or one thread, it ran at
about its idle speed (bench/contention.py measures it). So:

- :func:`configure_runtime` asks every OpenMP runtime to wait passively (``OMP_WAIT_POLICY=PASSIVE``, and
  ``KMP_BLOCKTIME=0`` for Intel's). The runtime reads its environment once, when it is loaded, i.e. when
  torch is first imported; ``speechreps/__init__.py`` calls this, so importing speechreps (any CLI, any
  ``import speechreps.x``) before torch is enough. A value already in the environment is left alone: set
  ``OMP_WAIT_POLICY=ACTIVE`` (or ``GOMP_SPINCOUNT``) yourself on a machine you have to yourself.
  numpy's OpenBLAS threads spin after each call too (2^28 cycles by default): the cosine distances of
  downsampled tokens, thousands of small matrix-vector products, ran 25x slower beside one busy process.
  ``OPENBLAS_THREAD_TIMEOUT=4`` (its minimum) makes them sleep at once; it takes effect when set before
  numpy's import, which the CLIs do, and :func:`speechreps.evaluate.downsample.pairwise_downsample` also
  runs its products on one BLAS thread (they are too small to split).
- :func:`training_threads` picks torch's thread count while one model trains: the frame AE / CAE MLPs,
  whose operations are small, run faster on one thread even on an idle machine (a parallel region costs
  more than their matrix products gain), and so do small AWE RNNs (the demo ContrastiveRNN trained 2.3x
  faster on one thread than on two); the others keep every thread they were given (``--jobs``).

Passive waiting costs some idle speed where a step is thousands of small parallel regions (the demo APC:
~17,700 frames/s spinning, ~12,300 passive, 2 idle cores) and removes the cliff (with one competing
process: ~330 spinning, ~10,600 passive). Numba's DTW pool (the ``workqueue`` layer) does not spin.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# What configure_runtime sets, per runtime, and the variables that, when the user has set any of them,
# mean "leave this runtime's waiting to me". OpenBLAS (numpy's BLAS) threads also spin after a call
# (2^28 cycles by default); OPENBLAS_THREAD_TIMEOUT=4 (2^4, its minimum) makes them sleep at once.
PASSIVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0", "OPENBLAS_THREAD_TIMEOUT": "4"}
# Batch kinds (speechreps.model_types) of the frame-level MLPs, which train on one thread.
FRAME_KINDS = ("frame", "frame_pair")
# An AWE model trains on one thread below this many (sequences per batch x encoder hidden units). A GRU
# training step (forward, backward, Adam) on 2 idle cores, 2 threads against 1 (bench: 2 bidirectional
# layers, 25 frames, 64 sequences): hidden 64 0.48-0.55x, 128 0.83x, 256 1.18x; the paper's CAE-RNN
# (3 x 400, 300 sequences of 60 frames) 1.59x. The demo ContrastiveRNN (32 pairs = 64 sequences x 64):
# one `speechreps awe train` took 59 s on one thread and 135 s on two, with the same weights.
SMALL_AWE_WORK = 12_000
# APC and CAPC (GRU stacks) train on one thread below this many (utterances per batch x hidden units):
# the same cut as the AWE RNNs'. A training step (forward, backward, Adam; 200 frames, 2 layers) on 2
# idle cores, 2 threads against 1, on 2026-12-03: 16 x 256 (the demo APC) 0.76x, 32 x 256 (the demo
# CAPC) 0.96x, 64 x 256 1.06x, 32 x 512 1.25x, 64 x 512 1.35x. Each time step's products are too small to
# split, and with passive waiting every split wakes the other thread: on one thread the demo APC ran at
# 20,788 frames/s alone and 20,436 beside a busy process, on two 15,269 and 8,063 (bench/contention.py).
SMALL_GRU_WORK = SMALL_AWE_WORK
_RUNTIMES = (
    (("OMP_WAIT_POLICY", "KMP_BLOCKTIME"), ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")),
    (("OPENBLAS_THREAD_TIMEOUT",), ("OPENBLAS_THREAD_TIMEOUT",)),
)


def configure_runtime(environ: os._Environ | dict | None = None) -> dict[str, str]:
    """Set passive waiting in ``environ`` (default ``os.environ``) for each runtime whose waiting the user
    has not chosen. Returns what was set. Effective only before the runtime is loaded (OpenMP: before
    ``import torch``; OpenBLAS: before ``import numpy``) in this process; child processes inherit it."""
    env = os.environ if environ is None else environ
    done: dict[str, str] = {}
    for keys, user_keys in _RUNTIMES:
        if not any(k in env for k in user_keys):
            done.update({k: PASSIVE_ENV[k] for k in keys})
    env.update(done)
    return done


def threads_for(model, device, available: int) -> int:
    """torch intra-op threads for training ``model`` on ``device`` when ``available`` are allowed: 1 on the
    CPU for a frame-level MLP (its operations are too small to split: on 2 idle cores the frame CAE ran at
    ~95,000 frames/s on one thread against ~65,000 on two), for a small AWE RNN (:data:`SMALL_AWE_WORK`)
    and for a small APC / CAPC GRU stack (:data:`SMALL_GRU_WORK`), else ``available``."""
    on_cpu = getattr(device, "type", str(device)) == "cpu"
    if on_cpu and (_batch_kind(model) in FRAME_KINDS or _small_awe(model) or _small_gru(model)):
        return 1
    return max(1, int(available))


def _small_gru(model) -> bool:
    """An APC or CAPC (their configs: :class:`~speechreps.config.APCConfig`) whose batch size x hidden units
    is below :data:`SMALL_GRU_WORK`."""
    from .config import APCConfig

    cfg = _config_of(model)
    return isinstance(cfg, APCConfig) and cfg.batch_size * cfg.hidden_dim < SMALL_GRU_WORK


def _small_awe(model) -> bool:
    """An AWE model of a :func:`small_awe_config`."""
    return small_awe_config(_config_of(model))


def _config_of(model):
    """The config of ``model`` (under DDP, of the wrapped model), or None."""
    return getattr(getattr(model, "module", model), "cfg", None)


def small_awe_config(cfg) -> bool:
    """An AWE config whose recurrent work per step (2 x pairs per batch x encoder hidden units) is below
    :data:`SMALL_AWE_WORK`: its model trains on one thread on the CPU."""
    from .awe.config import AWEConfig

    return isinstance(cfg, AWEConfig) and 2 * cfg.batch_size * cfg.enc_hidden_dim < SMALL_AWE_WORK


def _batch_kind(model) -> str | None:
    """The registered batch kind of ``model``'s type (from its config), or None for an unregistered one."""
    from . import model_types

    model = getattr(model, "module", model)  # under DDP, the wrapped model
    try:
        return model_types.get(model_types.type_of_config(model.cfg)).batch_kind
    except (AttributeError, TypeError):
        return None


@contextlib.contextmanager
def training_threads(model, device) -> Iterator[int]:
    """Within the block, torch uses :func:`threads_for` threads (of those set now, e.g. by ``--jobs``);
    the previous count comes back afterwards, so that a later stage in the same process is not slowed."""
    import torch

    before = torch.get_num_threads()
    n = threads_for(model, device, before)
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
