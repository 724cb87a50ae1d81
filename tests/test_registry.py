"""The type registry: a new model type is one ``register`` call, and every job then knows it.

The type here (a linear frame autoencoder) lives in this file only: its model class, its config class
and its registration. Training, evaluation, extraction through the CLI and the main job must all take
it without any other file naming it (docs/DEVELOPING.md lists the steps this test follows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from speechreps import cli, model_types
from speechreps.config import TrainingConfig, config_from_dict
from speechreps.data.archive import load_archive
from speechreps.data.registry import load_dataset
from speechreps.errors import UserError
from speechreps.model_types import ModelType

from test_datasets import make_toy_dataset


@dataclass(kw_only=True)
class LinearAEConfig(TrainingConfig):
    """A linear frame autoencoder's one size."""

    code_dim: int = 4

    def check(self, bad) -> None:
        super().check(bad)
        if self.code_dim < 1:
            bad("code_dim", f"must be an integer >= 1, got {self.code_dim}")


class LinearAE(nn.Module):
    """Frame -> ``code_dim`` linear code -> frame; the code is the feature (a PCA learnt by gradient)."""

    layers = ("code",)
    default_layer = "code"

    def __init__(self, cfg: LinearAEConfig):
        super().__init__()
        self.cfg = cfg
        self.enc = nn.Linear(cfg.input_dim, cfg.code_dim)
        self.dec = nn.Linear(cfg.code_dim, cfg.input_dim)

    def loss(self, batch):
        loss = ((self.dec(self.enc(batch.x)) - batch.y) ** 2).mean()
        return loss, {"mse": float(loss.detach())}

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        return {"code": self.enc(feats) * mask}  # (B, T, code_dim), padded frames zero


SECTION = {"learning_rate": 0.01, "num_epochs": 4, "batch_size": 64, "input_dim": 13, "code_dim": 4,
           "validate_every": 2}


@pytest.fixture
def linear_ae():
    entry = model_types.register(ModelType("frame_lae", LinearAEConfig, LinearAE, "frame", awe_input=False,
                                           summary="linear frame autoencoder (test)"))
    yield entry
    model_types.unregister("frame_lae")


@pytest.fixture
def project(tmp_path, monkeypatch):
    make_toy_dataset(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"frame_lae": SECTION}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_registered_type_trains_evaluates_and_extracts_through_the_cli(linear_ae, project, capsys):
    assert cli.main(["train", "frame_lae", "config.json", "CK", "--language", "toy", "--no-progress"]) == 0
    rows = [json.loads(x) for x in (project / "CK" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and rows[-1]["loss"] < 0.7 * rows[0]["loss"]  # it learns
    assert "val_ap" in rows[1] and 0 < rows[1]["val_ap"] <= 1

    assert cli.main(["evaluate", "frame_lae", "config.json", "CK", "--language", "toy"]) == 0
    report = json.loads((project / "CK" / "evaluation_toy.json").read_text())
    code = report["splits"]["test"]["results"]["code"]
    assert code["dim"] == 4 and 0 < code["dtw"]["ap"] <= 1

    assert cli.main(["extract", "frame_lae", "config.json", "CK", "--language", "toy", "--save_path", "out",
                     "--extract-test"]) == 0
    feats = load_archive(project / "out" / "toy_test_frame_lae_code.npz")
    words = load_archive(load_dataset(project / "data_paths.json", "toy").word_tokens("test"))
    assert list(feats) == list(words)
    assert all(feats[k].shape == (len(words[k]), 4) and np.isfinite(feats[k]).all() for k in words)


def test_a_registered_type_is_in_the_help_and_the_main_job(linear_ae, project, capsys):
    from speechreps.experiment import MainJobOptions, run_main_job

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "frame_lae" in capsys.readouterr().out
    log: list[str] = []
    opts = MainJobOptions(run_dir=project / "run", data_dir=project, config=project / "config.json",
                          datasets=["toy"], data_paths=project / "data_paths.json", only=["frame_lae"],
                          cross_lingual=False, progress=False, log=log.append)
    run_main_job(opts)
    results = json.loads((project / "run" / "results.json").read_text())
    learned = [r for r in results["rows"] if r["features"] == "frame_lae"]
    assert {(r["split"], r["distance"]) for r in learned} == {(s, d) for s in ("validation", "test")
                                                              for d in ("downsample", "dtw")}
    assert all(r["layer"] == "code" and 0 < r["ap"] <= 1 for r in learned)
    assert "frame_lae" in (project / "run" / "report.md").read_text()


def test_config_and_cli_name_only_registered_types(linear_ae, tmp_path):
    cfg = config_from_dict(SECTION, "frame_lae")
    assert isinstance(cfg, LinearAEConfig) and model_types.type_of_config(cfg) == "frame_lae"
    with pytest.raises(UserError, match=r"\[frame_lae\] code_dim must be an integer >= 1"):
        config_from_dict({**SECTION, "code_dim": 0}, "frame_lae")
    with pytest.raises(UserError, match="unknown representation type 'vae'.*frame_lae"):
        config_from_dict(SECTION, "vae")


def test_training_order_puts_an_initialiser_first_and_sections_follow_it():
    assert model_types.training_order(["frame_cae", "apc", "frame_ae"]) == ["apc", "frame_ae", "frame_cae"]
    assert model_types.get("frame_cae").sections() == ("frame_cae", "frame_ae")
    assert model_types.get("apc").sections() == ("apc",)  # editing [frame_ae] no longer retrains APC
    assert [t for t in model_types.names() if model_types.get(t).uses_pairs] == ["capc", "frame_cae"]
    with pytest.raises(UserError, match="--only: unknown representation type"):
        model_types.training_order(["apc", "hubert"])
    with pytest.raises(ValueError, match="unknown batch kind"):
        ModelType("x", TrainingConfig, LinearAE, "sentences")
