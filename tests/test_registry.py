"""The type registry: a new model type is one ``register`` call, and every job then knows it.

The types here (a linear frame autoencoder, and a mean-pooled acoustic word embedding) live in this file
only: their model classes, their config classes and their registration. Training, evaluation, extraction through the CLI and the main job must all take
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
from speechreps.awe.config import AWEConfig
from speechreps.config import TrainingConfig, config_from_dict, section_from_dict
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


# -- an acoustic word embedding type: the same rails --------------------------------------------------


@dataclass(kw_only=True)
class MeanAWEConfig(AWEConfig):
    """The mean-pooled AWE's settings: the shared AWE keys plus its NT-Xent temperature."""

    model: str = "mean_awe"
    temperature: float = 0.2


class MeanAWE(nn.Module):
    """A word's embedding is a linear map of the mean frames of its two halves, trained with NT-Xent on the pairs."""

    def __init__(self, cfg: MeanAWEConfig):
        super().__init__()
        self.cfg = cfg
        self.proj = nn.Linear(2 * cfg.input_dim, cfg.embedding_dim)

    @classmethod
    def training_data(cls, pairs, max_frames: int = 0):
        from speechreps.awe.contrastive import ContrastivePairDataset

        return ContrastivePairDataset(pairs, max_frames), f"{len(pairs.pairs)} pairs"

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[1], device=x.device)[None, :]
        half = (lengths[:, None] + 1) // 2
        first, second = (t < half).unsqueeze(-1), ((t >= half) & (t < lengths[:, None])).unsqueeze(-1)
        mean = lambda m: (x * m).sum(1) / m.sum(1).clamp(min=1)  # noqa: E731
        return self.proj(torch.cat([mean(first), mean(second)], dim=1))

    def loss(self, batch):
        from speechreps.awe.contrastive import nt_xent

        t = max(batch.x.shape[1], batch.y.shape[1])
        pad = lambda a: torch.nn.functional.pad(a, (0, 0, 0, t - a.shape[1]))  # noqa: E731
        z = self.embed(torch.cat([pad(batch.x), pad(batch.y)]), torch.cat([batch.x_lengths, batch.y_lengths]))
        loss, accuracy = nt_xent(z, batch.ids, batch.labels, self.cfg.temperature, True)
        return loss, {"accuracy": accuracy}


@pytest.fixture
def mean_awe(monkeypatch):
    entry = model_types.AWEModelType("mean_awe", MeanAWEConfig, MeanAWE, "Mean AWE", summary="mean-pooled (test)")
    monkeypatch.setitem(model_types.AWE_MODEL_TYPES, "mean_awe", entry)
    return entry


def test_a_registered_awe_type_trains_and_evaluates_through_the_awe_commands(mean_awe, tmp_path, capsys):
    from test_awe import make_word_dataset

    from speechreps.awe.compare import format_table
    from speechreps.awe.train import load_awe

    data_paths = make_word_dataset(tmp_path)
    section = {"model": "mean_awe", "num_epochs": 6, "batch_size": 8, "num_buckets": 1, "embedding_dim": 4,
               "learning_rate": 0.05, "validate_every": 1, "temperature": 0.5}
    (tmp_path / "awe.json").write_text(json.dumps({"awe": section}))
    ck = tmp_path / "ck"
    assert cli.main(["awe", "train", str(tmp_path / "awe.json"), str(ck), "--language", "two", "--data-paths", data_paths,
                     "--no-progress", "--device", "cpu"]) == 0
    rows = [json.loads(x) for x in (ck / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and rows[-1]["loss"] < 0.8 * rows[0]["loss"]  # it learns
    model, path = load_awe(ck)
    assert isinstance(model, MeanAWE) and torch.load(path, weights_only=True)["representation_type"] == "mean_awe"
    assert cli.main(["awe", "evaluate", str(ck), "--data-paths", data_paths]) == 0
    report = json.loads((ck / "awe_evaluation_two.json").read_text())
    assert report["splits"]["test"]["mean_awe"]["ap"] > 0.9  # two words whose halves differ
    row = {"features": "mfcc", "trained_on": None, "dataset": "two", "model": "mean_awe", "test_mean_awe_ap": 0.5}
    assert "Mean AWE AP (test)" in format_table([row])


def test_awe_config_names_only_registered_awe_types(mean_awe):
    from speechreps.awe.config import awe_config_from_dict

    assert isinstance(awe_config_from_dict({"model": "mean_awe", "temperature": 0.3}), MeanAWEConfig)
    with pytest.raises(UserError, match="model must be one of cae_rnn, contrastive_rnn, mean_awe"):
        awe_config_from_dict({"model": "siamese"})
    with pytest.raises(UserError, match=r"\[awe\] model 'mean_awe' is configured by MeanAWEConfig, not AWEConfig"):
        section_from_dict(AWEConfig, {"model": "mean_awe"}, "awe")  # the Python API's mistake, caught at load
