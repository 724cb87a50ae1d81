"""Does the same seed give the same model in a new process? Train a model of the demo config's size
several times on a toy dataset, each in a fresh process, and compare the final weights bit for bit.

    python bench/determinism.py [--model frame_ae|apc|cpc] [--runs 4] [--threads 2] [--env MKL_CBWR=COMPATIBLE]

Prints, per run, a hash of the final weights and the largest difference from the first run. Fresh
processes matter: buffers land at other addresses in each, and some math libraries pick their code
path (and so their rounding) by the alignment of the data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, hashlib
import numpy as np, torch
sys.path.insert(0, sys.argv[3])
from test_datasets import make_toy_dataset
from speechreps.config import config_from_dict
from speechreps.data.datasets import make_training_set
from speechreps.data.registry import load_dataset
from speechreps.models import build_model
from speechreps.train.trainer import Trainer, seed_everything
torch.set_num_threads(int(sys.argv[2]))
root = sys.argv[1]
ds = load_dataset(root + "/data_paths.json", "toy")
rep = sys.argv[5]
section = json.loads(sys.argv[6])
cfg = config_from_dict({**section, "validate_every": 0}, rep)
seed_everything(cfg.seed)
model = build_model(rep, cfg)
ts = make_training_set(MODEL_TYPES[rep].batch_kind, cfg, ds)
import tempfile
from speechreps.model_types import MODEL_TYPES
Trainer(model, ts, cfg, tempfile.mkdtemp(), rep, device="cpu", progress=False, log=lambda s: None,
        tensorboard=False).fit()
flat = torch.cat([p.detach().flatten() for p in model.state_dict().values()]).numpy()
np.save(sys.argv[4], flat)
print(hashlib.sha256(flat.tobytes()).hexdigest()[:16])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="frame_ae", help="a section of the demo config (frame_ae, apc, cpc)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a config value")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="set in every child")
    args = ap.parse_args()
    import numpy as np

    tests = str(Path(__file__).resolve().parent.parent / "tests")
    sys.path.insert(0, tests)
    from test_datasets import make_toy_dataset

    root = tempfile.mkdtemp()
    make_toy_dataset(Path(root), dim=39, n_speakers=8, n_utts=40)
    env = {**os.environ, **dict(e.split("=", 1) for e in args.env)}
    demo = Path(__file__).resolve().parent.parent / "src" / "speechreps" / "configs" / "demo.json"
    section = {**json.loads(demo.read_text())[args.model], **{k: json.loads(v) for k, v in
                                                             (o.split("=", 1) for o in args.set)}}
    section = json.dumps(section)
    first = None
    for run in range(args.runs):
        out = Path(root) / f"w{run}.npy"
        proc = subprocess.run([sys.executable, "-c", CHILD, root, str(args.threads), tests, str(out), args.model,
                               section], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"run {run} failed:\n{proc.stderr[-2000:]}")
        w = np.load(out)
        first = w if first is None else first
        print(f"run {run}: weights {proc.stdout.strip()}  max |diff| from run 0: {np.abs(w - first).max():.3g}")


if __name__ == "__main__":
    main()
