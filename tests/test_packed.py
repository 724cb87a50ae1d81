"""Memory-mapped features (packed copy, uncompressed .npz in place) give the same values and batches as in memory."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from speechreps.cli import main
from speechreps.config import config_from_dict
from speechreps.data.archive import load_archive, save_archive
from speechreps.data.datasets import make_training_set
from speechreps.data.packed import MappedNpz, PackedArchive, open_features, open_packed, pack_archive, packed_paths
from speechreps.data.registry import load_dataset
from speechreps.model_types import MODEL_TYPES

from test_datasets import TINY_CONFIG, make_toy_dataset


@pytest.fixture()
def toy(tmp_path):
    return load_dataset(make_toy_dataset(tmp_path), "toy")


def _same(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == np.float32 and np.array_equal(a[k], b[k]), k


def test_mapped_and_packed_equal_loaded(toy):
    path = ds_path = toy.utterances("train")
    ref = load_archive(path)
    mapped = open_features(path)
    assert isinstance(mapped, MappedNpz)  # uncompressed: memory-mapped in place
    _same(mapped, ref)
    pack_archive(ds_path)
    packed = open_features(path)
    assert isinstance(packed, PackedArchive)
    _same(packed, ref)
    assert np.array_equal(np.asarray(packed.matrix), np.concatenate(list(ref.values())))


def test_compressed_falls_back_and_stale_pack_is_ignored(tmp_path):
    arrays = {f"s{i}_u_000000-00001{i}": np.random.default_rng(i).standard_normal((10 + i, 3)).astype(np.float32)
              for i in range(3)}
    comp = save_archive(tmp_path / "c.npz", arrays, compress=True)
    assert isinstance(open_features(comp), dict)
    _same(open_features(comp), arrays)
    pack_archive(comp)
    _same(open_features(comp), arrays)
    save_archive(comp, {k: v + 1 for k, v in arrays.items()}, compress=True)
    os.utime(comp, ns=(1, 1))
    with pytest.warns(UserWarning, match="older"):
        assert open_packed(comp) is None


@pytest.mark.parametrize("rep", ["apc", "cpc", "frame_ae"])
def test_training_batches_identical_in_memory_and_mapped(toy, rep, monkeypatch):
    cfg = config_from_dict(TINY_CONFIG[rep], rep)
    batch_kind = {"apc": "utterance", "cpc": "speaker_utterance", "frame_ae": "frame"}[rep]

    def batches(ts):
        out = []
        for refs in ts.sampler:
            b = ts.collate(refs)
            out.append([v.clone() for v in vars(b).values() if isinstance(v, torch.Tensor)])
        return out

    import speechreps.data.packed as P

    pack_archive(toy.utterances("train"))
    lazy = batches(make_training_set(batch_kind, cfg, toy))
    monkeypatch.setattr(P, "open_features", lambda p: load_archive(p))
    monkeypatch.setattr(P, "open_packed", lambda p: None)
    eager = batches(make_training_set(batch_kind, cfg, toy))
    assert len(lazy) == len(eager) > 0
    for a, b in zip(lazy, eager):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_cli_pack(toy, capsys):
    dp = toy.source
    assert main(["pack", "--data-paths", str(dp), "--language", "toy"]) == 0
    for split in ("train", "validation", "test"):
        assert packed_paths(toy.utterances(split))[1].is_file()
    assert main(["pack"]) == 2
    assert "nothing to pack" in capsys.readouterr().err


def test_streaming_prepare_equals_in_memory_cmvn(tone_corpus, tmp_path):
    """prepare streams (raw features on disk, per-speaker statistics merged): same keys and order as the
    all-in-memory computation, values within float32 rounding (atol 1e-5 on unit-variance features)."""
    from speechreps.data.features import speaker_cmvn
    from speechreps.data.corpus import find_corpus
    from speechreps.data.corpus_features import compute_corpus_features
    from speechreps.data.prepare import PrepareOptions, prepare_corpus

    opts = PrepareOptions(min_frames=20, min_chars=5, pair_min_frames=20, pair_min_chars=5)
    prepare_corpus(tone_corpus, tmp_path / "out", "tones", opts, jobs=1, progress=False)
    ds = load_dataset(tmp_path / "out" / "data_paths.json", "tones")
    corpus = find_corpus(tone_corpus)
    raw, _ = compute_corpus_features(corpus.audio, opts.features, jobs=1, progress=False)
    ref = speaker_cmvn(raw, {u: u.split("_")[0] for u in raw})
    n_exact = n_total = 0
    for split in ("train", "validation", "test"):
        got = load_archive(ds.utterances(split))
        assert [k.rsplit("_", 1)[0] for k in got] == [u for u in ref if f"{u}_000000-{len(ref[u]):06d}" in got]
        for key, arr in got.items():
            want = ref[key.rsplit("_", 1)[0]]
            assert arr.shape == want.shape
            np.testing.assert_allclose(arr, want, rtol=0, atol=1e-5)
            n_exact += int((arr == want).sum())
            n_total += arr.size
    assert n_exact / n_total > 0.5  # most values are bit-identical
    assert not any(p.name.startswith(".prepare-raw-") for p in (tmp_path / "out" / "tones").iterdir())


def test_data_loader_workers_train_identically(toy, tmp_path):
    """--workers N collates in N processes; the batches, and so the trained model, are the same as without."""
    from speechreps.models import build_model
    from speechreps.train.trainer import Trainer, seed_everything

    def fit(workers, d):
        cfg = config_from_dict({**TINY_CONFIG["apc"], "num_epochs": 2, "validate_every": 0}, "apc")
        seed_everything(cfg.seed)
        model = build_model("apc", cfg)
        ts = make_training_set(MODEL_TYPES["apc"].batch_kind, cfg, toy)
        Trainer(model, ts, cfg, d, "apc", device="cpu", progress=False, log=lambda s: None, tensorboard=False,
                workers=workers).fit()
        return model.state_dict()

    a, b = fit(0, tmp_path / "a"), fit(2, tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
