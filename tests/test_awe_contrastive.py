"""The ContrastiveRNN: its NT-Xent loss against a slow reference, its masks, and that it learns on real speech."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from speechreps import cli
from speechreps.awe.config import awe_config_from_dict
from speechreps.awe.contrastive import ContrastivePairDataset, ContrastiveRNN, nt_xent
from speechreps.awe.data import MFCCInput
from speechreps.data.pairs import SegmentPairs
from speechreps.awe.embed import evaluate_embeddings, model_embeddings
from speechreps.awe.train import evaluate_awe, load_awe, train_awe
from speechreps.data.archive import load_archive
from speechreps.errors import UserError


def reference_nt_xent(z, ids, labels, temperature, mask_same_label, row=None):
    """NT-Xent written out loop by loop: row i's positive is (i + B) mod 2B (``row``: that row's loss only)."""
    z = [v / np.linalg.norm(v) for v in z.astype(np.float64)]
    n = len(z)
    total = 0.0
    for i in range(n) if row is None else [row]:
        p = (i + n // 2) % n
        others = [j for j in range(n) if j != i and ids[j] != ids[i] and not (mask_same_label and labels[j] == labels[i])]
        candidates = sorted(set(others) | {p})
        logits = {j: float(z[i] @ z[j]) / temperature for j in candidates}
        total += -logits[p] + math.log(sum(math.exp(v) for v in logits.values()))
    return total / n if row is None else total


@pytest.mark.parametrize("mask_same_label", [False, True])
def test_nt_xent_equals_the_slow_reference(mask_same_label):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((8, 5)).astype(np.float32)
    ids = np.array([0, 1, 2, 3, 4, 5, 0, 6])  # segment 0 is in pair 0 and (as y) in pair 2
    labels = np.array([0, 0, 1, 2, 0, 0, 1, 2])
    loss, acc = nt_xent(torch.from_numpy(z), torch.from_numpy(ids), torch.from_numpy(labels), 0.2, mask_same_label)
    assert loss.item() == pytest.approx(reference_nt_xent(z, ids, labels, 0.2, mask_same_label), rel=1e-5)
    assert 0.0 <= acc <= 1.0


def test_nt_xent_drop_hardest_keeps_the_lowest_loss_pairs_only():
    """With ``drop_hardest``, the loss is the reference NT-Xent over the rows of the kept pairs: the
    pair whose partners point away from each other (a wrong positive) is the one left out."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((8, 6)).astype(np.float32)
    z[4:7] = z[0:3] + 0.05 * rng.standard_normal((3, 6)).astype(np.float32)  # pairs 0-2: partners close
    z[7] = -z[3]  # pair 3: its partners opposite, the hardest
    ids, labels = np.arange(8), np.array([0, 1, 2, 3, 0, 1, 2, 3])
    args = (torch.from_numpy(ids), torch.from_numpy(labels), 0.2)
    loss, _ = nt_xent(torch.from_numpy(z), *args, drop_hardest=0.25)
    rows = [reference_nt_xent(z, ids, labels, 0.2, True, row=i) for i in range(8)]
    assert loss.item() == pytest.approx(np.mean([rows[i] for i in (0, 1, 2, 4, 5, 6)]), rel=1e-5)
    assert nt_xent(torch.from_numpy(z), *args, drop_hardest=0.0)[0].item() == pytest.approx(np.mean(rows), rel=1e-5)
    # at least one pair stays, whatever the share
    assert nt_xent(torch.from_numpy(z), *args, drop_hardest=0.99)[0].item() == pytest.approx(
        min((rows[i] + rows[i + 4]) / 2 for i in range(4)), rel=1e-5)
    with pytest.raises(UserError, match="drop_hardest must be a share in"):
        awe_config_from_dict({"model": "contrastive_rnn", "drop_hardest": 1.0})


def test_pairs_once_each_with_ids_and_labels():
    rng = np.random.default_rng(0)
    segs = {k: rng.standard_normal((n, 3)).astype(np.float32) for k, n in
            [("a_u1_000000-000010", 10), ("a_u2_000000-000013", 13), ("b_u3_000000-000011", 11)]}
    tp = SegmentPairs(segs, [("a_u1_000000-000010", "a_u2_000000-000013"), ("a_u2_000000-000013", "b_u3_000000-000011")], "t")
    data = ContrastivePairDataset(tp)
    assert len(data) == 2  # one row per undirected pair
    batch = data.collate([0, 1])
    assert batch.x.shape == (2, 13, 3) and batch.y.shape == (2, 13, 3)
    assert batch.ids.tolist() == [0, 1, 1, 2] and batch.labels.tolist() == [0, 0, 0, 1]
    np.testing.assert_array_equal(batch.y[1, :11].numpy(), segs["b_u3_000000-000011"])


