"""One utterance from eSpeak NG: its audio and where each word is (the synthesiser's own word events).

Used by the built-in corpus (:mod:`speechreps.corpus.synth`), which speaks many utterances per voice in
worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class Word:
    """A word in an utterance; times in seconds."""

    word: str
    start: float
    end: float


def synthesize(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, pitch_range: int = 50,
               trim_db: float | None = 35.0, seed: int = 0) -> tuple[np.ndarray, int, list[Word]]:
    """Speak ``text`` (space-separated words) with an eSpeak NG voice in this process.

    Returns float32 audio at the synthesiser's own rate (22050 Hz), that rate, and one
    :class:`Word` per word of ``text``: start from eSpeak's word event, end at the next word's
    start (or the end of speech), edges trimmed to frames within ``trim_db`` of the peak
    (``None``: no trim). ``seed`` seeds eSpeak's random generator (breathy and rough voices).
    """
    from .espeak import engine

    words = text.split()
    if not words:
        raise UserError("synthesize: empty text")
    syn = engine().synthesize(" ".join(words), voice, rate=rate, pitch=pitch, pitch_range=pitch_range, seed=seed)
    audio = syn.samples.astype(np.float32) / 32768.0
    starts = _word_offsets(words)
    by_word: dict[int, float] = {}
    for ev in syn.words:
        idx = starts.get(ev.text_position)
        if idx is not None and idx not in by_word:
            by_word[idx] = ev.start
    if sorted(by_word) != list(range(len(words))):
        raise RuntimeError(f"eSpeak reported {len(syn.words)} word events for {len(words)} words in {text!r}")
    times = [by_word[i] for i in range(len(words))] + [syn.end]
    out = [Word(w, times[i], max(times[i + 1], times[i] + 0.01)) for i, w in enumerate(words)]
    if trim_db is not None:
        out = trim_words(audio, syn.sample_rate, out, trim_db)
    return audio, syn.sample_rate, out


def _word_offsets(words: list[str]) -> dict[int, int]:
    """Character offset of each word in ``' '.join(words)`` -> word index."""
    offsets, pos = {}, 0
    for i, w in enumerate(words):
        offsets[pos] = i
        pos += len(w) + 1
    return offsets


def trim_words(audio: np.ndarray, sr: int, words: list[Word], trim_db: float = 35.0,
               frame_s: float = 0.01, hop_s: float = 0.005) -> list[Word]:
    """Move each word's edges inward past frames more than ``trim_db`` below the utterance's loudest.

    eSpeak's word event marks where a word's phonemes begin, which includes the closure of an
    initial stop and, for the first word, any leading silence; the last word runs to the end of the
    buffer. The energy trim removes those silent edges (keeping a 5 ms margin).
    """
    win, hop = max(1, int(frame_s * sr)), max(1, int(hop_s * sr))
    n = 1 + max(0, len(audio) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    energy = np.mean(np.asarray(audio, dtype=np.float64)[np.minimum(idx, len(audio) - 1)] ** 2, axis=1)
    loud = energy >= energy.max() * 10 ** (-trim_db / 10)
    out = []
    for w in words:
        f0, f1 = int(np.ceil(w.start / hop_s)), int(np.floor((w.end - frame_s) / hop_s))
        f0, f1 = max(f0, 0), min(f1, n - 1)
        active = np.flatnonzero(loud[f0 : f1 + 1]) if f1 >= f0 else np.zeros(0, dtype=int)
        if len(active) == 0:
            out.append(w)
            continue
        start = float(max(w.start, (f0 + active[0]) * hop_s - 0.005))
        end = float(min(w.end, (f0 + active[-1]) * hop_s + frame_s + 0.005))
        out.append(Word(w.word, round(start, 4), round(end, 4)) if end > start + 0.02 else w)
    return out


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """``x`` from ``sr_in`` to ``sr_out`` Hz (soxr, high quality), float32."""
    if sr_in == sr_out:
        return x.astype(np.float32)
    import soxr

    return soxr.resample(x.astype(np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)
