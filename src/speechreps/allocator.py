"""glibc malloc settings that stop training and scoring from returning memory to the kernel after every step.

Why: torch and numpy allocate their CPU tensors with ``malloc``. With glibc's defaults, a block above the
mmap threshold (128 KiB at first, raised by glibc up to 32 MiB as such blocks are freed) is its own
``mmap``, unmapped when freed, and free memory at the top of the heap above 128 KiB is trimmed back to
the kernel. A training step allocates and frees the same few hundred megabytes of activations and
gradients every time, so each step faulted them in again, page by page, zero-filled by the kernel: a
demo CPC training (``speechreps train cpc``, 150 steps on synth_en, 2 cores) took 8.6 million minor page
faults and 20 s of system time in 83 s. With the mmap threshold at 256 MiB and the trim threshold at
512 MiB, freed blocks stay in the process and are reused: 0.3 million faults, 5 s of system time, 72 s,
with the same losses and validation AP to the last digit; peak memory rose from 1.16 to 1.38 GB (the
numbers are in the README, "Time").

:func:`configure_malloc` applies them with ``mallopt`` when speechreps is imported (``__init__``), so
every entry point gets them. Only on glibc; elsewhere it does nothing. A user who set glibc's own
variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, or ``GLIBC_TUNABLES`` with a malloc
tunable) has chosen, and is left alone; ``SPEECHREPS_MALLOC=default`` keeps glibc's defaults too.
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameters (malloc.h) and the values set.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _user_chose(environ) -> bool:
    if environ.get("SPEECHREPS_MALLOC", "").strip().lower() == "default":
        return True
    if any(v in environ for v in USER_VARIABLES):
        return True
    return "glibc.malloc." in environ.get("GLIBC_TUNABLES", "")


def configure_malloc(environ=None) -> dict[str, int]:
    """Raise glibc's mmap and trim thresholds in this process (see the module doc); returns what was set
    (empty where nothing was: not glibc, or the user chose)."""
    env = os.environ if environ is None else environ
    if _user_chose(env):
        return {}
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl, macOS have no such symbol)
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = {}
    for name, param, value in (("mmap_threshold", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                               ("trim_threshold", M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        if mallopt(param, value) == 1:
            done[name] = value
    return done
