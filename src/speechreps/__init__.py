"""speechreps: self-supervised frame-level speech representations and their evaluation."""

__version__ = "0.1.0"

# Passive OpenMP waiting, set before torch (and its OpenMP runtime) is imported: see threads.py.
from .threads import configure_runtime as _configure_runtime  # noqa: E402

_configure_runtime()
