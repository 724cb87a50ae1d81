"""Shared test fixtures, all built in code (no downloads, no big files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread for every test: the models here are tiny, so intra-op threads only add
    synchronisation, which costs a lot on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TONE_WORDS = {"alpha": 300.0, "bravo": 700.0, "charlie": 1300.0, "echo": 2100.0}


def write_tone_corpus(root: Path, sample_rate: int = 22050, n_speakers: int = 6, n_utts: int = 3, seed: int = 0) -> Path:
    """A corpus in the audio layout whose 'words' are tones: each word type has its own pitch.

    Speakers differ by a gain and a DC offset in spectral tilt (a constant added tone), so that
    per-speaker normalisation has something to remove. Words are 0.6 s with 0.1 s gaps.
    """
    import soundfile as sf

    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "speakers").mkdir(exist_ok=True)
    lines = []
    speakers = [f"sp{i:02d}" for i in range(n_speakers)]
    for si, spk in enumerate(speakers):
        gain = 0.1 + 0.05 * si
        for u in range(n_utts):
            utt = f"{spk}_{u:03d}"
            words = rng.choice(list(TONE_WORDS), size=3)
            pieces, t = [np.zeros(int(0.1 * sample_rate))], 0.1
            for w in words:
                n = int(0.6 * sample_rate)
                tt = np.arange(n) / sample_rate
                tone = np.sin(2 * np.pi * TONE_WORDS[w] * tt) + 0.3 * np.sin(2 * np.pi * (150 + 20 * si) * tt)
                pieces.append(gain * tone)
                lines.append(f"{utt} {t:.3f} {t + 0.6:.3f} {w}")
                t += 0.6
                pieces.append(np.zeros(int(0.1 * sample_rate)))
                t += 0.1
            audio = np.concatenate(pieces) + 0.001 * rng.standard_normal(sum(len(p) for p in pieces))
            sf.write(root / "audio" / f"{utt}.wav", audio.astype(np.float32), sample_rate, subtype="PCM_16")
    (root / "words.wrd").write_text("\n".join(lines) + "\n")
    third = n_speakers // 3
    (root / "speakers" / "train.txt").write_text("\n".join(speakers[: n_speakers - 2 * third]) + "\n")
    (root / "speakers" / "validation.txt").write_text("\n".join(speakers[n_speakers - 2 * third : n_speakers - third]) + "\n")
    (root / "speakers" / "test.txt").write_text("\n".join(speakers[n_speakers - third :]) + "\n")
    return root


@pytest.fixture
def tone_corpus(tmp_path: Path) -> Path:
    return write_tone_corpus(tmp_path / "corpus")
