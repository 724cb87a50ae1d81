"""Loading a checkpoint never runs code from it, through every command that loads one.

A malicious ``.pt`` (a pickle whose ``__reduce__`` calls ``os.system``) is put wherever a
checkpoint is read; each command must stop with exit 2 and one line that says the file is refused,
and the command in the pickle must never run (its marker file never appears).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from speechreps import cli, legacy_cli
from speechreps.errors import UserError
from speechreps.train import checkpoint as ckpt

from test_datasets import make_toy_dataset, write_config


class _Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious(path: Path, marker: Path) -> None:
    torch.save({"model": {}, "epoch": 1, "representation_type": "apc", "config": {}, "hook": _Payload(marker)}, path)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A toy dataset; real APC, frame AE and CAE-RNN runs; then every .pt replaced by a malicious one."""
    root = tmp_path_factory.mktemp("safe")
    make_toy_dataset(root)
    (root / "config").mkdir()
    cfg = json.loads(write_config(root / "config" / "config.json").read_text())
    cfg["awe"] = {"num_epochs": 1, "batch_size": 4, "num_buckets": 1, "input_dim": 13, "embedding_dim": 4,
                  "enc_hidden_dim": 8, "enc_num_layers": 1, "dec_hidden_dim": 8, "dec_num_layers": 1,
                  "validate_every": 1, "checkpoint_interval": 1}
    (root / "config" / "config.json").write_text(json.dumps(cfg))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        common = ["--language", "toy", "--device", "cpu", "--jobs", "1", "--no-progress"]
        assert cli.main(["train", "apc", "config/config.json", "ck_apc", *common]) == 0
        assert cli.main(["train", "frame_ae", "config/config.json", "ck_ae", *common]) == 0
        assert cli.main(["awe", "train", "config/config.json", "ck_awe", "--language", "toy", "--device", "cpu",
                         "--no-progress"]) == 0
    finally:
        os.chdir(cwd)
    marker = root / "PWNED"
    for pt in root.rglob("*.pt"):
        pt.unlink()
        write_malicious(pt, marker)
    cfg["frame_cae"]["ae_checkpoint"] = str(root / "ck_ae")
    (root / "config" / "cae.json").write_text(json.dumps(cfg))
    return root


COMMON = ["--language", "toy", "--device", "cpu", "--jobs", "1", "--no-progress"]
COMMANDS = {
    "evaluate": ["evaluate", "apc", "config/config.json", "ck_apc", *COMMON],
    "extract": ["extract", "apc", "config/config.json", "ck_apc", "--save_path", "out", *COMMON],
    "all": ["all", "apc", "config/config.json", "ck_apc", "--save_path", "out", "--resume", *COMMON],
    "train --resume": ["train", "apc", "config/config.json", "ck_apc", "--resume", *COMMON],
    "train --load-from-epoch": ["train", "apc", "config/config.json", "ck_apc", "--load-from-epoch", "2", *COMMON],
    "frame_cae ae_checkpoint": ["train", "frame_cae", "config/cae.json", "ck_cae", *COMMON],
    "awe train --frame-model": ["awe", "train", "config/config.json", "ck_awe2", "--frame-model", "ck_apc",
                                "--language", "toy", "--device", "cpu", "--no-progress"],
    "awe train --resume": ["awe", "train", "config/config.json", "ck_awe", "--resume", "--language", "toy",
                           "--device", "cpu", "--no-progress"],
    "awe embed --model": ["awe", "embed", "--model", "ck_awe", "toy/test_words.npz", "emb.npz"],
    "awe evaluate": ["awe", "evaluate", "ck_awe"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_malicious_checkpoint_is_refused_without_running(project, name, monkeypatch, capsys):
    monkeypatch.chdir(project)
    marker = project / "PWNED"
    assert cli.main(COMMANDS[name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is refused" in err[0] and "posix.system" in err[0], err
    assert not marker.exists(), f"{name} ran code from a checkpoint"


@pytest.mark.parametrize("action", ["evaluate", "extract"])
def test_original_cli_refuses_too(project, action, monkeypatch, capsys):
    monkeypatch.chdir(project)
    assert legacy_cli.main(["apc", action, "config/config.json", "ck_apc", "--save_path", "out",
                            "--language", "toy"]) == 2
    assert "is refused" in capsys.readouterr().err
    assert not (project / "PWNED").exists()


def test_main_job_model_loader_refuses(project):
    """The main job, per-layer rows and AWE inputs load models through trained.load_trained_model."""
    from speechreps.trained import load_trained_model

    with pytest.raises(UserError, match="is refused"):
        load_trained_model(project / "ck_apc", "apc")
    assert not (project / "PWNED").exists()


def test_new_checkpoints_hold_plain_data_only(tmp_path):
    """What the trainer writes names no class or function beyond torch's tensor rebuilders."""
    import random

    np.random.seed(3)
    random.seed(4)
    state = {"rng": ckpt.rng_state(), "versions": ckpt.versions(), "model": {"w": torch.ones(2)}}
    ckpt.save(state, tmp_path / "a.pt")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "a.pt") == []
    want = np.random.random(3)
    np.random.seed(0)
    ckpt.set_rng_state(ckpt.load(tmp_path / "a.pt")["rng"])
    assert np.array_equal(np.random.random(3), want)


def test_checkpoints_of_the_earlier_format_still_load(tmp_path):
    """Before plain data, the NumPy RNG state was a tuple with an ndarray and versions a TorchVersion."""
    np.random.seed(5)
    old = {"model": {"w": torch.ones(2)}, "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                                                   "python": __import__("random").getstate()},
           "versions": {"torch": torch.__version__}}
    torch.save(old, tmp_path / "old.pt")
    want = np.random.random(3)
    state = ckpt.load(tmp_path / "old.pt")
    ckpt.set_rng_state(state["rng"])
    assert np.array_equal(np.random.random(3), want)


def test_truncated_checkpoint_is_one_line(tmp_path):
    ckpt.save({"model": {"w": torch.ones(1000)}}, tmp_path / "a.pt")
    data = (tmp_path / "a.pt").read_bytes()
    (tmp_path / "a.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cannot be read") as info:
        ckpt.load(tmp_path / "a.pt")
    assert "\n" not in str(info.value)
