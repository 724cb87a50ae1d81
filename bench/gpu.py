"""The GPU check, ready for the few minutes a lent GPU gives: one table of CUDA figures.

    python bench/gpu.py [--device cuda] [--quick] [--main-job]
    bash bench/gpu.sh                      # the same on the device machine, PYTHONPATH=src

Measures, on ``--device`` (default: cuda when present, else cpu, which is how CI-less sessions check
that the script itself works):

1. the DTW wavefront (the torch kernel of ``evaluate/dtw.py``) in cells/s at D = 39, 256 and 768,
   beside the numba CPU kernel on the same tokens (a smaller subset for the CPU, scaled per cell);
   the two agree to 1e-5 on the shared pairs, which is checked;
2. every model's training frames/s at the paper sizes (``configs/paper.json``; ``--quick``: the demo
   sizes), in float32 and with AMP (bfloat16 autocast, as the trainer's ``amp: true,
   amp_dtype: bfloat16``: on CUDA, and on a CPU with native bfloat16), on the batches of ``bench/train.py``;
3. one DDP step in a one-process group (NCCL on CUDA, gloo on CPU): the frame CAE wrapped in
   ``DistributedDataParallel``, frames/s, against the same step without DDP;
4. with ``--main-job``: ``speechreps run --languages en --no-cross-lingual --device DEVICE`` on the
   built-in corpus, and the minutes of its training stage (needs librosa and espeakng-loader there).

Prints one Markdown table (what, figure, against, ratio) and the device's name. Target for the DTW
wavefront on a current data-centre GPU: 1e10 cells/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from samediff import cells as _cells, make_tokens as _tokens  # noqa: E402  (bench/samediff.py's DTW tokens)
from train import make_batches  # noqa: E402  (bench/train.py: batches shaped as the trainer's)

from speechreps.config import load_config  # noqa: E402
from speechreps.evaluate.dtw import pairwise_dtw  # noqa: E402
from speechreps.model_types import MODEL_TYPES  # noqa: E402
from speechreps.models import build_model  # noqa: E402
from speechreps.train.trainer import make_optimizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TYPES = ("apc", "cpc", "capc", "frame_ae", "frame_cae")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def dtw_rows(device: str, n_gpu: int, n_cpu: int) -> list[tuple[str, str, str, str]]:
    rows = []
    for dim in (39, 256, 768):
        segs = _tokens(n_gpu, dim)
        pairwise_dtw(segs[:16], device=device, backend="torch")  # warm-up (kernels, allocator)
        _sync(device)
        t0 = time.perf_counter()
        gpu = pairwise_dtw(segs, device=device, backend="torch")
        _sync(device)
        rate = _cells(segs) / (time.perf_counter() - t0)
        sub = segs[:n_cpu]
        pairwise_dtw(sub[:8], backend="numba")  # warm-up (the compiled kernel is loaded once)
        t0 = time.perf_counter()
        cpu = pairwise_dtw(sub, backend="numba")
        cpu_rate = _cells(sub) / (time.perf_counter() - t0)
        m = len(sub)
        from speechreps.evaluate.dtw import _condensed  # the shared pairs' positions in gpu's order

        i, j = np.triu_indices(m, 1)
        diff = float(np.max(np.abs(gpu[_condensed(i, j, len(segs))] - cpu)))
        if diff > 1e-5:
            raise SystemExit(f"DTW D={dim}: torch and numba kernels differ by {diff:.2e}")
        rows.append((f"DTW wavefront, D={dim}, N={len(segs)} ({device})", f"{rate:.3g} cells/s",
                     f"numba CPU {cpu_rate:.3g} cells/s", f"{rate / cpu_rate:.1f}x"))
    return rows


def _step_rate(rep: str, cfg, device: str, amp: bool, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model(rep, cfg).to(device).train()
    opt = make_optimizer(model.parameters(), cfg.learning_rate)
    batches = [(b.to(device), n) for b, n in make_batches(MODEL_TYPES[rep].batch_kind, cfg, steps + 2, torch.Generator().manual_seed(0))]
    ctx = (lambda: torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    frames, seconds = 0, 0.0
    for k, (batch, n) in enumerate(batches):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with ctx():
            loss, _ = model.loss(batch)
        loss.backward()
        opt.step()
        _sync(device)
        if k >= 2:  # the first two steps warm up
            frames, seconds = frames + n, seconds + time.perf_counter() - t0
    return frames / seconds


def training_rows(device: str, steps: int, config: str) -> list[tuple[str, str, str, str]]:
    """AMP where the trainer uses it: on CUDA, and on a CPU with native bfloat16 (train/precision.py)."""
    from speechreps.train.precision import autocast_plan

    with_amp = autocast_plan(True, "bfloat16", torch.device(device)).enabled
    rows = []
    for rep in TYPES:
        cfg = load_config(ROOT / "configs" / f"{config}.json", rep)
        fp32 = _step_rate(rep, cfg, device, False, steps)
        if not with_amp:
            rows.append((f"train {rep} ({config} size, {device})", f"{fp32:,.0f} frames/s fp32", "-", "-"))
            continue
        amp = _step_rate(rep, cfg, device, True, steps)
        rows.append((f"train {rep} ({config} size, {device})", f"{amp:,.0f} frames/s with AMP bf16",
                     f"{fp32:,.0f} frames/s fp32", f"{amp / fp32:.2f}x"))
    return rows


def ddp_row(device: str, steps: int, config: str) -> tuple[str, str, str, str]:
    """The trainer's own DDP wrapping (``train/distributed.wrap_model``) in a one-process group."""
    import torch.distributed as dist

    from speechreps.train.distributed import wrap_model

    backend = "nccl" if device.startswith("cuda") else "gloo"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        cfg = load_config(ROOT / "configs" / f"{config}.json", "frame_cae")
        plain = _step_rate("frame_cae", cfg, device, False, steps)
        torch.manual_seed(0)
        model = build_model("frame_cae", cfg).to(device).train()
        wrapped = wrap_model(model, torch.device(device))
        opt = make_optimizer(wrapped.parameters(), cfg.learning_rate)
        batches = [(b.to(device), n) for b, n in make_batches(MODEL_TYPES["frame_cae"].batch_kind, cfg, steps + 2, torch.Generator().manual_seed(0))]
        frames, seconds = 0, 0.0
        for k, (batch, n) in enumerate(batches):
            _sync(device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss, _ = wrapped(batch)
            loss.backward()  # the gradient all-reduce runs here
            opt.step()
            _sync(device)
            if k >= 2:  # the first two steps warm up
                frames, seconds = frames + n, seconds + time.perf_counter() - t0
    finally:
        dist.destroy_process_group()
    rate = frames / seconds
    return (f"DDP step, 1 process, {backend} ({device}), frame_cae", f"{rate:,.0f} frames/s",
            f"{plain:,.0f} frames/s without DDP", f"{rate / plain:.2f}x")


def main_job_row(device: str) -> tuple[str, str, str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "speechreps", "run", "--languages", "en", "--no-cross-lingual",
               "--device", device, "--out", tmp]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        total = (time.perf_counter() - t0) / 60
        results = json.loads((Path(tmp) / "results.json").read_text())
        times = (results.get("meta") or results).get("stage_seconds", {})
        train = sum(v for k, v in times.items() if "train" in k) / 60
    return (f"main job, English only ({device})", f"training stage {train:.1f} min", f"whole job {total:.1f} min", "-")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and the demo config (a check that the script runs; the default on a CPU)")
    p.add_argument("--main-job", action="store_true", help="also time the main job's training stage")
    args = p.parse_args(argv)
    quick = args.quick or args.device == "cpu"
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"CPU, {os.cpu_count()} cores"
    print(f"device: {name}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}", flush=True)
    config = "demo" if quick else "paper"
    rows = dtw_rows(args.device, n_gpu=40 if quick else 3000, n_cpu=20 if quick else 300)
    rows += training_rows(args.device, steps=2 if quick else 10, config=config)
    rows.append(ddp_row(args.device, steps=2 if quick else 20, config=config))
    if args.main_job:
        rows.append(main_job_row(args.device))
    print("| what | figure | against | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