def test_config_checks():
    with pytest.raises(UserError, match="temperature must be a number > 0"):
        awe_config_from_dict({"model": "contrastive_rnn", "temperature": 0})
    with pytest.raises(UserError, match="ae_num_epochs must be 0"):
        awe_config_from_dict({"model": "contrastive_rnn", "ae_num_epochs": 2})
    with pytest.raises(UserError, match="unknown key 'temperature'"):
        awe_config_from_dict({"temperature": 0.1})  # a CAE-RNN key set has no temperature
    with pytest.raises(UserError, match="model must be one of cae_rnn, contrastive_rnn"):
        awe_config_from_dict({"model": "siamese"})


# -- on real speech: a small built-in corpus ---------------------------------------------------------


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """8 English eSpeak voices, 4 minutes, 30 word types: MFCC archives, same-different sets, ground-truth pairs.

    Tokens of at least 30 frames and 3 letters (the default 50 and 5 leave too few test pairs here): about
    580 training pairs, 85 test tokens of 27 words from 2 unseen voices.
    """
    from speechreps.corpus import build_corpus
    from speechreps.data.prepare import PrepareOptions, prepare_corpus
    from speechreps.data.registry import load_dataset

    root = tmp_path_factory.mktemp("contrastive")
    corpus = build_corpus("en", root / "corpus", n_speakers=8, minutes=4.0, vocab_size=30, jobs=2, progress=False)
    prepare_corpus(corpus, root / "data", "small_en",
                   PrepareOptions(min_frames=30, min_chars=3, pair_min_frames=30, pair_min_chars=3))
    return root, load_dataset(root / "data" / "data_paths.json", "small_en")


def small_cfg(**kw):
    base = dict(model="contrastive_rnn", num_epochs=6, batch_size=32, num_buckets=2, embedding_dim=32,
                enc_hidden_dim=32, enc_num_layers=1, frame_stride=3, stride_mode="mean", normalize_inputs=False,
                learning_rate=0.005, validate_every=1, temperature=0.1)
    return awe_config_from_dict({**base, **kw})


def test_contrastive_rnn_learns_on_real_speech(small_corpus):
    root, ds = small_corpus
    cfg = small_cfg()
    torch.manual_seed(0)
    untrained = ContrastiveRNN(dataclasses.replace(cfg, input_dim=39))  # MFCC: 39-d
    words = MFCCInput().words(ds, "test")
    rule = ds.speaker_rule(ds.word_tokens("test"))
    random_ap = evaluate_embeddings(model_embeddings(untrained, words), rule).ap
    res = train_awe(cfg, ds, MFCCInput(), root / "ck", device="cpu", log=lambda m: None, progress=False, tensorboard=False)
    losses = [r["loss"] for r in res.history]
    assert losses[-1] < 0.8 * losses[0], losses
    model, _ = load_awe(root / "ck")
    assert isinstance(model, ContrastiveRNN)
    trained_ap = evaluate_awe(ds, MFCCInput(), model, splits=("test",))["test"]["contrastive_rnn"]["ap"]
    # measured: 0.10 at random init, 0.61 after 8 epochs (downsampled MFCC: 0.96 on this easy set)
    assert trained_ap > random_ap + 0.2, (random_ap, trained_ap)


def test_cli_train_and_evaluate_a_contrastive_model(small_corpus, tmp_path, capsys):
    root, ds = small_corpus
    config = tmp_path / "awe.json"
    config.write_text(json.dumps({"awe": {**{k: v for k, v in vars(small_cfg(num_epochs=1)).items()}}}))
    ck = tmp_path / "ck"
    data_paths = str(root / "data" / "data_paths.json")
    assert cli.main(["awe", "train", str(config), str(ck), "--language", "small_en", "--data-paths", data_paths,
                     "--no-progress", "--device", "cpu"]) == 0
    assert cli.main(["awe", "evaluate", str(ck), "--data-paths", data_paths]) == 0
    assert "contrastive_rnn" in capsys.readouterr().out
    report = json.loads((ck / "awe_evaluation_small_en.json").read_text())
    assert "contrastive_rnn" in report["splits"]["test"]
    out = tmp_path / "emb.npz"
    assert cli.main(["awe", "embed", "--model", str(ck), str(root / "data" / "small_en" / "test_words.npz"), str(out)]) == 0
    assert all(v.shape == (1, 32) for v in load_archive(out).values())


