"""How far each front-end choice moves MFCCs from the recipe's (``recipe_bucktsong_awe_py3`` features.py).

    python bench/recipe_features.py CORPUS_AUDIO_GLOB [--old-commit 832b1e0]

For the files matched (one speaker's, say), the recipe's features (librosa MFCC, n_fft 400, Hann,
centred frames, Slaney mel, dB, Savitzky-Golay deltas) after mean/variance normalisation over the
files, against the same with one choice changed, and against speechreps before it followed the
recipe (read from git at ``--old-commit``): mean absolute difference per value. Prints a table.
"""

from __future__ import annotations

import argparse
import glob
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def features(a, n_fft=400, window="hann", htk=False, norm="slaney", center=True, db=True, htk_deltas=False):
    import librosa
    import scipy.fft

    y = np.append(a[0], a[1:] - 0.97 * a[:-1])
    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=160, win_length=400, window=window, center=center)) ** 2
    mel = librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=24, fmin=64, fmax=8000, htk=htk, norm=norm) @ power
    logmel = librosa.power_to_db(mel) if db else np.log(np.maximum(mel, 1e-10))
    m = scipy.fft.dct(logmel, axis=0, type=2, norm="ortho")[:13]
    if htk_deltas:  # regression over +-2 frames, delta-deltas as deltas of deltas
        def d(x):
            p = np.pad(x, ((0, 0), (2, 2)), mode="edge")
            t = x.shape[1]
            return sum(n * (p[:, 2 + n : 2 + n + t] - p[:, 2 - n : 2 - n + t]) for n in (1, 2)) / 10
        d1, d2 = d(m), d(d(m))
    else:
        d1, d2 = librosa.feature.delta(m), librosa.feature.delta(m, order=2)
    return np.vstack([m, d1, d2]).T


def cmvn(xs):
    s = np.concatenate(xs)
    return [(x - s.mean(0)) / s.std(0) for x in xs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("audio_glob")
    ap.add_argument("--old-commit", default=None, help="speechreps commit whose data/features.py to compare too")
    args = ap.parse_args()
    from speechreps.data.features import compute_features, load_audio

    audio = [load_audio(f) for f in sorted(glob.glob(args.audio_glob))]
    if not audio:
        sys.exit(f"no files match {args.audio_glob}")
    raw = [features(a) for a in audio]
    print(f"speechreps vs the recipe's calls, before normalisation: max |diff| "
          f"{max(np.abs(compute_features(a) - r).max() for a, r in zip(audio, raw)):.2e}")
    ref = cmvn(raw)
    rows = [("512-point FFT (400-sample window zero-padded)", dict(n_fft=512)), ("Hamming window", dict(window="hamming")),
            ("HTK mel scale, no Slaney area norm", dict(htk=True, norm=None)), ("ln power instead of dB", dict(db=False)),
            ("HTK +-2-frame regression deltas", dict(htk_deltas=True))]
    print(f"{'changed':48s} mean |diff| per value after CMVN")
    for name, kw in rows:
        got = cmvn([features(a, **kw) for a in audio])
        print(f"{name:48s} {np.mean([np.abs(g - r).mean() for g, r in zip(got, ref)]):.3f}")
    got = cmvn([features(a, center=False) for a in audio])
    print(f"{'snip-edges frames (compared one frame later)':48s} "
          f"{np.mean([np.abs(g - r[1 : len(g) + 1]).mean() for g, r in zip(got, ref)]):.3f} "
          f"({len(got[0])} frames where the recipe has {len(ref[0])})")
    if args.old_commit:
        src = subprocess.run(["git", "show", f"{args.old_commit}:src/speechreps/data/features.py"], check=True,
                             capture_output=True, text=True).stdout.replace("from ..errors", "from speechreps.errors")
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "old_features.py").write_text(src)
            sys.path.insert(0, d)
            import old_features

            got = cmvn([old_features.compute_features(a) for a in audio])
        print(f"{'speechreps at ' + args.old_commit + ' (all of them)':48s} "
              f"{np.mean([np.abs(g - r[: len(g)]).mean() for g, r in zip(got, ref)]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
