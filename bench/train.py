"""Training throughput (unpadded frames per second) of every model at the paper-size configs.

    python bench/train.py [--config configs/paper.json] [--steps 5] [--warmup 2] [--types apc,cpc,...]

Random data shaped like the built-in corpus: utterances of 100-600 frames of 39-d features (words of
40-120 frames for CAPC pairs), batched as the trainer batches them (length-bucketed utterances for APC,
speakers x utterances cropped to ``seq_len`` for CPC, single frames for frame AE / CAE). One step is
forward + backward + gradient clipping + Adam update. Prints frames/s per type and the ratio to the
original code's figures on 2 CPU cores (SPEC.md). torch threads = CPU cores unless --threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from speechreps.config import load_config
from speechreps.models import build_model
from speechreps.models.base import FramePairBatch, PairBatch, UtteranceBatch

# The original implementation's training throughput on 2 CPU cores, at its own sizes (SPEC.md).
ORIGINAL_FRAMES_PER_S = {"apc+aux": 1500, "apc": 4800, "capc": 4000, "cpc": 5400, "frame_ae": 60000, "frame_cae": 60000}


def _padded(lengths: list[int], dim: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(lengths)
    x = torch.randn(len(lengths), T, dim, generator=gen)
    L = torch.tensor(lengths)
    x[torch.arange(T)[None, :] >= L[:, None]] = 0
    return x, L


def make_batches(kind: str, cfg, n_batches: int, gen: torch.Generator) -> list[tuple[object, int]]:
    """``n_batches`` (batch, unpadded frames) pairs of the kind the model trains on."""
    D = cfg.input_dim
    out = []
    for _ in range(n_batches):
        if kind == "utterance":
            # the bucket sampler keeps similar lengths together: one bucket of about 50 frames' spread
            lo = int(torch.randint(100, 550, (1,), generator=gen))
            lengths = torch.randint(lo, lo + 50, (cfg.batch_size,), generator=gen).tolist()
            x, L = _padded(lengths, D, gen)
            crop = getattr(cfg, "seq_len", 0)
            frames = int(L.clamp(max=crop).sum()) if crop else int(L.sum())
            out.append((UtteranceBatch(x, L, torch.zeros(len(L), dtype=torch.long)), frames))
        elif kind == "speaker_utterance":
            S, U = cfg.n_speakers_per_batch, cfg.n_utterances_per_speaker
            lengths = torch.randint(100, 601, (S * U,), generator=gen).clamp(max=cfg.seq_len).tolist()
            x, L = _padded(lengths, D, gen)  # the sampler crops to seq_len frames
            spk = torch.arange(S).repeat_interleave(U)
            out.append((UtteranceBatch(x, L, spk), int(L.sum())))
        elif kind == "pair":
            lo = int(torch.randint(40, 110, (1,), generator=gen))
            lengths = torch.randint(lo, lo + 10, (cfg.batch_size,), generator=gen).tolist()
            x, L = _padded(lengths, D, gen)
            y, _ = _padded(lengths, D, gen)
            out.append((PairBatch(x, y, L), int(L.sum())))
        else:  # frame pairs
            x = torch.randn(cfg.batch_size, D, generator=gen)
            y = x if cfg.__class__.__name__ == "FrameAEConfig" else torch.randn(cfg.batch_size, D, generator=gen)
            out.append((FramePairBatch(x, y), cfg.batch_size))
    return out


def bench(rep_type: str, cfg, steps: int, warmup: int, min_seconds: float) -> float:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = build_model(rep_type, cfg)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    batches = make_batches(model.batch_kind, cfg, steps + warmup, gen)

    def step(batch):
        opt.zero_grad(set_to_none=True)
        loss, _ = model.loss(batch)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    for batch, _ in batches[:warmup]:
        step(batch)
    frames, t0, i = 0, time.perf_counter(), 0
    timed = batches[warmup:]
    while True:  # at least `steps` steps and `min_seconds`
        batch, n = timed[i % len(timed)]
        step(batch)
        frames += n
        i += 1
        if i >= steps and time.perf_counter() - t0 >= min_seconds:
            break
    return frames / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(here / "configs" / "paper.json"))
    p.add_argument("--types", default="apc+aux,apc,capc,cpc,frame_cae", help="comma-separated; apc+aux = apc with the auxiliary loss")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, config {args.config}", file=sys.stderr)
    print(f"| type | frames/s | original (2 cores) | ratio |")
    print(f"|---|---:|---:|---:|")
    for name in args.types.split(","):
        rep_type = name.removesuffix("+aux")
        cfg = load_config(args.config, rep_type)
        if rep_type == "apc":
            cfg.include_aux_loss = name.endswith("+aux")
        fps = bench(rep_type, cfg, args.steps, args.warmup, args.min_seconds)
        ref = ORIGINAL_FRAMES_PER_S[name]
        print(f"| {name} | {fps:,.0f} | {ref:,} | {fps / ref:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
