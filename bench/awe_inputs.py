"""Why does a CAE-RNN gain nothing from learned input features? Variants of the AWE model and its inputs, one table.

    python bench/awe_inputs.py --run-dir runs/main --data-paths data/data_paths.json \
        --features mfcc,cpc --datasets synth_en --variants base,no_norm,global_norm [--out runs/awe_inputs]

For each (input features, dataset, variant) an AWE model is trained with ``CAE_RNN_BASE`` (the
CAE-RNN the demo config had) plus the variant's overrides, through the real
``train_awe`` / ``evaluate_awe``; then every saved epoch is scored on the validation and test words,
so that one run answers both "what did the validation-picked checkpoint give" and "what would the
best epoch have given" (early stopping). Input features: ``mfcc`` (the dataset's archives) or a
frame model of the main job's run folder (``RUN/models/s<seed>/<trained_on>/<type>``), whose
features are encoded once and cached as archives under ``OUT/cache``. ``--trained-on`` picks the
frame model's training dataset (default: the dataset itself; another one gives a cross-lingual row).

Variants (``VARIANTS`` below): config overrides, input transforms fitted on the training utterances
(``global_norm``: one scale for all dimensions instead of one per dimension; ``pca39``: the 39 main
principal components, as many dimensions as MFCCs), and training-pair caps per word type.

Each result is kept in ``OUT/rows/<features>-<trained_on>-<dataset>-<variant>-s<seed>.json`` and
reused, so several invocations can run side by side and ``--table`` prints what is there.
Run it with ``nice -n 19`` on a shared machine: seconds are then upper bounds; ``uptime`` is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

#: The CAE-RNN every variant starts from: the packaged demo config's ``awe`` section before the
#: ContrastiveRNN replaced it (whatever ``--config`` says besides is overridden by these keys).
CAE_RNN_BASE = {"model": "cae_rnn", "learning_rate": 0.005, "lr_milestones": [7], "num_epochs": 12, "batch_size": 32,
                "num_buckets": 3, "embedding_dim": 130, "enc_hidden_dim": 64, "enc_num_layers": 2, "dec_hidden_dim": 64,
                "dec_num_layers": 1, "bidirectional": False, "frame_stride": 3, "stride_mode": "mean",
                "normalize_inputs": True, "ae_num_epochs": 0, "downsample_n": 10, "downsample_method": "fourier"}

#: name -> (overrides of CAE_RNN_BASE, input transform or None, pairs per word type or None)
VARIANTS: dict[str, tuple[dict, str | None, int | None]] = {
    "base": ({}, None, None),
    "no_norm": ({"normalize_inputs": False}, None, None),
    "global_norm": ({"normalize_inputs": False}, "global", None),
    "pca39": ({"normalize_inputs": True}, "pca39", None),
    "enc256": ({"enc_hidden_dim": 256, "dec_hidden_dim": 256}, None, None),
    "stride1": ({"frame_stride": 1}, None, None),
    "ppw10": ({}, None, 10),
    "ppw30": ({}, None, 30),
    "bi": ({"bidirectional": True}, None, None),
    "contrastive": ({"model": "contrastive_rnn", "learning_rate": 0.001, "lr_milestones": []}, None, None),
    "contrastive_bi": ({"model": "contrastive_rnn", "bidirectional": True, "learning_rate": 0.001, "lr_milestones": []},
                       None, None),
    "contrastive_bi_global": ({"model": "contrastive_rnn", "bidirectional": True, "learning_rate": 0.001,
                               "lr_milestones": [], "normalize_inputs": False}, "global", None),
    "contrastive_bi_pca39": ({"model": "contrastive_rnn", "bidirectional": True, "learning_rate": 0.001,
                              "lr_milestones": []}, "pca39", None),
}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------------
# inputs


def cached_input(features: str, ds, run_dir: Path, trained_on: str, seed: int, cache: Path):
    """``features`` of ``ds`` as archives (encoded by the frame model once, then read from ``cache``)."""
    from speechreps.awe.data import ArchiveInput, MFCCInput, ModelInput
    from speechreps.data.archive import save_archive

    if features == "mfcc":
        return MFCCInput()
    folder = cache / f"{features}-{trained_on}" / ds.name
    paths = {s: folder / f"{s}_words.npz" for s in ("train", "validation", "test")}
    utts = folder / "train_utterances.npz"
    if not all(p.is_file() for p in [*paths.values(), utts]):
        t0 = time.perf_counter()
        model = ModelInput(run_dir / "models" / f"s{seed}" / trained_on / features)
        for split, p in paths.items():
            save_archive(p, dict(model.words(ds, split)))
        save_archive(utts, dict(model.train_utterances(ds)))
        print(f"encoded {features} ({trained_on}) features of {ds.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return ArchiveInput(features, paths, utts)


class TransformedInput:
    """Another input's features through a linear map fitted on its training utterances."""

    def __init__(self, base, ds, kind: str):
        self.base, self.name = base, f"{base.name}+{kind}"
        frames = np.concatenate([np.asarray(v, np.float64) for v in base.train_utterances(ds).values()])
        self.mean = frames.mean(0)
        centred = frames - self.mean
        if kind == "global":  # one scale for every dimension (mean variance 1): their relative scale stays
            self.proj = np.eye(frames.shape[1]) / np.sqrt((centred ** 2).mean())
        elif kind.startswith("pca"):
            k = int(kind[3:])
            _, _, vt = np.linalg.svd(centred[:: max(1, len(centred) // 20000)], full_matrices=False)
            self.proj = vt[:k].T
        else:
            raise ValueError(kind)
        self._cache: dict = {}

    def _map(self, arrays):
        return {k: ((np.asarray(v, np.float64) - self.mean) @ self.proj).astype(np.float32) for k, v in arrays.items()}

    def describe(self) -> str:
        return self.name

    def train_utterances(self, ds):
        if "utts" not in self._cache:
            self._cache["utts"] = self._map(self.base.train_utterances(ds))
        return self._cache["utts"]

    def words(self, ds, split):
        if split not in self._cache:
            self._cache[split] = self._map(self.base.words(ds, split))
        return self._cache[split]


def capped_pairs(ds, per_type: int, seed: int, out: Path) -> Path:
    """The dataset's term pairs with at most ``per_type`` pairs per word type (drawn with ``seed``)."""
    lines = Path(ds.train_pairs).read_text().splitlines()
    by_type: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        if line.strip():
            by_type[line.split()[0]].append(line)
    rng = random.Random(seed)
    kept = [x for t in sorted(by_type) for x in (rng.sample(by_type[t], per_type) if len(by_type[t]) > per_type else by_type[t])]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(kept) + "\n")
    return out


# ---------------------------------------------------------------------------------------------
# one job


def run_one(args, features: str, dataset: str, variant: str, cfg) -> dict:
    from speechreps.awe.config import awe_config_from_dict, awe_config_to_dict
    from speechreps.awe.embed import downsample_embeddings, evaluate_embeddings, model_embeddings
    from speechreps.awe.train import load_awe, train_awe
    from speechreps.data.registry import load_dataset
    from speechreps.train import checkpoint as ckpt

    trained_on = "-" if features == "mfcc" else (args.trained_on or dataset)
    key = f"{features}-{trained_on}-{dataset}-{variant}-s{args.seed}"
    row_path = args.out / "rows" / f"{key}.json"
    if row_path.is_file() and not args.force:
        return json.loads(row_path.read_text())
    overrides, transform, per_type = VARIANTS[variant]
    base = {k: v for k, v in awe_config_to_dict(cfg).items() if k not in ("model", "temperature", "mask_same_label")}
    cfg = awe_config_from_dict({**base, **CAE_RNN_BASE, **overrides, "seed": args.seed,
                                **({"num_epochs": args.epochs} if args.epochs else {})}, source=variant)
    ds = load_dataset(args.data_paths, dataset)
    inputs = cached_input(features, ds, args.run_dir, trained_on, args.frame_seed, args.out / "cache")
    if transform:
        inputs = TransformedInput(inputs, ds, transform)
    pairs = capped_pairs(ds, per_type, args.seed, args.out / "pairs" / f"{dataset}-ppw{per_type}.txt") if per_type else None
    ck = args.out / "models" / key
    if ck.exists():
        import shutil

        shutil.rmtree(ck)
    res = train_awe(cfg, ds, inputs, ck, pairs_file=pairs, device="cpu", log=lambda m: None, progress=False, tensorboard=False)
    splits = {s: (inputs.words(ds, s), ds.speaker_rule(ds.word_tokens(s))) for s in ("validation", "test")}
    row = {"features": features, "trained_on": trained_on, "dataset": dataset, "variant": variant, "seed": args.seed,
           "model": cfg.model, "n_pairs": res.n_pairs, "train_s": res.seconds, "best_epoch": res.best_epoch}
    for s, (words, rule) in splits.items():
        row[f"{s}_down"] = evaluate_embeddings(downsample_embeddings(words, cfg.downsample_n, cfg.downsample_method), rule).ap
    per_epoch = []
    for epoch in ckpt.saved_epochs(ck):
        model, _ = load_awe(ck, epoch=epoch)
        per_epoch.append({s: evaluate_embeddings(model_embeddings(model, w), r).ap for s, (w, r) in splits.items()})
    row["per_epoch"] = per_epoch
    best = per_epoch[(res.best_epoch or len(per_epoch)) - 1]
    row.update({"val_best": best["validation"], "test_best": best["test"], "test_last": per_epoch[-1]["test"],
                "test_max": max(e["test"] for e in per_epoch),
                "test_max_epoch": 1 + int(np.argmax([e["test"] for e in per_epoch])), "uptime": uptime()})
    for other in [d for d in (args.apply_to or "").split(",") if d and d != dataset]:  # the model as it is
        ods = load_dataset(args.data_paths, other)
        oin = cached_input(features, ods, args.run_dir, trained_on, args.frame_seed, args.out / "cache")
        if transform:  # the map fitted on the training dataset, applied to the other one
            import copy

            base, oin = oin, copy.copy(inputs)
            oin.base, oin._cache = base, {}
        model, _ = load_awe(ck)
        words, rule = oin.words(ods, "test"), ods.speaker_rule(ods.word_tokens("test"))
        row.setdefault("apply", {})[other] = {
            "test_down": evaluate_embeddings(downsample_embeddings(words, cfg.downsample_n, cfg.downsample_method), rule).ap,
            "test_awe": evaluate_embeddings(model_embeddings(model, words), rule).ap}
    row_path.parent.mkdir(parents=True, exist_ok=True)
    row_path.write_text(json.dumps(row, indent=1))
    for f in ck.glob("epoch_*.pt"):  # best.pt stays, for later use
        f.unlink()
    return row


def diagnose(args, features: str, dataset: str, cfg) -> dict:
    """No training: the scale of the input dimensions, and the AP of randomly initialised encoders on them."""
    import torch

    from speechreps.awe.config import awe_config_from_dict
    from speechreps.awe.embed import evaluate_embeddings, model_embeddings
    from speechreps.awe.model import CAERNN
    from speechreps.data.registry import load_dataset

    ds = load_dataset(args.data_paths, dataset)
    trained_on = "-" if features == "mfcc" else (args.trained_on or dataset)
    inputs = cached_input(features, ds, args.run_dir, trained_on, args.frame_seed, args.out / "cache")
    frames = np.concatenate([np.asarray(v, np.float64) for v in inputs.train_utterances(ds).values()])
    std = frames.std(0)
    eig = np.linalg.eigvalsh(np.cov(frames[:: max(1, len(frames) // 20000)].T))[::-1]
    out = {"features": features, "dataset": dataset, "dim": frames.shape[1],
           "std min/median/max": f"{std.min():.3g}/{np.median(std):.3g}/{std.max():.3g}",
           "participation ratio": round(float(eig.sum() ** 2 / (eig ** 2).sum()), 1),
           "var in top 10 PCs": round(float(eig[:10].sum() / eig.sum()), 3)}
    words = inputs.words(ds, "test")
    rule = ds.speaker_rule(ds.word_tokens("test"))
    mean, sd = frames.mean(0), np.maximum(std, 1e-5)
    for name, extra in [("random uni", {}), ("random bi", {"bidirectional": True})]:
        c = awe_config_from_dict({**CAE_RNN_BASE, **extra, "input_dim": frames.shape[1]})
        torch.manual_seed(args.seed)
        model = CAERNN(c)
        if c.normalize_inputs:
            model.set_normalization(mean, sd)
        out[name] = round(evaluate_embeddings(model_embeddings(model, words), rule).ap, 3)
    return out


def table(rows: list[dict]) -> str:
    lines = ["| features | trained on | dataset | variant | val down | val AWE | test down | test AWE (val-picked, epoch) "
             "| test AWE last | test AWE best epoch | train s |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['features']} | {r['trained_on']} | {r['dataset']} | {r['variant']} | {r['validation_down']:.3f} | "
                     f"{r['val_best']:.3f} | {r['test_down']:.3f} | {r['test_best']:.3f} ({r['best_epoch']}) | "
                     f"{r['test_last']:.3f} | {r['test_max']:.3f} ({r['test_max_epoch']}) | {r['train_s']:.0f} |")
        for other, a in r.get("apply", {}).items():
            lines.append(f"| {r['features']} | {r['trained_on']} | {r['dataset']} -> {other} | {r['variant']} | - | - | "
                         f"{a['test_down']:.3f} | {a['test_awe']:.3f} | - | - | - |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", type=Path, default=Path("runs/main"))
    p.add_argument("--data-paths", type=Path, default=Path("data/data_paths.json"))
    p.add_argument("--config", default=None, help='config with an "awe" section (default: the packaged demo.json)')
    p.add_argument("--features", default="mfcc,cpc")
    p.add_argument("--datasets", default="synth_en")
    p.add_argument("--trained-on", default=None, help="the frame models' training dataset (default: each dataset)")
    p.add_argument("--variants", default="base")
    p.add_argument("--seed", type=int, default=0, help="the AWE model's seed")
    p.add_argument("--frame-seed", type=int, default=0, help="which seed's frame models (RUN/models/s<N>)")
    p.add_argument("--epochs", type=int, default=0, help="override num_epochs (0: the config's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/awe_inputs"))
    p.add_argument("--force", action="store_true")
    p.add_argument("--apply-to", default="", help="score each trained model as it is on these datasets' test words too")
    p.add_argument("--table", action="store_true", help="only print the table of the rows already in OUT")
    p.add_argument("--diagnose", action="store_true", help="no training: input scales and random-init encoder APs")
    args = p.parse_args(argv)
    if args.table:
        rows = [json.loads(f.read_text()) for f in sorted((args.out / "rows").glob("*.json"))]
        print(table(rows))
        return 0
    import torch

    from speechreps.awe.config import load_awe_config

    torch.set_num_threads(args.threads)
    cfg = load_awe_config(args.config)
    print(f"start: {uptime()}", flush=True)
    if args.diagnose:
        for dataset in args.datasets.split(","):
            for features in args.features.split(","):
                print(json.dumps(diagnose(args, features, dataset, cfg)), flush=True)
        return 0
    rows = []
    for dataset in args.datasets.split(","):
        for features in args.features.split(","):
            for variant in args.variants.split(","):
                if variant not in VARIANTS:
                    raise SystemExit(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
                t0 = time.perf_counter()
                rows.append(run_one(args, features, dataset, variant, cfg))
                print(f"{features} {dataset} {variant}: test {rows[-1]['test_best']:.3f} "
                      f"(down {rows[-1]['test_down']:.3f}) in {time.perf_counter() - t0:.0f} s; {uptime()}", flush=True)
    print(table(rows))
    print(f"end: {uptime()}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
