import json

import numpy as np
import pytest

from speechreps.cli import main
from speechreps.data.alignments import read_term_pairs
from speechreps.data.archive import load_archive, parse_utterance_key, parse_word_key
from speechreps.data.prepare import PrepareOptions, prepare_corpus
from speechreps.data.registry import load_dataset
from speechreps.errors import DataWarning, UserError

SMALL = PrepareOptions(min_frames=20, min_chars=5, pair_min_frames=20, pair_min_chars=5)


def test_prepare_writes_consistent_archives(tone_corpus, tmp_path):
    out = tmp_path / "out"
    summary = prepare_corpus(tone_corpus, out, "tones", SMALL, jobs=1, progress=False)
    assert set(summary["splits"]) == {"train", "validation", "test"}
    ds = load_dataset(out / "data_paths.json", "tones")
    utts = load_archive(ds.utterances("train"))
    words = load_archive(ds.word_tokens("train"))
    assert all(v.shape[1] == 39 for v in utts.values())
    by_utt = {parse_utterance_key(k).utt: v for k, v in utts.items()}
    for key, feats in words.items():
        k = parse_word_key(key)
        assert len(k.label) >= 5 and k.n_frames >= 20
        np.testing.assert_array_equal(feats, by_utt[k.utt][k.start : k.end])  # a word is a slice of its utterance
    assert {parse_word_key(k).label for k in words} <= {"alpha", "bravo", "charlie"}  # "echo" has < 5 characters
    # per-speaker normalisation across all of a speaker's utterances
    spk = {}
    for k, v in utts.items():
        spk.setdefault(k.split("_")[0], []).append(v)
    for arrays in spk.values():
        stacked = np.concatenate(arrays)
        np.testing.assert_allclose(stacked.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(stacked.std(0), 1, atol=1e-3)
    pairs = read_term_pairs(ds.train_pairs)
    assert pairs and all(p.cluster in ("alpha", "bravo", "charlie") for p in pairs)
    assert all((p.utt1, p.start1) != (p.utt2, p.start2) for p in pairs)
    assert ds.speaker_rule()("sp01_000") == "sp01"


def test_prepare_is_cached_and_deterministic(tone_corpus, tmp_path):
    first = prepare_corpus(tone_corpus, tmp_path / "o", "tones", SMALL, jobs=1, progress=False)
    again = prepare_corpus(tone_corpus, tmp_path / "o", "tones", SMALL, jobs=1, progress=False)
    assert again.get("reused") and again["fingerprint"] == first["fingerprint"]
    changed = prepare_corpus(tone_corpus, tmp_path / "o", "tones", PrepareOptions(min_frames=10), jobs=1, progress=False)
    assert not changed.get("reused")
    prepare_corpus(tone_corpus, tmp_path / "p", "tones", PrepareOptions(min_frames=10), jobs=2, progress=False)
    a = load_archive(tmp_path / "o" / "tones" / "test_words.npz")
    b = load_archive(tmp_path / "p" / "tones" / "test_words.npz")
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_alignment_lines_are_counted_or_strict(tone_corpus, tmp_path):
    wrd = tone_corpus / "words.wrd"
    wrd.write_text(wrd.read_text() + "nosuch_000 0.1 0.5 ghost\nsp00_000 0.5 0.4 backwards\nsp00_000 9.0 9.5 toolate\n")
    with pytest.warns(DataWarning, match="skipped 3 alignment line"):
        prepare_corpus(tone_corpus, tmp_path / "o", "tones", SMALL, jobs=1, progress=False)
    with pytest.raises(UserError, match="words.wrd:"):
        prepare_corpus(tone_corpus, tmp_path / "o2", "tones", SMALL, strict=True, jobs=1, progress=False)
    assert not (tmp_path / "o2").exists()  # nothing half-written


def test_corpus_errors(tmp_path, tone_corpus):
    with pytest.raises(UserError, match="does not exist"):
        prepare_corpus(tmp_path / "nope", tmp_path / "o", "x", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .wav or .flac"):
        prepare_corpus(tmp_path / "empty", tmp_path / "o", "x", progress=False)
    with pytest.raises(UserError, match="dataset name"):
        prepare_corpus(tone_corpus, tmp_path / "o", "bad name", progress=False)
    (tone_corpus / "audio" / "sp00_000.wav").write_bytes(b"garbage")
    with pytest.raises(UserError, match="sp00_000.wav"):
        prepare_corpus(tone_corpus, tmp_path / "o", "x", SMALL, jobs=1, progress=False)


def test_cli_prepare_and_unknown_dataset(tone_corpus, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["prepare", str(tone_corpus), str(out), "--name", "tones", "--min-frames", "20", "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "dataset tones" in printed and "train" in printed
    assert json.loads((out / "data_paths.json").read_text())["tones_train_data"] == "tones/train_utterances.npz"
    with pytest.raises(UserError, match="'nope' is not in .*known: tones"):
        load_dataset(out / "data_paths.json", "nope")
    assert main(["prepare", str(tmp_path / "missing"), str(out), "--name", "t"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err and "Traceback" not in err
