"""Exclusive locks on the things two runs must not write at once.

One writer at a time per checkpoint folder (``train``), per dataset (``prepare``), per run folder
(``speechreps run``) and per ``data_paths.json`` (its read-modify-write). The lock is an OS file lock
(``filelock``): the kernel drops it when its process dies, even by ``kill -9``, so a crash never
leaves a folder locked. Beside the lock file a small side file names the holder (pid, command, start
time), so that a second writer fails at once with one line saying who has it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError


def _holder_text() -> str:
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    return f"pid {os.getpid()} ({command}, since {time.strftime('%H:%M:%S')})"


def holder(lock_file: str | os.PathLike) -> str:
    """Who holds ``lock_file``, as written by its holder (``an unknown process`` if unreadable)."""
    try:
        text = Path(f"{lock_file}.holder").read_text().strip()
    except OSError:
        text = ""
    return text or "an unknown process"


@contextlib.contextmanager
def exclusive(lock_file: str | os.PathLike, what: str, wait: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for the block; ``what`` names the locked thing for the error.

    ``wait``: seconds to wait for the holder to finish (0: fail at once). The lock is re-entrant
    within one process, so a function that locks can call another that locks the same file.
    """
    from filelock import FileLock, Timeout

    lock_file = Path(lock_file)
    created = not lock_file.parent.exists()
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {lock_file.parent} for {what}: {exc.strerror}") from None
    lock = FileLock(lock_file, timeout=wait, is_singleton=True)
    first = not lock.is_locked
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"{what} is in use by {holder(lock_file)}; wait for it to finish "
                        f"(or stop it) and run again") from None
    except OSError as exc:
        raise UserError(f"cannot lock {what} ({lock_file}): {exc.strerror}") from None
    side = Path(f"{lock_file}.holder")
    try:
        if first:
            with contextlib.suppress(OSError):  # the lock holds without it; the side file only names us
                side.write_text(_holder_text() + "\n")
        yield
    finally:
        if first:
            with contextlib.suppress(OSError):
                side.unlink()
        lock.release()
        if created and first:  # a run that failed before writing anything leaves no folder behind
            with contextlib.suppress(OSError):
                if [p.name for p in lock_file.parent.iterdir()] == [lock_file.name]:
                    lock_file.unlink()
                    lock_file.parent.rmdir()