def _two_word_datasets(tmp_path):
    """Datasets 'two' and 'deux' (test_awe's word dataset, two seeds) in one data_paths.json, and a tiny
    ContrastiveRNN config."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_awe import make_word_dataset, tiny_cfg

    from speechreps.data.registry import register_dataset

    data_paths = make_word_dataset(tmp_path)
    other = make_word_dataset(tmp_path / "other", seed=1)
    raw = json.loads(Path(other).read_text())
    register_dataset(data_paths, "deux", {k[len("two_"):]: (Path(other).parent / v if k.endswith("words") else v)
                                          for k, v in raw.items()})
    return data_paths, tiny_cfg(num_epochs=2, model="contrastive_rnn", ae_num_epochs=0)


def test_compare_applies_the_first_datasets_models_to_the_others(tmp_path):
    """The cross-lingual row of an AWE model: trained on dataset 'two', scored as it is on 'deux'."""
    from speechreps.awe.compare import compare, format_table
    from speechreps.data.registry import load_dataset

    data_paths, cfg = _two_word_datasets(tmp_path)
    rows = compare(data_paths, ["two", "deux"], {}, cfg, tmp_path / "cmp", log=lambda m: None)
    assert [(r["features"], r.get("awe_trained_on"), r["dataset"]) for r in rows] == [
        ("mfcc", None, "two"), ("mfcc", None, "deux"), ("mfcc", "two", "deux")]
    model, _ = load_awe(tmp_path / "cmp" / "mfcc" / "-" / "two" / "s0" / "contrastive_rnn")
    again = evaluate_awe(load_dataset(data_paths, "deux"), MFCCInput(), model)
    assert rows[2]["test_contrastive_rnn_ap"] == pytest.approx(again["test"]["contrastive_rnn"]["ap"])
    assert rows[2]["test_downsample_ap"] == pytest.approx(rows[1]["test_downsample_ap"])
    assert "| mfcc | - | two -> deux |" in format_table(rows) and "ContrastiveRNN AP (test)" in format_table(rows)
    # a second run reuses every job (the main job's stage records), with the same rows
    log: list[str] = []
    assert compare(data_paths, ["two", "deux"], {}, cfg, tmp_path / "cmp", log=log.append) == rows
    assert not any(line.endswith("running") for line in log) and sum("up to date" in x for x in log) == 2


def test_compare_reuses_its_jobs_in_a_copied_run_and_data_folder(tmp_path):
    """A run folder copied with its data (times kept, as ``cp -a`` does) reuses every AWE job: the
    stage fingerprints hold no absolute path. A changed archive in the copy reruns the jobs that read it."""
    import shutil

    from speechreps.awe.compare import compare

    src = tmp_path / "src"
    src.mkdir()
    data_paths, cfg = _two_word_datasets(src)
    rows = compare(data_paths, ["two", "deux"], {}, cfg, src / "cmp", log=lambda m: None)
    moved = tmp_path / "moved"
    shutil.copytree(src, moved)  # copy2: sizes and modification times kept
    log: list[str] = []
    assert compare(moved / "data_paths.json", ["two", "deux"], {}, cfg, moved / "cmp", log=log.append) == rows
    assert not any(line.endswith("running") for line in log) and sum("up to date" in x for x in log) == 2
    # 'deux' (the other language's stand-in) changes: 'two''s model is applied to it and 'deux''s trains
    # on it, so both jobs run again
    import os

    words = moved / "other" / "two" / "test_words.npz"
    os.utime(words, (words.stat().st_atime, words.stat().st_mtime + 100))
    log.clear()
    again = compare(moved / "data_paths.json", ["two", "deux"], {}, cfg, moved / "cmp", log=log.append)
    assert sum(line.endswith("running") for line in log) == 2
    def scores(rows):
        return [{k: v for k, v in r.items() if k.endswith(("_ap", "_cross_speaker")) or k == "dataset"} for r in rows]

    assert scores(again) == scores(rows) and len(scores(rows)[0]) > 4


def test_compare_in_worker_processes_gives_the_rows_of_one_process(tmp_path):
    """Two jobs at once, each in a spawned process on one thread: the same rows (every job seeds
    itself), recorded as stages, so that a rerun in one process reuses them."""
    from speechreps.awe.compare import compare

    data_paths, cfg = _two_word_datasets(tmp_path)
    timing = ("train_seconds", "prepare_seconds", "eval_seconds", "ckpt_dir")

    def strip(rows):
        return [{k: v for k, v in r.items() if k not in timing} for r in rows]

    one = compare(data_paths, ["two", "deux"], {}, cfg, tmp_path / "one", log=lambda m: None, workers=1)
    log: list[str] = []
    two = compare(data_paths, ["two", "deux"], {}, cfg, tmp_path / "two", log=log.append, workers=2)
    assert strip(two) == strip(one) and len(two) == 3
    assert any("2 at a time" in line for line in log)
    assert json.loads((tmp_path / "two" / "awe_compare.json").read_text())["rows"] == two
    rerun: list[str] = []
    assert compare(data_paths, ["two", "deux"], {}, cfg, tmp_path / "two", log=rerun.append, workers=1) == two
    assert sum("up to date" in x for x in rerun) == 2


def test_default_workers_one_per_thread_for_small_models_only():
    from pathlib import Path

    from speechreps.awe.compare import MAX_WORKERS, default_workers
    from speechreps.awe.config import load_awe_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    demo, paper = load_awe_config(configs / "demo.json"), load_awe_config(configs / "paper.json")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert (default_workers(demo, "cpu"), default_workers(paper, "cpu"), default_workers(demo, "cuda")) == (2, 1, 1)
        torch.set_num_threads(MAX_WORKERS + 4)  # a many-core machine: capped (each worker holds its own data)
        assert default_workers(demo, "cpu") == MAX_WORKERS
    finally:
        torch.set_num_threads(before)
