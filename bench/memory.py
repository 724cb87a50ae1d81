"""Peak memory of ``prepare`` and of one training epoch, on the built-in corpus and on one 10x its size.

    python bench/memory.py [--work /tmp/speechreps-memory] [--scale 10] [--skip-prepare] [--skip-train]

Every measurement runs in a fresh child process (``python bench/memory.py _measure ...``) that reports:

- ``peak_rss_mb``: the child's peak resident set (``VmHWM``). It counts the pages of memory-mapped
  feature files the epoch has touched, which the kernel can drop at any time;
- ``peak_anon_mb``: the peak of its anonymous resident memory (``RssAnon``, sampled every 20 ms):
  the memory the process really needs;
- ``children_peak_rss_mb``: the largest peak RSS of its worker processes (prepare's feature pool).

Corpora: the built-in English corpus (``speechreps synth --language en``, reused when already built
under ``--work``); the 10x corpus is that corpus's audio hard-linked ``--scale`` times under new
utterance ids (``<spk>_r<k><rest>``) with the alignments repeated. Training: the prepared training
archive, and a ``--scale`` x version made by tiling it with small perturbations (written member by
member), trained for one epoch of APC (utterance batches), CPC (speaker batches) and the frame AE
(on a packed copy), each small (the model size does not matter for data memory), ``validate_every`` 0.
For APC the epoch is also run with the archive read wholly into memory (the behaviour before
memory mapping) for comparison. Prints a table and ``uptime`` (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()

SMALL = {
    "apc": {"learning_rate": 0.001, "num_epochs": 1, "batch_size": 16, "num_buckets": 10, "input_dim": 39,
            "hidden_dim": 32, "num_layers": 1, "num_pred_steps": 3, "validate_every": 0, "seq_len": 200},
    "cpc": {"learning_rate": 0.001, "num_epochs": 1, "batch_size": 64, "num_buckets": 1, "input_dim": 39,
            "enc_dim": 32, "enc_layers": 1, "z_dim": 16, "c_dim": 32, "num_pred_steps": 2, "num_negatives": 8,
            "n_speakers_per_batch": 4, "n_utterances_per_speaker": 4, "seq_len": 128, "validate_every": 0},
    "frame_ae": {"learning_rate": 0.001, "num_epochs": 1, "batch_size": 256, "input_dim": 39, "hidden_dim": 32,
                 "num_layers": 2, "bottleneck_dim": 16, "validate_every": 0},
}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ------------------------------------------------------------------------------------------------
# the measuring child


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])  # kB
    return 0


def measure(kind: str, args: list[str]) -> dict:
    peak = {"anon": _status("RssAnon")}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak["anon"] = max(peak["anon"], _status("RssAnon"))
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    if kind in ("prepare", "prepare-old"):
        from speechreps.data.prepare import prepare_corpus

        if kind == "prepare-old":  # prepare.py as of git revision REV (all features in memory)
            import types

            rev = args.pop()
            src = subprocess.run(["git", "-C", str(HERE.parent), "show", f"{rev}:src/speechreps/data/prepare.py"],
                                 capture_output=True, text=True, check=True).stdout
            mod = types.ModuleType("speechreps.data.prepare_old")
            mod.__package__ = "speechreps.data"
            sys.modules[mod.__name__] = mod
            exec(compile(src, "prepare_old.py", "exec"), mod.__dict__)
            prepare_corpus = mod.prepare_corpus
        corpus, out, name = args
        summary = prepare_corpus(corpus, out, name, jobs=2, force=True, progress=False)
        what = {"utterances": sum(s["utterances"] for s in summary["splits"].values()),
                "frames": sum(s["frames"] for s in summary["splits"].values())}
    else:
        rep, config, ckpt_dir, data_paths, language, mode = args
        import speechreps.data.packed as P
        from speechreps.pipeline import RunOptions, train

        if mode == "in-memory":
            from speechreps.data.archive import load_archive

            P.open_features = load_archive  # the behaviour before memory mapping
            P.open_packed = lambda path: None
        res = train(RunOptions(rep, Path(config), Path(ckpt_dir), language=language, data_paths=Path(data_paths),
                               progress=False, jobs=1), log=lambda s: None)
        what = {"frames": res.frames, "loss": res.history[-1]["loss"]}
    stop.set()
    t.join()
    peak["anon"] = max(peak["anon"], _status("RssAnon"))
    return {"peak_rss_mb": round(_status("VmHWM") / 1024, 1), "peak_anon_mb": round(peak["anon"] / 1024, 1),
            "children_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "seconds": round(time.perf_counter() - t0, 1), **what}


def run_child(kind: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, str(HERE), "_measure", kind, *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# corpora


def builtin_corpus(work: Path) -> Path:
    corpus = work / "synth_en"
    if not (corpus / "corpus.json").is_file():
        subprocess.run([sys.executable, "-m", "speechreps", "synth", "--language", "en", "--out", str(corpus)], check=True)
    return corpus


def scaled_corpus(src: Path, dst: Path, scale: int) -> Path:
    """``scale`` copies of every utterance (hard links) under new ids ``<spk>_r<k><rest>``; alignments repeated."""
    if (dst / "words.wrd").is_file():
        return dst
    (dst / "audio").mkdir(parents=True, exist_ok=True)

    def new_id(utt: str, k: int) -> str:
        spk, rest = utt.split("_", 1)
        return f"{spk}_r{k}{rest}"

    for f in sorted((src / "audio").iterdir()):
        for k in range(scale):
            target = dst / "audio" / (new_id(f.stem, k) + f.suffix)
            if not target.exists():
                try:
                    os.link(f, target)
                except OSError:
                    target.write_bytes(f.read_bytes())
    lines = []
    for line in (src / "words.wrd").read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            lines += [" ".join([new_id(parts[0], k), *parts[1:]]) for k in range(scale)]
    if (src / "speakers").is_dir():
        import shutil

        shutil.copytree(src / "speakers", dst / "speakers", dirs_exist_ok=True)
    (dst / "words.wrd").write_text("\n".join(lines) + "\n")
    return dst


def tiled_dataset(data_paths: Path, name: str, out_dir: Path, scale: int) -> Path:
    """A dataset ``<name>_x<scale>`` whose training archive is ``scale`` perturbed copies of every utterance."""
    from speechreps.data.archive import Archive, parse_utterance_key
    from speechreps.data.prepare import NpzWriter
    from speechreps.data.registry import load_dataset, register_dataset

    ds = load_dataset(data_paths, name)
    big = f"{name}_x{scale}"
    target = out_dir / big / "train_utterances.npz"
    if not target.is_file():
        rng = np.random.default_rng(0)
        with Archive(ds.utterances("train")) as arc, NpzWriter(target) as w:
            for k in range(scale):
                for key in arc:
                    x = arc[key]
                    p = parse_utterance_key(key)
                    spk, rest = p.utt.split("_", 1)
                    w.add(f"{spk}_r{k}{rest}_{p.start:06d}-{p.end:06d}",
                          x + np.float32(0.01) * rng.standard_normal(x.shape, dtype=np.float32))
    register_dataset(out_dir / "data_paths.json", big, {"train_data": target, "speaker_rule": "buckeye"})
    return out_dir / "data_paths.json"


# ------------------------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "_measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3:])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/speechreps-memory")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--skip-prepare", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--types", default="apc,cpc,frame_ae")
    ap.add_argument("--old-prepare", metavar="REV", default=None,
                    help="also measure prepare.py as of git revision REV (9f88dba: before streaming)")
    ap.add_argument("--only-old", action="store_true", help="with --old-prepare: skip the current prepare")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = builtin_corpus(work)
    rows = []

    def report(label: str, r: dict) -> None:
        rows.append((label, r))
        print(f"{label:<40} peak RSS {r['peak_rss_mb']:>7} MB  peak anon {r['peak_anon_mb']:>7} MB  "
              f"workers {r['children_peak_rss_mb']:>6} MB  {r['seconds']:>6} s  "
              + "  ".join(f"{k}={v}" for k, v in r.items() if k in ("utterances", "frames", "loss"))
              + f"   [{uptime()}]", flush=True)

    data = work / "data"
    if not args.skip_prepare:
        big_corpus = scaled_corpus(corpus, work / f"synth_en_x{args.scale}_corpus", args.scale)
        if not args.only_old:
            report("prepare built-in (1x)", run_child("prepare", corpus, data, "synth_en"))
            report(f"prepare {args.scale}x", run_child("prepare", big_corpus, work / "data_big", f"synth_en_x{args.scale}"))
        if args.old_prepare:
            report(f"prepare 1x, {args.old_prepare} (in memory)",
                   run_child("prepare-old", corpus, work / "data_old", "synth_en", args.old_prepare))
            report(f"prepare {args.scale}x, {args.old_prepare} (in memory)",
                   run_child("prepare-old", big_corpus, work / "data_big_old", f"synth_en_x{args.scale}", args.old_prepare))
    if not args.skip_train:
        if not (data / "data_paths.json").is_file():
            run_child("prepare", corpus, data, "synth_en")
        dp = tiled_dataset(data / "data_paths.json", "synth_en", data, args.scale)
        cfg = work / "small.json"
        cfg.write_text(json.dumps(SMALL))
        from speechreps.data.packed import pack_archive
        from speechreps.data.registry import load_dataset

        for name in ("synth_en", f"synth_en_x{args.scale}"):
            pack_archive(load_dataset(dp, name).utterances("train"))
        for rep in args.types.split(","):
            for name in ("synth_en", f"synth_en_x{args.scale}"):
                modes = ["mapped", "in-memory"] if rep == "apc" else ["mapped"]
                for mode in modes:
                    r = run_child("train", rep, cfg, work / "ckpt" / f"{rep}_{name}_{mode}", dp, name, mode)
                    report(f"train 1 epoch {rep} {name} ({mode})", r)
    (work / ("memory_old_prepare.json" if args.only_old else "memory.json")).write_text(json.dumps([{"what": l, **r} for l, r in rows], indent=1))
    print(f"written {work / 'memory.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
