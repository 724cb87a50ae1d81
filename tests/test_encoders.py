"""Pretrained encoders (speechreps encoder): offline loading, the 20 ms / 10 ms frame rule, in-context words,
every layer scored against an independent recomputation, the main job's extra rows, no network ever.

Models are tiny randomly initialised HuBERT / wav2vec 2.0 / WavLM built from their configs and saved with
safetensors into a temporary folder; the corpus is the tone corpus of conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import write_tone_corpus
from speechreps.cli import main
from speechreps.encoders.frames import FrameGeometry
from speechreps.errors import UserError

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
FAMILIES = ("hubert", "wav2vec2", "wavlm")


def save_tiny_model(folder: Path, family: str, seed: int = 0, **overrides) -> Path:
    import torch
    import transformers

    classes = {"hubert": ("HubertConfig", "HubertModel"), "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model"),
               "wavlm": ("WavLMConfig", "WavLMModel")}
    cfg_cls, model_cls = (getattr(transformers, n) for n in classes[family])
    torch.manual_seed(seed)
    getattr(transformers, model_cls.__name__)(cfg_cls(**{**TINY, **overrides})).save_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A prepared tone corpus and one tiny model per family (plus a layer-norm WavLM that batches)."""
    from speechreps.data.prepare import prepare_corpus

    root = tmp_path_factory.mktemp("encoders")
    write_tone_corpus(root / "corpus")
    prepare_corpus(root / "corpus", root / "data", "tones", progress=False, jobs=1)
    models = {f: save_tiny_model(root / f"tiny_{f}", f) for f in FAMILIES}
    models["wavlm_layer"] = save_tiny_model(root / "tiny-wavlm-layer", "wavlm", feat_extract_norm="layer")
    return root, root / "data" / "data_paths.json", models


# ---------------------------------------------------------------------------------------------
# The frame rule


def brute_span(geo: FrameGeometry, start: int, end: int, n: int) -> list[int]:
    """Encoder frames whose centre lies in the word's span [start * hop, (end - 1) * hop], by enumeration."""
    return [j for j in range(n) if start * geo.hop <= geo.stride * j + geo.receptive_field / 2 <= (end - 1) * geo.hop]


def test_frame_counts_equal_the_models_own_at_odd_lengths(setup):
    import torch

    from speechreps.encoders.model import load_encoder

    enc = load_encoder(setup[2]["hubert"], device="cpu")
    assert (enc.geometry.stride, enc.geometry.receptive_field) == (320, 400)
    lengths = [400, 401, 719, 720, 721, 1199, 16001, 16319, 16320]
    want = enc.model._get_feat_extract_output_lengths(torch.tensor(lengths)).tolist()
    assert [enc.geometry.n_frames(n) for n in lengths] == want
    for n in (719, 16001):  # and what a forward pass really gives
        assert enc.encode([np.random.default_rng(0).standard_normal(n).astype(np.float32)])[0].shape[1] == want[lengths.index(n)]


def test_word_spans_keep_exactly_the_frames_centred_inside_at_odd_boundaries():
    geo = FrameGeometry()
    for n in (7, 24, 25, 49):  # odd and even encoder frame counts
        for start in range(0, 2 * n + 3):
            for end in range(start + 1, start + 9):
                a, b = geo.span(start, end, n)
                ref = brute_span(geo, start, end, n)
                assert 0 <= a < b <= n  # never empty, never past the end
                if ref:
                    assert list(range(a, b)) == ref, (start, end, n)
                else:  # too short (or past the end): the one frame nearest the midpoint
                    assert b - a == 1
    assert geo.span(3, 8, 10) == (1, 3)  # 30-70 ms: centres 32.5 and 52.5 ms; 72.5 ms is outside
    assert geo.span(0, 50, 100)[1] - geo.span(0, 50, 100)[0] == 24  # a 50-frame word: 24-25 frames
    assert geo.span(1, 51, 100)[1] - geo.span(1, 51, 100)[0] == 25


# ---------------------------------------------------------------------------------------------
# Loading: offline, safetensors only, one-line errors


