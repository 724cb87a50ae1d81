"""Atomic file writing: an output is either complete or absent, never half-written.

Everything speechreps writes (archives, checkpoints, JSON, reports) goes through here: the data is
written to a temporary file in the destination folder and renamed over the target, which is atomic
on POSIX file systems, so a kill mid-write leaves the previous version (or nothing) in place.
The file gets the permissions of any other new file (``0o666`` less the umask), and an output that
cannot be written (read-only folder, a parent that is a file, a full disk) is a one-line
:class:`~speechreps.errors.UserError` naming it. A killed writer's temporary is removed by the next
run (:func:`speechreps.crash.remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError

#: errno values that mean "the user's file system refuses this", not a bug: reported as one line.
USER_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                         errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EFBIG})


def os_user_error(exc: OSError, target: str | os.PathLike | None = None) -> UserError | None:
    """A one-line :class:`UserError` for an OSError the user must fix (see :data:`USER_ERRNOS`), else None."""
    if exc.errno not in USER_ERRNOS:
        return None
    name = exc.filename if exc.filename and not _is_own_temporary(exc.filename, target) else target
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += " (free some space or write elsewhere)"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        reason += " (a file is in the way where a folder should be)"
    return UserError(f"cannot write {name}: {reason}" if name else f"cannot write output: {reason}")


def _is_own_temporary(filename: str | os.PathLike, target: str | os.PathLike | None) -> bool:
    return target is not None and Path(filename).name.startswith(f".{Path(target).name}.")


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds.

    ``suffix`` keeps the extension some writers insist on (``np.savez`` appends ``.npz`` otherwise).
    """
    target = Path(target)
    suffix = target.suffix if suffix is None else suffix
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    except OSError as exc:
        raise (os_user_error(exc, target) or exc) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs are shared like any other file
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        user = os_user_error(exc, target)
        if user is None:
            raise
        raise user from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
