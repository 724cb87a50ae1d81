"""Feature archives without loading them: memory-mapped ``.npz`` members and the packed layout.

Training reads its utterances through :func:`open_features`, which never reads the whole feature set
into RAM when it can avoid it; the operating system pages the frames in (and out) as batches need them:

1. a *packed* archive beside the ``.npz`` (``speechreps pack ARCHIVE.npz``): ``ARCHIVE.f32``, every
   member's float32 frames one after another (row-major, ``[total_frames, dim]``), and
   ``ARCHIVE.index.json`` (``keys``, ``offsets`` in frames, ``dim``, and the size and modification time
   of the ``.npz`` it was made from; a packed copy whose ``.npz`` has changed since is ignored, with
   a warning). The frame models train on the whole ``.f32`` matrix directly (it *is* the concatenation
   of the members in key order);
2. otherwise an *uncompressed* ``.npz`` (what ``prepare`` writes: ``np.savez`` stores members
   without compression) is memory-mapped in place: a zip member that is stored is a ``.npy`` file at a
   fixed offset, so each member is a view into one read-only mapping of the whole file
   (:class:`MappedNpz`). No conversion, no copy;
3. a compressed ``.npz`` is read into memory (:func:`speechreps.data.archive.load_archive`); pack it
   to train on it without that.

Every value is a float32 ``[frames, dims]`` array, the same values :func:`load_archive` returns.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import atomic_path, write_json
from .archive import Archive, load_archive

FORMAT = "speechreps-packed-1"


def packed_paths(archive: str | os.PathLike) -> tuple[Path, Path]:
    """``(ARCHIVE.f32, ARCHIVE.index.json)`` for ``ARCHIVE.npz``."""
    p = Path(archive)
    base = p.with_suffix("") if p.suffix == ".npz" else p
    return base.with_name(base.name + ".f32"), base.with_name(base.name + ".index.json")


def _source_stamp(path: Path) -> dict:
    st = path.stat()
    return {"source": path.name, "source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns}


def pack_archive(archive: str | os.PathLike, progress: bool = False) -> tuple[Path, Path]:
    """Write ``ARCHIVE.f32`` + ``ARCHIVE.index.json`` from ``ARCHIVE.npz``, one member at a time (bounded memory).

    Both are written atomically; the index last, so a packed copy is either complete or absent.
    """
    from tqdm import tqdm

    src = Path(archive)
    data_path, index_path = packed_paths(src)
    keys, offsets, dim, total = [], [0], None, 0
    with Archive(src) as arc:
        if len(arc) == 0:
            raise UserError(f"archive {src} holds no arrays")
        with atomic_path(data_path, suffix=".f32") as tmp, open(tmp, "wb") as fh:
            for key in tqdm(arc, total=len(arc), desc=f"pack {src.name}", disable=None if progress else True,
                            leave=False):
                arr = np.ascontiguousarray(arc[key], dtype=np.float32)
                if dim is None:
                    dim = arr.shape[1]
                elif arr.shape[1] != dim:
                    raise UserError(f"archive {src} mixes feature dimensions {dim} and {arr.shape[1]} (key {key!r})")
                fh.write(arr.tobytes())
                total += len(arr)
                keys.append(key)
                offsets.append(total)
    write_json(index_path, {"format": FORMAT, "dtype": "float32", "dim": dim, "frames": total, **_source_stamp(src),
                            "keys": keys, "offsets": offsets})
    return data_path, index_path


class PackedArchive(Mapping[str, np.ndarray]):
    """A packed archive (``.f32`` + ``.index.json``) as a read-only mapping of memory-mapped views."""

    def __init__(self, index_path: str | os.PathLike):
        self.index_path = Path(index_path)
        try:
            index = json.loads(self.index_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"packed index {self.index_path} cannot be read: {exc}") from None
        if index.get("format") != FORMAT:
            raise UserError(f"{self.index_path} is not a speechreps packed index (format {index.get('format')!r})")
        self.index = index
        self.dim = int(index["dim"])
        self.keys_ = list(index["keys"])
        self.offsets = np.asarray(index["offsets"], dtype=np.int64)
        self.data_path = self.index_path.with_name(self.index_path.name[: -len(".index.json")] + ".f32")
        frames = int(self.offsets[-1])
        if not self.data_path.is_file() or self.data_path.stat().st_size != frames * self.dim * 4:
            raise UserError(f"packed data {self.data_path} is missing or does not match {self.index_path}: pack again")
        # copy-on-write private mapping: writable views (torch.from_numpy does not warn), the file is never changed
        self.matrix = np.memmap(self.data_path, dtype=np.float32, mode="c", shape=(frames, self.dim))  # (N, D)
        self._pos = {k: i for i, k in enumerate(self.keys_)}

    def __getitem__(self, key: str) -> np.ndarray:
        i = self._pos[key]
        return self.matrix[self.offsets[i]: self.offsets[i + 1]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_)

    def __len__(self) -> int:
        return len(self.keys_)


class MappedNpz(Mapping[str, np.ndarray]):
    """An uncompressed ``.npz`` memory-mapped in place: each stored ``.npy`` member is a view into one mapping.

    Raises :class:`ValueError` when a member is compressed, not float32, not 2-D or not C-ordered
    (then read the archive into memory, or pack it).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._mm = np.memmap(self.path, dtype=np.uint8, mode="c")
        self._members: dict[str, tuple[int, tuple[int, int]]] = {}
        with open(self.path, "rb") as fh, zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                if info.compress_type != zipfile.ZIP_STORED:
                    raise ValueError(f"{self.path}: member {info.filename} is compressed")
                fh.seek(info.header_offset)
                head = fh.read(30)
                if head[:4] != b"PK\x03\x04":
                    raise ValueError(f"{self.path}: bad local header for {info.filename}")
                n_name, n_extra = struct.unpack("<HH", head[26:30])
                start = info.header_offset + 30 + n_name + n_extra
                fh.seek(start)
                version = np.lib.format.read_magic(fh)
                readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                if version not in readers:
                    raise ValueError(f"{self.path}: member {info.filename} has .npy format {version}")
                shape, fortran, dtype = readers[version](fh)
                if dtype != np.dtype("<f4") or len(shape) != 2 or fortran:
                    raise ValueError(f"{self.path}: member {info.filename} is {dtype} {shape}, not float32 [frames, dims]")
                self._members[info.filename[:-4]] = (fh.tell(), (int(shape[0]), int(shape[1])))

    def __getitem__(self, key: str) -> np.ndarray:
        offset, shape = self._members[key]
        n = shape[0] * shape[1] * 4
        return self._mm[offset: offset + n].view(np.float32).reshape(shape)

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


