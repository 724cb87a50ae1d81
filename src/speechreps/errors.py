"""The one exception type that means "the user gave us something wrong".

The CLI catches :class:`UserError` and prints its message as a single line with a non-zero exit,
so every check of user input raises it with a message that names the file, line, key or option.
Anything else that escapes is a bug in speechreps and keeps its traceback.
"""

from __future__ import annotations

import warnings


class UserError(Exception):
    """Bad input from the user: printed as one line by the CLI, exit status 2."""


def check_jobs(jobs: int | None) -> None:
    """``--jobs`` (CPU threads / processes) must be at least 1 when given: one check for every command."""
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")


class DataWarning(UserWarning):
    """Something in the input was skipped; counted and reported, an error under ``--strict``."""


class WarningCounter:
    """Collects skip-able problems so that a run reports "skipped N of M" once instead of N lines.

    With ``strict=True`` the first problem raises :class:`UserError` instead.
    """

    def __init__(self, strict: bool = False, what: str = "problem",
                 strict_hint: str | None = "use --strict to make this an error"):
        self.strict = strict
        self.what = what
        self.strict_hint = strict_hint  # None where the command has no --strict
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        if self.strict:
            raise UserError(message)
        self.messages.append(message)

    def __len__(self) -> int:
        return len(self.messages)

    def report(self, max_shown: int = 3) -> None:
        """Emit one warning that counts the problems and shows the first few."""
        if not self.messages:
            return
        shown = "; ".join(self.messages[:max_shown])
        more = f" (and {len(self.messages) - max_shown} more)" if len(self.messages) > max_shown else ""
        warnings.warn(
            f"skipped {len(self.messages)} {self.what}(s): {shown}{more}"
            + (f" ({self.strict_hint})" if self.strict_hint else ""),
            DataWarning,
            stacklevel=2,
        )
