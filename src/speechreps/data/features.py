"""Audio -> frame features, as ``recipe_bucktsong_awe_py3`` computes them.

MFCC: pre-emphasis 0.97, 25 ms Hamming window, 10 ms hop, 512-point FFT, 24 mel bands from 64 Hz to
8 kHz, log power, DCT-II (orthonormal) keeping 13 coefficients, then deltas and delta-deltas (HTK
regression over +-2 frames) for 39 dimensions. Log-mel filterbanks (``fbank``) are the same front
end without the DCT. Frames are "snip-edges" style: frame ``t`` covers samples
``[t * hop, t * hop + win)``, so a word at ``[s, e)`` seconds is frames ``round(100 s)`` to
``round(100 e)``. Per-speaker mean and variance normalisation is applied afterwards over all of a
speaker's frames (:func:`speaker_cmvn`).
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
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
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


def n_frames(n_samples: int, cfg: FeatureConfig = FeatureConfig()) -> int:
    """Number of snip-edges frames of a signal (0 if shorter than one window)."""
    win = int(round(cfg.win_ms * SAMPLE_RATE / 1000))
    hop = int(round(cfg.hop_ms * SAMPLE_RATE / 1000))
    return 0 if n_samples < win else 1 + (n_samples - win) // hop


def _mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    import librosa

    return librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, htk=True, norm=None
    ).astype(np.float32)


_MEL_CACHE: dict[FeatureConfig, np.ndarray] = {}


def compute_features(audio: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """16 kHz mono audio -> float32 ``[frames, cfg.dim]`` (no normalisation yet)."""
    import scipy.fft

    win = int(round(cfg.win_ms * SAMPLE_RATE / 1000))
    hop = int(round(cfg.hop_ms * SAMPLE_RATE / 1000))
    t = n_frames(len(audio), cfg)
    if t == 0:
        return np.zeros((0, cfg.dim), np.float32)
    x = np.append(audio[:1], audio[1:] - cfg.preemphasis * audio[:-1]).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:t]  # (T, win)
    frames = frames * np.hamming(win).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, n=cfg.n_fft, axis=1)) ** 2  # (T, n_fft/2+1)
    if cfg not in _MEL_CACHE:
        _MEL_CACHE[cfg] = _mel_filterbank(cfg)
    mel = power @ _MEL_CACHE[cfg].T  # (T, n_mels)
    feats = np.log(np.maximum(mel, 1e-10))
    if cfg.kind == "mfcc":
        feats = scipy.fft.dct(feats, type=2, norm="ortho", axis=1)[:, : cfg.n_mfcc]
    feats = feats.astype(np.float32)
    if cfg.deltas:
        d1 = deltas(feats)
        feats = np.concatenate([feats, d1, deltas(d1)], axis=1)
    return feats.astype(np.float32)


def deltas(feats: np.ndarray, window: int = 2) -> np.ndarray:
    """HTK regression deltas over +-``window`` frames, edges replicated; delta-deltas are deltas of deltas.

    d_t = sum_n n (c_{t+n} - c_{t-n}) / (2 sum_n n^2), n = 1..window.
    """
    t = len(feats)
    padded = np.pad(feats, ((window, window), (0, 0)), mode="edge")
    out = np.zeros_like(feats)
    for n in range(1, window + 1):
        out += n * (padded[window + n : window + n + t] - padded[window - n : window - n + t])
    return out / (2 * sum(n * n for n in range(1, window + 1)))


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
