import numpy as np
import pytest
import soundfile as sf

from speechreps.data.features import (
    FeatureConfig,
    compute_features,
    deltas,
    load_audio,
    n_frames,
    speaker_cmvn,
)
from speechreps.errors import UserError


def test_mfcc_shape_and_frame_count():
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    f = compute_features(audio)
    assert f.shape == (n_frames(16000), 39) == (98, 39)
    assert f.dtype == np.float32
    assert compute_features(audio, FeatureConfig(kind="fbank")).shape == (98, 72)
    assert compute_features(audio, FeatureConfig(deltas=False)).shape == (98, 13)
    assert compute_features(audio[:399]).shape == (0, 39)


def test_deltas_are_htk_regression():
    x = np.arange(10, dtype=np.float32)[:, None] ** 2
    d = deltas(x)
    # interior: sum n (x[t+n] - x[t-n]) / 10 = derivative of t^2 = 2t exactly
    np.testing.assert_allclose(d[2:-2, 0], 2 * np.arange(2, 8), rtol=1e-6)


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
