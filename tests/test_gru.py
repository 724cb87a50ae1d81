"""FastGRU computes nn.GRU's function and gradients exactly (it only reorganises the backward pass)."""

import pytest
import torch

from speechreps.models.gru import FastGRU, _GRURecurrence


@pytest.mark.parametrize("with_h0", [False, True])
def test_fast_gru_matches_nn_gru_outputs_and_gradients(with_h0):
    torch.manual_seed(0)
    ref = torch.nn.GRU(7, 5, batch_first=True).double()
    fast = FastGRU(7, 5).double()
    fast.load_state_dict(ref.state_dict())  # same parameter names: nn.GRU checkpoints load
    x = torch.randn(3, 11, 7, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 3, 5, dtype=torch.float64, requires_grad=True) if with_h0 else None
    g_out, g_h = torch.randn(3, 11, 5, dtype=torch.float64), torch.randn(1, 3, 5, dtype=torch.float64)
    results = []
    for model in (ref, fast):
        for t in [x] + ([h0] if with_h0 else []) + list(model.parameters()):
            t.grad = None
        out, h = model(x, h0)
        ((out * g_out).sum() + (h * g_h).sum()).backward()
        inputs = [x] + ([h0] if with_h0 else [])
        results.append((out.detach(), h.detach(), [t.grad.clone() for t in inputs + list(model.parameters())]))
    (o1, h1, g1), (o2, h2, g2) = results
    assert torch.allclose(o1, o2, atol=1e-12) and torch.allclose(h1, h2, atol=1e-12)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-12)


def test_gru_recurrence_gradcheck():
    torch.manual_seed(1)
    xg = torch.randn(6, 2, 12, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(12, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_GRURecurrence.apply, (xg, h0, w, b))


def test_fast_gru_float32_close_and_padding_does_not_leak_backwards():
    torch.manual_seed(2)
    ref = torch.nn.GRU(4, 6, batch_first=True)
    fast = FastGRU(4, 6)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(2, 9, 4)
    assert torch.allclose(ref(x)[0], fast(x)[0], atol=1e-6)
    # frames after t never change outputs up to t (so padding at the end is harmless)
    y = x.clone()
    y[:, 6:] = 100.0
    assert torch.equal(fast(x)[0][:, :6], fast(y)[0][:, :6])


def test_fast_gru_under_cpu_autocast_keeps_the_recurrence_in_float32():
    """With ``amp`` on a CPU the input projection runs in bfloat16 and the recurrence in float32 (gru.py):
    the step works, its output and gradients are float32 and close to the float32 step's."""
    torch.manual_seed(3)
    fast = FastGRU(8, 16)
    x = torch.randn(4, 30, 8, requires_grad=True)
    out32, _ = fast(x)
    (g32,) = torch.autograd.grad(out32.square().sum(), x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16, h16 = fast(x)
    assert out16.dtype == torch.float32 and h16.dtype == torch.float32
    (g16,) = torch.autograd.grad(out16.square().sum(), x)
    assert g16.dtype == torch.float32 and torch.isfinite(g16).all()
    # bfloat16 keeps 8 bits of mantissa: the input projection's rounding, not a wrong recurrence
    assert (out16 - out32).abs().max() < 0.05
    assert (g16 - g32).norm() < 0.05 * g32.norm()