def open_packed(archive: str | os.PathLike) -> PackedArchive | None:
    """The up-to-date packed copy of ``archive``, or None (a stale one is ignored with a warning)."""
    src = Path(archive)
    _, index_path = packed_paths(src)
    if not index_path.is_file():
        return None
    packed = PackedArchive(index_path)
    if src.is_file():
        stamp = _source_stamp(src)
        if any(packed.index.get(k) != v for k, v in stamp.items() if k != "source"):
            warnings.warn(f"{index_path} was packed from an older {src.name}: ignored (run speechreps pack again)")
            return None
    return packed


def open_features(archive: str | os.PathLike) -> Mapping[str, np.ndarray]:
    """The features of ``archive`` without reading them all into memory where possible (see the module doc)."""
    packed = open_packed(archive)
    if packed is not None:
        if len(packed) == 0:
            raise UserError(f"archive {archive} holds no arrays")
        return packed
    try:
        mapped = MappedNpz(archive)
    except (ValueError, OSError, zipfile.BadZipFile):
        return load_archive(archive)
    if len(mapped) == 0:
        raise UserError(f"archive {archive} holds no arrays")
    dims = sorted({shape[1] for _, shape in mapped._members.values()})
    if len(dims) > 1:
        raise UserError(f"archive {archive} mixes feature dimensions {dims}")
    return mapped
