"""A prepared dataset becomes visible whole or not at all.

``prepare`` builds a dataset in a staging folder beside its final place (``OUT/.<name>.staging-<random>``)
and, once every file is written, records a manifest in the staging folder's ``prepare.json`` (written
last: each file's size and SHA-256, and the ``data_paths.json`` entries) and swaps the folder in with
two renames (the old folder aside, the new one in). A kill at any moment leaves either the old
dataset or the new one under ``OUT/<name>``, or for an instant between the renames none, but never
half of each; the staging or set-aside folder it may leave is removed by the next ``prepare`` of that
name (:func:`remove_stale`). The caller holds the dataset's lock throughout (:func:`dataset_lock`).

A dataset is reused only when its ``prepare.json`` has the same fingerprint, lists a manifest, and
every listed file is there with its recorded size (:func:`reusable`); a dataset without a manifest
(from an older speechreps, or a folder copied by hand) is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..crash import kill_point
from ..errors import UserError
from ..fileio import current_umask, os_user_error, write_json
from .registry import FILE_SUFFIXES

MANIFEST = "prepare.json"


def dataset_lock(out_dir: Path, name: str):
    """The exclusive lock of dataset ``name`` under ``out_dir`` (beside the folder, which gets swapped)."""
    from ..locks import exclusive

    return exclusive(out_dir / f".{name}.lock", f"dataset {name!r} in {out_dir}")


def remove_stale(out_dir: Path, name: str) -> list[Path]:
    """Staging and set-aside folders of ``name`` that a killed ``prepare`` left (call with the lock held)."""
    from ..crash import remove_stale_temporaries

    # not out_dir's own temporaries: data_paths.json's may belong to a live run preparing another dataset
    removed = remove_stale_temporaries(out_dir, (f".{name}.staging-*", f".{name}.old-*"), temporaries=False)
    removed += remove_stale_temporaries(out_dir / name, (".prepare-raw-*",))  # older speechreps built in place
    return removed


@contextlib.contextmanager
def staging(out_dir: Path, name: str) -> Iterator[Path]:
    """An empty folder beside ``out_dir/name`` to build in; removed unless :func:`publish` moved it in."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=out_dir))
        os.chmod(stage, 0o777 & ~current_umask())  # mkdtemp makes 0700; the dataset is shared like any folder
    except OSError as exc:
        raise (os_user_error(exc, out_dir / name) or exc) from None
    try:
        yield stage
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def publish(stage: Path, ds_dir: Path, summary: dict, entries: dict[str, str]) -> dict:
    """Write the manifest into ``stage`` (last), then swap ``stage`` in as ``ds_dir``; returns the summary.

    ``entries``: the ``data_paths.json`` suffixes -> file names inside the dataset folder (or plain
    values such as the speaker rule), recorded so that a reuse can check or restore the registration.
    """
    files = sorted(p for p in stage.iterdir() if p.is_file())
    summary = {**summary, "files": {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files},
               "entries": entries}
    write_json(stage / MANIFEST, summary)
    kill_point("prepare-before-swap")
    if ds_dir.exists() and not ds_dir.is_dir():
        raise UserError(f"cannot write dataset {ds_dir}: it exists and is not a folder")
    old = None
    try:
        if ds_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{ds_dir.name}.old-", dir=ds_dir.parent))
            os.rename(ds_dir, old / ds_dir.name)
        kill_point("prepare-mid-swap")
        os.rename(stage, ds_dir)
    except OSError as exc:
        raise (os_user_error(exc, ds_dir) or exc) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return summary


def reusable(ds_dir: Path, fingerprint: str) -> dict | None:
    """The manifest of ``ds_dir`` if it was built from the same inputs and every file is whole; else None."""
    try:
        manifest = json.loads((ds_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("fingerprint") != fingerprint:
        return None
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("entries"), dict):
        return None
    for file_name, meta in files.items():
        path = ds_dir / file_name
        try:
            if path.stat().st_size != meta["size"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return manifest


def registered(data_paths: Path, name: str, ds_dir: Path, entries: dict[str, str]) -> bool:
    """Whether ``data_paths`` registers exactly ``entries`` for ``name`` (files resolved inside ``ds_dir``)."""
    from .registry import read_data_paths

    if not data_paths.is_file():
        return False
    try:
        raw = read_data_paths(data_paths)
    except UserError:
        return False
    base = data_paths.resolve().parent
    have = {k[len(name) + 1:]: v for k, v in raw.items() if k.startswith(f"{name}_")}
    if set(have) != set(entries):
        return False
    for suffix, value in entries.items():
        if suffix in FILE_ENTRIES:
            p = Path(have[suffix]).expanduser()
            p = p if p.is_absolute() else base / p
            if p.resolve() != (ds_dir / value).resolve():
                return False
        elif have[suffix] != value:
            return False
    return True


#: entry suffixes whose values are file names inside the dataset folder
FILE_ENTRIES = FILE_SUFFIXES  # the registry's: the entries that name files of the dataset folder


def entry_paths(ds_dir: Path, entries: dict[str, str]) -> dict[str, str | Path]:
    """``entries`` with file names turned into paths inside ``ds_dir`` (what ``register_dataset`` takes)."""
    return {k: (ds_dir / v if k in FILE_ENTRIES else v) for k, v in entries.items()}
