"""speechreps: self-supervised frame-level speech representations and their evaluation."""

__version__ = "0.1.0"

# Passive OpenMP waiting, set before torch (and its OpenMP runtime) is imported: see threads.py.
from .threads import configure_runtime as _configure_runtime  # noqa: E402

_configure_runtime()

# Freed tensors stay in the process instead of being unmapped and faulted in again each step: allocator.py.
from .allocator import configure_malloc as _configure_malloc  # noqa: E402

_configure_malloc()
