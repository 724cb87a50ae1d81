import numpy as np
import pytest
import soundfile as sf

from speechreps.data.features import (
    FeatureConfig,
    compute_features,
    load_audio,
    n_frames,
    speaker_cmvn,
)
from speechreps.errors import UserError


def test_mfcc_shape_and_frame_count():
    """Centred frames: 1 + n // 160 of them (the recipe's 655 where snip-edges framing gave 652)."""
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    f = compute_features(audio)
    assert f.shape == (n_frames(16000), 39) == (101, 39)
    assert f.dtype == np.float32
    assert compute_features(audio, FeatureConfig(kind="fbank")).shape == (101, 72)
    assert compute_features(audio, FeatureConfig(deltas=False)).shape == (101, 13)
    assert compute_features(audio[:399]).shape == (0, 39)
    assert compute_features(audio[:800]).shape == (6, 39)  # fewer frames than the 9-frame delta window


def test_mfcc_equals_the_recipe_calls():
    """Our features equal the recipe's features.py calls, written out here with librosa, within float32 rounding."""
    import librosa

    rng = np.random.default_rng(1)
    t = np.arange(int(2.3 * 16000)) / 16000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(len(t)))
    y = y.astype(np.float32)
    sr = 16000
    signal = np.append(y[0], y[1:] - 0.97 * y[:-1])
    mfcc = librosa.feature.mfcc(y=signal, sr=sr, n_mfcc=13, n_mels=24, n_fft=int(np.floor(0.025 * sr)),
                                hop_length=int(np.floor(0.01 * sr)), fmin=64, fmax=8000)
    want = np.hstack([mfcc.T, librosa.feature.delta(mfcc).T, librosa.feature.delta(mfcc, order=2).T])
    got = compute_features(y)
    assert got.shape == want.shape == (1 + len(y) // 160, 39)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * np.abs(want).max())


def test_mfcc_separates_tones():
    """A 300 Hz tone is nearer another 300 Hz tone (louder) than a 2 kHz tone."""
    t = np.arange(8000) / 16000
    a, b, c = (np.sin(2 * np.pi * f * t).astype(np.float32) for f in (300, 300, 2000))
    fa, fb, fc = (compute_features(x, FeatureConfig(deltas=False))[:, 1:].mean(0) for x in (a, 2 * b, c))
    assert np.linalg.norm(fa - fb) < np.linalg.norm(fa - fc)


def test_speaker_cmvn_gives_zero_mean_unit_std_per_speaker():
    rng = np.random.default_rng(1)
    feats = {f"s{s}_u{u}": rng.normal(5 * s, 1 + s, size=(20 + u, 4)).astype(np.float32) for s in range(3) for u in range(3)}
    feats["s0_const"] = np.ones((5, 4), np.float32)
    out = speaker_cmvn(feats, {k: k.split("_")[0] for k in feats})
    assert list(out) == list(feats)
    for s in range(3):
        stacked = np.concatenate([v for k, v in out.items() if k.startswith(f"s{s}_")])
        np.testing.assert_allclose(stacked.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(stacked.std(0), 1, atol=1e-4)


def test_load_audio_resamples_and_mixes_down(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1) * 0.5
    sf.write(tmp_path / "a.flac", stereo, sr)
    audio = load_audio(tmp_path / "a.flac")
    assert audio.dtype == np.float32 and abs(len(audio) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 2  # the tone survives at 16 kHz


def test_bad_audio_names_the_file(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEnotreally")
    with pytest.raises(UserError, match="junk.wav"):
        load_audio(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(UserError, match="empty.wav.*empty"):
        load_audio(tmp_path / "empty.wav")
