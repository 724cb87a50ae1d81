"""Thread settings for shared machines (speechreps.threads): passive OpenMP waiting that torch really
obeys, one thread for the frame MLPs while they train, user choices left alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from speechreps.config import config_from_dict
from speechreps.data.datasets import make_training_set
from speechreps.data.registry import load_dataset
from speechreps.models import build_model
from speechreps.threads import PASSIVE_ENV, configure_runtime, threads_for, training_threads
from speechreps.train.trainer import Trainer, seed_everything

from test_datasets import TINY_CONFIG, make_toy_dataset

# Parallel element-wise adds (2 threads, far above torch's grain size) with sleeps between them: a
# spinning OpenMP runtime keeps burning CPU in the sleeps, a passive one does not.
SPIN_PROBE = """
import sys, time
if sys.argv[1] == "speechreps":
    import speechreps  # first, as every CLI does
import torch
torch.set_num_threads(2)
x = torch.ones(2_000_000)
for _ in range(5):
    x.add_(1)
c0, t0 = time.process_time(), time.perf_counter()
for _ in range(60):
    x.add_(1)
    time.sleep(0.002)
print((time.process_time() - c0) / (time.perf_counter() - t0))
"""


def _cpu_per_wall(first: str, **env: str) -> float:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", SPIN_PROBE, first], env={**clean, **env}, capture_output=True,
                         text=True, check=True, timeout=120)  # fmt: skip
    return float(out.stdout.strip())


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores for a parallel region")
def test_importing_speechreps_first_makes_torch_wait_passively():
    passive = _cpu_per_wall("speechreps")
    spinning = _cpu_per_wall("torch", OMP_WAIT_POLICY="ACTIVE")  # the same probe, a runtime told to spin
    # passive: the adds only (~0.1 of the wall time); spinning: a worker thread busy through every sleep
    assert passive < 0.5, passive
    assert spinning > 2 * passive, (spinning, passive)


def test_user_choice_is_left_alone():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert configure_runtime(env) == {} and env == {"OMP_WAIT_POLICY": "ACTIVE"}
    env = {"GOMP_SPINCOUNT": "10000"}
    assert configure_runtime(env) == {} and "OMP_WAIT_POLICY" not in env
    env = {"PATH": "/bin"}
    assert configure_runtime(env) == PASSIVE_ENV and env == {"PATH": "/bin", **PASSIVE_ENV}


def test_threads_per_model():
    frame = build_model("frame_ae", config_from_dict(TINY_CONFIG["frame_ae"], "frame_ae"))
    apc = build_model("apc", config_from_dict(TINY_CONFIG["apc"], "apc"))
    assert threads_for(frame, torch.device("cpu"), 4) == 1
    assert threads_for(apc, torch.device("cpu"), 4) == 4
    assert threads_for(frame, torch.device("cuda"), 4) == 4  # constructing a device needs no GPU


@pytest.mark.parametrize("rep,expected", [("frame_ae", 1), ("apc", 2)])
def test_trainer_uses_them_and_restores(tmp_path, rep, expected):
    ds = load_dataset(make_toy_dataset(tmp_path / "toy"), "toy")
    cfg = config_from_dict({**TINY_CONFIG[rep], "num_epochs": 1, "validate_every": 0}, rep)
    seed_everything(cfg.seed)
    model = build_model(rep, cfg)
    seen = []
    loss = model.loss
    model.loss = lambda batch: (seen.append(torch.get_num_threads()), loss(batch))[1]
    trainer = Trainer(model, make_training_set(rep, model.batch_kind, cfg, ds), cfg, tmp_path / "ck", rep,
                      device="cpu", progress=False, log=lambda s: None, tensorboard=False)  # fmt: skip
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with training_threads(model, torch.device("cpu")) as inside:
            assert inside == expected
        trainer.fit()
        assert torch.get_num_threads() == 2  # the next stage gets its threads back
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {expected}
