"""Which autocast a training step runs under (``amp`` / ``amp_dtype`` of a config), on CUDA and on CPU.

Why CPU autocast, and only with native bfloat16: a CPU with AMX or AVX512-BF16 (Intel Sapphire Rapids and
later, AMD Zen 4 and later) multiplies bfloat16 matrices several times faster than float32 ones, and
oneDNN's LSTM runs in bfloat16 too. Measured 2026-12-03 on this project's 2-core machine (AMX), one
training step at the original code's shapes (``bench/original.py --amp``), bfloat16 autocast against
float32: CPC 2.0x faster, APC and CAPC 1.2x (their GRU recurrence stays float32, see
:mod:`speechreps.models.gru`), the frame AE / CAE 1.6-1.7x (one thread, 2,048 frame pairs). Without
native support bfloat16 is emulated and slower than float32, so there ``amp`` trains in float32 and says
so. ``float16`` is CUDA's choice (with loss scaling); on a CPU ``amp`` always means bfloat16, which has
float32's range and needs no scaler.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AMX tiles or AVX512-BF16)."""
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:  # a build without the probe's backend
            continue
    return False


@dataclass(frozen=True)
class AutocastPlan:
    """``enabled``: autocast on; ``dtype``: its type; ``scale``: fp16 loss scaling; ``note``: a line to log."""

    enabled: bool
    dtype: torch.dtype
    scale: bool
    note: str | None = None


def autocast_plan(amp: bool, amp_dtype: str, device: torch.device) -> AutocastPlan:
    """The autocast of a training step on ``device`` for a config's ``amp`` and ``amp_dtype``."""
    if amp_dtype not in ("float16", "bfloat16"):
        raise ValueError(f"amp_dtype must be float16 or bfloat16, got {amp_dtype!r}")
    if not amp:
        return AutocastPlan(False, torch.float32, False)
    if device.type == "cuda":
        dtype = getattr(torch, amp_dtype)
        return AutocastPlan(True, dtype, dtype == torch.float16)
    if device.type != "cpu":
        return AutocastPlan(False, torch.float32, False, f"amp: no autocast on {device.type}; training in float32")
    if not cpu_has_native_bf16():
        return AutocastPlan(False, torch.float32, False,
                            "amp: this CPU has no native bfloat16 (AMX or AVX512-BF16), where bfloat16 is slower "
                            "than float32; training in float32")
    note = "amp: bfloat16 autocast on this CPU (native bfloat16)"
    if amp_dtype == "float16":
        note += "; amp_dtype float16 is for CUDA, a CPU uses bfloat16"
    return AutocastPlan(True, torch.bfloat16, False, note)
