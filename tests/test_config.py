"""Config loading and validation: every mistake is one line naming the file, section and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechreps.config import (
    APCConfig,
    CPCConfig,
    FrameCAEConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)
from speechreps.errors import UserError
from speechreps.model_types import MODEL_TYPES

ROOT = Path(__file__).resolve().parent.parent
BASE = {"learning_rate": 0.001, "num_epochs": 2, "batch_size": 4}


def write(tmp_path: Path, data) -> Path:
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize("name", ["paper.json", "demo.json"])
def test_shipped_configs_load_every_type(name):
    for folder in (ROOT / "configs", ROOT / "src" / "speechreps" / "configs"):
        for rep_type, entry in MODEL_TYPES.items():
            cfg = load_config(folder / name, rep_type)
            assert isinstance(cfg, entry.config)
    assert (ROOT / "configs" / name).read_text() == (ROOT / "src" / "speechreps" / "configs" / name).read_text()


def test_paper_sizes():
    apc = load_config(ROOT / "configs" / "paper.json", "apc")
    assert (apc.hidden_dim, apc.num_layers) == (512, 3)
    cpc = load_config(ROOT / "configs" / "paper.json", "cpc")
    assert (cpc.enc_dim, cpc.z_dim, cpc.c_dim) == (512, 64, 256)


def test_original_keys_and_defaults(tmp_path):
    section = dict(BASE, lr_milestones=[5, 10], num_buckets=3, input_dim=13, hidden_dim=32, num_layers=2,
                   num_pred_steps=2, checkpoint_interval=1, include_aux_loss=True, num_pred_steps_aux=3,
                   num_aux_anchors=2, num_aux_steps_back=4, aux_seq_len=6, aux_loss_weight=0.5, dframe=13)
    cfg = load_config(write(tmp_path, {"apc": section}), "apc")
    assert isinstance(cfg, APCConfig) and cfg.lr_milestones == [5, 10] and cfg.input_dim == 13
    assert cfg.grad_clip == 5.0 and cfg.amp is False and cfg.validate_every == 1


def test_int_accepted_for_float_and_roundtrip():
    cfg = config_from_dict(dict(BASE, learning_rate=1), "cpc")
    assert isinstance(cfg, CPCConfig) and cfg.learning_rate == 1.0
    assert config_from_dict(config_to_dict(cfg), "cpc") == cfg


def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_unknown_key(tmp_path):
    p = write(tmp_path, {"apc": dict(BASE, hiden_dim=3)})
    with pytest.raises(UserError) as e:
        load_config(p, "apc")
    msg = one_line(e)
    assert str(p) in msg and "[apc]" in msg and "hiden_dim" in msg


def test_wrong_type(tmp_path):
    p = write(tmp_path, {"apc": dict(BASE, num_layers="3")})
    with pytest.raises(UserError) as e:
        load_config(p, "apc")
    msg = one_line(e)
    assert "[apc] num_layers must be an integer" in msg and str(p) in msg
    with pytest.raises(UserError, match="include_aux_loss must be true or false"):
        load_config(write(tmp_path, {"apc": dict(BASE, include_aux_loss=1)}), "apc")
    with pytest.raises(UserError, match="num_epochs must be an integer"):
        load_config(write(tmp_path, {"apc": dict(BASE, num_epochs=2.5)}), "apc")


def test_missing_section_and_value(tmp_path):
    p = write(tmp_path, {"apc": BASE})
    with pytest.raises(UserError) as e:
        load_config(p, "frame_cae")
    assert "missing section [frame_cae]" in one_line(e) and str(p) in str(e.value)
    section = dict(BASE)
    del section["learning_rate"]
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, {"cpc": section}), "cpc")
    assert "[cpc] missing required key 'learning_rate'" in one_line(e)


def test_out_of_range(tmp_path):
    p = write(tmp_path, {"apc": dict(BASE, num_layers=0)})
    with pytest.raises(UserError) as e:
        load_config(p, "apc")
    assert one_line(e) == f"{p}: [apc] num_layers must be an integer >= 1, got 0"
    for section, key in [
        (dict(BASE, learning_rate=-1.0), "learning_rate"),
        (dict(BASE, seq_len=3, num_pred_steps=3), "seq_len"),
        (dict(BASE, dropout=1.0), "dropout"),
        (dict(BASE, num_negatives=0), "num_negatives"),
        (dict(BASE, lr_milestones=[5, 2]), "lr_milestones"),
    ]:
        with pytest.raises(UserError, match=f"\\[cpc\\] {key} "):
            load_config(write(tmp_path, {"cpc": section}), "cpc")


def test_bad_json_and_missing_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{ not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_config(p, "apc")
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.json", "apc")
    with pytest.raises(UserError, match="unknown representation type"):
        load_config(write(tmp_path, {"apc": BASE}), "vae")


def test_ae_checkpoint_relative_to_config(tmp_path):
    cfg = load_config(write(tmp_path, {"frame_cae": dict(BASE, ae_checkpoint="ae_ckpt")}), "frame_cae")
    assert isinstance(cfg, FrameCAEConfig) and cfg.ae_checkpoint == str(tmp_path / "ae_ckpt")
    cfg = load_config(write(tmp_path, {"frame_cae": BASE}), "frame_cae")
    assert cfg.ae_checkpoint is None
