"""What ``speechreps discover`` writes, and reading discovered clusters back.

In ``OUT/``:

- ``pairs.txt``: the term-pair file of ``recipe_bucktsong_awe``, one verified pair per line,
  ``<cluster> <utt1> <start1> <end1> <utt2> <start2> <end2>`` (frames into the utterances, end
  exclusive); what ``--pairs`` of CAPC / frame CAE / the CAE-RNN reads;
- ``terms.npz``: the discovered-term archive, one entry per discovered term occurrence, key
  ``<cluster>_<utt>_<start>-<end>``, the input features of those frames; a word-token archive whose
  labels are cluster ids (``speechreps samediff`` scores it; as a validation set it gives a
  transcription-free validation AP);
- ``clusters.txt``: the same occurrences in the ZeroSpeech class-file format (``Class <name>`` then
  ``<utt> <start_s> <end_s>`` lines, a blank line after each class), which the challenge's
  evaluation toolbox reads;
- ``discover.json``: settings, counts, timings, the DTW threshold, and the ZeroSpeech scores when
  gold alignments were given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..data.alignments import write_term_pairs
from ..data.archive import format_key, save_archive
from ..data.pairs import SegmentLookup
from ..errors import UserError
from ..fileio import write_text
from .core import Discovery

HOP_SECONDS = 0.01


def clusters_in_seconds(discovery: Discovery) -> dict[str, list[tuple[str, float, float]]]:
    """``{cluster: [(utt, start_s, end_s), ...]}`` of the discovered terms (10 ms frames)."""
    out: dict[str, list[tuple[str, float, float]]] = {}
    for cluster, utt, start, end in discovery.terms():
        out.setdefault(cluster, []).append((utt, round(start * HOP_SECONDS, 4), round(end * HOP_SECONDS, 4)))
    return out


def term_archive(discovery: Discovery, utterances: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The discovered-term archive: ``{<cluster>_<utt>_<start>-<end>: frames}`` cut from ``utterances``."""
    lookup = SegmentLookup(utterances)
    out = {}
    for cluster, utt, start, end in discovery.terms():
        seg = lookup.get(utt, start, end)
        if seg is not None and len(seg):
            out[format_key(utt, start, end, cluster)] = np.asarray(seg, dtype=np.float32)
    return out


def write_outputs(discovery: Discovery, utterances: Mapping[str, np.ndarray], out_dir: str | Path,
                  max_pairs_per_cluster: int | None) -> dict[str, Path]:
    """Write ``pairs.txt``, ``terms.npz`` and ``clusters.txt`` into ``out_dir`` (atomically each)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = discovery.term_pairs(max_pairs_per_cluster)
    if not pairs:
        raise UserError("discover: no pair passed verification "
                        "(try a higher --target-coverage, a lower --dtw-z or shorter windows)")
    paths = {"pairs": out / "pairs.txt", "terms": out / "terms.npz", "clusters": out / "clusters.txt"}
    write_term_pairs(paths["pairs"], pairs)
    save_archive(paths["terms"], term_archive(discovery, utterances))
    lines = []
    for name, members in clusters_in_seconds(discovery).items():
        lines.append(f"Class {name}\n" + "".join(f"{u} {a:.4f} {b:.4f}\n" for u, a, b in members) + "\n")
    write_text(paths["clusters"], "".join(lines))
    return paths
