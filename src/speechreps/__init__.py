"""speechreps: self-supervised frame-level speech representations and their evaluation."""

__version__ = "0.1.0"
