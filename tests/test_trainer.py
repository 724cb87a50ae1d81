"""The generic trainer: resume equivalence, checkpoints, metrics, learning."""

from __future__ import annotations

import json

import pytest
import torch

from speechreps.config import config_from_dict
from speechreps.data.datasets import make_training_set
from speechreps.data.registry import load_dataset
from speechreps.models import build_model
from speechreps.train import checkpoint as ckpt
from speechreps.train.trainer import Trainer, seed_everything
from speechreps.model_types import MODEL_TYPES

from test_datasets import TINY_CONFIG, make_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return load_dataset(make_toy_dataset(root), "toy")


def _fit(ds, rep, ckpt_dir, epochs, load_from=None, tensorboard=False, **over):
    cfg = config_from_dict({**TINY_CONFIG[rep], "num_epochs": epochs, "validate_every": 0, **over}, rep)
    seed_everything(cfg.seed)
    model = build_model(rep, cfg)
    ts = make_training_set(MODEL_TYPES[rep].batch_kind, cfg, ds)
    trainer = Trainer(model, ts, cfg, ckpt_dir, rep, device="cpu", progress=False, log=lambda s: None,
                      tensorboard=tensorboard)
    return model, trainer.fit(load_from)


@pytest.mark.parametrize("rep,over", [("apc", {"seq_len": 20}), ("cpc", {}), ("frame_ae", {})])
def test_resume_equals_uninterrupted(toy, tmp_path, rep, over):
    straight, _ = _fit(toy, rep, tmp_path / "a", 4, checkpoint_interval=2, lr_milestones=[3], **over)
    _fit(toy, rep, tmp_path / "b", 2, checkpoint_interval=2, lr_milestones=[3], **over)
    resumed, res = _fit(toy, rep, tmp_path / "b", 4, load_from=2, checkpoint_interval=2, lr_milestones=[3], **over)
    assert res.start_epoch == 2 and res.last_epoch == 4
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    rows_a = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["loss"] for r in rows] == [r["loss"] for r in rows_a]


def test_checkpoint_contents_and_files(toy, tmp_path):
    d = tmp_path / "ck"
    _fit(toy, "apc", d, 3, checkpoint_interval=2, tensorboard=True)
    names = sorted(p.name for p in d.iterdir() if p.name != ".lock")  # the folder's lock file stays
    assert names == ["config.json", "epoch_2.pt", "epoch_3.pt", "last.pt", "metrics.jsonl", "tensorboard"]
    assert not [p for p in d.rglob(".*") if p.name != ".lock"]  # no temporary files left
    state = ckpt.load(d / "last.pt")
    assert state["epoch"] == 3
    for key in ("model", "optimizer", "scheduler", "scaler", "sampler", "rng", "config", "representation_type",
                "versions", "best"):
        assert key in state, key
    assert state["representation_type"] == "apc" and state["config"]["num_epochs"] == 3
    assert json.loads((d / "config.json").read_text())["apc"]["hidden_dim"] == TINY_CONFIG["apc"]["hidden_dim"]
    epoch3 = ckpt.load(d / "epoch_3.pt")["model"]
    assert all(torch.equal(epoch3[k], v) for k, v in state["model"].items())
    rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all({"loss", "seconds", "frames_per_s", "lr"} <= r.keys() for r in rows)
    assert any(p.name.startswith("events.out.tfevents") for p in (d / "tensorboard").iterdir())
    with pytest.raises(Exception, match="saved epochs in"):
        ckpt.find_checkpoint(d, epoch=7)


def test_killed_save_leaves_last_checkpoint_intact(toy, tmp_path, monkeypatch):
    d = tmp_path / "ck"
    _fit(toy, "frame_ae", d, 1)
    before = (d / "epoch_1.pt").read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the process is killed mid-write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        _fit(toy, "frame_ae", d, 2, load_from=1)
    monkeypatch.setattr(torch, "save", real_save)
    assert (d / "epoch_1.pt").read_bytes() == before and (d / "last.pt").read_bytes() == before
    assert not (d / "epoch_2.pt").exists()
    assert not [p for p in d.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def test_loss_falls(toy, tmp_path):
    _, res = _fit(toy, "capc", tmp_path / "ck", 6, learning_rate=0.01)
    losses = [r["loss"] for r in res.history]
    assert losses[-1] < 0.8 * losses[0], losses


def test_best_checkpoint_by_validation(toy, tmp_path):
    cfg = config_from_dict({**TINY_CONFIG["frame_ae"], "num_epochs": 3, "validate_every": 1, "checkpoint_interval": 3},
                           "frame_ae")
    seed_everything(0)
    model = build_model("frame_ae", cfg)
    ts = make_training_set(MODEL_TYPES["frame_ae"].batch_kind, cfg, toy)
    aps = iter([0.5, 0.7, 0.6])
    trainer = Trainer(model, ts, cfg, tmp_path, "frame_ae", device="cpu", progress=False, log=lambda s: None,
                      tensorboard=False, validate=lambda m: {"val_ap": next(aps)})
    res = trainer.fit()
    assert (res.best_ap, res.best_epoch) == (0.7, 2)
    best = ckpt.load(tmp_path / "best.pt")
    assert best["epoch"] == 2 and best["best"] == {"val_ap": 0.7, "epoch": 2}
    assert not (tmp_path / "epoch_2.pt").exists()  # best saved on its own between checkpoint epochs
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_ap"] for r in rows] == [0.5, 0.7, 0.6]
