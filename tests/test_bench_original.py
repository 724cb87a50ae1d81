"""bench/original.py's FLOP count (what its "fraction of peak" rests on) and its skip without the original."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import original  # noqa: E402


def test_linear_step_flops_are_forward_and_backward_products():
    layer = torch.nn.Linear(39, 100)
    x = torch.randn(16, 39, requires_grad=True)
    # forward 2*16*39*100; backward: the input's and the weight's gradients, as much again each
    assert original.step_flops(lambda: layer(x).sum().backward()) == 3 * 2 * 16 * 39 * 100


def test_cpu_lstm_is_counted():
    """On the CPU an LSTM runs as oneDNN layer ops that torch's counter has no formula for."""
    lstm = torch.nn.LSTM(8, 16, batch_first=True)
    x = torch.randn(3, 5, 8)
    flops = original.step_flops(lambda: lstm(x)[0].sum().backward())
    weights = 4 * 16 * (8 + 16)
    assert flops in (3 * 2 * 15 * weights, 3 * 2 * 15 * weights - 2 * 15 * 4 * 16 * 8)  # oneDNN or decomposed


def test_skips_without_the_original(capsys, tmp_path):
    assert original.main(["--original", str(tmp_path)]) == 0
    assert "skipped" in capsys.readouterr().err
