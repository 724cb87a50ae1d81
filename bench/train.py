"""Training throughput (unpadded frames per second) of every model at the paper-size configs.

    python bench/train.py [--config configs/paper.json] [--steps 5] [--warmup 2] [--types apc,cpc,...]

Random data shaped like the built-in corpus: utterances of 100-600 frames of 39-d features (words of
40-120 frames for CAPC pairs), batched as the trainer batches them (length-bucketed utterances for APC,
speakers x utterances cropped to ``seq_len`` for CPC, single frames for frame AE / CAE). One step is
forward + backward + gradient clipping + Adam update (ours: the trainer's fused Adam and, for APC /
CAPC, :class:`~speechreps.models.gru.FastGRU`; the original-style step: ``nn.GRU`` and torch's default
Adam). Prints frames/s per type and the ratio to the original code's figures on 2 CPU cores
(docs/MODELS.md) and to the original-style step timed alternately on the same batches. torch threads = CPU
cores unless --threads.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import speechreps  # noqa: F401  (before torch: passive OpenMP waiting, see speechreps/threads.py)
import torch

from speechreps.config import load_config
from speechreps.model_types import MODEL_TYPES
from speechreps.models import build_model
from speechreps.models.base import FramePairBatch, PairBatch, UtteranceBatch
from speechreps.train.trainer import make_optimizer

# The original implementation's training throughput on 2 CPU cores, at its own sizes (docs/MODELS.md).
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
        else:  # "frame" (y = x) or "frame_pair"
            x = torch.randn(cfg.batch_size, D, generator=gen)
            y = x if kind == "frame" else torch.randn(cfg.batch_size, D, generator=gen)
            out.append((FramePairBatch(x, y), cfg.batch_size))
    return out


class OriginalStyle(torch.nn.Module):
    """What the original code computes per training step, written afresh for a same-machine baseline.

    Same sizes as ours; the original's way of computing: APC predicts from every frame with an unmasked
    L1 and runs its auxiliary windows one anchor at a time (batch x aux_seq_len each, through its own GRU
    stack); CPC gathers a fresh (speakers, utterances, negatives, frames) block of negatives for every
    step k and scores it elementwise, with one Linear per step; frame AE/CAE end the decoder in a ReLU.
    Gradients are clipped per sub-module as the original did.
    """

    def __init__(self, rep_type: str, cfg):
        super().__init__()
        nn = torch.nn
        self.rep_type, self.cfg = rep_type, cfg
        if rep_type in ("apc", "capc"):
            H = cfg.hidden_dim
            self.grus = nn.ModuleList([nn.GRU(cfg.input_dim if i == 0 else H, H, batch_first=True) for i in range(cfg.num_layers)])
            self.pred = nn.Linear(H, cfg.input_dim)
            if rep_type == "apc" and cfg.include_aux_loss:
                self.aux_grus = nn.ModuleList([nn.GRU(cfg.input_dim if i == 0 else H, H, batch_first=True) for i in range(cfg.num_layers)])
                self.aux_pred = nn.Linear(H, cfg.input_dim)
        elif rep_type == "cpc":
            blocks = []
            for i in range(cfg.enc_layers):
                blocks += [nn.Linear(cfg.input_dim if i == 0 else cfg.enc_dim, cfg.enc_dim), nn.LayerNorm(cfg.enc_dim), nn.ReLU()]
                if i == cfg.enc_layers // 2:
                    blocks.append(nn.Dropout(cfg.dropout))
            self.enc = nn.Sequential(*blocks, nn.Linear(cfg.enc_dim, cfg.z_dim))
            self.lstm = nn.LSTM(cfg.z_dim, cfg.c_dim, batch_first=True)
            self.W = nn.ModuleList([nn.Linear(cfg.c_dim, cfg.z_dim) for _ in range(cfg.num_pred_steps)])
        else:
            dims = [cfg.input_dim] + [cfg.hidden_dim] * cfg.num_layers
            layers = []
            for a, b in zip(dims[:-1], dims[1:]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            layers += [nn.Linear(cfg.hidden_dim, cfg.bottleneck_dim)]
            dims = [cfg.bottleneck_dim] + [cfg.hidden_dim] * cfg.num_layers + [cfg.input_dim]
            for a, b in zip(dims[:-1], dims[1:]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            self.mlp = nn.Sequential(*layers)

    @staticmethod
    def _apc(grus, pred, x, y, n):
        h = x
        for g in grus:
            h, _ = g(h)
        return (pred(h)[:, : x.shape[1] - n] - y[:, n:]).abs().mean()

    def loss(self, batch):
        cfg = self.cfg
        if self.rep_type == "apc":
            x = batch.feats
            loss = self._apc(self.grus, self.pred, x, x, cfg.num_pred_steps)
            if cfg.include_aux_loss:
                back, L = cfg.num_aux_steps_back, cfg.aux_seq_len
                anchors = torch.randperm(x.shape[1] - back)[: cfg.num_aux_anchors] + back
                aux = 0
                for a in anchors.tolist():
                    w = x[:, a - back : a - back + L]
                    aux = aux + self._apc(self.aux_grus, self.aux_pred, w, w, cfg.num_pred_steps_aux)
                loss = loss + cfg.aux_loss_weight * aux / cfg.num_aux_anchors
            return loss
        if self.rep_type == "capc":
            return self._apc(self.grus, self.pred, batch.x, batch.y, cfg.num_pred_steps)
        if self.rep_type == "cpc":
            S, U, N, K = cfg.n_speakers_per_batch, cfg.n_utterances_per_speaker, cfg.num_negatives, cfg.num_pred_steps
            z = self.enc(batch.feats)
            c, _ = self.lstm(z)
            B, T, Z = z.shape
            L = T - K
            losses = []
            for k in range(K):
                zk = z[:, k + 1 : L + k + 1]
                wc = self.W[k](c[:, :L]).view(S, U, L, Z)
                bi = torch.randint(0, U, (1, U, N, 1))
                si = (torch.randint(0, L, (S, U, N, L)) + torch.arange(L)) % L
                neg = zk.reshape(S, U, L, Z)[torch.arange(S).view(-1, 1, 1, 1), bi, si]
                allz = torch.cat([zk.reshape(S, U, 1, L, Z), neg], 2)
                f = (allz * wc.unsqueeze(2) / math.sqrt(Z)).sum(-1).view(B, N + 1, L)
                losses.append(torch.nn.functional.cross_entropy(f, torch.zeros(B, L, dtype=torch.long)))
            return torch.stack(losses).mean()
        return torch.nn.functional.mse_loss(self.mlp(batch.x), batch.y)

    def clip_groups(self):
        return [list(m.parameters()) for m in self.children()]


class _Runner:
    """One model + Adam, with the training step it is timed on."""

    def __init__(self, rep_type: str, cfg, original_style: bool):
        torch.manual_seed(0)
        model = build_model(rep_type, cfg)
        self.kind = MODEL_TYPES[rep_type].batch_kind
        self.original_style = original_style
        self.model = (OriginalStyle(rep_type, cfg) if original_style else model).train()
        # ours: the trainer's optimizer (fused Adam); the original's: torch's default Adam
        self.opt = (torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate) if original_style
                    else make_optimizer(self.model.parameters(), cfg.learning_rate))
        self.cfg = cfg
        self.seconds = 0.0

    def step(self, batch, timed: bool = True) -> None:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        if self.original_style:
            loss = self.model.loss(batch)
            loss.backward()
            for group in self.model.clip_groups():
                torch.nn.utils.clip_grad_norm_(group, 1.0)
        else:
            loss, _ = self.model.loss(batch)
            loss.backward()
            if self.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        if timed:
            self.seconds += time.perf_counter() - t0


def bench(rep_type: str, cfg, steps: int, warmup: int, min_seconds: float, baseline: bool = True) -> tuple[float, float | None]:
    """Frames/s of ours and (if ``baseline``) of the original-style computation.

    The two alternate step by step on the same batches, so that a busy machine slows both alike.
    """
    runners = [_Runner(rep_type, cfg, False)] + ([_Runner(rep_type, cfg, True)] if baseline else [])
    batches = make_batches(runners[0].kind, cfg, steps + warmup, torch.Generator().manual_seed(0))
    for batch, _ in batches[:warmup]:
        for r in runners:
            r.step(batch, timed=False)
    frames, i = 0, 0
    timed = batches[warmup:]
    while True:  # at least `steps` steps and `min_seconds` of ours
        batch, n = timed[i % len(timed)]
        for r in runners:
            r.step(batch)
        frames += n
        i += 1
        if i >= steps and runners[0].seconds >= min_seconds:
            break
    fps = [frames / r.seconds for r in runners]
    return fps[0], (fps[1] if baseline else None)


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(here / "configs" / "paper.json"))
    p.add_argument("--types", default="apc+aux,apc,capc,cpc,frame_cae", help="comma-separated; apc+aux = apc with the auxiliary loss")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--no-baseline", action="store_true", help="skip the same-machine original-style baseline")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, config {args.config}", file=sys.stderr)
    print("| type | frames/s | original, reported (2 cores) | ratio | original-style, this machine | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.types.split(","):
        rep_type = name.removesuffix("+aux")
        cfg = load_config(args.config, rep_type)
        if rep_type == "apc":
            cfg.include_aux_loss = name.endswith("+aux")
        fps, b = bench(rep_type, cfg, args.steps, args.warmup, args.min_seconds, baseline=not args.no_baseline)
        ref = ORIGINAL_FRAMES_PER_S[name]
        base = "- | -" if b is None else f"{b:,.0f} | {fps / b:.2f}x"
        print(f"| {name} | {fps:,.0f} | {ref:,} | {fps / ref:.2f}x | {base} |", flush=True)


if __name__ == "__main__":
    main()
