"""speechreps against the original code (lisa-vs/learned-speech-representations), side by side, at the
original's own batch shapes and sizes.

    python bench/original.py --original PATH_TO_THE_ORIGINALS_src [--threads 2] [--rounds 5]
                             [--types apc,apc+aux,capc,cpc,frame_ae,frame_cae]

The original's code is not part of speechreps: it is imported at run time from ``--original`` (its ``src``
folder, the one holding ``models/``, ``training/`` and ``config/config.json``); without it this script
says so and exits. Its trainers are used as they are (``APCTrainer``, ``CAPCTrainer``, ``FrameAETrainer``
and ``FrameCAETrainer``: ``build()`` then ``_train_step``); CPC's step sits inside ``CPCTrainer.train``'s
data loop, so for CPC the same calls are made here on the trainer's built modules (encoder, predictor
with its ``num_negatives``, ``clip_grad_norm_`` 5 per module, its Adam, its ``MultiStepLR``).

Sizes: the original's ``config/config.json`` for APC, CAPC and CPC (13-d input, APC / CAPC predicting 1
step ahead, APC's auxiliary loss with 12 anchors of 7 frames predicting 5 ahead, CPC predicting 3 steps
with 31 negatives), where it agrees with ``configs/paper.json`` on the network (GRU 3 x 512; CPC
encoder 512, z 64, c 256) and differs on those fields. speechreps' models are built by
``build_model`` from ``configs/paper.json`` with those fields set to the original's values, so that both
sides do the same task on the same data. The original's config has no frame AE / CAE section; both sides
get ``configs/paper.json``'s (39-d, 4 x 100 hidden, 39-d bottleneck): the original's decoder then has one
hidden layer fewer than ours (its ``num_layers`` counts the output layer) and ends in a ReLU.

Batches (random, the same for both sides): APC / CAPC 81 utterances x 100 frames (the original's batch
size and ``max_seq_len``); CPC 12 speakers x 12 utterances x 100 frames; frame AE / CAE 2,048 frame
pairs. One step = zero_grad, forward, backward, clipping, optimizer step (ours: ``model.loss``, the
trainer's clipping over all parameters at ``grad_clip`` and ``make_optimizer``'s fused Adam; theirs:
torch Adam as their ``build()`` makes it, clipping per module). The two alternate round by round in one
process (the order swapping every round), so that a busy machine slows both alike; each round times a
few steps of each. Reported: each side's median frames/s over the rounds, and the ratio as the median
of the rounds' ratios (ours / original in the same round, which a change of load between rounds moves
less than it moves either side). Threads: each side runs on the count its own
trainer uses: the original on ``--threads`` (torch's default, all cores, is what it ran on), ours on
:func:`speechreps.threads.threads_for` of it (1 for the frame MLPs, else ``--threads``).

FLOPs per step are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one step of each side
(forward and backward matrix products; CPU LSTMs run as oneDNN ``mkldnn_rnn_layer`` ops, counted here
as 2 x frames x weights forward and twice that backward; elementwise work is not counted). The peak is
the best of several 2,048^3 float32 matmuls on the same threads, taken at the start, before every
type and at the end of the same run (on a shared machine the best is the nearest to the idle peak); the table gives each
side's "fraction of measured matmul peak".

``--amp``: ours under the trainer's ``amp`` autocast (bfloat16 where the CPU has it natively, see
``speechreps.train.precision``), the original in float32 as it runs; its peak fraction is then of the float32
peak, and the targets' marks say "ours bfloat16", since the targets compare float32 with float32.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import speechreps  # noqa: F401  (before torch: both sides get the same OpenMP thread settings)
import torch
from torch.utils.flop_counter import FlopCounterMode

from speechreps.config import load_config
from speechreps.models import build_model
from speechreps.models.base import FramePairBatch, PairBatch, UtteranceBatch
from speechreps.threads import threads_for
from speechreps.train.trainer import make_optimizer
from speechreps.train.precision import autocast_plan

HERE = Path(__file__).resolve().parent.parent
TYPES = ("apc", "apc+aux", "capc", "cpc", "frame_ae", "frame_cae")
# issue 18's targets: ours / original at the original's shapes
TARGETS = {"apc": 1.0, "apc+aux": 2.0, "capc": 1.0, "cpc": 2.0, "frame_ae": 1.0, "frame_cae": 1.0}
# the original's batch shapes: (utterances, frames) for the sequence models, frame pairs for the MLPs
UTTERANCES, FRAMES, SPEAKERS, UTTS_PER_SPEAKER, FRAME_PAIRS = 81, 100, 12, 12, 2048


# ---------------------------------------------------------------------------------------------- FLOPs
def _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None, **kwargs) -> int:
    """oneDNN RNN layer forward: one (frames x weights) product per weight matrix, 2 FLOPs a multiply-add."""
    frames = input_shape[0] * input_shape[1]
    return 2 * frames * (math.prod(w_ih_shape) + math.prod(w_hh_shape))


def _rnn_layer_backward_flops(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None, **kwargs) -> int:
    """Its backward: the gradients of the inputs and of the weights, twice the forward."""
    return 2 * _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape)


def flop_counter() -> FlopCounterMode:
    """torch's FLOP counter, which also counts the CPU LSTM's oneDNN layer ops."""
    aten = torch.ops.aten
    return FlopCounterMode(display=False, custom_mapping={
        aten.mkldnn_rnn_layer: _rnn_layer_flops,
        aten.mkldnn_rnn_layer_backward: _rnn_layer_backward_flops,
    })


def step_flops(step) -> int:
    """FLOPs one call of ``step()`` performs (matrix products; forward and backward)."""
    with flop_counter() as counter:
        step()
    return counter.get_total_flops()


def matmul_peak(threads: int, n: int = 2048, reps: int = 5) -> float:
    """FLOP/s of the best of ``reps`` float32 (n x n) @ (n x n) products on ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


