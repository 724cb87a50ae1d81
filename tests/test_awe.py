"""Acoustic word embeddings: CAE-RNN masks and pairs, training on a made-up corpus, embedding files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speechreps import cli
from speechreps.awe.config import awe_config_from_dict, load_awe_config
from speechreps.awe.data import MFCCInput, SegmentPairDataset
from speechreps.data.pairs import SegmentPairs, term_pair_segments
from speechreps.awe.embed import downsample_embeddings, evaluate_embeddings, model_embeddings, save_embeddings
from speechreps.awe.model import CAERNN, masked_mse
from speechreps.awe.train import evaluate_awe, load_awe, train_awe
from speechreps.data.alignments import TermPair
from speechreps.data.archive import load_archive, save_archive
from speechreps.data.registry import load_dataset, register_dataset
from speechreps.errors import UserError


def tiny_cfg(**kw):
    base = dict(num_epochs=2, batch_size=8, num_buckets=1, input_dim=6, embedding_dim=8, enc_hidden_dim=16,
                enc_num_layers=2, dec_hidden_dim=16, dec_num_layers=1, validate_every=1, checkpoint_interval=1,
                learning_rate=0.01)
    return awe_config_from_dict({**base, **kw})


def word(label: str, rng, n: int | None = None, dim: int = 6) -> np.ndarray:
    """A made-up token: 'alpha' rises in the first half of the dims, 'bravo' falls in the second half."""
    n = n or int(rng.integers(12, 24))
    t = np.linspace(0, 1, n)[:, None]
    base = np.zeros((n, dim))
    if label == "alpha":
        base[:, : dim // 2] = 2 * t - 1
    else:
        base[:, dim // 2 :] = 1 - 2 * t
    return (base + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


def make_word_dataset(root, n_per_word: int = 8, seed: int = 0) -> str:
    """data_paths.json with dataset 'two': word-token archives only (ground-truth pairs from train words)."""
    rng = np.random.default_rng(seed)
    entries = {"speaker_rule": "buckeye"}
    for split_i, split in enumerate(("train", "validation", "test")):
        arrays = {}
        for label in ("alpha", "bravo"):
            for i in range(n_per_word):
                spk = f"s{split_i}{i % 3}"
                seg = word(label, rng)
                arrays[f"{label}_{spk}_{label[0]}{i:03d}_000000-{len(seg):06d}"] = seg
        entries[f"{split}_words"] = save_archive(root / "two" / f"{split}_words.npz", arrays)
    path = root / "data_paths.json"
    register_dataset(path, "two", entries)
    return str(path)


# -- the model ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride, mode", [(1, "subsample"), (3, "subsample"), (3, "mean")])
def test_padding_changes_no_loss(stride, mode):
    torch.manual_seed(0)
    model = CAERNN(tiny_cfg(frame_stride=stride, stride_mode=mode))
    rng = np.random.default_rng(1)
    x = torch.from_numpy(word("alpha", rng, 10))[None]
    y = torch.from_numpy(word("alpha", rng, 7))[None]
    from speechreps.awe.data import SequencePairBatch

    plain = model.loss(SequencePairBatch(x, torch.tensor([10]), y, torch.tensor([7])))[0]
    # the same pair padded with garbage on both sides, in a batch with a longer pair
    xp = torch.cat([x, 100 * torch.ones(1, 5, 6)], dim=1)
    yp = torch.cat([y, -100 * torch.ones(1, 8, 6)], dim=1)
    other_x, other_y = torch.randn(1, 15, 6), torch.randn(1, 15, 6)
    batch = SequencePairBatch(torch.cat([xp, other_x]), torch.tensor([10, 15]), torch.cat([yp, other_y]), torch.tensor([7, 15]))
    padded_first = model.loss(SequencePairBatch(batch.x[:1], batch.x_lengths[:1], batch.y[:1], batch.y_lengths[:1]))[0]
    torch.testing.assert_close(padded_first, plain)
    # and inside a batch: the per-sequence errors of row 0 do not see the padding
    y, y_lengths = model.stride(batch.y, batch.y_lengths)
    y_hat = model(batch.x, batch.x_lengths, y.shape[1])
    torch.testing.assert_close(masked_mse(y_hat[:1], y[:1], y_lengths[:1]), plain)
    # the embedding ignores padding too
    torch.testing.assert_close(model.embed(xp, torch.tensor([10])), model.embed(x, torch.tensor([10])))


def test_mean_stride_averages_each_run_of_real_frames():
    model = CAERNN(tiny_cfg(frame_stride=3, stride_mode="mean"))
    x = torch.arange(8.0)[None, :, None].repeat(2, 1, 6)  # frame t holds t in every dimension
    x[1, 4:] = 1000.0  # padding of sequence 1 (length 4)
    y, lengths = model.stride(x, torch.tensor([8, 4]))
    assert lengths.tolist() == [3, 2]
    assert y[0, :, 0].tolist() == [1.0, 4.0, 6.5]  # means of 0-2, 3-5 and the last run 6-7
    assert y[1, :2, 0].tolist() == [1.0, 3.0]  # the run 3-5 holds one real frame: 3


def test_masked_mse_counts_real_frames_only():
    y = torch.zeros(2, 4, 3)
    y_hat = torch.zeros(2, 4, 3)
    y_hat[0, 2:] = 5.0  # only in the padding of sequence 0 (length 2)
    y_hat[1, 0] = 1.0  # sequence 1 (length 4): one frame off by 1 in every dim
    loss = masked_mse(y_hat, y, torch.tensor([2, 4]))
    assert loss.item() == pytest.approx((0.0 + 1.0 / 4) / 2)


def test_pairs_are_used_in_both_directions_with_the_partner_as_target():
    rng = np.random.default_rng(0)
    segs = {"a_u1_000000-000010": word("alpha", rng, 10), "a_u2_000000-000013": word("alpha", rng, 13),
            "b_u3_000000-000011": word("bravo", rng, 11), "b_u4_000000-000016": word("bravo", rng, 16)}
    tp = SegmentPairs(segs, [("a_u1_000000-000010", "a_u2_000000-000013"), ("b_u3_000000-000011", "b_u4_000000-000016")], "test")
    data = SegmentPairDataset.cae(tp)
    assert sorted(data.directed) == sorted([(a, b) for a, b in tp.pairs] + [(b, a) for a, b in tp.pairs])
    batch = data.collate(list(range(len(data))))
    for i, (a, b) in enumerate(data.directed):
        assert batch.x_lengths[i] == len(segs[a]) and batch.y_lengths[i] == len(segs[b])
        np.testing.assert_array_equal(batch.x[i, : len(segs[a])].numpy(), segs[a])
        np.testing.assert_array_equal(batch.y[i, : len(segs[b])].numpy(), segs[b])
    ae = SegmentPairDataset.ae(tp)
    assert len(ae) == 4 and all(a == b for a, b in ae.directed)


def test_term_pairs_cut_from_utterances_and_share_segments():
    utts = {"s1_u1_000000-000050": np.arange(100, dtype=np.float32).reshape(50, 2),
            "s2_u2_000010-000040": np.ones((30, 2), np.float32)}
    pairs = [TermPair("pt1", "s1_u1", 5, 15, "s2_u2", 12, 20), TermPair("pt1", "s1_u1", 5, 15, "s2_u2", 20, 30),
             TermPair("pt2", "s1_u1", 5, 15, "s9_u9", 0, 5)]
    from speechreps.errors import WarningCounter

    w = WarningCounter()
    found = term_pair_segments(pairs, utts, w)
    segments, kept = found.segments, found.pairs
    assert len(kept) == 2 and len(w) == 1
    assert set(segments) == {"pt1_s1_u1_000005-000015", "pt1_s2_u2_000012-000020", "pt1_s2_u2_000020-000030"}
    np.testing.assert_array_equal(segments["pt1_s1_u1_000005-000015"], utts["s1_u1_000000-000050"][5:15])
    np.testing.assert_array_equal(segments["pt1_s2_u2_000012-000020"], np.ones((8, 2)))


# -- training, embedding files, evaluation ----------------------------------------------------------


def test_cae_rnn_separates_two_words(tmp_path):
    data_paths = make_word_dataset(tmp_path)
    ds = load_dataset(data_paths, "two")
    cfg = tiny_cfg(num_epochs=6, ae_num_epochs=2)
    res = train_awe(cfg, ds, MFCCInput(), tmp_path / "ck", device="cpu", log=lambda m: None, progress=False,
                    tensorboard=False)
    assert (tmp_path / "ck" / "ae_rnn" / "last.pt").is_file() and (tmp_path / "ck" / "best.pt").is_file()
    assert [r["phase"] for r in res.history] == ["ae_rnn"] * 2 + ["cae_rnn"] * 6
    model, _ = load_awe(tmp_path / "ck")
    report = evaluate_awe(ds, MFCCInput(), model, splits=("test",))
    assert report["test"]["cae_rnn"]["ap"] > 0.95, report
    # resuming from epoch 4 reaches the same weights as the straight run
    straight = {k: v.clone() for k, v in torch.load(tmp_path / "ck" / "epoch_6.pt", weights_only=False)["model"].items()}
    train_awe(cfg, ds, MFCCInput(), tmp_path / "ck", device="cpu", load_from_epoch=4, log=lambda m: None,
              progress=False, tensorboard=False)
    again = torch.load(tmp_path / "ck" / "epoch_6.pt", weights_only=False)["model"]
    for k in straight:
        torch.testing.assert_close(again[k], straight[k])


def test_embedding_files_keys_and_shapes(tmp_path):
    rng = np.random.default_rng(0)
    words = {f"{lab}_s{i}_u_000000-0000{10 + i:02d}": word(lab, rng) for i in range(4) for lab in ("alpha", "bravo")}
    down = downsample_embeddings(words, n=5, method="interpolate")
    assert list(down) == list(words) and all(v.shape == (1, 30) and v.dtype == np.float32 for v in down.values())
    assert downsample_embeddings(words, n=10)[next(iter(words))].shape == (1, 60)
    model = CAERNN(tiny_cfg())
    emb = model_embeddings(model, words)
    assert list(emb) == list(words) and all(v.shape == (1, 8) for v in emb.values())
    path = save_embeddings(tmp_path / "emb.npz", emb)
    back = load_archive(path)
    assert list(back) == list(words) and all(back[k].shape == (1, 8) for k in back)
    res = evaluate_embeddings(down)
    assert res.distance == "cosine" and res.ap > 0.9 and res.ap_cross_speaker is not None
    with pytest.raises(UserError, match="reads 6"):
        model_embeddings(model, {k: v[:, :4] for k, v in words.items()})


def test_config_section_in_shipped_configs_and_errors(tmp_path):
    from pathlib import Path

    from speechreps.config import load_config

    root = Path(__file__).resolve().parent.parent
    for name in ("configs/demo.json", "configs/paper.json", "src/speechreps/configs/demo.json",
                 "src/speechreps/configs/paper.json"):
        cfg = load_awe_config(root / name)
        assert cfg.embedding_dim > 0
        load_config(root / name, "apc")  # the other sections still load
    paper = load_awe_config(root / "configs/paper.json")
    assert (paper.embedding_dim, paper.enc_hidden_dim, paper.enc_num_layers) == (130, 400, 3)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"awe": {"embedding_dim": 0}}))
    with pytest.raises(UserError, match=r"\[awe\] embedding_dim must be an integer >= 1"):
        load_awe_config(bad)
    bad.write_text(json.dumps({"awe": {"hiden": 3}}))
    with pytest.raises(UserError, match="unknown key 'hiden'"):
        load_awe_config(bad)


# -- command line -----------------------------------------------------------------------------------


def test_cli_train_embed_evaluate(tmp_path, capsys):
    data_paths = make_word_dataset(tmp_path)
    config = tmp_path / "awe.json"
    config.write_text(json.dumps({"awe": {k: v for k, v in vars(tiny_cfg(num_epochs=2)).items()}}))
    ck = tmp_path / "ck"
    assert cli.main(["awe", "train", str(config), str(ck), "--language", "two", "--data-paths", data_paths,
                     "--no-progress", "--device", "cpu"]) == 0
    out = tmp_path / "emb.npz"
    assert cli.main(["awe", "embed", "--model", str(ck), str(tmp_path / "two" / "test_words.npz"), str(out)]) == 0
    emb = load_archive(out)
    assert list(emb) == list(load_archive(tmp_path / "two" / "test_words.npz"))
    assert all(v.shape == (1, 8) for v in emb.values())
    assert cli.main(["awe", "embed", "--downsample", "4", str(tmp_path / "two" / "test_words.npz"), str(out)]) == 0
    assert all(v.shape == (1, 24) for v in load_archive(out).values())
    assert cli.main(["awe", "evaluate", str(ck), "--data-paths", data_paths]) == 0
    report = json.loads((ck / "awe_evaluation_two.json").read_text())
    assert set(report["splits"]) == {"validation", "test"} and "cae_rnn" in report["splits"]["test"]


@pytest.mark.parametrize("argv,message", [
    (["awe", "train", "missing.json", "CK"], "missing.json: config file not found"),
    (["awe", "embed", "--model", "nowhere", "w.npz", "o.npz"], "w.npz does not exist"),
    (["awe", "train", "--frame-model", "nowhere", "c.json", "CK"], "c.json: config file not found"),
    (["awe", "evaluate", "nowhere"], "does not exist"),
    (["awe", "compare", "--run-dir", "nowhere"], "results.json"),
])
def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speechreps: error:") and message in err[0], err


def test_compare_plan_and_main_job_results(tmp_path):
    from speechreps.awe.compare import format_table, plan, plan_from_results

    run = tmp_path / "runs" / "main"
    for ds in ("synth_en", "synth_tn"):
        for rep in ("cpc", "apc"):
            (run / "models" / "s0" / ds / rep).mkdir(parents=True)
    training = {f"{rep}:{ds}:s0": {"rep": rep, "dataset": ds, "seed": 0, "ckpt_dir": f"runs/main/models/s0/{ds}/{rep}"}
                for ds in ("synth_en", "synth_tn") for rep in ("cpc", "apc")}
    (run / "results.json").write_text(json.dumps({"meta": {"data_paths": "data/data_paths.json", "seeds": [0],
                                                           "datasets": ["synth_en", "synth_tn"]}, "training": training}))
    data_paths, datasets, feature_sets, seed = plan_from_results(run)
    assert datasets == ["synth_en", "synth_tn"] and seed == 0
    assert feature_sets["cpc"]["synth_tn"] == run / "models" / "s0" / "synth_tn" / "cpc"
    jobs = plan(datasets, feature_sets)
    got = [(j.features, j.trained_on, j.dataset) for j in jobs]
    assert got == [("mfcc", None, "synth_en"), ("apc", "synth_en", "synth_en"), ("cpc", "synth_en", "synth_en"),
                   ("mfcc", None, "synth_tn"), ("apc", "synth_tn", "synth_tn"), ("cpc", "synth_tn", "synth_tn"),
                   ("apc", "synth_en", "synth_tn"), ("cpc", "synth_en", "synth_tn")]
    table = format_table([{"features": "mfcc", "trained_on": None, "dataset": "synth_en", "dim": 39,
                           "test_downsample_ap": 0.4, "test_cae_rnn_ap": 0.5, "train_seconds": 12.0}])
    assert "| mfcc | - | synth_en | gold | 39 | 0.400 | 0.500 |" in table


def test_normalized_inputs_are_kept_in_the_model(tmp_path):
    data_paths = make_word_dataset(tmp_path)
    ds = load_dataset(data_paths, "two")
    cfg = tiny_cfg(num_epochs=1, normalize_inputs=True)
    train_awe(cfg, ds, MFCCInput(), tmp_path / "ck", device="cpu", log=lambda m: None, progress=False, tensorboard=False)
    model, _ = load_awe(tmp_path / "ck")
    frames = np.concatenate(list(load_archive(tmp_path / "two" / "train_words.npz").values()))
    np.testing.assert_allclose(model.input_mean.numpy(), frames.mean(0), atol=1e-5)
    x = torch.from_numpy(frames[None, :5])
    torch.testing.assert_close(model.normalize(x), (x - model.input_mean) / model.input_std)
