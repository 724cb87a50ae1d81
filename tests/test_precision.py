"""``amp``: which autocast a training step gets (train/precision.py), and CPU bfloat16 training through the
Trainer for every model type."""

from __future__ import annotations

import pytest
import torch

from speechreps.config import config_from_dict
from speechreps.data.datasets import make_training_set
from speechreps.data.registry import load_dataset
from speechreps.model_types import MODEL_TYPES
from speechreps.models import build_model
from speechreps.train import precision
from speechreps.train.trainer import Trainer, seed_everything

from test_datasets import TINY_CONFIG, make_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return load_dataset(make_toy_dataset(tmp_path_factory.mktemp("toy")), "toy")


def test_plan_off_cuda_and_cpu(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision.autocast_plan(False, "float16", cpu) == precision.AutocastPlan(False, torch.float32, False)
    assert precision.autocast_plan(True, "float16", cuda) == precision.AutocastPlan(True, torch.float16, True)
    assert precision.autocast_plan(True, "bfloat16", cuda) == precision.AutocastPlan(True, torch.bfloat16, False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    plan = precision.autocast_plan(True, "float16", cpu)  # float16 is CUDA's: a CPU takes bfloat16, no scaler
    assert (plan.enabled, plan.dtype, plan.scale) == (True, torch.bfloat16, False) and "bfloat16" in plan.note
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    plan = precision.autocast_plan(True, "bfloat16", cpu)
    assert not plan.enabled and plan.dtype == torch.float32 and "float32" in plan.note
    with pytest.raises(ValueError, match="amp_dtype"):
        precision.autocast_plan(True, "int8", cpu)


def _fit(ds, rep, ckpt_dir, amp, epochs=6):
    cfg = config_from_dict({**TINY_CONFIG[rep], "num_epochs": epochs, "validate_every": 0, "amp": amp,
                            "learning_rate": 0.01, **({"seq_len": 20} if rep == "apc" else {})}, rep)
    seed_everything(0)
    model = build_model(rep, cfg)
    ts = make_training_set(MODEL_TYPES[rep].batch_kind, cfg, ds)
    lines: list[str] = []
    trainer = Trainer(model, ts, cfg, ckpt_dir, rep, device="cpu", progress=False, log=lines.append,
                      tensorboard=False)
    dtypes: set[torch.dtype] = set()
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda mod, inp, out: dtypes.add(out.dtype) if torch.is_grad_enabled() else None)
    res = trainer.fit()
    return model, [r["loss"] for r in res.history], dtypes, lines


@pytest.mark.parametrize("rep", ["apc", "cpc", "capc", "frame_ae"])
def test_cpu_amp_trains_in_bfloat16(toy, tmp_path, monkeypatch, rep):
    """Forced on (this CPU may lack native bfloat16, where it is only slower): the training step's products
    run in bfloat16, the parameters stay float32, and the loss falls as in float32."""
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    model, losses, dtypes, lines = _fit(toy, rep, tmp_path / "amp", amp=True)
    assert dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any("bfloat16 autocast" in line for line in lines)
    _, losses32, dtypes32, _ = _fit(toy, rep, tmp_path / "fp32", amp=False)
    assert dtypes32 == {torch.float32}
    assert losses[-1] < 0.9 * losses[0], losses
    assert abs(losses[-1] - losses32[-1]) < 0.1 * losses32[-1], (losses, losses32)


def test_cpu_amp_without_native_bf16_is_float32_and_says_so(toy, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    _, losses, dtypes, lines = _fit(toy, "cpc", tmp_path / "a", amp=True, epochs=2)
    _, losses32, _, _ = _fit(toy, "cpc", tmp_path / "b", amp=False, epochs=2)
    assert dtypes == {torch.float32} and losses == losses32
    assert any("no native bfloat16" in line for line in lines)
