"""Audio -> frame features, computed with the calls of ``recipe_bucktsong_awe_py3``'s ``features.py``.

MFCC (the recipe's, call for call)::

    y = np.append(y[0], y[1:] - 0.97 * y[:-1])                         # pre-emphasis
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_mels=24, n_fft=floor(0.025 sr),
                                hop_length=floor(0.01 sr), fmin=64, fmax=8000)
    feats = [mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2)]

over the whole file, librosa's defaults otherwise: a Hann window of ``n_fft`` = 400 samples (no
zero-padding to 512), centred frames (frame ``t`` is centred on sample ``160 t``, the signal padded by
``n_fft / 2`` either side, so a file of ``n`` samples has ``1 + n // 160`` frames), a Slaney-style mel
filterbank, power in dB (``10 log10``, floored 80 dB below the file's loudest bin), DCT-II
(orthonormal); deltas by a Savitzky-Golay filter over 9 frames. A word at ``[t0, t1]`` seconds is
frames ``round(100 t0)`` to ``round(100 t1)`` (end kept: see :mod:`speechreps.data.prepare`).
Log-mel filterbanks (``fbank``) are the recipe's ``extract_fbank_dir``: ``log(melspectrogram(...))``
with the same frames (floored at 1e-10 so that digital silence gives no -inf), plus deltas.
Per-speaker mean and variance normalisation is applied afterwards over the speaker's kept frames
(:func:`speaker_cmvn`).

Audio is first resampled to 16 kHz (:func:`load_audio`), so that every corpus gets the same frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class FeatureConfig:
    """Front-end settings (defaults: the recipe's MFCCs)."""

    kind: str = "mfcc"  # "mfcc" or "fbank"
    n_mfcc: int = 13
    n_mels: int = 24
    win_ms: float = 25.0  # n_fft = floor(win_ms * sr / 1000): 400 samples, as the recipe
    hop_ms: float = 10.0
    fmin: float = 64.0
    fmax: float = 8000.0
    preemphasis: float = 0.97
    deltas: bool = True

    def __post_init__(self):
        if self.kind not in ("mfcc", "fbank"):
            raise UserError(f"feature kind {self.kind!r} is not one of: mfcc, fbank")
        if self.fmax > SAMPLE_RATE / 2:
            raise UserError(f"fmax {self.fmax} Hz is above the Nyquist frequency of {SAMPLE_RATE} Hz audio")

    @property
    def dim(self) -> int:
        base = self.n_mfcc if self.kind == "mfcc" else self.n_mels
        return base * 3 if self.deltas else base

    def to_dict(self) -> dict:
        return asdict(self)


#: a signal whose peak stays below this (-80 dBFS, about three 16-bit steps) is silence
SILENCE_PEAK = 1e-4


def load_audio(path: str | Path) -> np.ndarray:
    """Read a wav/flac file as mono float32 at 16 kHz (any input rate is resampled).

    Unreadable, empty or silent-length files raise :class:`UserError` naming the file.
    """
    import soundfile as sf

    path = Path(path)
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / OSError
        raise UserError(f"audio file {path} cannot be read: {exc}") from None
    if audio.shape[0] == 0:
        raise UserError(f"audio file {path} is empty")
    peaks = np.abs(audio).max(axis=0)
    audio = audio.mean(axis=1)
    mixed_peak = float(np.abs(audio).max())
    if mixed_peak < SILENCE_PEAK or mixed_peak < 1e-3 * peaks.max():  # constant features: no word to find
        if peaks.max() >= SILENCE_PEAK:
            raise UserError(f"audio file {path}: its {len(peaks)} channels cancel out when mixed to mono "
                            f"(opposite phase); keep one channel")
        raise UserError(f"audio file {path} is silent (peak {peaks.max():.1e}); remove it or its alignments")
    if sr != SAMPLE_RATE:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE, res_type="soxr_hq").astype(np.float32)
    return audio


def frame_sizes(cfg: "FeatureConfig") -> tuple[int, int]:
    """``(n_fft, hop_length)`` in samples: ``floor(0.025 sr)`` and ``floor(0.01 sr)`` by default."""
    return int(np.floor(cfg.win_ms / 1000 * SAMPLE_RATE)), int(np.floor(cfg.hop_ms / 1000 * SAMPLE_RATE))


def n_frames(n_samples: int, cfg: FeatureConfig = FeatureConfig()) -> int:
    """Number of centred frames of a signal (0 if shorter than one window, which is refused)."""
    win, hop = frame_sizes(cfg)
    return 0 if n_samples < win else 1 + n_samples // hop


def preemphasis(signal: np.ndarray, coeff: float = 0.97) -> np.ndarray:
    """``y[0], y[1:] - coeff * y[:-1]`` (keeps the input's float32)."""
    return np.append(signal[0], signal[1:] - coeff * signal[:-1])


def compute_features(audio: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """16 kHz mono audio of a whole file -> float32 ``[frames, cfg.dim]`` (no normalisation yet)."""
    import librosa

    win, hop = frame_sizes(cfg)
    if n_frames(len(audio), cfg) == 0:
        return np.zeros((0, cfg.dim), np.float32)
    y = preemphasis(np.asarray(audio, dtype=np.float32), cfg.preemphasis)
    common = dict(y=y, sr=SAMPLE_RATE, n_mels=cfg.n_mels, n_fft=win, hop_length=hop, fmin=cfg.fmin, fmax=cfg.fmax)
    if cfg.kind == "mfcc":
        feats = librosa.feature.mfcc(n_mfcc=cfg.n_mfcc, **common)  # (n_mfcc, T)
    else:
        feats = np.log(np.maximum(librosa.feature.melspectrogram(**common), 1e-10))  # (n_mels, T)
    parts = [feats]
    if cfg.deltas:
        mode = "interp" if feats.shape[1] >= 9 else "nearest"  # interp needs the 9-frame window inside the file
        parts += [librosa.feature.delta(feats, mode=mode), librosa.feature.delta(feats, order=2, mode=mode)]
    return np.hstack([p.T for p in parts]).astype(np.float32)  # (T, dim)


def speaker_cmvn(features: dict[str, np.ndarray], speaker_of: dict[str, str]) -> dict[str, np.ndarray]:
    """Mean and variance normalise each speaker's frames (all utterances of a speaker together).

    Dimensions with zero variance for a speaker are only mean-normalised.
    """
    by_speaker: dict[str, list[str]] = {}
    for key in features:
        by_speaker.setdefault(speaker_of[key], []).append(key)
    out: dict[str, np.ndarray] = {}
    for keys in by_speaker.values():
        stacked = np.concatenate([features[k] for k in keys], axis=0).astype(np.float64)
        mean = stacked.mean(axis=0)
        std = stacked.std(axis=0)
        std[std < 1e-8] = 1.0
        for k in keys:
            out[k] = ((features[k] - mean) / std).astype(np.float32)
    return {k: out[k] for k in features}
