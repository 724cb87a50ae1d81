"""DDP with 2 gloo processes (torchrun) versus 1 process: the same loss curve for the same global batch and seed.

    python bench/ddp.py --data-paths DATA/data_paths.json [--language synth_en] [--epochs 5] [--work DIR]

A correctness check, not a speed-up (2 CPU cores). Everything goes through the real command line:
``torchrun --standalone --nproc-per-node 2 -m speechreps train TYPE CONFIG CKPT ...`` against
``python -m speechreps train TYPE CONFIG CKPT ...``, one torch thread per process.

- frame AE: per-rank ``batch_size`` 128 x 2 ranks against ``batch_size`` 256 in one process. The
  training archive is trimmed to a multiple of 256 frames (``<language>_ddp``) so that no epoch leaves
  a partial batch out; then both runs make the same steps on the same frames and differ only in float32
  summation order (a mean of two 128-frame means against one 256-frame mean), which Adam amplifies over
  hundreds of steps. Control: a plain single-process loop (same seed, same frame order, same Adam and
  clipping) whose loss is the mean of the two 128-frame halves' means, i.e. the DDP arithmetic without
  DDP. Tolerance: DDP within 1e-5 of the control, and within 2e-3 of the 256-frame single process (the
  first epoch agrees to ~1e-6, then rounding differences grow);
- APC (per rank 8 utterances x 2 vs 16) and CPC (per rank 4 speakers x 4 utterances x 2 vs 8 x 4): the
  global batches hold the same number of items but not the same items (the sampler cuts batches of
  another size), so the curves agree statistically, not step for step: the relative difference of
  the last epoch's loss is printed. APC's length buckets end in partial batches, so 2 x 8 makes fewer
  steps per epoch than 1 x 16 (each bucket of 22 utterances: 8+8+6 per rank against 16+6) and its
  loss falls a little more slowly per epoch.

Prints the curves, the differences and ``uptime`` (the machine is shared; seconds are not comparable).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BASE = {
    "frame_ae": {"learning_rate": 0.001, "batch_size": 256, "input_dim": 39, "hidden_dim": 64, "num_layers": 2,
                 "bottleneck_dim": 16, "validate_every": 0, "checkpoint_interval": 1},
    "apc": {"learning_rate": 0.001, "batch_size": 16, "num_buckets": 10, "input_dim": 39, "hidden_dim": 64,
            "num_layers": 2, "num_pred_steps": 3, "validate_every": 0, "seq_len": 200, "checkpoint_interval": 1},
    "cpc": {"learning_rate": 0.001, "batch_size": 64, "num_buckets": 1, "input_dim": 39, "enc_dim": 64, "enc_layers": 2,
            "z_dim": 16, "c_dim": 64, "num_pred_steps": 2, "num_negatives": 8, "n_speakers_per_batch": 8,
            "n_utterances_per_speaker": 4, "seq_len": 128, "validate_every": 0, "checkpoint_interval": 1},
}
PER_RANK = {"frame_ae": {"batch_size": 128}, "apc": {"batch_size": 8}, "cpc": {"n_speakers_per_batch": 4}}
GLOBAL = 256


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def trimmed_dataset(data_paths: Path, language: str, work: Path) -> Path:
    """``<language>_ddp``: the training archive with its frame total cut to a multiple of 256."""
    from speechreps.data.archive import Archive, format_key, parse_utterance_key
    from speechreps.data.corpus_features import NpzWriter
    from speechreps.data.registry import load_dataset, register_dataset

    ds = load_dataset(data_paths, language)
    target = work / f"{language}_ddp" / "train_utterances.npz"
    with Archive(ds.utterances("train")) as arc:
        total = sum(arc[k].shape[0] for k in arc)
        cut = total % GLOBAL
        keys = list(arc)
        with NpzWriter(target) as w:
            for i, k in enumerate(keys):
                x = arc[k]
                if i == len(keys) - 1 and cut:
                    x = x[: len(x) - cut]
                    p = parse_utterance_key(k)
                    k = format_key(p.utt, p.start, p.start + len(x))
                w.add(k, x)
    out = work / "data_paths.json"
    register_dataset(out, f"{language}_ddp", {"train_data": target, "speaker_rule": "buckeye"})
    return out


def train(rep: str, cfg: dict, ckpt: Path, data_paths: Path, language: str, nproc: int, threads: int = 1
          ) -> tuple[list[float], float]:
    cfg_path = ckpt.with_suffix(".json")
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(json.dumps({rep: cfg}))
    tail = ["-m", "speechreps", "train", rep, str(cfg_path), str(ckpt), "--language", language,
            "--data-paths", str(data_paths), "--no-progress", "--jobs", str(threads)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *tail]
    else:
        cmd = [sys.executable, *tail]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    rows = [json.loads(line) for line in (ckpt / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows], time.perf_counter() - t0


def halves_control(archive: Path, cfg: dict) -> list[float]:
    """Per-epoch loss of one process whose frame-AE loss is the mean of two half-batch means (DDP's arithmetic)."""
    import torch
    import torch.nn.functional as F

    from speechreps.config import config_from_dict
    from speechreps.data.archive import load_archive
    from speechreps.models import build_model

    torch.set_num_threads(1)
    X = torch.from_numpy(np.concatenate(list(load_archive(archive).values())))
    c = config_from_dict(cfg, "frame_ae")
    torch.manual_seed(c.seed)
    m = build_model("frame_ae", c)
    opt = torch.optim.Adam(m.parameters(), lr=c.learning_rate)
    rng = np.random.default_rng(c.seed)  # the FrameBatchSampler's generator: the same permutation per epoch
    half, out = c.batch_size // 2, []
    for _ in range(c.num_epochs):
        order, total, n = rng.permutation(len(X)), 0.0, 0
        for i in range(0, len(X), c.batch_size):
            b = X[torch.from_numpy(order[i:i + c.batch_size])]
            loss = (F.mse_loss(m(b[:half]), b[:half]) + F.mse_loss(m(b[half:]), b[half:])) / 2
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), c.grad_clip)
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        out.append(total / n)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-paths", required=True)
    ap.add_argument("--language", default="synth_en")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--types", default="frame_ae,apc,cpc")
    ap.add_argument("--work", default="/tmp/speechreps-ddp")
    args = ap.parse_args()
    work = Path(args.work)
    dp = trimmed_dataset(Path(args.data_paths), args.language, work)
    results = {}
    for rep in args.types.split(","):
        cfg = {**BASE[rep], "num_epochs": args.epochs}
        one, s1 = train(rep, cfg, work / "ckpt" / f"{rep}_1proc", dp, f"{args.language}_ddp", 1)
        two, s2 = train(rep, {**cfg, **PER_RANK[rep]}, work / "ckpt" / f"{rep}_2proc", dp, f"{args.language}_ddp", 2)
        diff = float(np.max(np.abs(np.array(one) - np.array(two))))
        rel_last = abs(one[-1] - two[-1]) / abs(one[-1])
        if rep == "frame_ae":
            ctl = halves_control(work / f"{args.language}_ddp" / "train_utterances.npz", cfg)
            d = float(np.max(np.abs(np.array(two) - np.array(ctl))))
            results["frame_ae_control_halves"] = {"loss": ctl, "max_abs_diff_to_ddp": d}
            print(f"{rep}: control, 1 process, mean of 2 half-batch means {', '.join(f'{v:.6f}' for v in ctl)}  "
                  f"max |diff| to DDP {d:.2e}")
        results[rep] = {"loss_1proc": one, "loss_2proc_gloo": two, "max_abs_diff": diff, "rel_diff_last": rel_last,
                        "seconds_1proc": round(s1, 1), "seconds_2proc": round(s2, 1), "uptime": uptime()}
        print(f"{rep}: 1 process   loss per epoch {', '.join(f'{v:.6f}' for v in one)}  ({s1:.0f} s)")
        print(f"{rep}: 2 x gloo    loss per epoch {', '.join(f'{v:.6f}' for v in two)}  ({s2:.0f} s)")
        print(f"{rep}: max |diff| {diff:.2e}, last epoch relative diff {rel_last:.2%}   [{uptime()}]", flush=True)
    (work / "ddp.json").write_text(json.dumps(results, indent=1))
    print(f"written {work / 'ddp.json'}")
    if "frame_ae" in results and (results["frame_ae"]["max_abs_diff"] > 2e-3
                                  or results["frame_ae_control_halves"]["max_abs_diff_to_ddp"] > 1e-5):
        print("FAIL: frame AE DDP loss curve differs from the single process (2e-3) or the control (1e-5)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
