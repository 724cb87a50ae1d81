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
                             temporaries: bool = True, recursive: bool = False) -> list[Path]:
    """Delete atomic-write temporaries in ``folder`` (and below it if ``recursive``; ``temporaries=False``:
    leave them), and anything matching ``extra_globs``.

    Only call this while holding the folder's lock: a live writer's temporary looks the same.
    Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    found = folder.rglob(".*") if recursive else folder.iterdir()
    stale = [p for p in found if is_temporary(p.name)] if temporaries else []
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
    """A pool worker's initializer: this process exits within a second of its parent's death.

    A daemon thread polls the parent id: a process whose parent dies is re-parented at once (even
    before the dead parent is reaped), so a changed ``os.getppid()`` means the parent is gone.
    ``parent_pid``: the launching process's pid, to catch one that died before this ran.

    Why not ``prctl(PR_SET_PDEATHSIG)``: its "parent" is the *thread* that forked the worker, and
    ``multiprocessing.Pool`` forks replacement workers from a helper thread; in a test of 8 pools in a
    row, pools whose workers armed it hung (a worker killed mid-task is waited for forever).
    """
    parent = os.getppid()
    if parent_pid is not None and parent != parent_pid:
        os._exit(1)  # the parent died before this worker started
    _watch(lambda: os.getppid() != parent)


def watch_parent(parent_pid: int) -> None:
    """A pool worker's initializer: this process exits within a second of ``parent_pid``'s death.

    For workers whose own parent is not the process to follow (a fork server's children): the pid
    counts as dead once it is gone or a zombie (killed, not yet reaped).
    """
    _watch(lambda: not _alive(parent_pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process stays a zombie until its parent reaps it; it is dead all the same
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _watch(gone) -> None:
    import threading
    import time

    def watch() -> None:
        while True:
            if gone():
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="speechreps-parent-watch", daemon=True).start()
