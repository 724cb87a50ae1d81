"""Cutting long recordings into utterances (voice-activity segments).

Buckeye's recordings are minutes long; the recipe trains and evaluates on the speech regions of its
forced alignments, each an archive entry ``<utt>_<start>-<end>`` (frames of the whole file), and
computes the per-speaker statistics over those regions only. Two ways to find the regions:

- from word alignments (:func:`segments_from_words`, the recipe's ``read_vad_from_fa``): consecutive
  words form one region while each starts where the previous ended (a gap of more than ``max_gap``
  seconds, default 0, or a non-word such as ``SIL`` starts a new one); a region spans frames
  ``round(100 t0)`` to ``round(100 t1) + 1`` (end exclusive, so it keeps its last frame);
- from the signal's energy when there are no alignments (:func:`energy_segments`): 25 ms frames
  every 10 ms within ``threshold_db`` of the file's loudest frame are speech; pauses shorter than
  ``min_pause`` are bridged, regions shorter than ``min_speech`` dropped, ``pad`` kept either side.

``segment="auto"`` in :class:`~speechreps.data.prepare.PrepareOptions` cuts only when some file is
longer than ``max_utterance_seconds`` (60 s): short files are utterances already.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .alignments import WordAlignment

SEGMENT_MODES = ("auto", "none", "alignments", "energy")
Span = tuple[int, int]


def segments_from_words(words: Sequence[WordAlignment], n_frames: int, max_gap: float = 0.0) -> list[Span]:
    """Speech regions of one file from its words (sorted by start), in frames, end exclusive."""
    spans: list[Span] = []
    start = prev_end = None
    for w in sorted(words, key=lambda w: (w.start, w.end)):
        if prev_end is None or w.start - prev_end > max_gap + 1e-9:
            if prev_end is not None:
                spans.append((int(round(start * 100)), int(round(prev_end * 100)) + 1))
            start = w.start
        prev_end = w.end if prev_end is None else max(prev_end, w.end)
    if prev_end is not None:
        spans.append((int(round(start * 100)), int(round(prev_end * 100)) + 1))
    return clip_spans(spans, n_frames)


def clip_spans(spans: Sequence[Span], n_frames: int) -> list[Span]:
    """Spans clipped to ``[0, n_frames)``; empty ones dropped; overlapping neighbours merged."""
    out: list[Span] = []
    for s, e in sorted(spans):
        s, e = max(0, s), min(e, n_frames)
        if e <= s:
            continue
        if out and s < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def frame_energy_db(audio: np.ndarray, hop: int = 160, win: int = 400) -> np.ndarray:
    """Log energy (dB) of centred frames ``t`` (samples ``[t*hop - win/2, t*hop + win/2)``), as the MFCCs' frames."""
    n = 1 + len(audio) // hop
    padded = np.pad(np.asarray(audio, dtype=np.float64), (win // 2, win // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n]
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def energy_segments(audio: np.ndarray, threshold_db: float = 35.0, min_pause: float = 0.3, min_speech: float = 0.2,
                    pad: float = 0.1, hop: int = 160) -> list[Span]:
    """Speech regions of a signal by an energy rule (see the module doc); frames at ``hop`` samples."""
    energy = frame_energy_db(audio, hop)
    if len(energy) == 0 or not np.isfinite(energy.max()):
        return []
    active = energy >= energy.max() - threshold_db
    spans: list[Span] = []
    idx = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    for s, e in zip(idx[::2], idx[1::2]):
        if spans and s - spans[-1][1] < min_pause * 100:
            spans[-1] = (spans[-1][0], int(e))
        else:
            spans.append((int(s), int(e)))
    p = int(round(pad * 100))
    spans = [(s - p, e + p) for s, e in spans if e - s >= min_speech * 100]
    return clip_spans(spans, len(energy))
