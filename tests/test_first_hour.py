"""What a new user meets first: each action's --help lists only its options, the defaults are ones
a new user has, prepare --help names its defaults, and a training epoch is never silent in a log."""

from __future__ import annotations

import io
import re

import pytest

from speechreps import cli, legacy_cli
from speechreps.progress import Heartbeat, bars_enabled, format_duration
from speechreps.run_options import ACTIONS, OPTION_ACTIONS
from speechreps.model_types import MODEL_TYPES


def _options(parser_help: str) -> set[str]:
    return set(re.findall(r"^  (--[a-z_-]+)", parser_help, flags=re.M))


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv) if argv[0] != "learn_speech_reps" else legacy_cli.main(argv[1:])
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_lists_exactly_the_options_it_uses(action, capsys):
    shown = _options(_help([action, "--help"], capsys)) - {"--help"}
    used = {flag for flag, actions in OPTION_ACTIONS.items() if action in actions}
    if action == "evaluate":  # its dataset option reads as what it does
        used = (used - {"--extract-language"}) | {"--eval-language"}
    assert shown == used
    # the identical list of old is gone: train has no extraction options, evaluate no training ones
    if action == "train":
        assert not shown & {"--save_path", "--extract-test", "--layer", "--checkpoint"}
    if action in ("evaluate", "extract"):
        assert not shown & {"--resume", "--pairs", "--val-tokens", "--workers", "--log-every"}


def test_language_defaults_to_the_built_in_corpus_and_legacy_keeps_english_full(capsys):
    assert "(default: synth_en)" in " ".join(_help(["train", "--help"], capsys).split())
    assert "(default: english_full)" in " ".join(_help(["learn_speech_reps", "--help"], capsys).split())
    # the original interface still takes every option, whatever its action
    assert _options(_help(["learn_speech_reps", "--help"], capsys)) >= set(OPTION_ACTIONS)


def test_an_option_the_action_does_not_use_is_an_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", "apc", "c.json", str(tmp_path), "--save_path", "x"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --save_path" in capsys.readouterr().err


def test_prepare_help_names_the_default_split_and_speaker_rule(capsys):
    text = " ".join(_help(["prepare", "--help"], capsys).split())
    assert "Default split, without speaker lists" in text and "quarter for test" in text
    assert "Default speaker rule (auto): nchlt for NCHLT-style ids" in text and "s06_02a -> s06" in text


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_heartbeat_logs_rate_and_time_left_every_interval():
    clock, lines = Clock(), []
    beat = Heartbeat("cpc epoch 2/5", total=100, log=lines.append, every=30.0, clock=clock)
    for step in range(1, 101):
        clock.t = step * 1.5  # 1.5 s per batch of 1,000 frames
        beat.update(1, frames=1000)
    # one line per 30 s (20 batches) of a 150 s epoch, none at the last batch
    assert len(lines) == 4
    assert lines[0] == "cpc epoch 2/5: 20/100 batches (20%), 667 frames/s, 0.67 batches/s, about 2 min 00 s left"
    assert lines[-1].startswith("cpc epoch 2/5: 80/100 batches (80%)") and lines[-1].endswith("about 30 s left")


def test_heartbeat_off_and_bars_only_on_a_terminal():
    lines = []
    beat = Heartbeat("x", total=10, log=lines.append, every=0)
    for _ in range(10):
        beat.update()
    assert lines == []

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert bars_enabled(True, Tty()) and not bars_enabled(False, Tty()) and not bars_enabled(True, io.StringIO())
    assert [format_duration(s) for s in (5, 185, 7620)] == ["5 s", "3 min 05 s", "2 h 07 min"]


def test_training_logs_progress_lines_within_an_epoch_when_not_on_a_terminal(tmp_path):
    from speechreps.config import config_from_dict
    from speechreps.data.datasets import make_training_set
    from speechreps.data.registry import load_dataset
    from speechreps.models import build_model
    from speechreps.train.trainer import Trainer, seed_everything

    from test_datasets import TINY_CONFIG, make_toy_dataset

    ds = load_dataset(make_toy_dataset(tmp_path / "toy"), "toy")
    cfg = config_from_dict({**TINY_CONFIG["frame_ae"], "num_epochs": 1, "validate_every": 0, "batch_size": 64},
                           "frame_ae")
    seed_everything(cfg.seed)
    model = build_model("frame_ae", cfg)
    ts = make_training_set(MODEL_TYPES["frame_ae"].batch_kind, cfg, ds)
    lines: list[str] = []
    Trainer(model, ts, cfg, tmp_path / "ck", "frame_ae", device="cpu", progress=False, log=lines.append,
            tensorboard=False, log_every=1e-6).fit()  # no bar (--no-progress): progress lines instead
    beats = [ln for ln in lines if ln.startswith("frame_ae epoch 1/1: ")]
    n = len(ts.sampler)
    assert n > 2 and len(beats) == n - 1  # every batch but the last (the epoch line follows it)
    assert re.fullmatch(r"frame_ae epoch 1/1: 1/\d+ batches \(\d+%\), [\d,]+ frames/s, [\d.]+ batches/s, about .+ left",
                        beats[0])
    assert lines[-1].startswith("epoch 1/1: loss")
