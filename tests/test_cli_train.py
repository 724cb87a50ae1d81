"""The train / evaluate / extract / all command lines: the original's and ``speechreps``'s."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechreps import cli, legacy_cli, pipeline
from speechreps.data.archive import load_archive, parse_word_key

from test_datasets import make_toy_dataset, write_config


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working folder holding data_paths.json (dataset 'toy') and config/config.json."""
    make_toy_dataset(tmp_path)
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config" / "config.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _capture(monkeypatch):
    seen = {}

    def fake(action, opts, log=print):
        seen["action"], seen["opts"] = action, opts
        return 0

    monkeypatch.setattr(legacy_cli, "run_action", fake)
    monkeypatch.setattr(pipeline, "run_action", fake)
    return seen


def test_seed_example_parses(project, monkeypatch):
    seen = _capture(monkeypatch)
    assert legacy_cli.main(["cpc", "all", "config/config.json", "CKPT", "OUT"]) == 0
    opts = seen["opts"]
    assert seen["action"] == "all" and opts.representation_type == "cpc"
    assert str(opts.save_path) == "OUT" and str(opts.ckpt_dir) == "CKPT"
    assert opts.language == "english_full" and opts.splits == ["train", "validation", "test"]
    assert opts.data_paths.name == "data_paths.json"
    assert legacy_cli.main(["apc", "extract", "config/config.json", "CKPT", "--save_path", "P", "--language", "toy",
                            "--extract-language", "toy", "--extract-test", "--load-from-epoch", "3"]) == 0
    opts = seen["opts"]
    assert (opts.splits, opts.load_from_epoch, opts.extract_language, str(opts.save_path)) == (["test"], 3, "toy", "P")
    assert cli.main(["train", "capc", "config/config.json", "CKPT", "--pairs", "p.txt", "--device", "cpu",
                     "--jobs", "1"]) == 0
    assert seen["action"] == "train" and str(seen["opts"].pairs) == "p.txt" and seen["opts"].jobs == 1


@pytest.mark.parametrize("argv,message", [
    (["nope", "train", "config/config.json", "CKPT"], "unknown representation type 'nope'"),
    (["apc", "dance", "config/config.json", "CKPT"], "unknown action 'dance'"),
    (["apc", "train", "missing.json", "CKPT"], "config file missing.json does not exist"),
    (["apc", "extract", "config/config.json", "CKPT"], "needs --save_path"),
    (["apc", "all", "config/config.json", "CKPT"], "needs --save_path"),
    (["apc", "train", "config/config.json", "CKPT", "--language", "klingon"], "dataset 'klingon' is not in"),
    (["apc", "evaluate", "config/config.json", "CKPT", "--language", "toy", "--load-from-epoch", "5"],
     "epoch_5.pt does not exist"),
    (["apc", "train", "config/config.json", "CKPT", "--language", "toy", "--load-from-epoch", "5"],
     "epoch_5.pt does not exist"),
    (["apc", "train", "config/config.json", "CKPT", "--data-paths", "nowhere.json"], "nowhere.json does not exist"),
])
def test_errors_are_one_line_exit_2(project, capsys, argv, message):
    assert legacy_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("learn_speech_reps: error:") and message in err[0], err


def test_legacy_all_end_to_end(project, capsys):
    rc = legacy_cli.main(["apc", "all", "config/config.json", "CKPT", "OUT", "--language", "toy", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "mfcc/input" in out and "AP dtw" in out
    names = sorted(p.name for p in (project / "CKPT").iterdir())
    for name in ("best.pt", "config.json", "epoch_4.pt", "evaluation_toy.json", "last.pt", "metrics.jsonl"):
        assert name in names
    rows = [json.loads(line) for line in (project / "CKPT" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and "val_ap" in rows[1]
    report = json.loads((project / "CKPT" / "evaluation_toy.json").read_text())
    val = report["splits"]["validation"]["results"]
    assert set(val) == {"input", "gru1", "gru2"}
    assert 0 <= val["gru2"]["dtw"]["ap"] <= 1 and val["input"]["downsample"]["ap_cross_speaker"] is not None
    for split in ("train", "validation", "test"):
        feats = load_archive(project / "OUT" / f"toy_{split}_apc_gru2.npz")
        words = load_archive(project / "toy" / f"{split}_words.npz")
        assert list(feats) == list(words)
        assert all(v.shape == (parse_word_key(k).n_frames, 16) for k, v in feats.items())


def test_speechreps_frame_cae_trains_its_ae_then_extracts_cross_lingual(project, capsys):
    make_toy_dataset(project, seed=5, name="other")
    assert cli.main(["train", "frame_cae", "config/config.json", "CK", "--language", "toy", "--no-progress",
                     "--val-tokens", "0"]) == 0
    assert (project / "CK" / "frame_ae" / "last.pt").is_file()
    rows = [json.loads(line) for line in (project / "CK" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["val_ap"] == r["val_ap_downsample"] and "val_ap_cross_speaker" not in r for r in rows)
    assert "training a frame_ae first" in capsys.readouterr().out
    # an ae_checkpoint in the config (relative to the config's folder) is used instead
    write_config(project / "config" / "with_ae.json", frame_cae={"ae_checkpoint": "../CK/frame_ae", "num_epochs": 1})
    assert cli.main(["train", "frame_cae", "config/with_ae.json", "CK2", "--language", "toy", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "initialising from the frame_ae" in out and "training a frame_ae first" not in out
    assert not (project / "CK2" / "frame_ae").exists()
    assert cli.main(["extract", "frame_cae", "config/config.json", "CK", "--language", "toy",
                     "--extract-language", "other", "--extract-validation", "--layer", "enc1", "--isolated",
                     "--save-path", "OUT", "--checkpoint", "last"]) == 0
    assert sorted(p.name for p in (project / "OUT").glob("*.npz")) == ["other_validation_frame_cae_enc1.npz"]
    feats = load_archive(project / "OUT" / "other_validation_frame_cae_enc1.npz")
    assert all(np.isfinite(v).all() and v.shape[1] == 16 for v in feats.values())
