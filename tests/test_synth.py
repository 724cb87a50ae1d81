"""The built-in eSpeak NG corpus: alignments, determinism, layout, caching, options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechreps.corpus import build_corpus, load_vocab, read_manifest, synthesize
from speechreps.corpus.degrade import Degradation, degrade
from speechreps.corpus.synth import CorpusParams, make_speakers, split_sizes, word_probabilities
from speechreps.data.alignments import read_speaker_list, read_wrd
from speechreps.errors import UserError

TINY = dict(n_speakers=4, vocab_size=20, utts_per_speaker=2, progress=False)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    """A degraded English corpus of 4 speakers x 2 utterances over 20 word types."""
    return build_corpus("en", tmp_path_factory.mktemp("synth") / "tiny", jobs=2, **TINY)


@pytest.fixture(scope="module")
def tiny_corpus_clean(tmp_path_factory) -> Path:
    """The same without degradation (for checking the alignments against clean isolated words)."""
    return build_corpus("en", tmp_path_factory.mktemp("synth") / "clean", jobs=2, n_speakers=4, vocab_size=12,
                        utts_per_speaker=3, degradation=Degradation(enabled=False), progress=False)


# --- small MFCC + DTW, enough to tell words apart ------------------------------------------------


def _mfcc(audio: np.ndarray) -> np.ndarray:
    from speechreps.data.features import compute_features

    f = compute_features(audio.astype(np.float32))
    return (f - f.mean(0)) / (f.std(0) + 1e-5)


def _dtw(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine-distance DTW, steps (1,0) (0,1) (1,1), cost / (n + m).

    Row by row: with t[j] = d[i,j] + min(c[i-1,j-1], c[i-1,j]), the row is c[j] = min(t[j], d[i,j] + c[j-1]),
    i.e. c = S + cummin(t - S) with S the running sum of d[i] (vectorised, exact up to rounding).
    """
    an = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
    bn = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
    d = 1.0 - an @ bn.T
    n, m = d.shape
    prev = np.concatenate([[0.0], np.full(m, np.inf)])  # row 0 of the (n+1, m+1) cost table
    for i in range(n):
        t = d[i] + np.minimum(prev[:-1], prev[1:])
        s = np.cumsum(d[i])
        prev = np.concatenate([[np.inf], s + np.minimum.accumulate(t - s)])
    return float(prev[-1] / (n + m))


