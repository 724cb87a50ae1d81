"""What a crash (``kill -9``, power loss) leaves behind, and how the next run deals with it.

- :func:`remove_stale_temporaries`: the temporary files of :func:`speechreps.fileio.atomic_path`
  (``.<name>.<random>.tmp<suffix>``) that a killed writer left; the next run of the same command,
  holding the folder's lock, removes them.
- :func:`die_with_parent`: a pool worker's initializer, so that killing a command also ends its workers.
- :func:`kill_point`: a test hook. With ``SPEECHREPS_KILL_AT=<point>`` in the environment the process
  kills itself with SIGKILL when it reaches that named point (``<point>@<n>``: at its n-th visit),
  so tests can stop a real run at the exact moment that matters.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
from pathlib import Path

KILL_ENV = "SPEECHREPS_KILL_AT"
_visits: dict[str, int] = {}
# atomic_path's temporary names: "." + target name + "." + mkstemp's 8 random characters + ".tmp" + suffix
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def kill_point(name: str) -> None:
    """SIGKILL this process here if ``SPEECHREPS_KILL_AT`` names this point (a no-op otherwise)."""
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _visits[name] = _visits.get(name, 0) + 1
    if _visits[name] >= int(nth or 1):
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`~speechreps.fileio.atomic_path`'s temporary names."""
    return bool(_TEMPORARY.match(name))


def remove_stale_temporaries(folder: str | os.PathLike, extra_globs: tuple[str, ...] = (),
                             temporaries: bool = True) -> list[Path]:
    """Delete atomic-write temporaries in ``folder`` (not below; ``temporaries=False``: leave them), and
    anything matching ``extra_globs``.

    Only call this while holding the folder's lock: a live writer's temporary looks the same.
    Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    stale = [p for p in folder.iterdir() if is_temporary(p.name)] if temporaries else []
    for pattern in extra_globs:
        stale += [p for p in folder.glob(pattern) if p not in stale]
    for path in stale:
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this (worker) process receive SIGKILL when its parent dies.

    On Linux this is ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; elsewhere a daemon thread polls the parent
    id once a second. ``parent_pid``: the parent's pid as the parent saw it, to catch a parent that
    died before this ran.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            if libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0:
                if parent_pid is not None and not _alive(parent_pid):
                    os._exit(1)  # the parent died before the signal was armed
                return
        except (OSError, AttributeError):
            pass
    _watch_parent(parent_pid if parent_pid is not None else os.getppid())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_parent(parent_pid: int) -> None:
    """A pool worker's initializer: a daemon thread ends this process within a second of ``parent_pid``'s death.

    For ``multiprocessing.Pool(maxtasksperchild=...)``, whose replacement workers are forked from the
    pool's handler thread: ``PR_SET_PDEATHSIG`` (:func:`die_with_parent`) ties a child to the *thread*
    that forked it, and a pool that loses a worker mid-task waits for it forever.
    """
    _watch_parent(parent_pid)


def _watch_parent(parent_pid: int) -> None:
    import threading
    import time

    def watch() -> None:
        while True:
            if not _alive(parent_pid):
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, name="speechreps-parent-watch", daemon=True).start()
