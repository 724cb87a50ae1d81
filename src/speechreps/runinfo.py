"""Facts about a run that a report needs beside its figures: the code's commit, threads and machine
load, the corpus's size, and a model's training and validation curves from its ``metrics.jsonl``."""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from .errors import UserError


def code_commit() -> str:
    """The git commit of the speechreps source (``+ local changes`` when the tree differs from it),
    or ``unknown (installed package)`` outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()

        top = Path(git("rev-parse", "--show-toplevel"))
        if not (top / "src" / "speechreps").resolve() == here:
            return "unknown (installed package)"
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src")
        return commit + (" + local changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (installed package)"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine(jobs: int | None) -> dict[str, Any]:
    """CPU count, the torch threads the run uses and the load average now."""
    import torch

    return {"cpus": os.cpu_count(), "torch_threads": int(jobs or torch.get_num_threads()),
            "jobs_option": jobs, "load": load_average(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def corpus_stats(data_paths: Path, name: str) -> dict[str, dict[str, Any]]:
    """Per split: speakers, utterances, minutes of speech, word tokens and types, read from the
    dataset's archive keys (``<utt>_<start>-<end>``, 100 frames per second) without loading frames."""
    from .data.archive import parse_utterance_key, parse_word_key
    from .data.registry import load_dataset

    ds = load_dataset(data_paths, name)
    stats: dict[str, dict[str, Any]] = {}
    for split in ("train", "validation", "test", "all"):  # "all": a zero-resource dataset's one split
        entry: dict[str, Any] = {}
        path = ds.data.get(split)
        if path is not None and path.is_file():
            rule, keys = ds.speaker_rule(path), _keys(path)
            try:
                segs = [parse_utterance_key(k) for k in keys]
                entry.update(speakers=len({rule(k.utt) for k in segs}), utterances=len({k.utt for k in segs}),
                             segments=len(segs), minutes=round(sum(k.n_frames for k in segs) / 6000.0, 2))
            except UserError:  # keys without <start>-<end>: count them only
                entry.update(segments=len(keys))
        if ds.has_word_tokens(split):
            words = [parse_word_key(k) for k in _keys(ds.word_tokens(split))]
            entry.update(word_tokens=len(words), word_types=len({w.label for w in words}))
        if entry:
            stats[split] = entry
    return stats


def _keys(path: Path) -> list[str]:
    from .data.archive import Archive

    with Archive(path) as arc:
        return list(arc)


def training_curves(ckpt_dir: Path) -> tuple[list[tuple[int, float]], list[dict[str, Any]]]:
    """``(loss per epoch, validation rows)`` from ``ckpt_dir/metrics.jsonl``; a validation row holds
    the epoch, the minutes of training and validation so far, and the validation APs logged."""
    path = Path(ckpt_dir) / "metrics.jsonl"
    if not path.is_file():
        return [], []
    loss, val, minutes = [], [], 0.0
    rows: dict[int, dict] = defaultdict(dict)
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[int(row["epoch"])].update(row)  # a resumed run rewrites later epochs: the last one counts
    for epoch in sorted(rows):
        row = rows[epoch]
        minutes += (float(row.get("seconds", 0.0)) + float(row.get("val_seconds", 0.0))) / 60.0
        if "loss" in row:
            loss.append((epoch, float(row["loss"])))
        if "val_ap" in row:
            val.append({"epoch": epoch, "minutes": round(minutes, 3),
                        **{k: row[k] for k in ("val_ap", "val_ap_cross_speaker", "val_ap_downsample") if k in row}})
    return loss, val
