"""Features of a corpus's audio files, computed in parallel and spooled to disk (pass 1 of ``prepare``).

Why spool: a corpus's features need not fit in memory. Pass 1 writes each file's raw features to a
``.npy`` and returns per-file frame counts and the mean / M2 of the kept frames (merged per speaker for
CMVN by :func:`merge_moments`); pass 2 (:mod:`speechreps.data.prepare`) normalises and writes the archives
member by member with :class:`NpzWriter`.
"""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..crash import die_with_parent, kill_point
from ..errors import UserError
from ..fileio import atomic_path, os_user_error
from .features import FeatureConfig, compute_features, load_audio
from .segments import energy_segments


def _features_of(args: tuple[Path, FeatureConfig]) -> tuple[np.ndarray, int]:
    path, cfg = args
    audio = load_audio(path)
    feats = compute_features(audio, cfg)
    if len(feats) == 0:
        raise UserError(f"audio file {path} is shorter than one {cfg.win_ms:g} ms frame")
    return feats, len(audio)


def _map_files(fn, tasks: list, jobs: int | None, progress: bool) -> list:
    """``[fn(t) for t in tasks]`` in order, over a process pool when there is enough work, with a progress bar."""
    from tqdm import tqdm

    jobs = jobs or os.cpu_count() or 1
    results = []
    with tqdm(total=len(tasks), desc="features", unit="utt", disable=None if progress else True,
              leave=False) as bar:  # None: only on a terminal
        if jobs == 1 or len(tasks) < 8:
            for t in tasks:
                results.append(fn(t))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=jobs, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
                for r in pool.map(fn, tasks, chunksize=8):
                    results.append(r)
                    bar.update()
                    kill_point("prepare-pool-running")
    return results


def compute_corpus_features(
    files: dict[str, Path], cfg: FeatureConfig, jobs: int | None = None, progress: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Features and sample counts of every utterance, in parallel over files."""
    keys = list(files)
    results = _map_files(_features_of, [(files[k], cfg) for k in keys], jobs, progress)
    feats = {k: r[0] for k, r in zip(keys, results)}
    samples = {k: r[1] for k, r in zip(keys, results)}
    return feats, samples


def _raw_to_disk(args) -> tuple[int, int, list[tuple[int, int]], np.ndarray, np.ndarray]:
    """Pass 1 for one file: raw features to ``out`` (.npy); returns frames, samples, the kept segments, and
    the mean and M2 (float64) over those segments.

    ``spans``: frame spans to keep, ``None`` for the whole file, or ``"energy"`` (found here, from the audio).
    """
    path, cfg, out, spans = args
    audio = load_audio(path)
    feats = compute_features(audio, cfg)
    if len(feats) == 0:
        raise UserError(f"audio file {path} is shorter than one {cfg.win_ms:g} ms frame")
    try:
        np.save(out, feats)
    except OSError as exc:  # a full disk while the features of the corpus are spooled: one line
        raise (os_user_error(exc, out) or exc) from None
    if spans is None:
        spans = [(0, len(feats))]
    elif spans == "energy":
        spans = energy_segments(audio)
    spans = [(s, min(e, len(feats))) for s, e in spans if min(e, len(feats)) > s]
    if not spans:
        return len(feats), len(audio), [], np.zeros(feats.shape[1]), np.zeros(feats.shape[1])
    x = np.concatenate([feats[s:e] for s, e in spans]).astype(np.float64)
    mean = x.mean(axis=0)
    return len(feats), len(audio), spans, mean, ((x - mean) ** 2).sum(axis=0)


def merge_moments(a: tuple[int, np.ndarray, np.ndarray], b: tuple[int, np.ndarray, np.ndarray]):
    """Combine (count, mean, M2) of two frame sets (Chan, Golub & LeVeque)."""
    na, ma, m2a = a
    nb, mb, m2b = b
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), m2a + m2b + delta**2 * (na * nb / n)


def raw_features_to_disk(files: dict[str, Path], cfg: FeatureConfig, out_dir: Path, jobs: int | None = None,
                         progress: bool = True, spans: dict | None = None) -> dict[str, tuple]:
    """Pass 1: ``utt -> (raw .npy path, frames, samples, segments, mean, M2)``, in parallel; bounded memory."""
    keys = list(files)
    paths = {k: out_dir / f"{i:08d}.npy" for i, k in enumerate(keys)}
    spans = spans or {}
    results = _map_files(_raw_to_disk, [(files[k], cfg, paths[k], spans.get(k)) for k in keys], jobs, progress)
    return {k: (paths[k], *r) for k, r in zip(keys, results)}


class NpzWriter:
    """Write an ``.npz`` member by member (what ``np.savez`` writes, without holding all arrays), atomically."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._ctx = atomic_path(self.path, suffix=".npz")

    def __enter__(self) -> "NpzWriter":
        tmp = self._ctx.__enter__()
        self._zip = zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
        return self

    def add(self, key: str, array: np.ndarray) -> None:
        with self._zip.open(key + ".npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, np.asarray(array, dtype=np.float32), allow_pickle=False)

    def __exit__(self, *exc) -> None:
        self._zip.close()
        self._ctx.__exit__(*exc)
