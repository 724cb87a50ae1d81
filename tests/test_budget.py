"""Step budgets (num_steps): validated at load, exact step counts, resume equals the uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch

from speechreps.config import config_from_dict, planned_epochs
from speechreps.data.datasets import make_training_set
from speechreps.data.registry import load_dataset
from speechreps.errors import UserError
from speechreps.models import build_model
from speechreps.train.trainer import Trainer, seed_everything
from speechreps.model_types import MODEL_TYPES

from test_datasets import TINY_CONFIG, make_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return load_dataset(make_toy_dataset(tmp_path_factory.mktemp("toy")), "toy")


def _fit(ds, rep, ckpt_dir, load_from=None, **over):
    cfg = config_from_dict({**TINY_CONFIG[rep], "validate_every": 0, **over}, rep)
    seed_everything(cfg.seed)
    model = build_model(rep, cfg)
    ts = make_training_set(MODEL_TYPES[rep].batch_kind, cfg, ds)
    steps = []
    loss = model.loss
    model.loss = lambda batch: (steps.append(1), loss(batch))[1]  # one call per optimizer step
    trainer = Trainer(model, ts, cfg, ckpt_dir, rep, device="cpu", progress=False, log=lambda s: None,
                      tensorboard=False)
    return model, trainer.fit(load_from), len(steps), ts


def test_step_budget_validation():
    base = {k: v for k, v in TINY_CONFIG["apc"].items() if k != "num_epochs"}
    assert planned_epochs(config_from_dict({**base, "num_steps": 30, "steps_per_epoch": 10}, "apc")) == 3
    assert planned_epochs(config_from_dict({**base, "num_steps": 30}, "apc")) == 1
    with pytest.raises(UserError, match="num_epochs or num_steps must be given"):
        config_from_dict(base, "apc")
    with pytest.raises(UserError, match=r"\[apc\] num_steps must be a multiple of steps_per_epoch \(7\)"):
        config_from_dict({**base, "num_steps": 30, "steps_per_epoch": 7}, "apc")
    with pytest.raises(UserError, match="steps_per_epoch needs num_steps"):
        config_from_dict({**base, "num_epochs": 2, "steps_per_epoch": 7}, "apc")
    with pytest.raises(UserError, match="num_steps must be an integer >= 0"):
        config_from_dict({**base, "num_steps": -1}, "apc")


@pytest.mark.parametrize("rep", ["cpc", "frame_ae"])
def test_step_budget_counts_steps_and_resumes_exactly(toy, tmp_path, rep):
    """CPC's toy epoch is one batch, the frame AE's many: blocks of 3 steps cross epochs both ways."""
    budget = {"num_steps": 12, "steps_per_epoch": 3, "checkpoint_interval": 2, "lr_milestones": [3]}
    straight, res, n_steps, ts = _fit(toy, rep, tmp_path / "a", **budget)
    inner = len(ts.sampler.inner)
    assert n_steps == 12 and res.last_epoch == 4 and inner != 3
    _, _, first, _ = _fit(toy, rep, tmp_path / "b", **{**budget, "num_steps": 6})
    resumed, res_b, second, _ = _fit(toy, rep, tmp_path / "b", load_from=2, **budget)
    assert (first, second, res_b.start_epoch) == (6, 6, 2)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    rows_a = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows] == [r["loss"] for r in rows_a] and len(rows) == 4