def _resample16(audio: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return soxr.resample(audio.astype(np.float32), sr, 16000, quality="HQ")


# --- synthesis -------------------------------------------------------------------------------------


def test_synthesize_gives_one_ordered_interval_per_word():
    text = "government television hospital yesterday beautiful"
    audio, sr, words = synthesize(text, "en-us+m3")
    assert sr == 22050  # eSpeak's own rate, reported by espeak_Initialize
    assert audio.dtype == np.float32 and len(audio) > sr  # over a second of speech
    assert [w.word for w in words] == text.split()
    for w, nxt in zip(words, words[1:]):
        assert 0 <= w.start < w.end <= nxt.start + 1e-9
    assert words[-1].end <= len(audio) / sr + 1e-6
    with pytest.raises(UserError):
        synthesize("hello", "en-us+nosuchvariant")


def test_corpus_word_alignments_match_isolated_words(tiny_corpus_clean):
    """A word cut by its alignment is nearest (DTW on MFCCs) to the same word said alone by the same
    voice, and shifting the cut by 120 ms makes it match worse."""
    import soundfile as sf

    root = tiny_corpus_clean
    manifest = read_manifest(root)
    speakers = {s["id"]: s for s in manifest["speakers"]}
    vocab = load_vocab("en")[: manifest["params"]["vocab_size"]]
    templates: dict[str, dict[str, np.ndarray]] = {}
    for spk, s in speakers.items():
        templates[spk] = {}
        for word in vocab:
            audio, sr, _ = synthesize(word, s["voice"], rate=s["rate"], pitch=s["pitch"], pitch_range=s["pitch_range"])
            templates[spk][word] = _mfcc(_resample16(audio, sr))
    by_utt: dict[str, list] = {}
    for w in read_wrd(root / "words.wrd"):
        by_utt.setdefault(w.utt, []).append(w)
    correct = total = 0
    shift_worse = shift_total = 0
    for utt, words in by_utt.items():
        audio, sr = sf.read(root / "audio" / f"{utt}.wav", dtype="float32")
        assert sr == 16000
        feats = _mfcc(audio)
        spk = utt.split("_")[0]
        for w in words:
            s, e = w.frames()
            token = feats[s:e]
            dists = {v: _dtw(token, t) for v, t in templates[spk].items()}
            total += 1
            correct += min(dists, key=dists.get) == w.word
            for shift in (-12, 12):  # frames
                if s + shift >= 0 and e + shift <= len(feats):
                    shift_total += 1
                    shift_worse += _dtw(feats[s + shift : e + shift], templates[spk][w.word]) > dists[w.word]
    print(f"alignment check: {correct}/{total} nearest to own word; shifted worse {shift_worse}/{shift_total}")
    assert total >= 40
    assert correct / total >= 0.9, f"{correct}/{total} tokens nearest to their own word"
    assert shift_worse / shift_total >= 0.9, f"shifted cuts matched better in {shift_total - shift_worse}/{shift_total}"


# --- corpus -----------------------------------------------------------------------------------------


def test_layout_and_alignments(tiny_corpus):
    import soundfile as sf

    root = tiny_corpus
    manifest = json.loads((root / "corpus.json").read_text())
    assert manifest["params"]["language"] == "en" and manifest["sample_rate"] == 16000
    splits = {s: read_speaker_list(root / "speakers" / f"{s}.txt") for s in ("train", "validation", "test")}
    assert [len(v) for v in splits.values()] == [2, 1, 1]
    all_speakers = [s for v in splits.values() for s in v]
    assert sorted(all_speakers) == ["en01", "en02", "en03", "en04"]
    wavs = sorted(p.stem for p in (root / "audio").glob("*.wav"))
    assert len(wavs) == 8 == manifest["totals"]["utterances"]
    words = read_wrd(root / "words.wrd")
    assert {w.utt for w in words} == set(wavs)
    assert len(words) == manifest["totals"]["words"]
    vocab = set(load_vocab("en")[:20])
    durations = {}
    for utt in wavs:
        spk, num = utt.split("_")
        assert spk in all_speakers and len(num) == 4
        info = sf.info(root / "audio" / f"{utt}.wav")
        assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
        durations[utt] = info.frames / info.samplerate
    for w in words:
        assert w.word in vocab and "_" not in w.word
        assert 0 < w.start < w.end <= durations[w.utt]
    by_utt: dict[str, list] = {}
    for w in words:
        by_utt.setdefault(w.utt, []).append(w)
    for ws in by_utt.values():  # in order, not overlapping
        assert all(a.end <= b.start + 1e-6 for a, b in zip(ws, ws[1:]))


def test_same_seed_same_bytes_whatever_the_jobs(tiny_corpus, tmp_path):
    other = build_corpus("en", tmp_path / "again", jobs=1, **TINY)
    for rel in ["words.wrd", "utterances.tsv", "speakers/train.txt", "speakers/validation.txt", "speakers/test.txt"]:
        assert (other / rel).read_bytes() == (tiny_corpus / rel).read_bytes(), rel
    names = sorted(p.name for p in (tiny_corpus / "audio").iterdir())
    assert names == sorted(p.name for p in (other / "audio").iterdir())
    for name in names:
        assert (other / "audio" / name).read_bytes() == (tiny_corpus / "audio" / name).read_bytes(), name
    different = build_corpus("en", tmp_path / "seed1", seed=1, jobs=2, **TINY)
    assert (different / "words.wrd").read_bytes() != (tiny_corpus / "words.wrd").read_bytes()


def test_same_bytes_from_a_fresh_process(tiny_corpus, tmp_path):
    """A process that never ran eSpeak itself forks its workers (the path a plain script or the CLI
    takes; this test process uses a fork server): same bytes, also for a second build in it."""
    import subprocess
    import sys

    # Breathy and rough voices also use eSpeak's random generator, seeded from the clock unless we
    # seed it: two fresh processes must speak them identically.
    speak = (
        "import hashlib; from speechreps.corpus import synthesize\n"
        "for v in ['en-us+victor', 'en-us+f2', 'tn+f5']:\n"
        "    print(hashlib.md5(synthesize('government several important', v, seed=5)[0].tobytes()).hexdigest())\n"
    )
    code = (
        "import sys; from speechreps.corpus import build_corpus; from speechreps.corpus.synth import _start_method\n"
        "assert _start_method() == 'fork', _start_method()\n"
        f"kw = dict({', '.join(f'{k}={v!r}' for k, v in TINY.items())})\n"
        "build_corpus('en', sys.argv[1] + '/first', seed=3, jobs=2, **kw)\n"
        "build_corpus('en', sys.argv[1] + '/second', jobs=2, **kw)\n"
    ) + speak
    runs = [subprocess.run([sys.executable, "-c", c, str(tmp_path)], check=True, timeout=120, capture_output=True,
                           text=True).stdout for c in (code, speak)]
    assert runs[0] == runs[1] and len(runs[0].split()) == 3
    other = tmp_path / "second"
    assert (other / "words.wrd").read_bytes() == (tiny_corpus / "words.wrd").read_bytes()
    for wav in (tiny_corpus / "audio").iterdir():
        assert (other / "audio" / wav.name).read_bytes() == wav.read_bytes(), wav.name


def test_cache_reuse_partial_and_force(tmp_path):
    out = tmp_path / "c"
    build_corpus("tn", out, jobs=2, **TINY)
    manifest = (out / "corpus.json").read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "audio").iterdir()}
    assert build_corpus("tn", out, jobs=2, **TINY) == out  # reused: nothing rewritten
    assert (out / "corpus.json").read_text() == manifest
    assert {p.name: p.stat().st_mtime_ns for p in (out / "audio").iterdir()} == stamps
    # a build that never wrote its manifest is redone
    (out / "corpus.json").unlink()
    (out / "audio" / "tn01_0000.wav").unlink()
    build_corpus("tn", out, jobs=2, **TINY)
    assert (out / "audio" / "tn01_0000.wav").exists() and (out / "corpus.json").exists()
    # other parameters replace the old corpus, stale utterances included
    build_corpus("tn", out, jobs=2, **{**TINY, "utts_per_speaker": 1})
    assert len(list((out / "audio").glob("*.wav"))) == 4
    assert not list(out.glob(".synth-incomplete")) and not list((out / "audio").glob(".*"))
    words = read_wrd(out / "words.wrd")
    assert {w.utt.split("_")[1] for w in words} == {"0000"}
    assert all(w.word in set(load_vocab("tn")) for w in words)


