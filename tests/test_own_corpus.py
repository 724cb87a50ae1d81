"""A user's own corpus: layouts, speaker lists and rules, no alignments, cutting, TextGrid/CTM, recipe keys and
features, the zero-resource split, speechreps run --corpus. Every corpus is built here in code (tones)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechreps.cli import main
from speechreps.data.alignment_formats import read_alignments, read_ctm, read_textgrid
from speechreps.data.archive import load_archive, parse_utterance_key, parse_word_key
from speechreps.data.corpus import find_corpus
from speechreps.data.pairs import SegmentLookup
from speechreps.data.prepare import PrepareOptions, prepare_corpus, word_frames
from speechreps.data.registry import load_dataset
from speechreps.data.segments import energy_segments, segments_from_words
from speechreps.data.speakers import canonical_utt, choose_rule, id_style, listed_speaker
from speechreps.errors import DataWarning, UserError

from conftest import write_tone_corpus

SMALL = dict(min_frames=20, min_chars=5, pair_min_frames=20, pair_min_chars=5)


def user_layout(root: Path, n_speakers: int = 6) -> Path:
    """The tone corpus as a user brings it: FLAC in wav/, words.wrd, speakers.list; no split lists."""
    write_tone_corpus(root, n_speakers=n_speakers)
    (root / "wav").mkdir()
    for wav in sorted((root / "audio").glob("*.wav")):
        audio, sr = sf.read(wav, dtype="float32")
        sf.write(root / "wav" / f"{wav.stem}.flac", audio, sr, format="FLAC")
    shutil.rmtree(root / "audio")
    shutil.rmtree(root / "speakers")
    return root


def test_discovery_wav_folder_and_speakers_list(tmp_path):
    corpus = user_layout(tmp_path / "c")
    # the recipe's speakers.list shape: a comment, extra columns; sp05 is not one of the corpus's speakers
    (corpus / "speakers.list").write_text("# speaker; gender\n" + "".join(f"sp0{i} f y\n" for i in range(5)))
    lines: list[str] = []
    summary = prepare_corpus(corpus, tmp_path / "o", "c", PrepareOptions(**SMALL), jobs=1, progress=False,
                             log=lines.append)
    assert len(lines) == 1
    assert "18 audio files in wav/" in lines[0] and "words.wrd with 54 word tokens" in lines[0]
    assert "speakers.list with 5 speakers" in lines[0]
    assert summary["unassigned_speakers"] == ["sp05"]
    assert {s: v["speakers"] for s, v in summary["splits"].items()} == {
        "train": ["sp00", "sp01", "sp02"], "validation": ["sp03"], "test": ["sp04"]}
    (corpus / "speakers.list").write_text("s01\ns02\n")
    with pytest.raises(UserError, match="speakers.list' matches none of the corpus's 6 speakers: s01 is not among"):
        prepare_corpus(corpus, tmp_path / "o2", "c", jobs=1, progress=False)


def test_zero_resource_split_is_trained_and_evaluated_on(tmp_path, capsys):
    corpus = user_layout(tmp_path / "c")
    prepare_corpus(corpus, tmp_path / "o", "zr", PrepareOptions(zero_resource=True, **SMALL), jobs=1, progress=False)
    ds = load_dataset(tmp_path / "o" / "data_paths.json", "zr")
    assert ds.zero_resource and ds.evaluation_splits() == ["all"] and ds.train_pairs is None
    assert ds.utterances("train") == ds.utterances("all")
    words = load_archive(ds.word_tokens("all"))
    n_tokens = sum(len(ln.split()[3]) >= 5 for ln in (corpus / "words.wrd").read_text().splitlines())  # not "echo"
    assert len(words) == n_tokens and len({parse_word_key(k).utt.split("_")[0] for k in words}) == 6
    with pytest.raises(UserError, match="its word tokens are in split 'all'"):
        ds.word_tokens("validation")
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"frame_ae": {"learning_rate": 0.003, "num_steps": 20, "batch_size": 64,
                                            "input_dim": 39, "hidden_dim": 16, "num_layers": 2,
                                            "bottleneck_dim": 8, "validate_every": 0}}))
    dp = str(tmp_path / "o" / "data_paths.json")
    ck = str(tmp_path / "ck")
    assert main(["train", "frame_ae", str(cfg), ck, "--language", "zr", "--data-paths", dp, "--no-progress"]) == 0
    assert main(["evaluate", "frame_ae", str(cfg), ck, "--language", "zr", "--data-paths", dp]) == 0
    report = json.loads((tmp_path / "ck" / "evaluation_zr.json").read_text())
    assert list(report["splits"]) == ["all"] and report["splits"]["all"]["n_tokens"] == n_tokens
    assert main(["samediff", str(ds.word_tokens("all")), "--distance", "downsample"]) == 0
    assert "downsample" in capsys.readouterr().out


def test_no_alignments_gives_utterance_archives_that_train(tmp_path, capsys):
    corpus = user_layout(tmp_path / "c")
    (corpus / "words.wrd").unlink()
    out = tmp_path / "o"
    assert main(["prepare", str(corpus), str(out), "--name", "na", "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "no word alignments" in printed.splitlines()[0] and "utterance archives only" in printed
    raw = json.loads((out / "data_paths.json").read_text())
    assert "na_train_data" in raw and not any(k.endswith("_words") for k in raw)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({
        "apc": {"learning_rate": 0.003, "num_steps": 4, "batch_size": 4, "input_dim": 39, "hidden_dim": 8,
                "num_layers": 1, "validate_every": 1},
        "capc": {"learning_rate": 0.003, "num_epochs": 1, "batch_size": 4, "input_dim": 39, "hidden_dim": 8,
                 "num_layers": 1}}))
    dp = str(out / "data_paths.json")
    assert main(["train", "apc", str(cfg), str(tmp_path / "a"), "--language", "na", "--data-paths", dp,
                 "--no-progress"]) == 0
    assert (tmp_path / "a" / "last.pt").is_file()
    for action, rep, message in (("evaluate", "apc", "no word tokens at all (prepared without word alignments?)"),
                                 ("train", "capc", "has no training pairs: give --pairs FILE")):
        assert main([action, rep, str(cfg), str(tmp_path / "a"), "--language", "na", "--data-paths", dp]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and message in err


def test_long_recordings_are_cut_at_alignment_pauses_or_by_energy(tmp_path):
    """Three utterances of a speaker joined into one recording; cut the recipe's way, or by energy without words."""
    src = write_tone_corpus(tmp_path / "src", n_speakers=3, n_utts=3)
    long = tmp_path / "long"
    (long / "audio").mkdir(parents=True)
    words, offset = [], {}
    for spk in ("sp00", "sp01", "sp02"):
        pieces, t = [], 0.0
        for u in range(3):
            audio, sr = sf.read(src / "audio" / f"{spk}_{u:03d}.wav", dtype="float32")
            offset[f"{spk}_{u:03d}"] = t
            pieces += [audio, np.zeros(sr // 2, np.float32)]  # half a second between the utterances
            t += len(audio) / sr + 0.5
        sf.write(long / "audio" / f"{spk}_rec.wav", np.concatenate(pieces), sr)
    for line in (src / "words.wrd").read_text().splitlines():
        utt, s, e, w = line.split()
        o = offset[utt]
        words.append(f"{utt[:4]}_rec {float(s) + o:.3f} {float(e) + o:.3f} {w}")
    (long / "words.wrd").write_text("\n".join(words) + "\n")
    opts = PrepareOptions(max_utterance_seconds=5.0, **SMALL)
    summary = prepare_corpus(long, tmp_path / "o", "long", opts, jobs=1, progress=False)
    assert summary["segmentation"] == "alignments"
    ds = load_dataset(tmp_path / "o" / "data_paths.json", "long")
    utts = load_archive(ds.utterances("train"))
    keys = [parse_utterance_key(k) for k in utts]
    # the tone words are 0.6 s with 0.1 s pauses: every word is its own speech region, end = round(100 t1) + 1
    assert len(keys) == 9 and all(k.n_frames == 61 for k in keys)
    first = sorted(keys, key=lambda k: k.start)[0]
    assert first.start == 10 and first.end == 71
    stacked = np.concatenate(list(utts.values()))  # statistics over the kept segments only
    np.testing.assert_allclose(stacked.mean(0), 0, atol=1e-4)
    (long / "words.wrd").unlink()
    summary = prepare_corpus(long, tmp_path / "o", "long", opts, jobs=1, progress=False)
    assert summary["segmentation"] == "energy"
    spans = [parse_utterance_key(k) for k in load_archive(load_dataset(tmp_path / "o" / "data_paths.json",
                                                                           "long").utterances("train"))]
    assert len(spans) == 3 and all(200 < k.n_frames < 240 for k in spans)  # one region per joined utterance


def test_segment_rules():
    from speechreps.data.alignments import WordAlignment as W

    words = [W("u", 0.5, 0.8, "a"), W("u", 0.8, 1.2, "b"), W("u", 1.5, 2.0, "c")]
    assert segments_from_words(words, 1000) == [(50, 121), (150, 201)]
    assert segments_from_words(words, 1000, max_gap=0.5) == [(50, 201)]
    assert segments_from_words(words, 180) == [(50, 121), (150, 180)]
    sr = 16000
    x = np.zeros(3 * sr, np.float32)
    x[sr : 2 * sr] = np.sin(np.arange(sr) * 0.2)
    # centred 400-sample frames: frame 99 is the first to reach into the tone, frame 201 the last
    assert energy_segments(x, pad=0.0) == [(99, 202)] and energy_segments(x) == [(89, 212)]
    x[int(1.5 * sr) : int(1.7 * sr)] = 0  # a 0.2 s pause is bridged (min_pause 0.3 s), a 0.4 s one is not
    assert energy_segments(x, pad=0.0) == [(99, 202)]
    x[int(1.3 * sr) : int(1.7 * sr)] = 0
    assert len(energy_segments(x, pad=0.0)) == 2


def test_speaker_id_styles_rules_and_nchlt_spellings():
    assert [id_style(u) for u in ("s06_02a", "nchlt_tso_001m_0007", "nchlt-tso-001m-0007",
                                  "001m_nchlt-tso-0007", "spk1_x", "x")] == \
        ["buckeye", "nchlt", "nchlt", "nchlt-pair", "prefixed", None]
    assert canonical_utt("001m_nchlt-tso-0007") == canonical_utt("nchlt-tso-001m-0007") == "nchlt_tso_001m_0007"
    assert canonical_utt("s06_02a") == "s06_02a" and listed_speaker("nchlt-tso-001m") == "001m"
    ids = [f"nchlt_tso_{s}_{n:04d}" for s in ("001m", "102f") for n in range(3)]
    rule, style = choose_rule(ids, "auto")
    assert (rule.name, style, rule(ids[0])) == ("nchlt", "nchlt", "001m")
    with pytest.raises(UserError, match="buckeye reads speaker 'nchlt' from NCHLT ids"):
        choose_rule(ids, "buckeye")
    with pytest.raises(UserError, match="'s06_02a' is not an NCHLT id"):
        choose_rule(["s06_02a"], "nchlt")
    lookup = SegmentLookup({"nchlt_tso_001m_0007_000000-000300": np.zeros((300, 2), np.float32)})
    assert lookup.find("001m_nchlt-tso-0007", 10, 20) == ("nchlt_tso_001m_0007_000000-000300", 10)


def test_nchlt_corpus_with_listed_speakers_and_a_one_speaker_warning(tmp_path):
    corpus = write_tone_corpus(tmp_path / "c", n_speakers=3)
    rename = {f"sp0{i}": f"nchlt_tso_00{i}m" for i in range(3)}
    for wav in list((corpus / "audio").glob("*.wav")):
        spk, n = wav.stem.split("_")
        wav.rename(wav.with_name(f"{rename[spk]}_0{n}.wav"))
    wrd = corpus / "words.wrd"
    wrd.write_text("".join(f"{rename[ln[:4]]}_0{ln[5:]}\n" for ln in wrd.read_text().splitlines()))
    for split, spk in zip(("train", "validation", "test"), ("000m", "001m", "002m")):
        (corpus / "speakers" / f"{split}.txt").write_text(f"nchlt-tso-{spk}\n")
    summary = prepare_corpus(corpus, tmp_path / "o", "ts", PrepareOptions(**SMALL), jobs=1, progress=False)
    assert summary["speaker_rule"] == "nchlt" and summary["splits"]["train"]["speakers"] == ["000m"]
    assert summary["splits"]["test"]["word_tokens"] > 0
    (corpus / "speakers" / "test.txt").write_text("nchlt-tso-999m\n")
    with pytest.raises(UserError, match=r"'test' matches none .*nchlt-tso-999m \(read as 999m\)"):
        prepare_corpus(corpus, tmp_path / "o2", "ts", jobs=1, progress=False)
    shutil.rmtree(corpus / "speakers")
    with pytest.warns(DataWarning, match=r"reads one speaker \('nchlt'\) from all 9 utterances"):
        prepare_corpus(corpus, tmp_path / "o3", "ts", PrepareOptions(speaker_rule=r"(nchlt)_", **SMALL),
                       jobs=1, progress=False)


TEXTGRID_LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 2.5
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.77
            text = ""
        intervals [2]:
            xmin = 0.77
            xmax = 1.27
            text = "ndlela"
        intervals [3]:
            xmin = 1.27
            xmax = 2.5
            text = "sil"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 2.5
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 2.5
            text = "n"
'''

TEXTGRID_SHORT = '''"ooTextFile"
"TextGrid"
0
2.5
<exists>
1
"IntervalTier"
"spk - words"
0
2.5
2
0.77
1.27
"say ""hi"""
1.27
2.5
"yo"
'''


def test_textgrid_and_ctm_alignments(tmp_path):
    (tmp_path / "u1.TextGrid").write_text(TEXTGRID_LONG)
    assert [(w.utt, w.start, w.end, w.word) for w in read_textgrid(tmp_path / "u1.TextGrid")] == \
        [("u1", 0.77, 1.27, "ndlela")]
    (tmp_path / "u2.TextGrid").write_text(TEXTGRID_SHORT, encoding="utf-16")
    assert [w.word for w in read_alignments(tmp_path / "u2.TextGrid")] == ['say "hi"', "yo"]
    with pytest.raises(UserError, match="no tier 'x'.*tiers: words, phones"):
        read_textgrid(tmp_path / "u1.TextGrid", tier="x")
    (tmp_path / "a.ctm").write_text(";; kaldi\nu1 1 0.77 0.50 ndlela 0.9\nu1 1 1.27 0.1 <eps>\nu1 A 1.4 0.6 yo\n")
    assert [(w.start, round(w.end, 6), w.word) for w in read_ctm(tmp_path / "a.ctm")] == \
        [(0.77, 1.27, "ndlela"), (1.4, 2.0, "yo")]
    (tmp_path / "b.ctm").write_text("u1 1 x 0.5 w\n")
    with pytest.raises(UserError, match="b.ctm:1: start/duration"):
        read_ctm(tmp_path / "b.ctm")


def test_textgrid_corpus_prepares_like_its_wrd(tone_corpus, tmp_path):
    from speechreps.data.alignments import read_wrd

    by_utt: dict[str, list] = {}
    for w in read_wrd(tone_corpus / "words.wrd"):
        by_utt.setdefault(w.utt, []).append(w)
    prepare_corpus(tone_corpus, tmp_path / "a", "t", PrepareOptions(**SMALL), jobs=1, progress=False)
    (tone_corpus / "words.wrd").unlink()
    (tone_corpus / "textgrids").mkdir()
    for utt, ws in by_utt.items():
        body = "".join(f"{w.start}\n{w.end}\n\"{w.word}\"\n" for w in ws)
        (tone_corpus / "textgrids" / f"{utt}.TextGrid").write_text(
            f'"ooTextFile"\n"TextGrid"\n0\n9\n<exists>\n1\n"IntervalTier"\n"words"\n0\n9\n{len(ws)}\n{body}')
    assert len(find_corpus(tone_corpus).alignment_files) == len(by_utt)
    prepare_corpus(tone_corpus, tmp_path / "b", "t", PrepareOptions(**SMALL), jobs=1, progress=False)
    a, b = (load_archive(tmp_path / d / "t" / "test_words.npz") for d in ("a", "b"))
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_word_keys_as_the_recipe_writes_them(tmp_path):
    from speechreps.data.alignments import WordAlignment as W

    assert word_frames(W("u", 0.77, 1.27, "ndlela")) == (77, 128, 50)  # key end round(100 t1) + 1; 51 frames
    corpus = write_tone_corpus(tmp_path / "c", n_speakers=3, n_utts=1)
    lines = (corpus / "words.wrd").read_text().splitlines()
    utt = lines[0].split()[0]
    (corpus / "words.wrd").write_text("\n".join(lines) + f"\n{utt} 0.100 0.590 shorty\n{utt} 0.100 0.600 longer\n")
    prepare_corpus(corpus, tmp_path / "o", "k", PrepareOptions(min_frames=50, min_chars=5), jobs=1, progress=False)
    ds = load_dataset(tmp_path / "o" / "data_paths.json", "k")
    words = load_archive(ds.word_tokens("train"))
    utts = load_archive(ds.utterances("train"))
    keys = {parse_word_key(k).label: parse_word_key(k) for k in words}
    assert "shorty" not in keys  # 59 - 10 = 49 < 50 frames: left out, as the recipe's filter does
    assert (keys["longer"].start, keys["longer"].end) == (10, 61) and words[str(keys["longer"])].shape[0] == 51
    (ukey,) = [k for k in utts if k.startswith(utt)]
    np.testing.assert_array_equal(words[str(keys["longer"])], utts[ukey][10:61])


def test_prepared_features_equal_the_recipe_pipeline(tmp_path):
    """MFCCs, deltas, the recipe's VAD regions from the alignments, per-speaker normalisation over those
    regions: the recipe's calls written out here with librosa, against prepare's archive."""
    import librosa

    corpus = write_tone_corpus(tmp_path / "c", sample_rate=16000, n_speakers=3, n_utts=2)
    summary = prepare_corpus(corpus, tmp_path / "o", "r", PrepareOptions(segment="alignments", **SMALL), jobs=1,
                             progress=False)
    assert summary["segmentation"] == "alignments"
    feats = {}
    for wav in sorted((corpus / "audio").glob("*.wav")):
        y, sr = librosa.load(wav, sr=None)
        y = np.append(y[0], y[1:] - 0.97 * y[:-1])
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_mels=24, n_fft=int(np.floor(0.025 * sr)),
                                    hop_length=int(np.floor(0.01 * sr)), fmin=64, fmax=8000)
        feats[wav.stem] = np.hstack([mfcc.T, librosa.feature.delta(mfcc).T, librosa.feature.delta(mfcc, order=2).T])
    segs = {}
    prev = None
    for line in (corpus / "words.wrd").read_text().splitlines():  # read_vad_from_fa: contiguous words, one region
        utt, t0, t1, _ = line.split()
        t0, t1 = float(t0), float(t1)
        if prev is None or prev[0] != utt or prev[2] != t0:
            segs.setdefault(utt, []).append([t0, t1])
        else:
            segs[utt][-1][1] = t1
        prev = (utt, t0, t1)
    cut = {f"{u}_{int(round(a * 100)):06d}-{int(round(b * 100)) + 1:06d}":
           feats[u][int(round(a * 100)) : int(round(b * 100)) + 1] for u, r in segs.items() for a, b in r}
    want = {}
    for spk in {k.split("_")[0] for k in cut}:
        keys = [k for k in cut if k.startswith(spk + "_")]
        stacked = np.vstack([cut[k] for k in keys])
        mean, std = stacked.mean(0), stacked.std(0)
        want.update({k: (cut[k] - mean) / std for k in keys})
    ds = load_dataset(tmp_path / "o" / "data_paths.json", "r")
    got = {k: v for s in ("train", "validation", "test") for k, v in load_archive(ds.utterances(s)).items()}
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=2e-4)


def test_run_corpus_zero_resource(tmp_path, capsys):
    corpus = user_layout(tmp_path / "mycorpus")
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"frame_ae": {"learning_rate": 0.003, "num_steps": 10, "batch_size": 64,
                                            "input_dim": 39, "hidden_dim": 16, "num_layers": 2,
                                            "bottleneck_dim": 8, "validate_every": 0}}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["run", "--corpus", str(corpus), "--zero-resource", "--config", str(cfg), "--only", "frame_ae",
                     "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"), "--no-progress",
                     "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "corpus " in out and "18 audio files in wav/" in out
    rows = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    assert {(r["features"], r["split"]) for r in rows} == {("mfcc", "all"), ("frame_ae", "all")}
    assert all(0 < r["ap"] <= 1 for r in rows)
    assert "all DTW AP" in (tmp_path / "run" / "table.md").read_text()
    assert main(["run", "--corpus", str(corpus), "--dataset", "x"]) == 2


def test_run_zero_resource_corpus_trains_pair_models_on_discovered_pairs_only(tmp_path, capsys, monkeypatch):
    """On a zero-resource corpus the word tokens are the evaluation words, so no model may train on their
    gold pairs: CAPC / frame CAE (and --awe) are refused without --discover, in one line before any
    training; with it they train on pairs discovered in all the audio (read at last.pt: nothing labelled
    to pick a checkpoint) and are scored on all the words, beside MFCC and the label-free models."""
    import dataclasses

    from speechreps import zero_resource
    from speechreps.discover import config as discover_config

    @dataclasses.dataclass(frozen=True)
    class ToneDiscovery(discover_config.DiscoverConfig):  # 0.6 s tones in 18 utterances: short windows, a loose threshold
        window_lengths: tuple[int, ...] = (20, 30)
        hop: int = 3
        dtw_z: float = 2.0

    monkeypatch.setattr(discover_config, "DiscoverConfig", ToneDiscovery)
    monkeypatch.setattr(zero_resource, "Z_CURVE", (2.0,))
    monkeypatch.setattr(zero_resource, "LEARNED_DTW_Z", 2.0)
    monkeypatch.setattr(zero_resource, "LEARNED_Z_CURVE", (2.0,))
    corpus = user_layout(tmp_path / "mycorpus")
    net = {"learning_rate": 0.003, "batch_size": 64, "input_dim": 39, "hidden_dim": 16, "num_layers": 2,
           "bottleneck_dim": 8}
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"frame_ae": {**net, "num_steps": 10, "validate_every": 0},
                               "frame_cae": {**net, "num_steps": 10, "validate_every": 1},
                               "awe": {"model": "contrastive_rnn", "learning_rate": 0.001, "num_epochs": 1,
                                       "batch_size": 8, "embedding_dim": 8, "enc_hidden_dim": 8, "enc_num_layers": 1}}))
    common = ["--corpus", str(corpus), "--zero-resource", "--config", str(cfg), "--out", str(tmp_path / "run"),
              "--data-dir", str(tmp_path / "data"), "--no-progress", "--jobs", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for extra, message in ((["--only", "frame_ae,frame_cae"], "--only frame_cae: frame_cae trains on word pairs"),
                               (["--only", "frame_ae", "--awe"], "--awe: mycorpus has no gold word pairs")):
            assert main(["run", *common, *extra]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and message in err and "add --discover" in err and "Traceback" not in err
        assert not (tmp_path / "run" / "models").exists()  # refused before any training
        # both rounds: on the MFCCs, then on the frame AE's features (trained without labels)
        assert main(["run", *common, "--only", "frame_ae,frame_cae", "--discover-on", "frame_ae"]) == 0
    out = capsys.readouterr().out
    assert "mycorpus has no gold word pairs (zero-resource), so there they train on discovered pairs only" in out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {(r["features"], r["trained_on"], r["split"]) for r in results["rows"]} == {
        ("mfcc", None, "all"), ("frame_ae", "mycorpus", "all")}
    track = results["zero_resource"]
    assert list(track["discovery"]) == ["mycorpus_zr", "mycorpus_zr_frame_ae"] and track["datasets"] == {
        "mycorpus": "mycorpus_zr"}  # the MFCC round's pairs are the AWE models'
    for twin_name, features in (("mycorpus_zr", "mfcc"), ("mycorpus_zr_frame_ae", "frame_ae")):
        disc = track["discovery"][twin_name]
        assert disc["dataset"] == "mycorpus" and list(disc) == ["train", "dataset"]
        assert disc["train"]["features"] == features and disc["train"]["stats"]["n_pairs"] > 0
        twin = load_dataset(tmp_path / "data" / "data_paths.json", twin_name)
        assert twin.zero_resource and twin.train_pairs == Path(disc["train"]["files"]["pairs"])
        assert not twin.has_word_tokens("validation")
        assert not (tmp_path / "run" / "models" / "s0" / twin_name / "frame_cae" / "best.pt").exists()
    assert [(r["features"], r["trained_on"], r["split"]) for r in track["rows"] if r["distance"] == "dtw"] == [
        ("frame_cae", "mycorpus_zr", "all"), ("frame_cae", "mycorpus_zr_frame_ae", "all")]
    assert all(0 < r["ap"] <= 1 for r in track["rows"])
    report = (tmp_path / "run" / "report.md").read_text()
    dtw = {r["trained_on"]: r["ap"] for r in track["rows"] if r["distance"] == "dtw"}
    assert "pairs discovered on MFCC val / test (gain kept) | pairs discovered on frame_ae val / test" in report
    assert "| mycorpus | frame_cae | " in report and f"| {dtw['mycorpus_zr']:.3f} | {dtw['mycorpus_zr_frame_ae']:.3f} |" in report
    assert "| mycorpus | MFCC |" in report and "| mycorpus | frame_ae |" in report  # both rounds' discovery rows
