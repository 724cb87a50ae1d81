"""glibc malloc thresholds (speechreps.allocator): freed tensors are reused, not faulted in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from speechreps.allocator import configure_malloc

# Eight 16 MB blocks allocated and freed 20 times, as a training step's activations are: the minor page
# faults it took. With glibc's defaults the freed memory goes back to the kernel and is faulted in again.
CHURN = """
import resource
import speechreps, numpy as np
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    blocks = [np.ones(2 * 1024 * 1024) for _ in range(8)]
    del blocks
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _faults(**env) -> int:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "SPEECHREPS_MALLOC"}
    out = subprocess.run([sys.executable, "-c", CHURN], env={**environ, **env}, capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc", reason="glibc only")
def test_importing_speechreps_keeps_freed_memory_for_reuse():
    tuned = _faults()
    default = _faults(SPEECHREPS_MALLOC="default")
    # 20 x 8 x 16 MB is 655,360 pages. Measured on this project's machine: 4,141 tuned (only the first
    # round faults, fewer with transparent huge pages), 82,461 with glibc's defaults
    assert tuned < 40_000
    assert default > 5 * tuned


def test_a_user_choice_is_left_alone():
    assert configure_malloc({"MALLOC_TRIM_THRESHOLD_": "131072"}) == {}
    assert configure_malloc({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1000000"}) == {}
    assert configure_malloc({"SPEECHREPS_MALLOC": "default"}) == {}
