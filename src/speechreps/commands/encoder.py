"""``speechreps encoder``: score every layer of a pretrained HuBERT / wav2vec 2.0 / WavLM model, extract the best.

See :mod:`speechreps.encoders` (loading offline, the 20 ms / 10 ms frame rule, in-context encoding).
"""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 45


def _layers(value: str) -> list[int]:
    try:
        out = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer numbers such as 0,6,12, got {value!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("no layer given")
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encoder",
        help="same-different AP of every layer of a pretrained HuBERT / wav2vec 2.0 / WavLM, best layer extracted",
        description="Load a pretrained speech encoder from a local folder in the Hugging Face layout (config.json "
        "+ model.safetensors; never downloads anything, never reads pickles), encode the validation and test "
        "words of dataset --language from their audio (in their utterance's context, or isolated), score every "
        "hidden layer by same-different AP (downsampled and DTW, all and cross-speaker pairs), write a table "
        "and a plot, and extract the best layer (by validation DTW AP) of every split to feature archives "
        "that speechreps awe train reads.",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="local model folder (config.json + model.safetensors)")
    p.add_argument("--language", required=True, help="dataset name in data_paths.json")
    p.add_argument("--data-paths", default=None, metavar="FILE",
                   help="data_paths.json (default: ./data_paths.json, else ./data/data_paths.json)")
    p.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                   help="the dataset's audio corpus folder (default: the one its prepare.json records)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output folder (default: encoders/<model folder name>/<dataset>)")
    p.add_argument("--layers", type=_layers, default=None, metavar="K,K,...", help="score only these layers")
    p.add_argument("--isolated", action="store_true", help="encode each word alone instead of in its utterance")
    p.add_argument("--no-extract", action="store_true", help="score only; write no feature archives")
    p.add_argument("--jobs", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..encoders.layers import EncoderOptions, run_encoder
    from ..encoders.model import read_model_folder
    from ..errors import check_jobs
    from ..pipeline import resolve_data_paths

    check_jobs(args.jobs)
    read_model_folder(args.model)  # a bad folder fails before torch is imported
    data_paths = resolve_data_paths(args.data_paths)
    import torch

    if args.jobs:
        torch.set_num_threads(args.jobs)
    opts = EncoderOptions(model=Path(args.model), data_paths=data_paths, dataset=args.language, out_dir=args.out,
                          corpus=args.corpus, layers=args.layers, isolated=args.isolated, extract=not args.no_extract,
                          device=args.device, jobs=args.jobs, progress=not args.no_progress)
    summary = run_encoder(opts)
    out = Path(summary["out_dir"])
    print((out / "layers.md").read_text().rstrip())
    print(f"best layer: {summary['best_layer']} (validation DTW AP); table {out / 'layers.md'}, plot {out / 'layers.png'}")
    if summary.get("files"):
        print("features of the best layer:")
        for split, path in summary["files"].items():
            print(f"  {split}: {path}")
        print(f"train an AWE model on them:\n  {summary['awe_command']}")
    return 0