def _bad_folders(tmp: Path, good: Path) -> dict[str, Path]:
    import shutil

    cases = {}
    cases["missing"] = tmp / "nope"
    (tmp / "noconfig").mkdir()
    cases["no config.json"] = tmp / "noconfig"
    for name, text in (("badjson", "{not json"), ("bert", json.dumps({"model_type": "bert"}))):
        (tmp / name).mkdir()
        (tmp / name / "config.json").write_text(text)
        shutil.copy(good / "model.safetensors", tmp / name)
        cases[name] = tmp / name
    pickle_only = tmp / "pickle_only"
    pickle_only.mkdir()
    shutil.copy(good / "config.json", pickle_only)
    (pickle_only / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    cases["pytorch_model.bin"] = pickle_only
    truncated = tmp / "truncated"
    shutil.copytree(good, truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 3])
    cases["truncated"] = truncated
    wrong = tmp / "wrong_size"
    shutil.copytree(good, wrong)
    cfg = json.loads((wrong / "config.json").read_text())
    cfg["hidden_size"] = 48
    (wrong / "config.json").write_text(json.dumps(cfg))
    cases["weights that do not fit"] = wrong
    return cases


def test_a_bad_model_folder_is_one_line_and_exit_2(setup, tmp_path, capsys):
    from speechreps.encoders.model import load_encoder

    _, data_paths, models = setup
    for what, folder in _bad_folders(tmp_path, models["hubert"]).items():
        with pytest.raises(UserError):
            load_encoder(folder)
        rc = main(["encoder", str(folder), "--language", "tones", "--data-paths", str(data_paths), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert rc == 2, what
        assert len(err.splitlines()) == 1 and str(folder.name) in err, (what, err)
        if what == "pytorch_model.bin":
            assert "pickle" in err  # refused, never unpickled


def test_a_fine_tuned_ctc_checkpoint_loads_as_its_encoder(tmp_path):
    """Folders saved from *ForCTC (weights under a ``hubert.`` prefix, plus a head) load their encoder part."""
    import torch
    import transformers

    from speechreps.encoders.model import load_encoder

    torch.manual_seed(0)
    ctc = transformers.HubertForCTC(transformers.HubertConfig(**TINY, vocab_size=12)).eval()
    ctc.save_pretrained(tmp_path / "ctc")
    enc = load_encoder(tmp_path / "ctc", device="cpu")
    wave = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    with torch.inference_mode():
        ref = ctc.hubert(torch.from_numpy(wave)[None], output_hidden_states=True).hidden_states
    got = enc.encode([wave])[0]
    for k in range(3):
        np.testing.assert_allclose(got[k], ref[k][0].numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Encoding


def test_layer_norm_models_batch_by_length_and_each_item_equals_its_own_forward(setup):
    from speechreps.encoders.model import load_encoder

    rng = np.random.default_rng(1)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (4000, 6417, 5203, 16000)]
    enc = load_encoder(setup[2]["wavlm_layer"], device="cpu")
    assert enc.batched and enc.batches([len(w) for w in waves]) == [[0, 2, 1, 3]]
    together = dict(enc.encode_all([len(w) for w in waves], lambda i: waves[i]))
    for i, w in enumerate(waves):
        alone = enc.encode([w])[0]
        assert together[i].shape == alone.shape == (enc.n_layers, enc.geometry.n_frames(len(w)), enc.dim)
        np.testing.assert_allclose(together[i], alone, atol=2e-5)
    group = load_encoder(setup[2]["hubert"], device="cpu")  # group norm over time sees padding: one at a time
    assert not group.batched and group.batches([5, 3, 4]) == [[1], [2], [0]]


def test_words_in_context_are_the_rules_slice_of_the_whole_utterance_and_isolated_words_their_own_samples(setup):
    import torch

    from speechreps.data.archive import Archive, parse_utterance_key, parse_word_key
    from speechreps.data.features import load_audio
    from speechreps.data.registry import load_dataset
    from speechreps.encoders.audio import AudioSource, corpus_of
    from speechreps.encoders.features import encode_split
    from speechreps.encoders.model import load_encoder

    root, data_paths, models = setup
    ds = load_dataset(data_paths, "tones")
    enc = load_encoder(models["wav2vec2"], device="cpu")
    audio = AudioSource(corpus_of(ds))
    assert audio.root.resolve() == (root / "corpus").resolve()
    words, utts = list(Archive(ds.word_tokens("test"))), list(Archive(ds.utterances("test")))
    ctx = encode_split(enc, audio, words, utts, layers=[0, 2])
    iso = encode_split(enc, audio, words, utts, layers=[2], isolated=True)
    assert (ctx.in_context, ctx.isolated, iso.isolated) == (len(words), 0, len(words))
    for key in words[:4]:
        k = parse_word_key(key)
        utt_key = next(u for u in utts if parse_utterance_key(u).utt == k.utt)
        wave = load_audio(root / "corpus" / "audio" / f"{k.utt}.wav")
        with torch.inference_mode():  # the model's own forward over the whole file, straight from transformers
            hidden = enc.model(torch.from_numpy(wave)[None], output_hidden_states=True).hidden_states
        u0 = parse_utterance_key(utt_key).start
        frames = brute_span(enc.geometry, k.start - u0, k.end - u0, hidden[2].shape[1])
        np.testing.assert_allclose(ctx.words["L2"][key], hidden[2][0, frames].numpy(), atol=1e-5)
        np.testing.assert_allclose(ctx.words["L0"][key], hidden[0][0, frames].numpy(), atol=1e-5)
        seg = wave[k.start * 160 : (k.end - 1) * 160 + 1]
        with torch.inference_mode():
            alone = enc.model(torch.from_numpy(seg)[None], output_hidden_states=True).hidden_states[2][0].numpy()
        np.testing.assert_allclose(iso.words["L2"][key], alone, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# The whole path


@pytest.mark.parametrize("family", FAMILIES)
def test_encoder_command_scores_every_layer_and_extracts_the_best(setup, tmp_path, family, capsys):
    from speechreps.data.archive import load_archive
    from speechreps.data.registry import load_dataset
    from speechreps.evaluate.samediff import samediff, word_tokens

    _, data_paths, models = setup
    out = tmp_path / "out"
    rc = main(["encoder", str(models[family]), "--language", "tones", "--data-paths", str(data_paths), "--out", str(out),
               "--jobs", "1", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "layers.json").read_text())
    assert summary["family"] == family and summary["n_layers"] == 3 and summary["frame_ms"] == 20
    assert {(r["layer"], r["split"], r["distance"]) for r in summary["rows"]} == {
        (f"L{k}", s, d) for k in range(3) for s in ("validation", "test") for d in ("downsample", "dtw")}
    assert (out / "layers.png").stat().st_size > 0 and "| L2 |" in (out / "layers.md").read_text()
    best = summary["best_layer"]
    val_dtw = {r["layer"]: r["ap"] for r in summary["rows"] if r["split"] == "validation" and r["distance"] == "dtw"}
    assert val_dtw[best] == max(val_dtw.values())
    ds = load_dataset(data_paths, "tones")
    for split in ("train", "validation", "test"):
        feats = load_archive(summary["files"][split])
        assert list(feats) == list(load_archive(ds.word_tokens(split)))  # the recipe's keys, in order
        assert all(v.shape[1] == 32 and 24 <= len(v) <= 35 for v in feats.values())  # 0.6 s words at 20 ms
    # the reported AP is what an independent scoring of the extracted archive gives
    segs, labels, spk, _ = word_tokens(load_archive(summary["files"]["test"]), ds.speaker_rule())
    ref = samediff(segs, labels, spk, distance="dtw", n_jobs=1)
    row = next(r for r in summary["rows"] if (r["layer"], r["split"], r["distance"]) == (best, "test", "dtw"))
    assert row["ap"] == pytest.approx(ref.ap) and row["ap_cross_speaker"] == pytest.approx(ref.ap_cross_speaker)
    assert "speechreps awe train" in printed and summary["files"]["train_pairs"].endswith(".txt")


def test_awe_model_trains_on_the_extracted_features_with_pairs_in_encoder_frames(setup, tmp_path):
    from speechreps.data.alignments import read_term_pairs
    from speechreps.data.archive import load_archive
    from speechreps.data.pairs import SegmentLookup

    root, data_paths, models = setup
    out = tmp_path / "out"
    assert main(["encoder", str(models["wavlm"]), "--language", "tones", "--data-paths", str(data_paths),
                 "--out", str(out), "--layers", "1", "--no-progress", "--jobs", "1"]) == 0
    extract = json.loads((out / "extract.json").read_text())
    utts = load_archive(extract["files"]["train_utterances"])
    words = load_archive(extract["files"]["train"])
    lookup = SegmentLookup(utts)
    pairs = read_term_pairs(extract["files"]["train_pairs"])
    assert len(pairs) == len(read_term_pairs(root / "data" / "tones" / "train_pairs.txt"))
    word_frames = {arr.tobytes() for arr in words.values()}
    for p in pairs[:5]:  # a term pair's end cut from the utterances == that word's own frames (same rule)
        for utt, start, end in ((p.utt1, p.start1, p.end1), (p.utt2, p.start2, p.end2)):
            seg = lookup.get(utt, start, end)
            assert seg is not None and seg.tobytes() in word_frames
    cfg = json.loads((Path(__file__).parents[1] / "src/speechreps/configs/demo.json").read_text())["awe"]
    cfg.update(num_epochs=1, lr_milestones=[])
    (tmp_path / "awe.json").write_text(json.dumps({"awe": cfg}))
    argv = extract["awe_command"].replace("CONFIG", str(tmp_path / "awe.json")).replace("CKPT_DIR", str(tmp_path / "awe"))
    assert main(argv.split()[1:] + ["--no-progress"]) == 0
    assert any((tmp_path / "awe").glob("*.pt"))


def test_no_network_call_is_attempted(setup, tmp_path):
    """A fresh process whose sockets refuse to connect runs the whole command (and would fail on any try)."""
    _, data_paths, models = setup
    script = textwrap.dedent(f"""
        import socket, sys
        tries = []
        def refuse(self, *a, **k):
            tries.append(a)
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = lambda *a, **k: refuse(None, *a)
        from speechreps.cli import main
        rc = main(["encoder", {str(models["wav2vec2"])!r}, "--language", "tones", "--data-paths", {str(data_paths)!r},
                   "--out", {str(tmp_path / "out")!r}, "--layers", "0,2", "--no-progress", "--jobs", "1"])
        import os
        print("RC", rc, "TRIES", len(tries), "OFFLINE", os.environ.get("HF_HUB_OFFLINE"))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "RC 0 TRIES 0 OFFLINE 1" in res.stdout, res.stdout + res.stderr
    assert (tmp_path / "out" / "layers.json").is_file()


def test_main_job_takes_encoders_as_extra_rows(setup, tmp_path):
    from speechreps.experiment import MainJobOptions, run_main_job
    from test_experiment import tiny_config

    _, data_paths, models = setup
    log: list[str] = []
    opts = MainJobOptions(run_dir=tmp_path / "run", config=tiny_config(tmp_path / "tiny.json"), datasets=["tones"],
                          data_paths=data_paths, only=["frame_ae"], encoders=[models["hubert"], models["wavlm"]],
                          progress=False, log=log.append)
    report = run_main_job(opts).read_text()
    table = (opts.run_dir / "table.md").read_text()
    for name in ("tiny-hubert", "tiny-wavlm"):
        assert f"| {name} | L" in table and "| pretrained | tones |" in table
        assert (opts.run_dir / "encoders" / name / "tones" / "layers.png").is_file()
        assert f"### {name} (" in report and f"encoders/{name}/tones/layers.png" in report
    assert "## Pretrained encoders, layer by layer" in report
    log.clear()
    run_main_job(opts)  # resumable: nothing runs again
    assert not any(line.endswith("running") for line in log), log
    opts.encoders = [tmp_path / "missing"]
    with pytest.raises(UserError, match="missing"):
        run_main_job(opts)
