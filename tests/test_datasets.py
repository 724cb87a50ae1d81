"""Training data: samplers, padded batches, DTW-aligned pairs; and the toy dataset other tests use."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from speechreps.data.alignments import TermPair, write_term_pairs
from speechreps.data.archive import format_key, save_archive
from speechreps.data.registry import load_dataset, register_dataset
from speechreps.model_types import MODEL_TYPES

WORDS = ("alpha", "bravo", "charlie", "delta")


def make_toy_dataset(root: Path, dim: int = 13, n_speakers: int = 8, n_utts: int = 4, seed: int = 0,
                     name: str = "toy") -> Path:
    """A structured corpus written as prepared archives + data_paths.json; returns the json's path.

    Each word type is a smooth random trajectory (its own template, 12-20 frames); a speaker adds
    its own offset; utterances are 3 words with short noisy gaps. Speakers sp0..sp3 train, sp4-5
    validation, sp6-7 test. Word tokens key into the utterance arrays by frame; ground-truth pairs
    of training tokens go to ``<name>_train_pairs``.
    """
    rng = np.random.default_rng(seed)
    templates = {}
    for w in WORDS:
        n = int(rng.integers(12, 21))
        knots = rng.standard_normal((4, dim))
        t = np.linspace(0, 3, n)
        templates[w] = np.stack([np.interp(t, np.arange(4), knots[:, d]) for d in range(dim)], 1)
    splits = {"train": range(0, 4), "validation": range(4, 6), "test": range(6, 8)}
    ds_dir = root / name
    ds_dir.mkdir(parents=True, exist_ok=True)
    entries: dict = {"speaker_rule": "buckeye"}
    pairs_tokens = []
    for split, spk_range in splits.items():
        utts, words = {}, {}
        for s in spk_range:
            offset = 0.3 * rng.standard_normal(dim)
            for u in range(n_utts):
                utt = f"sp{s}_{u:03d}"
                pieces, pos = [0.1 * rng.standard_normal((3, dim))], 3
                for w in rng.choice(WORDS, size=3):
                    tpl = templates[w]
                    n = len(tpl) + int(rng.integers(-2, 3))
                    warped = np.stack([np.interp(np.linspace(0, len(tpl) - 1, n), np.arange(len(tpl)), tpl[:, d])
                                       for d in range(dim)], 1)
                    seg = warped + offset + 0.1 * rng.standard_normal((n, dim))
                    pieces.append(seg)
                    words[format_key(utt, pos, pos + n, w)] = seg
                    if split == "train":
                        pairs_tokens.append((w, utt, pos, pos + n))
                    pos += n
                    gap = 0.1 * rng.standard_normal((2, dim))
                    pieces.append(gap)
                    pos += 2
                feats = np.concatenate(pieces).astype(np.float32)
                utts[format_key(utt, 0, len(feats))] = feats
        entries[f"{split}_data"] = save_archive(ds_dir / f"{split}_utterances.npz", utts)
        entries[f"{split}_words"] = save_archive(ds_dir / f"{split}_words.npz", words)
    pairs = [TermPair(a[0], a[1], a[2], a[3], b[1], b[2], b[3])
             for a, b in itertools.combinations(pairs_tokens, 2) if a[0] == b[0]][:60]
    write_term_pairs(ds_dir / "train_pairs.txt", pairs)
    entries["train_pairs"] = ds_dir / "train_pairs.txt"
    register_dataset(root / "data_paths.json", name, entries)
    return root / "data_paths.json"


TINY_CONFIG = {
    "apc": {"learning_rate": 0.003, "num_epochs": 4, "batch_size": 4, "num_buckets": 2, "input_dim": 13,
            "hidden_dim": 16, "num_layers": 2, "num_pred_steps": 2, "checkpoint_interval": 1, "validate_every": 2},
    "cpc": {"learning_rate": 0.003, "num_epochs": 3, "batch_size": 8, "input_dim": 13, "enc_dim": 16, "enc_layers": 2,
            "z_dim": 8, "c_dim": 16, "num_pred_steps": 2, "num_negatives": 4, "n_speakers_per_batch": 2,
            "n_utterances_per_speaker": 3, "seq_len": 24, "dropout": 0.1, "checkpoint_interval": 1, "validate_every": 0},
    "capc": {"learning_rate": 0.003, "num_epochs": 2, "batch_size": 8, "num_buckets": 2, "input_dim": 13,
             "hidden_dim": 16, "num_layers": 2, "num_pred_steps": 0, "checkpoint_interval": 1, "validate_every": 1},
    "frame_ae": {"learning_rate": 0.003, "num_epochs": 2, "batch_size": 64, "input_dim": 13, "hidden_dim": 16,
                 "num_layers": 2, "bottleneck_dim": 6, "checkpoint_interval": 1, "validate_every": 0},
    "frame_cae": {"learning_rate": 0.003, "num_epochs": 2, "batch_size": 64, "input_dim": 13, "hidden_dim": 16,
                  "num_layers": 2, "bottleneck_dim": 6, "checkpoint_interval": 1, "validate_every": 1},
}


def write_config(path: Path, **overrides) -> Path:
    cfg = json.loads(json.dumps(TINY_CONFIG))
    for section, values in overrides.items():
        cfg[section].update(values)
    path.write_text(json.dumps(cfg))
    return path


# ---------------------------------------------------------------------------------------------


def test_bucket_sampler_covers_every_item_once_and_resumes():
    from speechreps.data.samplers import BucketBatchSampler

    lengths = np.random.default_rng(0).integers(5, 100, size=53)
    s = BucketBatchSampler(lengths, batch_size=4, num_buckets=5, seed=1)
    for _ in range(2):
        batches = list(s)
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(53))
        assert len(batches) == len(s)
        assert all(1 <= len(b) <= 4 for b in batches)
    # bucketing: a batch never mixes items from far apart in the length order
    rank = np.empty(53, int)
    rank[np.argsort(lengths, kind="stable")] = np.arange(53)
    assert all(np.ptp(rank[b]) < 53 / 5 + 1 for b in batches)
    # the state reproduces the next epoch
    state = s.state_dict()
    nxt = list(s)
    s2 = BucketBatchSampler(lengths, batch_size=4, num_buckets=5, seed=99)
    s2.load_state_dict(state)
    assert list(s2) == nxt


def test_speaker_sampler_layout_and_crops():
    from speechreps.data.samplers import SpeakerBatchSampler

    speakers = np.repeat(np.arange(5), [6, 6, 6, 2, 6])  # speaker 3 has too few utterances
    lengths = np.full(len(speakers), 50)
    lengths[0] = 10
    s = SpeakerBatchSampler(speakers, lengths, n_speakers=3, n_utterances=4, seq_len=20, seed=0)
    for batch in s:
        assert len(batch) == 12
        spk = speakers[[i for i, _ in batch]]
        groups = spk.reshape(3, 4)
        assert (groups == groups[:, :1]).all() and len(set(groups[:, 0])) == 3
        for i, start in batch:
            assert 0 <= start <= max(0, lengths[i] - 20)
    # fewer speakers than asked: all of them per batch
    s = SpeakerBatchSampler(speakers, lengths, n_speakers=12, n_utterances=2, seed=0)
    assert s.n_speakers == 5 and all(len(b) == 10 for b in s)


def test_utterance_collate_pads_and_masks(tmp_path):
    from speechreps.data.archive import speaker_rule
    from speechreps.data.datasets import UtteranceDataset
    from speechreps.models.base import length_mask

    arrays = {format_key("a_1", 0, 5): np.ones((5, 3)), format_key("b_1", 0, 2): 2 * np.ones((2, 3)),
              format_key("a_2", 0, 7): 3 * np.ones((7, 3))}
    ds = UtteranceDataset(arrays, speaker_rule("buckeye"), seq_len=4)
    batch = ds.collate([0, 1, 2])
    assert batch.feats.shape == (3, 7, 3) and batch.lengths.tolist() == [5, 2, 7]
    mask = length_mask(batch.lengths)
    assert (batch.feats[~mask] == 0).all() and (batch.feats[mask] != 0).all()
    assert batch.speakers.tolist() == [0, 1, 0]
    cropped = ds.collate([(2, 1), (1, 0)])
    assert cropped.lengths.tolist() == [4, 2] and ds.n_frames([(2, 1), (1, 0)]) == 6


def _brute_force_dtw(x, y):
    """Minimum cost over every monotone path with steps (1,0), (0,1), (1,1)."""
    def d(i, j):
        return 1 - x[i] @ y[j] / (np.linalg.norm(x[i]) * np.linalg.norm(y[j]))

    best = np.inf

    def walk(i, j, cost):
        nonlocal best
        cost += d(i, j)
        if i == len(x) - 1 and j == len(y) - 1:
            best = min(best, cost)
            return
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            if i + di < len(x) and j + dj < len(y):
                walk(i + di, j + dj, cost)

    walk(0, 0, 0.0)
    return best


def test_dtw_path_matches_brute_force():
    from speechreps.data.pairs import dtw_path

    rng = np.random.default_rng(3)
    for n, m in [(1, 1), (1, 4), (4, 3), (5, 5), (6, 4)]:
        x, y = rng.standard_normal((n, 3)), rng.standard_normal((m, 3))
        ix, iy, cost = dtw_path(x, y)
        assert ix[0] == 0 and iy[0] == 0 and ix[-1] == n - 1 and iy[-1] == m - 1
        steps = set(zip(np.diff(ix), np.diff(iy)))
        assert steps <= {(1, 0), (0, 1), (1, 1)}
        path_cost = sum(1 - x[i] @ y[j] / (np.linalg.norm(x[i]) * np.linalg.norm(y[j])) for i, j in zip(ix, iy))
        assert cost == pytest.approx(path_cost, abs=1e-9)
        assert cost == pytest.approx(_brute_force_dtw(x, y), abs=1e-9)


def test_aligned_pairs_both_directions():
    from speechreps.data.pairs import aligned_frame_pairs, aligned_segment_pairs

    # y is x with its middle frame repeated: the alignment undoes the repetition exactly
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = np.concatenate([x[:3], x[2:3], x[3:]])
    (a, a_t), (b, b_t) = aligned_segment_pairs([(x, y)])
    assert a is not None and a.shape == a_t.shape == x.shape and np.allclose(a_t, x)
    assert b.shape == b_t.shape == y.shape and np.allclose(b_t, y)
    fx, fy = aligned_frame_pairs([(x, y)])
    assert fx.shape == fy.shape == (12, 4)  # 6 path pairs, both directions
    assert np.allclose(fx[:6], fy[6:]) and np.allclose(fy[:6], fx[6:])
    assert np.allclose(fx[:6], fy[:6])  # identical frames paired


def test_training_sets_per_type(tmp_path):
    from speechreps.data.datasets import make_training_set
    from speechreps.config import config_from_dict

    ds = load_dataset(make_toy_dataset(tmp_path), "toy")
    kinds = {"apc": "utterance", "cpc": "speaker_utterance", "capc": "pair", "frame_ae": "frame",
             "frame_cae": "frame_pair"}
    assert kinds == {name: entry.batch_kind for name, entry in MODEL_TYPES.items()}
    for rep, kind in kinds.items():
        cfg = config_from_dict(TINY_CONFIG[rep], rep)
        ts = make_training_set(kind, cfg, ds)
        batch = ts.collate(next(iter(ts.sampler)))
        if rep == "capc":
            assert batch.x.shape == batch.y.shape and len(ts.dataset) == 120  # 60 pairs, both directions
        elif rep == "cpc":
            assert batch.feats.shape[0] == 6 and batch.feats.shape[1] <= 24
        elif rep.startswith("frame"):
            assert batch.x.shape == (64, 13)
            if rep == "frame_ae":
                assert torch.equal(batch.x, batch.y)
        else:
            assert batch.feats.shape[2] == 13


def test_original_pair_files(tmp_path):
    """The original's *_aligned_train_data and *_word_1/2_train_data are read as given (plus reverse)."""
    from speechreps.data.pairs import load_original_aligned, load_original_frame_pairs

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    save_archive(tmp_path / "aligned.npz", {"k1.X": x, "k1.Y": y})
    pairs = load_original_aligned(tmp_path / "aligned.npz")
    assert len(pairs) == 2 and np.allclose(pairs[0][0], x) and np.allclose(pairs[1][0], y)
    save_archive(tmp_path / "w1.npz", {"a": x})
    save_archive(tmp_path / "w2.npz", {"a": y})
    fx, fy = load_original_frame_pairs(tmp_path / "w1.npz", tmp_path / "w2.npz")
    assert fx.shape == (14, 3) and np.allclose(fx[:7], x) and np.allclose(fy[:7], y)