# ------------------------------------------------------------------------------------- the original
def import_original(src: str | None):
    """The original's trainer modules from its ``src`` folder, or None (with the reason) when absent."""
    if not src:
        return None, "no --original given"
    root = Path(src)
    if not (root / "training" / "APCTrainer.py").is_file() or not (root / "config" / "config.json").is_file():
        return None, f"{root} does not hold the original's src (training/APCTrainer.py, config/config.json)"
    sys.path.insert(0, str(root))
    try:
        mods = {name: importlib.import_module(f"training.{name}")
                for name in ("APCTrainer", "CAPCTrainer", "CPCTrainer", "FrameAETrainer", "FrameCAETrainer")}
    except ImportError as e:
        return None, f"cannot import the original's trainers from {root}: {e}"
    return SimpleNamespace(**mods, config=json.loads((root / "config" / "config.json").read_text())), None


def frame_config(paper: dict, key: str) -> dict:
    """The original frame trainers' keys, filled from configs/paper.json's section (the original has none)."""
    s = paper[key]
    return {"input_dim": s["input_dim"], "enc_dim": s["hidden_dim"], "num_layers": s["num_layers"],
            "z_dim": s["bottleneck_dim"], "learning_rate": s["learning_rate"]}


class Original:
    """One of the original's trainers, built by its own ``build()``; ``step(batch)`` is one training step."""

    def __init__(self, name: str, orig, paper: dict):
        torch.manual_seed(0)
        random.seed(0)
        cfg = json.loads(json.dumps(orig.config))  # a copy: the switch below must not leak
        self.name = name
        if name in ("apc", "apc+aux"):
            cfg["apc"]["include_aux_loss"] = name == "apc+aux"
            self.trainer = orig.APCTrainer.APCTrainer(cfg, "unused", config_key="apc")
        elif name == "capc":
            self.trainer = orig.CAPCTrainer.CAPCTrainer(cfg, "unused", config_key="capc")
        elif name == "cpc":
            self.trainer = orig.CPCTrainer.CPCTrainer(cfg, "unused", config_key="cpc")
        else:
            cfg[name] = frame_config(paper, name)
            cls = orig.FrameAETrainer.FrameAETrainer if name == "frame_ae" else orig.FrameCAETrainer.FrameCAETrainer
            self.trainer = cls(cfg, "unused", config_key=name)
        self.trainer.device = torch.device("cpu")
        self.trainer.build()
        self.cfg = cfg
        if name == "cpc":
            self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.trainer.optimizer, cfg["cpc"]["lr_milestones"])
            self.trainer.encoder.train()
            self.trainer.predictor.train()
        elif name in ("apc", "apc+aux", "capc"):
            self.trainer.encoder.train()
            self.trainer.predictor.train()

    def step(self, data: dict) -> None:
        t = self.trainer
        if self.name in ("apc", "apc+aux"):
            t._train_step(SimpleNamespace(X=data["x"]))
        elif self.name == "capc":
            t._train_step(SimpleNamespace(X=data["x"], Y=data["y"]))
        elif self.name == "cpc":  # CPCTrainer.train's loop body, on its own modules
            t.optimizer.zero_grad()
            z, c = t.encoder(data["x"])
            loss, _ = t.predictor(z, c, self.cfg["cpc"]["num_negatives"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(t.encoder.parameters(), 5)
            torch.nn.utils.clip_grad_norm_(t.predictor.parameters(), 5)
            t.optimizer.step()
            self.scheduler.step()
        else:  # the frame trainers' _train_step runs one epoch of their loader: a loader of one batch
            t.train_data_loader = [[data["x"], data["y"]]]
            t._train_step()


# ------------------------------------------------------------------------------------------- ours
def our_config(name: str, orig_config: dict, config_path: str):
    """configs/paper.json's section with the original's task fields and batch shape."""
    rep_type = name.removesuffix("+aux")
    cfg = load_config(config_path, rep_type)
    if rep_type in ("apc", "capc", "cpc"):
        o = orig_config[rep_type]
        cfg.input_dim = o["input_dim"]
        cfg.num_pred_steps = o["num_pred_steps"]
        if rep_type == "apc":
            cfg.include_aux_loss = name == "apc+aux"
            for key in ("num_pred_steps_aux", "num_aux_anchors", "num_aux_steps_back", "aux_seq_len", "aux_loss_weight"):
                setattr(cfg, key, o[key])
            cfg.seq_len, cfg.batch_size = 0, UTTERANCES
        elif rep_type == "capc":
            cfg.seq_len, cfg.batch_size = 0, UTTERANCES
        else:
            cfg.num_negatives = o["num_negatives"]
            cfg.n_speakers_per_batch, cfg.n_utterances_per_speaker, cfg.seq_len = SPEAKERS, UTTS_PER_SPEAKER, FRAMES
    else:
        cfg.batch_size = FRAME_PAIRS
    return rep_type, cfg


class Ours:
    """speechreps' model, optimizer and clipping, as its Trainer takes one step."""

    def __init__(self, name: str, orig_config: dict, config_path: str, amp: bool = False):
        torch.manual_seed(0)
        self.rep_type, self.cfg = our_config(name, orig_config, config_path)
        self.model = build_model(self.rep_type, self.cfg).train()
        self.optimizer = make_optimizer(self.model.parameters(), self.cfg.learning_rate)
        # --amp: the trainer's autocast with ``amp: true`` (bfloat16 on a CPU with native bfloat16)
        self.plan = autocast_plan(amp, "bfloat16", torch.device("cpu"))

    def batch(self, data: dict):
        x = data["x"]
        if self.rep_type in ("apc", "cpc"):
            speakers = torch.arange(SPEAKERS).repeat_interleave(UTTS_PER_SPEAKER) if self.rep_type == "cpc" \
                else torch.zeros(len(x), dtype=torch.long)
            return UtteranceBatch(x, torch.full((len(x),), x.shape[1]), speakers)
        if self.rep_type == "capc":
            return PairBatch(x, data["y"], torch.full((len(x),), x.shape[1]))
        return FramePairBatch(x, data["y"])

    def step(self, batch) -> None:
        with torch.autocast("cpu", dtype=self.plan.dtype, enabled=self.plan.enabled):
            loss, metrics = self.model.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        for v in (metrics or {}).values():
            float(v)


# ------------------------------------------------------------------------------------------ timing
def make_data(name: str, input_dim: int, n: int, gen: torch.Generator) -> list[tuple[dict, int]]:
    """``n`` random batches at the original's shape, each with its frame count."""
    out = []
    for _ in range(n):
        if name.startswith("frame"):
            x = torch.randn(FRAME_PAIRS, input_dim, generator=gen)
            y = x if name == "frame_ae" else torch.randn(FRAME_PAIRS, input_dim, generator=gen)
        else:
            B = SPEAKERS * UTTS_PER_SPEAKER if name == "cpc" else UTTERANCES
            x = torch.randn(B, FRAMES, input_dim, generator=gen)
            y = torch.randn(B, FRAMES, input_dim, generator=gen) if name == "capc" else None
        out.append(({"x": x, "y": y}, x.shape[0] if x.dim() == 2 else x.shape[0] * x.shape[1]))
    return out


def compare(name: str, orig, paper: dict, config_path: str, threads: int, rounds: int, round_s: float,
            our_threads: int | None = None, amp: bool = False) -> dict:
    """Median frames/s of the original and of ours over ``rounds`` alternating rounds, and FLOPs per step."""
    theirs = Original(name, orig, paper)
    ours = Ours(name, orig.config, config_path, amp)
    t_theirs = threads
    t_ours = our_threads or threads_for(ours.model, torch.device("cpu"), threads)
    data = make_data(name, ours.cfg.input_dim, 3, torch.Generator().manual_seed(0))
    sides = [("original", t_theirs, theirs.step, lambda d: d), ("ours", t_ours, ours.step, ours.batch)]

    def run(side, k: int, i0: int) -> tuple[float, int]:
        _, n_threads, step, prep = side
        torch.set_num_threads(n_threads)
        frames, t0 = 0, time.perf_counter()
        for i in range(i0, i0 + k):
            d, n = data[i % len(data)]
            step(prep(d))
            frames += n
        return time.perf_counter() - t0, frames

    # warm-up (2 steps each) and the steps per round: about round_s seconds of the slower side
    per_step = []
    for side in sides:
        run(side, 1, 0)
        s, _ = run(side, 1, 1)
        per_step.append(s)
    k = max(1, round(round_s / max(per_step)))
    flops = {}
    for side in sides:
        torch.set_num_threads(side[1])
        flops[side[0]] = step_flops(lambda: side[2](side[3](data[0][0])))
    fps: dict[str, list[float]] = {"original": [], "ours": []}
    for r in range(rounds):
        for side in (sides if r % 2 == 0 else sides[::-1]):
            s, frames = run(side, k, r * k)
            fps[side[0]].append(frames / s)
    torch.set_num_threads(threads)
    frames_per_step = data[0][1]
    return {"type": name, "threads": (t_theirs, t_ours), "steps_per_round": k, "frames_per_step": frames_per_step,
            "original": statistics.median(fps["original"]), "ours": statistics.median(fps["ours"]),
            "ratio": statistics.median(u / o for u, o in zip(fps["ours"], fps["original"])),
            "flops": flops, "rounds": fps}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--original", help="the original's src folder (models/, training/, config/config.json)")
    p.add_argument("--config", default=str(HERE / "configs" / "paper.json"))
    p.add_argument("--types", default=",".join(TYPES), help="comma-separated, of: " + ", ".join(TYPES))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--our-threads", type=int, default=None,
                   help="run ours on this many threads instead of its trainer's choice (threads_for)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--round-seconds", type=float, default=1.5, help="about this long per side per round")
    p.add_argument("--amp", action="store_true",
                   help="ours under the trainer's amp autocast (bfloat16 on a CPU with native bfloat16; the "
                        "original stays float32): a different precision, not the float32 comparison of the targets")
    args = p.parse_args(argv)
    names = args.types.split(",")
    bad = [n for n in names if n not in TYPES]
    if bad:
        p.error(f"unknown types {bad}; choose from {', '.join(TYPES)}")
    orig, why = import_original(args.original)
    if orig is None:
        print(f"bench/original.py: skipped: {why}. Pass --original PATH to the src folder of "
              "lisa-vs/learned-speech-representations (not part of speechreps).", file=sys.stderr)
        return 0
    paper = json.loads(Path(args.config).read_text())
    if args.amp:
        plan = autocast_plan(True, "bfloat16", torch.device("cpu"))
        print(plan.note if plan.enabled else f"--amp: {plan.note}", flush=True)
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, --threads {args.threads}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the start", flush=True)
    thread_counts = sorted({args.threads, args.our_threads or args.threads}
                           | ({1} if any(n.startswith("frame") for n in names) and not args.our_threads else set()))
    peak = {t: matmul_peak(t) for t in thread_counts}
    rows = []
    for name in names:
        for t in thread_counts:  # again before every type: the best of all, the machine being shared
            peak[t] = max(peak[t], matmul_peak(t))
        rows.append(compare(name, orig, paper, args.config, args.threads, args.rounds, args.round_seconds,
                            args.our_threads, args.amp))
        r = rows[-1]
        print(f"  {name}: original {['%.0f' % v for v in r['rounds']['original']]}, "
              f"ours {['%.0f' % v for v in r['rounds']['ours']]} frames/s by round ({r['steps_per_round']} steps each)",
              file=sys.stderr, flush=True)
    for t in thread_counts:  # and at the end
        peak[t] = max(peak[t], matmul_peak(t))
    torch.set_num_threads(args.threads)
    load1 = os.getloadavg()
    print("measured matmul peak (2048^3 float32): " + ", ".join(f"{peak[t] / 1e9:.1f} GFLOP/s on {t} thread(s)"
                                                                 for t in thread_counts))
    print("| type | batch | threads orig / ours | original frames/s | ours frames/s | ratio | target | "
          "GFLOP per step orig / ours | fraction of measured matmul peak orig / ours |")
    print("|---|---|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        name, (to, tu) = r["type"], r["threads"]
        shape = (f"{FRAME_PAIRS:,} frame pairs" if name.startswith("frame") else
                 f"{SPEAKERS} x {UTTS_PER_SPEAKER} x {FRAMES}" if name == "cpc" else f"{UTTERANCES} x {FRAMES}")
        fo, fu = r["flops"]["original"], r["flops"]["ours"]
        steps_o, steps_u = r["original"] / r["frames_per_step"], r["ours"] / r["frames_per_step"]
        frac_o, frac_u = fo * steps_o / peak[to], fu * steps_u / peak[tu]
        ratio = r["ratio"]
        mark = "met" if ratio >= TARGETS[name] else "MISSED"
        if args.amp:  # the targets are float32 against float32
            mark += ", ours bfloat16"
        print(f"| {name} | {shape} | {to} / {tu} | {r['original']:,.0f} | {r['ours']:,.0f} | {ratio:.3f}x | "
              f"{TARGETS[name]:.0f}x ({mark}) | {fo / 1e9:.2f} / {fu / 1e9:.2f} | {frac_o:.1%} / {frac_u:.1%} |")
    print(f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the start, "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