def test_bad_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="language"):
        build_corpus("xx", tmp_path / "a")
    with pytest.raises(UserError, match="speakers"):
        build_corpus("en", tmp_path / "a", n_speakers=2)
    with pytest.raises(UserError, match="minutes"):
        build_corpus("en", tmp_path / "a", minutes=0)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        build_corpus("en", foreign, **TINY)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_cli(tmp_path, capsys):
    from speechreps.cli import build_parser, main

    help_text = build_parser()._subparsers._group_actions[0].choices["synth"].format_help()
    for option in ("--language", "--out", "--seed", "--speakers", "--minutes", "--jobs", "--force"):
        assert option in help_text
    assert main(["synth", "--language", "all", "--out", str(tmp_path / "x")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["synth", "--language", "en", "--speakers", "1", "--out", str(tmp_path / "y")]) == 2
    assert main(["synth", "--language", "tn", "--speakers", "3", "--minutes", "0.1", "--jobs", "2",
                 "--out", str(tmp_path / "z")]) == 0
    assert "synth_tn" in capsys.readouterr().out
    assert main(["synth", "--language", "tn", "--speakers", "3", "--minutes", "0.1", "--out", str(tmp_path / "z")]) == 0
    assert "reused" in capsys.readouterr().out


# --- pieces -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "tn"])
def test_vocabulary(language):
    words = load_vocab(language)
    assert len(words) >= 250 and len(set(words)) == len(words)
    assert all(w.isascii() and w.isalpha() and w.islower() for w in words)
    assert sum(len(w) >= 5 for w in words) / len(words) > 0.9  # most can enter same-different sets


def test_flattened_zipf_and_speakers():
    p = word_probabilities(300)
    assert np.isclose(p.sum(), 1.0) and np.all(np.diff(p) < 0)
    assert p[0] / p[-1] == pytest.approx(320 / 21)
    assert split_sizes(24) == (12, 6, 6) and split_sizes(4) == (2, 1, 1)
    speakers = make_speakers(CorpusParams(language="tn", n_speakers=24))
    assert [s.id for s in speakers] == [f"tn{i:02d}" for i in range(1, 25)]
    assert len({s.voice for s in speakers}) == 24  # distinct voice variants
    assert all(s.voice.startswith("tn+") for s in speakers)
    assert [s.split for s in speakers].count("validation") == 6


def test_degradation_is_seeded_and_hits_its_snr():
    rng = np.random.default_rng(0)
    x = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32) * 0.3
    a, info = degrade(x, 16000, np.random.default_rng(5))
    b, _ = degrade(x, 16000, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.dtype == np.float32 and np.abs(a).max() <= 1.0
    assert "noise" in info and "channel" in info
    cfg = Degradation(snr_db=(10.0, 10.0), tilt_probability=1.0, tilt_coefficient=(0.0, 0.0),
                      bandpass_probability=0.0, pink_probability=0.0, level_dbfs=(-20.0, -20.0))
    y, _ = degrade(x, 16000, rng, cfg)
    noise = y - x * (np.dot(y, x) / np.dot(x, x))
    snr = 10 * np.log10(np.mean((y - noise) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.5)
    assert 20 * np.log10(np.sqrt(np.mean(y**2))) == pytest.approx(-20.0, abs=0.1)
